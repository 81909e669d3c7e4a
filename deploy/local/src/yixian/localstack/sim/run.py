"""One simulation from plan to verdict: the nodes set up, the day's traffic and faults, the
wait until the network has converged, then the checks and the figures."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from yixian.contracts import TopicNames
from yixian.localstack.sinks import HttpSink, MailSink
from yixian.localstack.stack import LocalStack

from .faults import Faults
from .plan import (
    DAY,
    HOUR,
    FaultKind,
    day_plan,
    fault_plan,
    host_layout,
    partner_graph,
    select,
)
from .resources import Connections, CpuMeter, cpu_seconds, memory_mib, postgres_cpu
from .traffic import Traffic
from .verdict import (
    compare_replicas,
    converged,
    count_notices,
    dead_letters,
    links_missing,
    pair_lags,
    percentiles,
)
from .world import MakeDatabase, Say, World

SETTLE_LIMIT = 600.0
"""Seconds the network may take to converge after the day before the run fails."""
IDLE_WINDOW = 10.0
"""Seconds the set-up nodes are watched idle before the day, for what they cost doing
nothing."""


@dataclass(frozen=True)
class Options:
    nodes: int = 50
    hosts: int = 5
    movements: int = 3000
    seed: int = 1
    faults: frozenset[FaultKind] = frozenset(FaultKind)
    day_seconds: float = 300.0
    """How long the simulated day lasts, in seconds."""
    kills: int = 3
    """Host processes killed (a registry, a sync, a notify: the first so many)."""

    @property
    def speed(self) -> float:
        return DAY / self.day_seconds


@dataclass
class Result:
    options: Options
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        o = self.options
        return {
            "ok": self.ok,
            "problems": self.problems,
            "options": {
                "nodes": o.nodes, "hosts": o.hosts, "movements": o.movements, "seed": o.seed,
                "faults": sorted(f.value for f in o.faults), "day_seconds": o.day_seconds,
            },
            "machine": {
                "cores": os.cpu_count(), "python": platform.python_version(),
                "kernel": platform.release(), "at": datetime.now(UTC).isoformat(),
            },
            **self.figures,
        }  # fmt: skip


async def simulate(
    stack: LocalStack,
    options: Options,
    root: Path,
    make_database: MakeDatabase,
    topics: TopicNames,
    say: Say = print,
) -> Result:
    """The whole simulation; its result (``ok`` when every check held)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    rng = random.Random(options.seed)  # noqa: S311  (a plan, not a secret)
    chosen = select(options.nodes)
    layout = host_layout(chosen, options.hosts)
    graph = partner_graph(chosen, rng)
    stories = day_plan(graph, options.movements, rng)
    faults = fault_plan(options.faults, layout, stories, options.kills)
    result = Result(options)
    say(
        f"Simulation (seed {options.seed}): {len(chosen)} nodes on {len(layout)} hosts,"
        f" {len(graph.links)} links, {len(stories):,} movements with"
        f" {sum(len(s.steps) for s in stories):,} steps, a day in {options.day_seconds:g} s"
    )
    for name, codes in layout.items():
        say(f"  host {name}: {', '.join(codes)}")
    busiest = Counter(s.host for s in stories).most_common(3)
    say("  busiest hosts of members: " + ", ".join(f"{c} ({n})" for c, n in busiest))
    for ending, count in Counter(s.ending for s in stories).most_common():
        say(f"  {count:>6,} {ending}")
    for fault in faults:
        say(f"  fault at {fault.describe()}")

    shutil.rmtree(root / "hosts", ignore_errors=True)
    mail, http = MailSink().start(), HttpSink().start()
    world = World(stack, graph, layout, root, topics, make_database, mail, http, say)
    try:
        say("Setting up ...")
        await world.build(stories)
        setup = loop.time() - began
        say(f"  set up in {setup:.0f} s")
        databases = {sim.database_url.rsplit("/", 1)[1]: code for code, sim in world.nodes.items()}
        connections = Connections(stack, databases)
        await asyncio.sleep(5)  # the nodes' first heartbeats and schedules
        idle = await connections.count()

        cpu = CpuMeter(_cpu_readers(world, stack))
        cpu.start()
        await asyncio.sleep(IDLE_WINDOW)
        idle_cpu = sum(cpu.totals().values()) / IDLE_WINDOW
        say(f"  {len(world.nodes)} idle nodes use {idle_cpu:.2f} CPU seconds a second"
            " (hosts, PostgreSQL, Kafka)")  # fmt: skip
        cpu.start()
        own_cpu = cpu_seconds(os.getpid())
        stop_sampling = asyncio.Event()
        sampling = asyncio.create_task(connections.sample(stop_sampling))
        traffic = Traffic(world, stories, options.speed)
        strikes = Faults(world, stack, faults, options.speed, cpu, say)
        say(f"The day ({options.day_seconds:g} s) ...")
        midnight = loop.time()
        progress = asyncio.create_task(_progress(traffic, midnight, options, say))
        try:
            await asyncio.gather(traffic.run(midnight), strikes.run(midnight))
        finally:
            progress.cancel()
        day_ended = loop.time()
        tally = traffic.tally
        say(
            f"  day over after {day_ended - midnight:.0f} s: {sum(tally.done.values()):,} steps"
            f" taken, {tally.not_yet:,} tried again (the partner's change not there yet),"
            f" {tally.unanswered:,} sent again (no answer)"
        )

        settled_at = None
        while loop.time() - day_ended < SETTLE_LIMIT:
            if await converged(world):
                settled_at = loop.time()
                break
            await asyncio.sleep(1.0)
        stop_sampling.set()
        await sampling
        used = cpu.totals()
        own_cpu = cpu_seconds(os.getpid()) - own_cpu
        memory = {
            f"{name}/{service}": memory_mib(process.popen.pid if process.popen else None)
            for name, host in world.hosts.items()
            for service, process in host.processes.items()
        }
        end_idle = await connections.count()

        say("Checking ...")
        replicas = await compare_replicas(world)
        notices = await count_notices(world, mail, http)
        lags = percentiles(await pair_lags(world))
        dead = await dead_letters(world)
        unlinked = await links_missing(world)
        checked = loop.time()

        last_fault = max((s.ended for s in strikes.struck), default=None)
        result.figures = _figures(
            options, world, stories, tally, strikes, replicas, notices, lags, dead, used,
            own_cpu, idle_cpu, memory, idle, end_idle, connections, setup=setup, midnight=midnight,
            day_ended=day_ended, settled_at=settled_at, last_fault=last_fault,
            checked=checked, began=began,
        )  # fmt: skip
        result.figures["links_recorded"] = (
            "every node keeps a link with each of its partners"
            if not unlinked
            else f"links missing: {', '.join(unlinked[:10])}"
        )
        result.problems = _problems(stories, tally, strikes, faults, replicas, notices, dead,
                                    settled_at)  # fmt: skip
        if unlinked:
            result.problems.append(f"{len(unlinked)} links not kept: {', '.join(unlinked[:5])}")
        _report(result, say)
        return result
    finally:
        await asyncio.to_thread(world.stop)
        mail.stop()
        http.stop()


