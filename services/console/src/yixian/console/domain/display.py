"""How values are shown: a record's nested fields as dotted rows, times in Beijing time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def flatten(record: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}, "c": [2]}`` → ``[("a.b", 1), ("c", "2")]``: every leaf once; a list
    of plain values as one line; empty values left out."""
    if isinstance(record, Mapping):
        rows: list[tuple[str, Any]] = []
        for key, value in record.items():
            rows += flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(record, list):
        if all(not isinstance(v, Mapping | list) for v in record):
            return [(prefix, "、".join(str(v) for v in record))] if record else []
        rows = []
        for index, value in enumerate(record):
            rows += flatten(value, f"{prefix}[{index}]")
        return rows
    if record is None or record == "":
        return []
    return [(prefix, record)]


def beijing(value: Any, seconds: bool = True) -> str:
    """An ISO time (or a datetime) as Beijing time, ``2026-03-01 09:30:00`` (in UTC, or as
    it came, when that would fall outside years 1 to 9999); a date or anything else as it
    is."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and "T" in value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        return "" if value is None else str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    for zone, suffix in ((BEIJING, ""), (UTC, " UTC")):
        try:  # Beijing time past 9999-12-31 (or UTC before year 1) cannot be shown
            return moment.astimezone(zone).strftime(shape) + suffix
        except OverflowError:
            continue
    return moment.isoformat(sep=" ")
