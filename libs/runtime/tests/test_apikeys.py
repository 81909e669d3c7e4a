"""The shape of an API key and the identity of its principal (no I/O)."""

from __future__ import annotations

from uuid import uuid4

from yixian.runtime.apikeys import Principal, Role, hash_secret, new_api_key, parse_api_key


def test_a_new_key_parses_back_to_its_id_and_the_stored_hash() -> None:
    key_id, key, stored = new_api_key()
    parsed = parse_api_key(key)
    assert parsed is not None
    assert parsed[0] == key_id
    assert hash_secret(parsed[1]) == stored
    assert stored not in key


def test_malformed_keys_do_not_parse() -> None:
    key_id = uuid4().hex
    for presented in (
        "",
        f"yx_{key_id}",
        f"yx_{key_id}_short",
        f"yx_{key_id.upper()}_{'a' * 43}",
        f"xy_{key_id}_{'a' * 43}",
        f"yx_{key_id}_{'a' * 43} ",
    ):
        assert parse_api_key(presented) is None, presented


def test_the_actor_is_the_key_id_never_its_name() -> None:
    root, branch = uuid4(), uuid4()
    principal = Principal(
        key_id=uuid4(),
        name="operator",
        role=Role.OPERATOR,
        org_id=branch,
        org_path=f"/{root}/{branch}/",
        node_wide=False,
    )
    assert principal.actor == f"key:{principal.key_id}"
    assert principal.covers(f"/{root}/{branch}/{uuid4()}/")
    assert not principal.covers(f"/{root}/")
