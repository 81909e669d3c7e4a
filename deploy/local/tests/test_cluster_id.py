"""The KRaft cluster id the stack formats Kafka's storage with."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator

from yixian.localstack.stack import new_cluster_id

KAFKA_UUID = re.compile(r"[A-Za-z0-9_-]{22}")


def draws(*values: bytes) -> Callable[[int], bytes]:
    pending: Iterator[bytes] = iter(values)

    def draw(size: int) -> bytes:
        value = next(pending)
        assert len(value) == size
        return value

    return draw


def test_an_id_that_would_start_with_a_dash_is_drawn_again() -> None:
    dash = bytes([0xF8]) + bytes(15)  # the first six bits are 62: "-" in base64url
    kept = bytes([0x04]) + bytes(15)
    assert base64.urlsafe_b64encode(dash).startswith(b"-")
    assert new_cluster_id(draws(dash, dash, kept)) == "BAAAAAAAAAAAAAAAAAAAAA"


def test_no_id_starts_with_a_dash() -> None:
    # One random id in 64 starts with "-": 20,000 draws meet it about 300 times.
    ids = [new_cluster_id() for _ in range(20_000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(KAFKA_UUID.fullmatch(i) for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