def _cpu_readers(world: World, stack: LocalStack) -> dict[str, Any]:
    readers: dict[str, Any] = {}
    for name, host in world.hosts.items():
        for service, process in host.processes.items():
            readers[f"{name}/{service}"] = lambda p=process: cpu_seconds(
                p.popen.pid if p.popen else None
            )
    readers["postgresql"] = lambda: postgres_cpu(stack)
    readers["kafka"] = lambda: cpu_seconds(stack.kafka.pid())
    return readers


async def _progress(traffic: Traffic, midnight: float, options: Options, say: Say) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(max(options.day_seconds / 8, 5))
        hour = (loop.time() - midnight) * options.speed / HOUR
        tally = traffic.tally
        say(
            f"  {min(hour, 24):05.2f} h of the day: {sum(tally.done.values()):,} steps taken,"
            f" {tally.stories_done:,} members' days done, {len(tally.failures)} failed"
        )


def _figures(
    options: Options,
    world: World,
    stories: list[Any],
    tally: Any,
    strikes: Faults,
    replicas: Any,
    notices: Any,
    lags: dict[str, float],
    dead: int,
    used: dict[str, float],
    own_cpu: float,
    idle_cpu: float,
    memory: dict[str, tuple[float, float]],
    idle: dict[str, int],
    end_idle: dict[str, int],
    connections: Connections,
    *,
    setup: float,
    midnight: float,
    day_ended: float,
    settled_at: float | None,
    last_fault: float | None,
    checked: float,
    began: float,
) -> dict[str, Any]:
    movements = len(stories)
    hosts_cpu = sum(v for k, v in used.items() if "/" in k)
    by_service: dict[str, float] = {}
    for name, seconds in used.items():
        if "/" in name:
            service = name.split("/")[1]
            by_service[service] = by_service.get(service, 0.0) + seconds
    total_cpu = hosts_cpu + used["postgresql"] + used["kafka"]
    nodes = len(world.nodes)
    rss = sum(now for now, _ in memory.values())
    peak = sum(hwm for _, hwm in memory.values())
    last_request = tally.last_answer or day_ended
    return {
        "plan": {
            "nodes": nodes,
            "hosts": {name: codes for name, codes in world.layout.items()},
            "links": len(world.graph.links),
            "pair_topics": world.graph.ordered_pairs(),
            "movements": movements,
            "steps": sum(len(s.steps) for s in stories),
        },
        "wall_seconds": {
            "setup": round(setup, 1),
            "setup_steps": {k: round(v, 1) for k, v in world.timings.items()},
            "day": round(day_ended - midnight, 1),
            "until_converged": None if settled_at is None else round(settled_at - day_ended, 1),
            "checks": round(checked - (settled_at or day_ended), 1),
            "total": round(checked - began, 1),
        },
        "traffic": {
            "requests": tally.requests,
            "steps_taken": dict(tally.done),
            "tried_again_not_yet": tally.not_yet,
            "sent_again_unanswered": tally.unanswered,
            "members_days_done": tally.stories_done,
            "failures": [vars(f) for f in tally.failures[:50]],
        },
        "faults": [s.as_json() for s in strikes.struck],
        "convergence": {
            "seconds_after_last_fault": None
            if settled_at is None or last_fault is None
            else round(settled_at - last_fault, 1),
            "seconds_after_last_request": None
            if settled_at is None
            else round(settled_at - last_request, 1),
        },
        "lag_ms": {k: round(v, 1) if isinstance(v, float) else v for k, v in lags.items()},
        "cpu": {
            "seconds": {k: round(v, 1) for k, v in sorted(used.items())},
            "by_service_seconds": {k: round(v, 1) for k, v in by_service.items()},
            "load_generator_seconds": round(own_cpu, 1),
            "idle_nodes_cores": round(idle_cpu, 3),
            "per_movement_ms": round(1000 * total_cpu / max(movements, 1), 1),
            "per_movement_ms_parts": {
                "node hosts": round(1000 * hosts_cpu / max(movements, 1), 1),
                "postgresql": round(1000 * used["postgresql"] / max(movements, 1), 1),
                "kafka": round(1000 * used["kafka"] / max(movements, 1), 1),
            },
        },
        "memory": {
            "per_node_mib": round(rss / nodes, 1),
            "peak_per_node_mib": round(peak / nodes, 1),
            "processes_mib": {k: round(v[0], 1) for k, v in memory.items()},
        },
        "connections": {
            "idle_total": sum(idle.values()),
            "idle_per_node": round(sum(idle.values()) / nodes, 1),
            "peak_total": connections.peak_total,
            "peak_one_node": connections.peak_node,
            "after_the_day_total": sum(end_idle.values()),
        },
        "replicas": replicas.as_json(),
        "notices": notices.as_json(),
        "dead_letters": dead,
    }


