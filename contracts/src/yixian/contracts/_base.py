"""Building blocks shared by every contract model: strictness, codes, times."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

# First two digits of the 6-digit administrative division code: the 31 provinces of the
# mainland plus Taiwan, Hong Kong and Macao, as GB/T 2260 assigns them.
PROVINCE_PREFIXES = frozenset(
    {
        "11", "12", "13", "14", "15",
        "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65",
        "71", "81", "82",
    }
)  # fmt: skip

_CODE = re.compile(r"\d{6}")


def _check_division_code(value: str) -> str:
    if not _CODE.fullmatch(value):
        raise ValueError("must be a 6-digit administrative division code, e.g. 411525")
    if value[:2] not in PROVINCE_PREFIXES:
        raise ValueError(f"{value[:2]} is not a province prefix of a division code")
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC") from None


# Text carries no control characters (C0, DEL, C1), no lone surrogates and no bidirectional
# overrides or isolates: PostgreSQL refuses NUL, a lone surrogate cannot be encoded as
# UTF-8, and an override makes a name read otherwise than it is stored. Longer texts may be
# split into lines and indented (tab, line feed, return).
_BIDI = "\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")
_CONTROL_BUT_LINES = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")


def _refuse(found: re.Match[str]) -> ValueError:
    return ValueError(
        f"must not contain the control character U+{ord(found.group()):04X}"
        f" (at character {found.start() + 1})"
    )


def _single_line(value: str) -> str:
    if found := _CONTROL.search(value):
        raise _refuse(found)
    return value


def _multi_line(value: str) -> str:
    if found := _CONTROL_BUT_LINES.search(value):
        raise _refuse(found)
    return value


JurisdictionCode = Annotated[
    str,
    Field(
        min_length=6,
        max_length=6,
        pattern=r"^\d{6}$",
        description="6-digit administrative division code of a jurisdiction (GB/T 2260).",
        examples=["411525", "110105"],
    ),
    AfterValidator(_check_division_code),
]
"""A jurisdiction (node) is named by its administrative division code."""

UtcDateTime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    Field(description="RFC 3339 timestamp with a time zone; normalised to UTC."),
]
"""A point in time. Naive datetimes are refused; every value is normalised to UTC."""

PlainText = AfterValidator(_single_line)
"""The rule of every one-line text: no control characters. Add it to a constrained ``str``."""

ShortText = Annotated[str, Field(min_length=1, max_length=200), PlainText]
"""A name, a title, a place: one line, no control characters."""
LongText = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_multi_line)]
"""A reason, a note, an address: may have several lines; no other control characters."""
Version = Annotated[int, Field(ge=1, description="Group version; a newer group has a larger one.")]
Sequence = Annotated[int, Field(ge=0)]


class ContractModel(BaseModel):
    """Base of every model that crosses the wire: immutable and closed to unknown fields."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
        use_enum_values=False,
        ser_json_timedelta="iso8601",
    )
