import re
import pytest
from yixian.localstack import LocalStack
from yixian.localstack.demo import run_demo

pytestmark = pytest.mark.e2e

async def test_probe(local_stack: LocalStack) -> None:
    lines: list[str] = []
    await run_demo(local_stack, say=lines.append)
    text = "\n".join(lines)
    assert re.search(r"411525 relay\s+publish origin_group\s+ok\s+to demo\.yixian\.v1\.411525\.to", text)
    assert re.search(r"411525 sync\s+apply host_group\s+applied\s+from 110105", text)
    assert re.search(r"110105 notify\s+notice returned\s+sent", text)
    mails = [line for line in lines if line.startswith("  to ") and "@" in line]
    assert len(mails) == len(set(mails)) > 10, "a notice arrived twice"
    assert any("邀请参加" in line for line in lines)
    print("\n".join(l for l in lines if "present" in l or "Scenario 7" in l or "invit" in l.lower()))
    print(len(mails))
