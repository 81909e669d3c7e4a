"""Paging the events of several topics in time order.

An event's place is its ``Position``: (timestamp in ms, topic, partition, offset), unique
and totally ordered, so events sharing a millisecond keep an order and a page ends at one
of them exactly; the next page starts after that position (its cursor), never at the next
millisecond. A page is read from several partitions at once, each in offset order (the
node's producers stamp a partition's records in time order); when the reading stops
before a partition's end, what that partition still holds comes after the last position
read from it, so only events up to the earliest such position (the horizon) can be placed
on the page for certain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

Position = tuple[int, str, int, int]
"""(timestamp in ms, topic, partition, offset)."""

_CURSOR = re.compile(r"^([0-9]{1,15})\.([0-9]{1,9})\.([0-9]{1,18})\.([A-Za-z0-9._-]{1,249})$")
T = TypeVar("T")


def cursor(position: Position) -> str:
    """``<ms>.<partition>.<offset>.<topic>``: a position in a URL."""
    at, topic, partition, offset = position
    return f"{at}.{partition}.{offset}.{topic}"


def parse_cursor(text: str) -> Position | None:
    """The position a cursor names; None if it is not one."""
    match = _CURSOR.match(text)
    if match is None:
        return None
    at, partition, offset, topic = match.groups()
    return int(at), topic, int(partition), int(offset)


def first_page(
    found: Iterable[T], position: Callable[[T], Position], limit: int, horizon: Position | None
) -> list[T]:
    """The first ``limit`` of ``found`` in time order, none after ``horizon`` (None: the
    partitions were read to their end, or far enough, and every one may be placed)."""
    placed = sorted(found, key=position)
    if horizon is not None:
        placed = [item for item in placed if position(item) <= horizon]
    return placed[:limit]
