"""The faults of the day, struck at their simulated time: a partner off its host for an
hour (``yixian host remove``, then ``yixian host add`` again), ``kill -9`` of a node host's
process (started again), the Kafka broker and the PostgreSQL server stopped and started."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from yixian.localstack.stack import LocalStack

from .plan import Fault, FaultKind
from .resources import CpuMeter
from .world import Say, World


@dataclass
class Struck:
    fault: Fault
    began: float
    """Loop time the fault struck."""
    ended: float
    """Loop time what it broke was back (the node, process or server serving again)."""

    def as_json(self) -> dict[str, object]:
        return {
            "fault": self.fault.describe(),
            "kind": self.fault.kind.value,
            "target": self.fault.target,
            "seconds": round(self.ended - self.began, 1),
        }


@dataclass
class Faults:
    world: World
    stack: LocalStack
    plan: list[Fault]
    speed: float
    cpu: CpuMeter
    say: Say
    struck: list[Struck] = field(default_factory=list)

    async def run(self, midnight: float) -> None:
        """Each fault at its time of the day, whether the one before is over or not."""
        await asyncio.gather(*(self._one(fault, midnight) for fault in self.plan))

    async def _one(self, fault: Fault, midnight: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, midnight + fault.at / self.speed - loop.time()))
        began = loop.time()
        if fault.kind is FaultKind.OFFLINE:
            await self._offline(fault.target, midnight + (fault.at + fault.lasts) / self.speed)
        else:
            await asyncio.to_thread(self._strike, fault)
        struck = Struck(fault, began, loop.time())
        self.struck.append(struck)
        self.say(f"  fault {fault.describe()}: back after {struck.ended - began:.1f} s")

    async def _offline(self, code: str, back: float) -> None:
        """``yixian host remove``; an hour of the simulated day later, ``yixian host add``
        with the same settings file: the node catches up with what it missed."""
        node = self.world.nodes[code].node
        await asyncio.to_thread(node.remove)
        await asyncio.sleep(max(0.0, back - asyncio.get_running_loop().time()))
        await asyncio.to_thread(node.add_again, 300)

    def _strike(self, fault: Fault) -> None:
        if fault.kind is FaultKind.KILL:
            name, service = fault.target.split("/")
            host = self.world.hosts[name]
            process = host.processes[service]
            self.cpu.going(f"{name}/{service}")
            process.kill()
            time.sleep(1.0)
            process.launch()
            process.wait_started(120)
            host.wait_for_all(self.world.layout[name], "running", 300)
        elif fault.kind is FaultKind.BROKER:
            self.cpu.going("kafka")
            self.stack.kafka.stop()
            self.stack.kafka.start()
        elif fault.kind is FaultKind.DATABASE:
            self.cpu.going("postgresql")
            self.stack.postgres.stop()
            self.stack.postgres.start()
