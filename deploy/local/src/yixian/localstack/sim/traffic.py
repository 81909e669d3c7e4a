"""The day's traffic: every story's steps sent to the acting node's HTTP API at their time
of the compressed day, as a secretary's client would send them across outages.

Every request carries an ``Idempotency-Key`` (the story and the step), so a request that
got no answer (a registry killed, the database restarting) is sent again and takes effect
once. A step the acting node refuses because the partner's change has not reached it yet
(404 for a movement it does not have, 409 for a state it has not seen) is tried again a
little later; any other refusal is a failure of the simulation, reported with the answer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import aiohttp

from yixian.runtime.divisions import division_name

from .plan import Action, Side, Step, Story
from .world import SimNode, World

IN_FLIGHT = 24
"""Requests in flight at once, over every node: the secretaries of the whole network."""
GIVE_UP = 600.0
"""Seconds a step may keep being refused or unanswered before the story fails."""
NOT_YET = frozenset({"not_found", "invalid_transition", "in_progress"})


@dataclass
class Failure:
    story: int
    step: str
    node: str
    answer: str


@dataclass
class Tally:
    """What the traffic did."""

    requests: int = 0
    done: Counter[str] = field(default_factory=Counter)
    """Steps that took effect, by action."""
    not_yet: int = 0
    """Refused because the partner's change had not arrived yet; tried again."""
    unanswered: int = 0
    """No answer (connection refused, timeout, 5xx, the node off its host); sent again."""
    failures: list[Failure] = field(default_factory=list)
    stories_done: int = 0
    last_answer: float = 0.0
    """Loop time of the last step that took effect."""
    movements: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)
    """Each story's movements: (id, origin, host)."""


class Traffic:
    def __init__(self, world: World, stories: list[Story], speed: float) -> None:
        self.say = world.say
        self.world = world
        self.stories = stories
        self.speed = speed
        """Simulated seconds per second."""
        self.tally = Tally()
        self.today = date.today().isoformat()
        self._gate = asyncio.Semaphore(IN_FLIGHT)
        self._session: aiohttp.ClientSession | None = None
        taken: Counter[str] = Counter()
        self.member: dict[int, Any] = {}
        """Each story's member: one of its origin's, none taken twice."""
        for story in stories:
            self.member[story.number] = world.nodes[story.origin].members[taken[story.origin]]
            taken[story.origin] += 1

    async def run(self, midnight: float) -> Tally:
        """Send every story's steps; ``midnight``: the loop time the simulated day began."""
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            self._session = session
            await asyncio.gather(*(self._story(story, midnight) for story in self.stories))
        return self.tally

    async def _story(self, story: Story, midnight: float) -> None:
        loop = asyncio.get_running_loop()
        member = self.member[story.number]
        movement, host = "", story.host
        self.tally.movements[story.number] = []
        for index, step in enumerate(story.steps):
            await asyncio.sleep(max(0.0, midnight + step.at / self.speed - loop.time()))
            acting = story.origin if step.action.side is Side.ORIGIN else host
            node = self.world.nodes[acting]
            body = self._body(step, node, member, host, story, index)
            path = "/v1/movements" if step.action is Action.REGISTER else (
                f"/v1/movements/{movement}/{step.action.value}"
            )  # fmt: skip
            answer = await self._until_taken(node, path, f"sim-{story.number}-{index}", body)
            if answer is None or isinstance(answer, Failure):
                failure = answer or Failure(0, "", acting, f"no answer for {GIVE_UP:.0f} s")
                failure.story, failure.step = story.number, step.action.value
                self._failed(failure)
                return
            self.tally.done[step.action.value] += 1
            self.tally.last_answer = loop.time()
            if step.action in (Action.REGISTER, Action.RELOCATE):
                movement = str(answer["movement_id"])
                host = step.args.get("host", host)
                self.tally.movements[story.number].append((movement, story.origin, host))
        self.tally.stories_done += 1

    def _failed(self, failure: Failure) -> None:
        self.tally.failures.append(failure)
        if len(self.tally.failures) <= 5:
            self.say(
                f"  FAILED: member {failure.story}'s {failure.step} at {failure.node}:"
                f" {failure.answer}"
            )

    def _body(
        self, step: Step, node: SimNode, member: Any, host: str, story: Story, index: int
    ) -> dict[str, Any] | None:
        today = self.today
        match step.action:
            case Action.REGISTER:
                return {
                    "member_id": str(member),
                    "destination": {"jurisdiction": host, "place": _place(host)},
                    "period": {"departed_on": today},
                    "contact": {"phone": f"+86 139 {story.number % 10**8:08d}"},
                    "reason": {"kind": "work", "text": "务工"},
                }
            case Action.CHECK_IN:
                return {"host_org_id": str(node.committee)}
            case Action.DETAILS:
                return {"contact": {"phone": step.args["phone"]}}
            case Action.PARTICIPATION:
                return {
                    "participation_id": str(
                        uuid.uuid5(uuid.NAMESPACE_URL, f"sim/{story.number}/{index}")
                    ),
                    "kind": "theme_day",
                    "title": "主题党日",
                    "attended_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
                }
            case Action.RETURN:
                return {"returned_on": today}
            case Action.TRANSFER_REQUEST:
                return {"note": "已在当地稳定就业"}
            case Action.TRANSFER_REPLY:
                decision = step.args["decision"]
                reason = {"reason": "尚未满足转接条件"} if decision == "rejected" else {}
                return {"decision": decision} | reason
            case Action.ENROL:
                return {"org_id": str(node.committee)}
            case Action.RELOCATE:
                new_host = step.args["host"]
                return {
                    "destination": {"jurisdiction": new_host, "place": _place(new_host)},
                    "departed_on": today,
                }
            case Action.LOST_CONTACT:
                return {"since": today}
            case Action.REJECT:
                return {"reason": "查无此人"}
            case _:
                return None  # complete, withdraw, restore contact, cancel

    async def _until_taken(
        self, node: SimNode, path: str, key: str, body: dict[str, Any] | None
    ) -> dict[str, Any] | Failure | None:
        """The step's answer once the node took it; a Failure for a refusal that waiting
        cannot mend; None when it kept being refused or unanswered for too long."""
        assert self._session is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GIVE_UP
        wait = 0.25
        while loop.time() < deadline:
            base = node.registry_url()
            if base is not None:
                async with self._gate:
                    outcome = await self._send(node, base + path, key, body)
                if isinstance(outcome, dict | Failure):
                    return outcome
            else:
                self.tally.unanswered += 1
            await asyncio.sleep(wait)
            wait = min(wait * 1.6, 3.0)
        return None

    async def _send(
        self, node: SimNode, url: str, key: str, body: dict[str, Any] | None
    ) -> dict[str, Any] | Failure | None:
        assert self._session is not None
        self.tally.requests += 1
        headers = {"Authorization": f"Bearer {node.key}", "Idempotency-Key": key}
        try:
            async with self._session.post(url, json=body or {}, headers=headers) as response:
                status = response.status
                text = await response.text()
                answer = await response.json(content_type=None) if text else {}
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.tally.unanswered += 1
            return None
        if status < 300:
            return dict(answer)
        answer = answer if isinstance(answer, dict) else {}
        error = answer.get("error")
        if status >= 500 or (status == 404 and answer.get("detail") == "no such node on this host"):
            self.tally.unanswered += 1
            return None
        if error in NOT_YET:
            self.tally.not_yet += 1
            return None
        return Failure(-1, "", node.code, f"{status} {text[:300]}")


def _place(code: str) -> str:
    return (division_name(code) or code)[-20:]
