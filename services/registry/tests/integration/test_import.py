"""Bulk import of members: streamed, per-row errors, duplicates skipped, large files."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from .conftest import Node

pytestmark = pytest.mark.integration

VALID_IDS = ["11010519491231002X", "110105194912310029"]


async def _import(
    node: Node, content: bytes | AsyncIterator[bytes], media: str, key: str | None = None
) -> dict:
    response = await node.call(
        "POST",
        "/v1/members/import",
        key,
        content=content,
        headers={"Content-Type": media},
        expect=200,
    )
    return response.json()


async def _count(node: Node) -> int:
    async with node.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM members"))


async def test_csv_rows_are_checked_one_by_one(gushi: Node) -> None:
    org = await gushi.org("支部")
    other = uuid4()
    csv = "\n".join(
        [
            "org_id,name,joined_on,phone,national_id",
            f"{org},李明,2001-07-01,13800000001,{VALID_IDS[0]}",
            f"{org},王芳,2003-05-04,,",
            f"{org},赵强,not-a-date,,",
            f"{org},钱伟,2004-01-01,,110105194912310021",
            f"{other},孙丽,2005-01-01,,",
            f"{org},周杰,2001-07-01,,{VALID_IDS[0]}",
            f"{org},,2001-07-01,,",
            f"{org},吴刚,2999-01-01,,",
            f"{org},郑爽,2001-07-01",
        ]
    ).encode()
    report = await _import(gushi, csv, "text/csv")
    assert report["accepted"] == 2
    assert report["duplicates"] == 1
    assert report["rejected"] == 6
    by_line = {(e["line"], e["field"]) for e in report["errors"]}
    assert (4, "joined_on") in by_line
    assert (5, "national_id") in by_line
    assert (6, "org_id") in by_line
    assert (7, "member_id") in by_line  # same national ID as line 2
    assert (8, "name") in by_line
    assert (9, "joined_on") in by_line
    assert (10, "(row)") in by_line
    assert await _count(gushi) == 2


async def test_json_lines_and_reimport_is_idempotent(gushi: Node) -> None:
    org = await gushi.org("支部")
    rows = [
        {
            "member_id": str(uuid4()),
            "org_id": str(org),
            "name": f"党员{i}",
            "joined_on": "2010-07-01",
        }
        for i in range(5)
    ]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    first = await _import(gushi, body, "application/x-ndjson")
    again = await _import(gushi, body, "application/x-ndjson")
    assert (first["accepted"], first["duplicates"]) == (5, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 5)
    key = {"Idempotency-Key": "import-2026-03"}
    first_keyed = await gushi.call(
        "POST",
        "/v1/members/import",
        content=body,
        headers={"Content-Type": "application/x-ndjson", **key},
        expect=200,
    )
    again_keyed = await gushi.call(
        "POST",
        "/v1/members/import",
        content=body,
        headers={"Content-Type": "application/x-ndjson", **key},
        expect=200,
    )
    assert again_keyed.json() == first_keyed.json()  # the first report, whatever it said
    bad = await _import(
        gushi,
        b'{"org_id": "x"}\n[1]\n{"org_id": "%s", "name": "a", "joined_on": "2010-01-01", "extra": 1}\n'
        % str(org).encode(),
        "application/x-ndjson",
    )
    assert bad["rejected"] == 3
    assert {e["field"] for e in bad["errors"]} >= {"org_id", "(row)", "extra"}


async def test_auditors_may_not_import_and_wrong_media_type_is_named(gushi: Node) -> None:
    auditor = await gushi.key("auditor", "auditor")
    response = await gushi.call(
        "POST",
        "/v1/members/import",
        auditor,
        content=b"org_id\n",
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 403
    response = await gushi.call(
        "POST", "/v1/members/import", content=b"x", headers={"Content-Type": "application/pdf"}
    )
    assert response.status_code == 415
    assert response.json()["field"] == "Content-Type"


async def test_a_large_file_streams_through(gushi: Node) -> None:
    org = await gushi.org("支部")
    rows = 50_000

    async def body() -> AsyncIterator[bytes]:
        yield b"org_id,name,joined_on,phone\n"
        chunk = []
        for i in range(rows):
            chunk.append(f"{org},党员{i},2010-07-01,1380000{i:04d}\n")
            if len(chunk) == 1000:
                yield "".join(chunk).encode()
                chunk = []

    started = time.monotonic()
    report = await _import(gushi, body(), "text/csv")
    elapsed = time.monotonic() - started
    assert report["accepted"] == rows, report["errors"][:3]
    assert await _count(gushi) == rows
    print(f"imported {rows} members in {elapsed:.1f}s ({rows / elapsed:,.0f}/s)")
