"""What a change changed, field by field: the audit log's before and after."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UNAUDITED = frozenset({"changed_at", "changed_by"})
"""Fields of a group that every version changes and the audit row itself holds (its time
and its actor): not repeated as changes."""


def _leaves(value: Mapping[str, Any] | None, prefix: str) -> dict[str, Any]:
    """A nested mapping as dotted paths to its values (a list is one value)."""
    leaves: dict[str, Any] = {}
    for key, item in (value or {}).items():
        if key in UNAUDITED:
            continue
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(item, Mapping):
            leaves |= _leaves(item, path)
        else:
            leaves[path] = item
    return leaves


def field_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *, prefix: str = ""
) -> dict[str, dict[str, Any]]:
    """Each field that differs, as ``{"destination.place": {"before": ..., "after": ...}}``
    (None before: the record is new; a field absent on one side is None there). Values as
    given: pass JSON forms (``model_dump(mode="json")``) to keep them as the audit log does."""
    old, new = _leaves(before, prefix), _leaves(after, prefix)
    return {
        path: {"before": old.get(path), "after": new.get(path)}
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    }