def _problems(
    stories: list[Any],
    tally: Any,
    strikes: Faults,
    faults: list[Any],
    replicas: Any,
    notices: Any,
    dead: int,
    settled_at: float | None,
) -> list[str]:
    problems = []
    if tally.failures:
        first = tally.failures[0]
        problems.append(
            f"{len(tally.failures)} members' days failed; first: story {first.story}"
            f" {first.step} at {first.node}: {first.answer}"
        )
    if tally.stories_done != len(stories) - len(tally.failures):
        problems.append("not every member's day ran to its end")
    if len(strikes.struck) != len(faults):
        problems.append(f"{len(strikes.struck)} of {len(faults)} faults struck")
    if settled_at is None:
        problems.append(f"the network did not converge within {SETTLE_LIMIT:.0f} s of the day")
    if not replicas.identical:
        problems.append(
            f"{len(replicas.differences)} replica differences; first: {replicas.differences[0]}"
        )
    if not notices.once:
        problems.append(
            f"notices not each sent once: statuses {notices.statuses}, {len(notices.missing)}"
            f" not received, {len(notices.unexpected)} received unplanned,"
            f" {notices.keys_at_two_nodes} planned at two nodes"
        )
    if dead:
        problems.append(f"{dead} dead letters")
    return problems


def _report(result: Result, say: Say) -> None:
    f = result.figures
    wall, conv, lag, cpu, mem = (
        f["wall_seconds"], f["convergence"], f["lag_ms"], f["cpu"], f["memory"]
    )  # fmt: skip
    conn, rep, notices = f["connections"], f["replicas"], f["notices"]
    parts = cpu["per_movement_ms_parts"]
    say("")
    say(f"replicas: {rep['movements']:,} movements and {rep['participations']:,} participations"
        f" on {rep['pairs_sharing_movements']} linked pairs compared row by row at both"
        f" nodes: {'identical' if rep['identical'] else 'DIFFERENT'}")  # fmt: skip
    say(f"notices: {notices['planned']:,} planned, {notices['received_distinct']:,} received"
        f" ({notices['repeats_dropped_by_key']} repeats dropped by key):"
        f" {'each once' if notices['each_once'] else 'NOT each once'}")  # fmt: skip
    after_fault = conv["seconds_after_last_fault"]
    say(
        "convergence: "
        + ("none" if conv["seconds_after_last_request"] is None else
           f"{after_fault if after_fault is not None else '-'} s after the last fault,"
           f" {conv['seconds_after_last_request']} s after the last request")
    )  # fmt: skip
    say(f"lag commit → apply: p50 {lag['p50']:,.0f} ms, p99 {lag['p99']:,.0f} ms,"
        f" max {lag['max']:,.0f} ms ({lag['count']:,} pair events)")  # fmt: skip
    say(f"CPU per movement: {cpu['per_movement_ms']:,.0f} ms (node hosts"
        f" {parts['node hosts']:,.0f}, PostgreSQL {parts['postgresql']:,.0f},"
        f" Kafka {parts['kafka']:,.0f}); load generator"
        f" {cpu['load_generator_seconds']:,.0f} s in all; the idle network"
        f" {cpu['idle_nodes_cores']:.2f} cores")  # fmt: skip
    peak = mem["peak_per_node_mib"]
    say(f"memory per node: {mem['per_node_mib']:.1f} MiB resident (peak {peak:.1f})")
    say(f"database connections: {conn['idle_per_node']:.1f} per node idle"
        f" ({conn['idle_total']} in all), peak {conn['peak_total']} in all"
        f" ({conn['peak_one_node']} at one node)")  # fmt: skip
    say(f"wall: set-up {wall['setup']:.0f} s, day {wall['day']:.0f} s, converged"
        f" {wall['until_converged']} s after it, checks {wall['checks']:.0f} s;"
        f" {wall['total']:.0f} s in all")  # fmt: skip
    if result.problems:
        say("PROBLEMS:")
        for problem in result.problems:
            say(f"  {problem}")
    else:
        say("every replica pair identical, every notice once: ok")


def write_result(result: Result, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_json(), ensure_ascii=False, indent=2, default=str) + "\n")
