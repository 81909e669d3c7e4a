"""The AsyncAPI document of a node's Kafka traffic: valid against the official AsyncAPI
3.0.0 JSON Schema, complete (every channel, every event type, where it travels), true to
what a node publishes (every example record's value, key and headers validate against
the message the document gives for its topic), and held to the published release."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, FormatChecker
from packaging.requirements import Requirement

from yixian.contracts import (
    CATALOGUE,
    DEAD_LETTER_TYPE,
    ROUTES,
    STRUCTURED_CONTENT_TYPE,
    Topic,
    TopicNames,
    record_headers,
    record_key,
)
from yixian.contracts.compat import asyncapi_breaks
from yixian.contracts.examples import example_events
from yixian.contracts.schemas import (
    ASYNCAPI_FILE,
    SCHEMA_ROOT,
    asyncapi_document,
    breaks_against_published,
    current_dir,
    stale_files,
)

OFFICIAL = json.loads(
    (Path(__file__).parent / "vendor" / "asyncapi" / "3.0.0-without-id.json").read_text()
)
DOCUMENT = json.loads((current_dir() / ASYNCAPI_FILE).read_text())
CHANNEL_OF = {Topic.PAIR: "pair", Topic.LOCAL: "local"}


def test_the_committed_document_is_the_one_the_code_makes() -> None:
    assert ASYNCAPI_FILE not in stale_files(current_dir())
    assert asyncapi_document() == DOCUMENT


def test_the_contracts_alone_do_not_import_faststream() -> None:
    """Only the document's generator needs FastStream; the models stay free of it."""
    code = "import sys, yixian.contracts; sys.exit('faststream' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_only_the_asyncapi_extra_needs_faststream() -> None:
    """A partner's tooling installs ``yixian-contracts`` without a Kafka library; whoever
    writes the document (the sync service, the schemas command) asks for the extra."""
    contracts = [Requirement(r) for r in importlib.metadata.requires("yixian-contracts") or []]
    [faststream] = [r for r in contracts if r.name == "faststream"]
    assert faststream.marker is not None
    assert faststream.marker.evaluate({"extra": "asyncapi"})
    assert not faststream.marker.evaluate({"extra": ""})
    assert "yixian-contracts[asyncapi]" in (importlib.metadata.requires("yixian-sync") or [])
    # the workspace's root project (not installed itself) runs `make schemas`
    root = tomllib.loads((SCHEMA_ROOT.parents[1] / "pyproject.toml").read_text())
    assert "yixian-contracts[asyncapi]" in root["project"]["dependencies"]


def test_the_document_is_valid_asyncapi_3() -> None:
    Draft7Validator.check_schema(OFFICIAL)
    errors = [e.message for e in Draft7Validator(OFFICIAL).iter_errors(DOCUMENT)]
    assert errors == []
    assert DOCUMENT["asyncapi"] == "3.0.0"


def test_the_official_schema_is_in_force() -> None:
    """The same validator refuses a document that breaks AsyncAPI 3.0 (2.x vocabulary)."""
    broken = copy.deepcopy(DOCUMENT)
    broken["operations"]["sendToPartner"]["action"] = "publish"
    del broken["channels"]["local"]["messages"]["yixian.activity.scheduled.v1"]["payload"]
    broken["channels"]["local"]["messages"]["yixian.activity.scheduled.v1"]["x"] = 1
    assert len(list(Draft7Validator(OFFICIAL).iter_errors(broken))) >= 2


def test_every_kind_of_topic_is_a_channel_with_its_parameters() -> None:
    channels = DOCUMENT["channels"]
    addresses = TopicNames().addresses()
    assert {c: channels[c]["address"] for c in channels} == {
        "pair": addresses["pair"],
        "local": addresses["local"],
        "deadLetter": addresses["dead_letter"],
    }
    assert set(channels["pair"]["parameters"]) == {"src", "dst"}
    assert set(channels["local"]["parameters"]) == {"node"}
    assert set(channels["deadLetter"]["parameters"]) == {"node", "consumer"}
    assert "6-digit" in channels["pair"]["parameters"]["src"]["description"]
    assert channels["deadLetter"]["parameters"]["consumer"]["enum"] == ["sync"]


