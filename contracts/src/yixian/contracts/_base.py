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
    return value.astimezone(UTC)


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

ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=2000)]
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
