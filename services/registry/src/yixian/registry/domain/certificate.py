"""The mobile member certificate (流动党员活动证): its number is issued by the origin node.

A number is ``<node>-<year>-<sequence>``: the node's 6-digit division code, the Beijing year
of issue, and that year's sequence on the node, from 1, at least six digits
(``411525-2026-000123``). The sequence comes from the registry's counter table
(``certificate_counters``, migration 0011), taken under the row's lock in the
registration's transaction: a registration that fails gives its number back, so the
numbers of a year have no gaps; the table ``certificates`` keeps each number once (its
primary key). A caller never chooses a number.
"""

from __future__ import annotations

import re

NUMBER = re.compile(r"^(?P<node>[0-9]{6})-(?P<year>[0-9]{4})-(?P<sequence>[0-9]{6,})$")
"""What a number issued by a node looks like."""


def certificate_number(node: str, year: int, sequence: int) -> str:
    """The number of the ``sequence``-th certificate ``node`` issued in ``year``."""
    if not re.fullmatch(r"[0-9]{6}", node) or not 1000 <= year <= 9999 or sequence < 1:
        raise ValueError(f"no certificate number for node {node!r}, {year}, {sequence}")
    return f"{node}-{year:04d}-{sequence:06d}"