def test_every_event_type_is_a_message_on_exactly_the_topics_it_travels_on() -> None:
    channels = DOCUMENT["channels"]
    for event_type in CATALOGUE:
        on = {c for c in ("pair", "local") if event_type in channels[c]["messages"]}
        assert on == {CHANNEL_OF[t] for t in ROUTES[event_type].topics}, event_type
    assert "yixian.activity.scheduled.v1" not in channels["pair"]["messages"]
    assert list(channels["deadLetter"]["messages"]) == [DEAD_LETTER_TYPE]


def _resolve(pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = DOCUMENT
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_reference_resolves() -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(DOCUMENT)
    assert len(refs) > 100
    for ref in refs:
        _resolve(ref)


def test_operations_send_and_receive_every_message_of_their_channel() -> None:
    operations = DOCUMENT["operations"]
    assert {(k, o["action"], o["channel"]["$ref"]) for k, o in operations.items()} == {
        ("sendToPartner", "send", "#/channels/pair"),
        ("receiveFromPartner", "receive", "#/channels/pair"),
        ("announce", "send", "#/channels/local"),
        ("readOwnRecords", "receive", "#/channels/local"),
        ("deadLetter", "send", "#/channels/deadLetter"),
    }
    for operation in operations.values():
        channel = _resolve(operation["channel"]["$ref"])
        assert [_resolve(m["$ref"]) for m in operation["messages"]] == list(
            channel["messages"].values()
        )


def test_nodes_log_in_with_scram() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"scramSha256", "scramSha512"}
    for server in DOCUMENT["servers"].values():
        assert {_resolve(s["$ref"])["type"] for s in server["security"]} == {
            "scramSha256",
            "scramSha512",
        }
    assert DOCUMENT["servers"]["cluster"]["protocol"] == "kafka-secure"  # SASL_SSL


def _validate(schema: dict[str, Any], instance: Any) -> list[str]:
    """``instance`` against a schema of the document, its references resolved within it."""
    rooted = {**schema, "components": DOCUMENT["components"]}
    validator = Draft7Validator(rooted, format_checker=FormatChecker())
    return [e.message for e in validator.iter_errors(instance)]


def _records() -> list[tuple[str, Topic, Any]]:
    out = []
    for event in example_events():
        for topic in sorted(ROUTES[event.type].topics):
            sent = event if topic is Topic.PAIR else event.model_copy(update={"pairseq": None})
            out.append((event.type, topic, sent))
    return out


@pytest.mark.parametrize(
    ("event_type", "topic", "event"), _records(), ids=lambda v: str(v) if isinstance(v, str) else ""
)
def test_what_a_node_publishes_matches_its_message(
    event_type: str, topic: Topic, event: Any
) -> None:
    message = DOCUMENT["channels"][CHANNEL_OF[topic]]["messages"][event_type]
    value = json.loads(event.encode())
    headers = {
        k: v.decode()
        for k, v in record_headers(event.type, event.trace_id, STRUCTURED_CONTENT_TYPE)
    }
    key = record_key(event).decode()
    assert _validate(message["payload"], value) == []
    assert _validate(message["headers"], headers) == []
    assert _validate(message["bindings"]["kafka"]["key"], key) == []
    if "correlationId" in message:
        assert value["correlationid"] == key


def test_a_pair_message_refuses_an_unnumbered_event() -> None:
    event = next(e for e in example_events() if e.type == "yixian.movement.origin_group.v1")
    unnumbered = json.loads(event.model_copy(update={"pairseq": None}).encode())
    pair = DOCUMENT["channels"]["pair"]["messages"][event.type]
    local = DOCUMENT["channels"]["local"]["messages"][event.type]
    assert _validate(local["payload"], unnumbered) == []
    assert _validate(pair["payload"], unnumbered) == ["'pairseq' is a required property"]


