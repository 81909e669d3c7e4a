"""The replay figure: a node's ``sync rebuild`` reading a whole pair topic back, beside
Kafka's own ConsumerPerformance reading the same topic in the same run.

``replay_figures`` measures it on its own (``python -m yixian.bench --only replay``): a
database and a pair topic of its own, no service running. The topic holds ``events``
origin-group events of Gushi for Chaoyang, as the apply figure's backlog; the host is
rebuilt twice from it: once with none of the movements yet (every replica created), then
over what the first left (each replica cleared and set again, as after live apply).

The rate is the command's own: from its first read of the topic to the last commit, the
clearing of the partner's data included; the interpreter's start and imports are in the
detail (``wall_s``), as ConsumerPerformance's figure leaves the JVM's start out.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

from yixian.contracts import TopicNames
from yixian.contracts.examples import origin_group_stream
from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, node_env

from . import ceilings
from .report import Figure, Report

GUSHI, CHAOYANG = "411525", "110105"
Say = Callable[[str], None]

_DONE = re.compile(r"(\d+) records in ([\d.]+) s")


@dataclass(frozen=True)
class Rebuilt:
    records: int
    seconds: float
    """The command's own time, from its first read of the topic to its last commit."""
    wall: float
    """The command's wall time, the interpreter's start and imports included."""
    load: float
    """The machine's load average (one minute) when it ended: others share the cores."""
    output: str

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


REBUILD_WITHIN = 900.0
"""Seconds a rebuild may take before the benchmark gives up on it."""


async def rebuild(env: dict[str, str], partner: str, log: Path) -> Rebuilt:
    """Run ``python -m yixian.sync rebuild --partner`` with a node's environment."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "yixian.sync", "rebuild", "--partner", partner,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=sink,
        )  # fmt: skip
        try:
            async with asyncio.timeout(REBUILD_WITHIN):
                out, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            raise RuntimeError(f"rebuild unfinished after {REBUILD_WITHIN:.0f} s: {log}") from None
        sink.write(out)
    wall = loop.time() - started
    load = os.getloadavg()[0]
    text = out.decode(errors="replace")
    found = _DONE.search(text)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"rebuild failed ({process.returncode}): {text[-2000:]}; see {log}")
    return Rebuilt(int(found.group(1)), float(found.group(2)), wall, load, text)


def add_replay(
    report: Report, rebuilt: Rebuilt, consumed: float, *, key: str = "replay", what: str
) -> None:
    """The replay figure and, beside it, Kafka's consumer on the same topic."""
    report.add("kafka_consumer_pair", Figure(
        "Kafka ConsumerPerformance, the pair topic", consumed, "records/s",
        f"the {rebuilt.records:,} records the rebuild read, same broker",
    ))  # fmt: skip
    report.add(key, Figure(
        "replay (rebuild)", rebuilt.rate, "events/s",
        f"`sync rebuild` of {rebuilt.records:,} records {what}, its own time (first read to"
        " last commit)", target="≥ 30,000 events/s; ≥ 0.2× Kafka's consumer",
        against="kafka_consumer_pair",
        detail={"records": rebuilt.records, "seconds": rebuilt.seconds, "wall_s": rebuilt.wall,
                "load_average": rebuilt.load},
    ))  # fmt: skip


async def replay_figures(
    stack: LocalStack, report: Report, *, events: int, logs: Path, say: Say
) -> None:
    """The replay figure on a database and pair topic of its own (see the module)."""
    topics = TopicNames(f"bench{uuid4().hex[:6]}")
    url = await stack.fresh_database(f"bench_replay_{CHAOYANG}")
    env = node_env(stack, CHAOYANG, url, topics, [GUSHI])
    node = LocalNode(CHAOYANG, "bench replay", url, env, logs)
    await asyncio.to_thread(node.init)
    topic = topics.pair(GUSHI, CHAOYANG)
    bootstrap = stack.config.kafka_bootstrap
    records = await asyncio.to_thread(origin_group_stream, GUSHI, events)
    await asyncio.to_thread(ceilings.produce, bootstrap, topic, records)
    total = await asyncio.to_thread(ceilings.topic_size, bootstrap, topic)
    say(f"replay: {total:,} events of {GUSHI} on {topic}")
    log = logs / "rebuild.log"
    fresh = await rebuild(env, GUSHI, log)
    say(f"replay into an empty node: {fresh.rate:,.0f} events/s ({fresh.wall:.1f} s wall)")
    again = await rebuild(env, GUSHI, log)
    consumed = await asyncio.to_thread(ceilings.kafka_consumer_ceiling, stack, topic, total)
    add_replay(report, again, consumed, what="over the replicas a first rebuild made")
    report.add("replay_fresh", Figure(
        "replay into an empty node", fresh.rate, "events/s",
        f"the same {fresh.records:,} records, no movement there yet",
        against="kafka_consumer_pair",
        detail={"records": fresh.records, "seconds": fresh.seconds, "wall_s": fresh.wall,
                "load_average": fresh.load},
    ))  # fmt: skip
    say(f"replay: {again.rate:,.0f} events/s ({again.wall:.1f} s wall); Kafka's consumer on"
        f" the same topic {consumed:,.0f} records/s: {again.rate / consumed:.2f}×; load"
        f" average {again.load:.1f} on {os.cpu_count()} cores")  # fmt: skip
