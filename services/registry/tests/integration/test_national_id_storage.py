"""What the registry stores and sends about a national ID, on the real database (ADR 14).

The attack of issue #12: a copy of ``idempotency_keys`` held the masked number in a stored
response next to an unkeyed SHA-256 of the request, so trying the ~365 birth dates of a
year found the number at once. The fingerprint is now keyed with the node's own secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from yixian.registry.bootstrap import MIGRATIONS
from yixian.registry.service_layer.unit_of_work import request_hash

from .conftest import Node, outflow

pytestmark = pytest.mark.integration

NATIONAL_ID = "11010519491231002X"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _with_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def _node_key(node: Node) -> bytes:
    return node.settings.national_id_key.get_secret_value().encode()


def _member_body(org_id: str, national_id: str) -> bytes:
    body = {"org_id": org_id, "name": "张建国", "joined_on": "2008-07-01"}
    return json.dumps({**body, "national_id": national_id}).encode()


async def _add_member(node: Node, body: bytes, key: str) -> dict[str, object]:
    response = await node.call(
        "POST",
        "/v1/members",
        content=body,
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
        expect=201,
    )
    return dict(response.json())


async def _stored(node: Node, key: str) -> tuple[str, str]:
    row = await node.pool.fetchrow(
        "SELECT request_hash, response::text AS response FROM idempotency_keys WHERE key = $1",
        key,
    )
    assert row is not None
    return row["request_hash"], row["response"]


async def test_the_stored_fingerprint_is_keyed_with_this_node_own_secret(
    gushi: Node, chaoyang: Node
) -> None:
    assert _node_key(gushi) != _node_key(chaoyang)  # each node its own secret
    for node, other in ((gushi, chaoyang), (chaoyang, gushi)):
        org = str(await node.org("第一党支部"))
        body = _member_body(org, NATIONAL_ID)
        first = await _add_member(node, body, "add-zhang")
        fingerprint, response = await _stored(node, "add-zhang")

        plain = hashlib.sha256(b"POST /v1/members\n" + body).hexdigest()
        assert fingerprint != plain
        assert fingerprint == request_hash(_node_key(node), "POST", "/v1/members", body)
        assert fingerprint != request_hash(_node_key(other), "POST", "/v1/members", body)
        # the response kept for retries holds the masked number, nothing to test it against
        assert "110105********002X" in response
        assert NATIONAL_ID not in response
        assert hashlib.sha256(NATIONAL_ID.encode()).hexdigest() not in response
        # and a retry is still recognised by its keyed fingerprint
        assert await _add_member(node, body, "add-zhang") == first


async def test_a_copy_of_the_table_no_longer_gives_the_number_away(gushi: Node) -> None:
    """Issue #12's brute force, replayed on a copy of the table: every birth date of the
    year against the stored fingerprint. Without the node's secret nothing matches; with
    it, exactly the member's number (so the search itself is sound)."""
    org = str(await gushi.org("第一党支部"))
    await _add_member(gushi, _member_body(org, NATIONAL_ID), "add-zhang")
    fingerprint, response = await _stored(gushi, "add-zhang")
    masked = json.loads(response)["national_id_masked"]
    region, tail = masked[:6], masked[-4:]
    candidates = []
    day = date(1949, 1, 1)
    while day.year == 1949:
        candidate = _with_check_digit(f"{region}{day:%Y%m%d}{tail[:3]}")
        if candidate[-1] == tail[-1]:
            candidates.append(candidate)
        day += timedelta(days=1)
    assert NATIONAL_ID in candidates

    def matches(fingerprint_of: Callable[[bytes], str]) -> list[str]:
        return [c for c in candidates if fingerprint_of(_member_body(org, c)) == fingerprint]

    assert matches(lambda b: hashlib.sha256(b"POST /v1/members\n" + b).hexdigest()) == []
    other_key = b"a-guessed-or-another-node-key-0123456789"
    assert matches(lambda b: request_hash(other_key, "POST", "/v1/members", b)) == []
    own_key = _node_key(gushi)
    assert matches(lambda b: request_hash(own_key, "POST", "/v1/members", b)) == [NATIONAL_ID]


async def test_no_stored_event_carries_the_national_id_or_a_function_of_it(gushi: Node) -> None:
    branch = await gushi.org("陈集镇第一党支部")
    member = await gushi.member(branch, national_id=NATIONAL_ID)
    await gushi.post("/v1/movements", outflow(member), expect=201)
    keyed = await gushi.pool.fetchval(
        "SELECT national_id_hash FROM members WHERE member_id = $1", member
    )
    assert keyed  # the node's own table keeps the keyed hash, for its own matching
    forbidden = {
        "the number": NATIONAL_ID,
        "its keyed hash": keyed,
        "its sha256": hashlib.sha256(NATIONAL_ID.encode()).hexdigest(),
    }
    rows = await gushi.outbox()
    assert rows
    for row in rows:
        value = bytes(row["value"]).decode()
        assert "national_id_hash" not in value
        for what, secret in forbidden.items():
            assert secret not in value, f"an event carries {what}"
    stored = await gushi.pool.fetch("SELECT origin_group::text AS g FROM movements")
    history = await gushi.pool.fetch("SELECT snapshot::text AS g FROM movement_history")
    for row in [*stored, *history]:
        assert keyed not in row["g"]


async def test_fingerprints_stored_before_they_were_keyed_are_retired(gushi: Node) -> None:
    """Migration 0005: a plain SHA-256 fingerprint left from before is replaced; a retry of
    its request is refused as a reused key, and nothing happens twice."""
    org = str(await gushi.org("第一党支部"))
    body = _member_body(org, NATIONAL_ID)
    await _add_member(gushi, body, "add-zhang")
    plain = hashlib.sha256(b"POST /v1/members\n" + body).hexdigest()
    await gushi.pool.execute(  # the row as a registry before ADR 14 wrote it
        "UPDATE idempotency_keys SET request_hash = $1 WHERE key = 'add-zhang'", plain
    )
    migration = MIGRATIONS / "0005_keyed_request_fingerprints.sql"
    await gushi.pool.execute(migration.read_text())

    fingerprint, _ = await _stored(gushi, "add-zhang")
    assert fingerprint != plain
    assert fingerprint != request_hash(_node_key(gushi), "POST", "/v1/members", body)
    retry = await gushi.call(
        "POST",
        "/v1/members",
        content=body,
        headers={"Idempotency-Key": "add-zhang", "Content-Type": "application/json"},
        expect=422,
    )
    assert retry.json()["field"] == "Idempotency-Key"
    assert await gushi.pool.fetchval("SELECT count(*) FROM members") == 1