def test_an_activity_is_keyed_by_its_id_not_link() -> None:
    message = DOCUMENT["channels"]["local"]["messages"]["yixian.activity.scheduled.v1"]
    key = message["bindings"]["kafka"]["key"]
    assert _validate(key, "link") != []
    assert "activity id" in key["description"]


# -- compatibility against a published document -------------------------------------------


def _changed(change: Any) -> list[str]:
    new = copy.deepcopy(DOCUMENT)
    change(new)
    return asyncapi_breaks(DOCUMENT, new)


def test_the_same_document_is_compatible() -> None:
    assert asyncapi_breaks(DOCUMENT, copy.deepcopy(DOCUMENT)) == []


def test_new_messages_channels_and_words_are_allowed() -> None:
    def grow(doc: dict[str, Any]) -> None:
        doc["channels"]["pair"]["description"] = "Reworded."
        doc["channels"]["pair"]["parameters"]["src"]["examples"] = ["320106"]
        message = copy.deepcopy(
            doc["channels"]["local"]["messages"]["yixian.activity.scheduled.v1"]
        )
        doc["channels"]["local"]["messages"]["yixian.activity.cancelled.v1"] = message
        doc["channels"]["audit"] = {"address": "yixian.v1.{node}.audit"}
        doc["operations"]["audit"] = {"action": "send", "channel": {"$ref": "#/channels/audit"}}
        doc["servers"]["staging"] = copy.deepcopy(doc["servers"]["local"])
        doc["servers"]["local"]["security"].append({"$ref": "#/components/securitySchemes/x"})
        doc["channels"]["local"]["bindings"]["kafka"]["partitions"] = 3
        dead_letter = doc["components"]["schemas"]["DeadLetter"]
        dead_letter["properties"]["consumer"] = {"type": "string"}
        dead_letter["description"] = "Reworded."

    assert _changed(grow) == []


def _remove_channel(doc: dict[str, Any]) -> None:
    del doc["channels"]["local"]


def _remove_message(doc: dict[str, Any]) -> None:
    del doc["channels"]["pair"]["messages"]["yixian.link.heartbeat.v1"]


def _rename_parameter(doc: dict[str, Any]) -> None:
    channel = doc["channels"]["pair"]
    channel["address"] = "yixian.v1.{source}.to.{dst}"
    channel["parameters"]["source"] = channel["parameters"].pop("src")


def _narrow_parameter(doc: dict[str, Any]) -> None:
    doc["channels"]["deadLetter"]["parameters"]["consumer"]["enum"] = ["notify"]


def _change_key(doc: dict[str, Any]) -> None:
    message = doc["channels"]["local"]["messages"]["yixian.activity.scheduled.v1"]
    message["bindings"]["kafka"]["key"] = {"type": "string", "const": "link"}


def _drop_header(doc: dict[str, Any]) -> None:
    message = doc["channels"]["pair"]["messages"]["yixian.movement.host_group.v1"]
    del message["headers"]["properties"]["trace_id"]
    message["headers"]["required"].remove("trace_id")


def _change_action(doc: dict[str, Any]) -> None:
    doc["operations"]["readOwnRecords"]["action"] = "send"


def _remove_operation(doc: dict[str, Any]) -> None:
    del doc["operations"]["receiveFromPartner"]


def _drop_scram_256(doc: dict[str, Any]) -> None:
    del doc["components"]["securitySchemes"]["scramSha256"]


def _retype_a_dead_letter_field(doc: dict[str, Any]) -> None:
    doc["components"]["schemas"]["DeadLetter"]["properties"]["reason"]["type"] = "integer"


def _drop_a_dead_letter_field(doc: dict[str, Any]) -> None:
    del doc["components"]["schemas"]["DeadLetter"]["properties"]["errors_excerpt"]


def _require_a_dead_letter_name(doc: dict[str, Any]) -> None:
    doc["components"]["schemas"]["DeadLetter"]["required"].append("node")


