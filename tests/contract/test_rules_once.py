"""Each rule once: the open statuses are ``OPEN_ORIGIN_STATUSES`` (yixian.contracts) and
nowhere else (Python code imports them; SQL, which cannot, must list exactly them), and
the deadlines are one settings block every service reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yixian.contracts import OPEN_ORIGIN_STATUSES, Deadlines
from yixian.notify.config import NotifySettings
from yixian.registry.config import RegistrySettings
from yixian.sync.config import SyncSettings

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "contracts" / "src",
    ROOT / "libs",
    ROOT / "services",
    ROOT / "ops",
    ROOT / "deploy" / "local" / "src",
    ROOT / "bench" / "src",
]
HOME = ROOT / "contracts" / "src" / "yixian" / "contracts" / "movement.py"

# two open statuses side by side: a literal list, in either order and either spelling
_NAMES = r"(?:['\"]{s}['\"]|OriginStatus\.{S})"
_PAIR = re.compile(
    "|".join(
        rf"{_NAMES.format(s=a, S=a.upper())}\s*,\s*{_NAMES.format(s=b, S=b.upper())}"
        for a, b in (("registered", "transfer_requested"), ("transfer_requested", "registered"))
    )
)
_SQL_LIST = re.compile(r"origin_status\s+IN\s*\(([^)]*)\)", re.IGNORECASE)


def _files(suffix: str) -> list[Path]:
    return sorted(
        p
        for source in SOURCES
        for p in source.rglob(f"*{suffix}")
        if "/tests/" not in p.as_posix() and ".venv" not in p.parts
    )


def test_no_open_status_list_outside_contracts() -> None:
    listed = [
        f"{path.relative_to(ROOT)}: {found.group()}"
        for path in _files(".py")
        if path != HOME
        for found in _PAIR.finditer(path.read_text(encoding="utf-8"))
    ]
    assert listed == [], "import OPEN_ORIGIN_STATUSES from yixian.contracts instead"


def test_every_open_status_list_in_sql_is_the_contracts() -> None:
    expected = {status.value for status in OPEN_ORIGIN_STATUSES}
    lists = {
        f"{path.relative_to(ROOT)}: {found.group(1)}": set(re.findall(r"'(\w+)'", found.group(1)))
        for path in _files(".sql")
        for found in _SQL_LIST.finditer(path.read_text(encoding="utf-8"))
    }
    assert lists, "the migrations list the open statuses (the one-open index, people_present)"
    assert {where: found for where, found in lists.items() if found != expected} == {}


def test_the_check_finds_a_list() -> None:
    """The pattern is not vacuous: it finds the definition itself."""
    assert _PAIR.search(HOME.read_text(encoding="utf-8"))
    assert _PAIR.search("OPEN = ['transfer_requested', \"registered\"]")


def test_registry_and_notify_read_one_block_of_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIXIAN_NODE", "411525")
    monkeypatch.setenv("YIXIAN_NATIONAL_ID_KEY", "k" * 32)
    monkeypatch.setenv("YIXIAN_DEADLINES__LOST_CONTACT_SUSPENSION_DAYS", "200")
    monkeypatch.setenv("YIXIAN_DEADLINES__REPORT_INTERVAL_DAYS", "180")
    expected = Deadlines(lost_contact_suspension_days=200, report_interval_days=180)
    assert RegistrySettings().deadlines.to_domain() == expected
    assert NotifySettings().deadlines.to_domain() == expected
    assert SyncSettings().deadlines.to_domain() == expected
    assert not any("lost_contact" in name for name in NotifySettings.model_fields)


_DUE_READS = re.compile(r"\.reply_due_on\b|\bhost(?:_group)?\.lost_contact_since\b")


def test_due_dates_and_lost_contact_are_read_through_the_contracts() -> None:
    """When a transfer reply is due (the host's deadline, else the date the origin stamped)
    and since when a member is lost (either side's) are ``transfer_reply_due_on`` and
    ``lost_contact_since`` in yixian.contracts; a service reading the field itself would
    count with the wrong side's setting."""
    contracts = ROOT / "contracts" / "src"
    found = [
        f"{path.relative_to(ROOT)}: {match.group()}"
        for path in _files(".py")
        if not path.is_relative_to(contracts)
        for match in _DUE_READS.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "use transfer_reply_due_on / lost_contact_since from yixian.contracts"
    assert _DUE_READS.search("due = origin.transfer.reply_due_on")
    assert _DUE_READS.search("since = host.lost_contact_since")


_REPORT_READS = re.compile(r"\.(?:last_report_on|report_received_on)\b")
_DUES_PAID_READS = re.compile(r"\b(?:host|host_group|group)\.dues_paid\b")
_STEPS = ROOT / "services" / "registry" / "src" / "yixian" / "registry" / "domain" / "movement.py"
_DUES_VIEW = ROOT / "services" / "registry" / "src" / "yixian" / "registry" / "domain" / "dues.py"


def test_when_a_report_is_due_is_read_through_the_contracts() -> None:
    """The next report is due the origin's interval after the later of the origin's own
    record and the report the host received (``report_due_on``); a service reading either
    day itself would miss the other side's report. Only the steps that record them read
    them (to find a repeated request)."""
    contracts = ROOT / "contracts" / "src"
    found = [
        f"{path.relative_to(ROOT)}: {match.group()}"
        for path in _files(".py")
        if not path.is_relative_to(contracts) and path != _STEPS
        for match in _REPORT_READS.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "use report_due_on from yixian.contracts"
    assert _REPORT_READS.search("due = origin.last_report_on")
    assert _REPORT_READS.search("host_group.report_received_on or today")


def test_which_dues_are_overdue_is_read_through_the_contracts() -> None:
    """Which month a visiting member's dues are overdue for is ``dues_overdue_month`` (the
    host's due day, from the month of check-in); outside contracts only the step that
    records dues and the view of where they were paid read the months paid."""
    contracts = ROOT / "contracts" / "src"
    found = [
        f"{path.relative_to(ROOT)}: {match.group()}"
        for path in _files(".py")
        if not path.is_relative_to(contracts) and path not in (_STEPS, _DUES_VIEW)
        for match in _DUES_PAID_READS.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "use dues_overdue_month from yixian.contracts"
    assert _DUES_PAID_READS.search("unpaid = set(host.dues_paid)")
    assert not _DUES_PAID_READS.search('Step("dues", "movement.dues_paid", ...)')


def test_the_dues_due_day_is_the_one_block_every_service_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("YIXIAN_NODE", "110105")
    monkeypatch.setenv("YIXIAN_NATIONAL_ID_KEY", "k" * 32)
    monkeypatch.setenv("YIXIAN_DEADLINES__DUES_DUE_DAY", "20")
    expected = Deadlines(dues_due_day=20)
    assert RegistrySettings().deadlines.to_domain() == expected
    assert NotifySettings().deadlines.to_domain() == expected
    assert SyncSettings().deadlines.to_domain() == expected
    monkeypatch.setenv("YIXIAN_DEADLINES__DUES_DUE_DAY", "29")  # not every month has it
    with pytest.raises(ValueError, match="dues_due_day"):
        RegistrySettings()
