"""The README's main job runs, and every notice it produces arrives once."""

from __future__ import annotations

import re

import pytest

from yixian.localstack import LocalStack
from yixian.localstack.demo import run_demo

pytestmark = pytest.mark.e2e


async def test_the_demo_walks_through_the_scenarios(local_stack: LocalStack) -> None:
    lines: list[str] = []
    await run_demo(local_stack, say=lines.append)
    text = "\n".join(lines)
    for scenario in ("Scenario 1", "Scenario 2", "Scenario 3", "Scenario 6", "Scenario 7"):
        assert scenario in text
    assert "M returned: closed on both sides" in text
    assert "transfer rejected; membership stays with Gushi" in text
    assert "Chaoyang's intake assigns M to the working committee" in text
    assert "enrolled at Chaoyang's working committee" in text
    assert "Gushi sees that a concern was raised and answered, not its text" in text
    assert "Chaoyang now expects him (counted once, at Gushi)" in text
    assert "the claim stays in Chaoyang's to-do" in text
    assert "Trace of movement" in text
    # the trace has each hop: commit at the origin, publish, apply at the partner, notices
    assert re.search(
        r"411525 registry commit movement\.register\s+ok\s+by key:[0-9a-f-]{36} \(operator\)", text
    )
    assert re.search(
        r"411525 relay\s+publish origin_group\s+ok\s+to demo\.yixian\.v1\.411525\.to", text
    )
    assert re.search(r"411525 sync\s+apply host_group\s+applied\s+from 110105", text)
    assert re.search(r"110105 notify\s+notice returned\s+sent", text)
    mails = [line for line in lines if line.startswith("  to ") and "@" in line]
    assert len(mails) == len(set(mails)) > 10, "a notice arrived twice"
    assert any("邀请参加" in line for line in lines)
    shown = re.search(
        r"the console shows it: (\d+) notices on the movement's page, (\d+) hops", text
    )
    assert shown is not None, "the demo looked at its movement in the console"
    assert int(shown.group(1)) > 0, "the movement's page lists its notices"
    assert int(shown.group(2)) > 0, "the trace timeline draws its hops"