def _require_a_header_without_property(doc: dict[str, Any]) -> None:
    message = doc["channels"]["pair"]["messages"]["yixian.movement.host_group.v1"]
    message["headers"]["required"].append("tenant")


def _narrow_a_shared_definition(doc: dict[str, Any]) -> None:
    doc["components"]["schemas"]["HostStatus"]["enum"].remove("lost_contact")


def _remove_the_dead_letter_schema(doc: dict[str, Any]) -> None:
    del doc["components"]["schemas"]["DeadLetter"]


def _remove_server(doc: dict[str, Any]) -> None:
    del doc["servers"]["local"]


def _change_protocol(doc: dict[str, Any]) -> None:
    doc["servers"]["cluster"]["protocol"] = "kafka"


def _drop_server_security(doc: dict[str, Any]) -> None:
    doc["servers"]["cluster"]["security"].pop()


def _change_channel_binding(doc: dict[str, Any]) -> None:
    doc["channels"]["local"]["bindings"]["kafka"]["topic"] = "yixian.v1.{node}.events"


def _drop_channel_binding(doc: dict[str, Any]) -> None:
    del doc["channels"]["pair"]["bindings"]["kafka"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_remove_channel, "channel local: removed"),
        (_remove_message, "channel pair: message yixian.link.heartbeat.v1: removed"),
        (_rename_parameter, "channel pair: parameter src: removed"),
        (_narrow_parameter, "channel deadLetter: parameter consumer: changed"),
        (_change_key, "message yixian.activity.scheduled.v1: key $: keyword 'const' added"),
        (
            _drop_header,
            "message yixian.movement.host_group.v1: headers $.trace_id: property removed",
        ),
        (_change_action, "operation readOwnRecords: action changed"),
        (_remove_operation, "operation receiveFromPartner: removed"),
        (_drop_scram_256, "security scheme scramSha256: removed or changed"),
        (
            _retype_a_dead_letter_field,
            "channel deadLetter: message yixian.dead_letter: payload $.reason: type changed",
        ),
        (_drop_a_dead_letter_field, "payload $.errors_excerpt: property removed"),
        (_require_a_dead_letter_name, "payload $: required name 'node' added"),
        (
            _require_a_header_without_property,
            "message yixian.movement.host_group.v1: headers $: required name 'tenant' added",
        ),
        (
            _narrow_a_shared_definition,
            "channel local: message yixian.movement.host_group.v1: payload $.data.group.status:"
            " enum changed",
        ),
        (
            _remove_the_dead_letter_schema,
            "payload $: $ref '#/components/schemas/DeadLetter' resolves to nothing",
        ),
        (_remove_server, "server local: removed"),
        (_change_protocol, "server cluster: protocol changed from 'kafka-secure' to 'kafka'"),
        (_drop_server_security, "server cluster: security #/components/securitySchemes/"),
        (_change_channel_binding, "channel local: binding kafka.topic changed"),
        (_drop_channel_binding, "channel pair: binding kafka removed"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_breaking_changes_are_reported(change: Any, expected: str) -> None:
    problems = _changed(change)
    assert any(expected in p for p in problems), problems


def test_a_removed_channel_fails_the_check_against_the_published_release(tmp_path: Path) -> None:
    """The check ``make schemas-check`` runs, on a copy of the published releases whose
    last one had a channel the code no longer makes."""
    root = tmp_path / "schemas"
    for release in (SCHEMA_ROOT / "published").iterdir():
        target = root / "published" / release.name
        target.mkdir(parents=True)
        for path in release.glob("*.json"):
            (target / path.name).write_text(path.read_text())
    assert breaks_against_published(root) == []
    published = root / "published" / "1.1.0" / ASYNCAPI_FILE
    grown = json.loads(published.read_text())
    grown["channels"]["audit"] = {"address": "yixian.v1.{node}.audit", "messages": {}}
    published.write_text(json.dumps(grown))
    assert breaks_against_published(root) == ["[1.1.0] asyncapi.json channel audit: removed"]
