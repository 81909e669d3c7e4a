"""The AsyncAPI 3.0 document of a node's Kafka traffic, for partners and operators.

FastStream writes it from the node's endpoints as :func:`node_endpoints` declares them (a
broker that never connects: a publisher or a subscriber per channel and direction, with
the cluster's login). :func:`complete` then adds what FastStream 0.7 leaves out or
cannot know, all of it from the contracts' own tables:

- channel parameters (``{src}``, ``{dst}``, ``{node}``, ``{consumer}``), and one channel
  per topic kind (FastStream writes a channel per endpoint);
- a message per event type (FastStream writes one per endpoint) from ``routes.ROUTES``:
  its Kafka key (``bindings.kafka.key``), the record headers the relay sets, the
  correlation id, and as payload the published JSON Schema of the type, embedded (the
  pair envelope's rules beside it on pair topics), so the document and the schemas
  cannot disagree;
- both SCRAM mechanisms a node may log in with, server variables and the local stack.

``python -m yixian.contracts.schemas export`` writes it beside the schemas; ``check``
fails when the committed copy is stale or breaks a published release
(``compat.asyncapi_breaks``); the sync service serves it (``/asyncapi.json``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

try:
    from faststream.kafka import KafkaBroker
    from faststream.security import SASLScram512
    from faststream.specification import AsyncAPI
except ModuleNotFoundError as missing:  # pragma: no cover - depends on the installation
    raise ModuleNotFoundError(
        "writing the AsyncAPI document needs FastStream: install yixian-contracts[asyncapi]"
    ) from missing

from .catalogue import CATALOGUE
from .routes import ROUTES, Route, Topic
from .topics import (
    CONTRACT_MAJOR,
    CONTRACT_RELEASE,
    DEAD_LETTER_CONTENT_TYPE,
    DEAD_LETTER_TYPE,
    STRUCTURED_CONTENT_TYPE,
    TopicNames,
)

Document = dict[str, Any]
Schema = Mapping[str, Any]

PAIR_ENVELOPE = "pair-envelope.v1"
"""The name of the schema of what every event on a pair topic carries beyond its type's."""

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.4.0"
"""The Kafka bindings version FastStream writes its channel bindings in; messages use it too."""

CODE = "a 6-digit administrative division code (GB/T 2260) naming a node"
EXAMPLE_CODES = ["411525", "110105", "350300"]

CHANNELS: dict[str, str] = {"pair": "pair", "local": "local", "dead_letter": "deadLetter"}
"""TopicNames' kind of topic → its channel's id in the document."""

INFO = """\
The Kafka traffic of one Yixian node (a jurisdiction, named by its 6-digit division code):
what it sends to each partner node, what it reads from them, its own local stream and its
dead letters. Every node runs the same contract, so this document serves for all of them:
in the operations, *this node* is the node whose document you read.

**Envelope.** Every record value is one CloudEvents 1.0 event in structured JSON mode
(`content-type: application/cloudevents+json`), around a versioned payload (`data`). The
attributes: `specversion` (always `1.0`), `id` (a UUID, unique per source: deduplicate on
it), `source` (`urn:yixian:node:<code>`, the producing node), `type`
(`yixian.<area>.<what>.v<major>`), `subject`, `time` (RFC 3339, UTC), `dataschema`
(`urn:yixian:schema:<type>`, the `$id` of the type's JSON Schema), `datacontenttype`
(`application/json`), `traceparent` (W3C trace context, version 00; required), and the
extensions `correlationid` (the movement or claim the event concerns), `pairseq` and
`pairepoch` (pair topics only). Each message's payload below is the type's published JSON
Schema; on a pair topic a record must also satisfy `pair-envelope.v1`: `pairseq` is
required there (and only there), numbering the events of one ordered pair of nodes in the
link epoch `pairepoch` (absent: epoch 0). Within an epoch the sender numbers its events
1, 2, 3... in the order it first publishes them (a replay sends an event again with its
number). A number may be missing for good (an event the sender's operator discarded): a
receiver asks for a missing number (`yixian.link.replay_requested.v1`) but must not wait
for it for ever; the digest exchange settles what the data lacks. A receiver checks that
`source` is the pair topic's `{src}`.

**Keys.** A movement's events are keyed by the movement id, so one movement stays in
order on one partition; a visitor claim's by its claim id, an activity's (local topic
only) by its activity id; events about the link itself (heartbeats, digests, requests)
by the literal `link`. Each message names its key (`bindings.kafka.key`).

**Headers.** `content-type` (`application/cloudevents+json; charset=utf-8` on an event;
`application/json` on a dead letter, whose value is no CloudEvent), `ce_type` (the
event's `type`, to route or skip a record without parsing it) and `trace_id` (the 32-hex
trace id of `traceparent`). The value is authoritative; the headers are conveniences.

**Compatibility.** Within v1 the contract only grows: new optional fields, new event
types, new channels. A reader must ignore fields and attributes it does not know, and
record and skip an event type it does not know. Anything else is v2, on `yixian.v2.`
topics. Frozen releases: `contracts/schemas/published/<release>/`.

**Namespaces.** Where several environments share a cluster, each has a namespace that
prefixes every name: topics (`<ns>.yixian.v1...`), principals (`<ns>.node-<code>`) and
consumer groups (`<ns>.yixian.<node>.*`). Production nodes use none.

**Clients.** Any Kafka client that speaks SASL/SCRAM; librdkafka-based clients need
librdkafka 2.6.1 or later to log in to Kafka 4 with SCRAM.
"""

SERVER = """\
The Kafka cluster the node and its partners share (Apache Kafka 4, KRaft). Each node logs
in as its own principal `node-<code>` (`<ns>.node-<code>` in a namespace) with SASL/SCRAM
(SHA-256 or SHA-512, both are set up), over TLS; its ACLs let it write only the topics it
sends on, read only those addressed to it, and use only its own consumer groups
(`yixian.<code>.*`, `<ns>.yixian.<code>.*` in a namespace)."""

LOCAL_SERVER = """\
The local development stack (`make up`): the same contract over SASL/SCRAM without TLS
(`SASL_PLAINTEXT`)."""

CHANNEL_TEXT: dict[str, str] = {
    "pair": """\
The traffic from node `{src}` to node `{dst}`: written only by `{src}`, read only by `{dst}`
(ACLs). Created by `yixian partner link`, kept for ever (rebuilds and replays read it from
the start). Every record carries `pairseq` (`pair-envelope.v1`).""",
    "local": """\
Every change of node `{node}`'s records, its own and those it applied from partners, for
its notify service and its auditors. Written and read by `{node}` only; kept 90 days.
Records carry no `pairseq`.""",
    "dead_letter": """\
What one consumer of node `{node}` could not accept, with the reason and where it came
from (topic, partition, offset), for the node's operators. Written by `{node}`; read
through `yixian dlq` or by the cluster's administrators.""",
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "src": {"description": f"The sending node: {CODE}.", "examples": EXAMPLE_CODES[:2]},
    "dst": {"description": f"The receiving node: {CODE}.", "examples": EXAMPLE_CODES[1::-1]},
    "node": {"description": f"The node the topic belongs to: {CODE}.", "examples": EXAMPLE_CODES},
    "consumer": {"description": "The node's consumer that refused the record.", "enum": ["sync"]},
}

OPERATIONS: dict[str, dict[str, Any]] = {
    "sendToPartner": {
        "channel": "pair",
        "action": "send",
        "summary": "This node (`{src}`) sends to a partner (`{dst}`).",
        "description": "Published through the node's transactional outbox by its relay,"
        " numbered per partner as published. A node sends each partner the movement"
        " events of the movements the two share and the link's own protocol.",
    },
    "receiveFromPartner": {
        "channel": "pair",
        "action": "receive",
        "summary": "This node (`{dst}`) reads what a partner (`{src}`) sends it.",
        "description": "The node's sync service reads every pair topic addressed to it"
        " (consumer group `yixian.<node>.sync`; `<ns>.yixian.<node>.sync` in a namespace),"
        " applies each event once and sends what it cannot accept to its dead-letter topic.",
    },
    "announce": {
        "channel": "local",
        "action": "send",
        "summary": "This node announces every change of its records.",
        "description": "Published through the transactional outbox, in commit order per key.",
    },
    "readOwnRecords": {
        "channel": "local",
        "action": "receive",
        "summary": "This node's notify service (and its auditors) read its changes.",
        "description": "Consumer group `yixian.<node>.notify` (`<ns>.yixian.<node>.notify`"
        " in a namespace).",
    },
    "deadLetter": {
        "channel": "dead_letter",
        "action": "send",
        "summary": "This node keeps what a consumer refused.",
        "description": "Also kept in the node's database for `yixian dlq list|retry`.",
    },
}
"""Operation id → the kind of topic of its channel, its action and its words."""


class _NodeLogin(SASLScram512):
    """A node's login as FastStream describes it: SCRAM with SHA-512 or SHA-256, over TLS
    (``yixian node init`` gives every node a credential for both mechanisms)."""

    def get_requirement(self) -> list[dict[str, Any]]:
        return [{"scramSha512": []}, {"scramSha256": []}]

    def get_schema(self) -> dict[str, dict[str, str]]:
        return {
            "scramSha512": {
                "type": "scramSha512",
                "description": "SASL/SCRAM-SHA-512 as the node's principal `node-<code>`.",
            },
            "scramSha256": {
                "type": "scramSha256",
                "description": "SASL/SCRAM-SHA-256 as the node's principal `node-<code>`.",
            },
        }


def node_endpoints(topics: TopicNames | None = None) -> KafkaBroker:
    """The node's Kafka endpoints, declared for FastStream's specification only."""
    addresses = (topics or TopicNames()).addresses()
    broker = KafkaBroker(
        "{bootstrap}",
        security=_NodeLogin(username="node-<code>", password="", use_ssl=True),
        description=SERVER,
    )
    for operation, spec in OPERATIONS.items():
        address = addresses[spec["channel"]]
        text = CHANNEL_TEXT[spec["channel"]]
        if spec["action"] == "send":
            broker.publisher(address, title=operation, description=text)
        else:
            broker.subscriber(address, title=operation, description=text)
    return broker


def generated(topics: TopicNames | None = None) -> Document:
    """FastStream's AsyncAPI 3.0 document of :func:`node_endpoints`, as JSON data."""
    specification = AsyncAPI(
        node_endpoints(topics),
        title="Yixian node: Kafka traffic",
        version=CONTRACT_RELEASE,
        description=INFO,
        identifier=f"urn:yixian:asyncapi:{CONTRACT_MAJOR}",
        schema_version=ASYNCAPI_VERSION,
    ).to_specification()
    document: Document = specification.to_jsonable()
    return document


def document(schemas: Mapping[str, Schema], topics: TopicNames | None = None) -> Document:
    """The complete document; ``schemas``: every published JSON Schema by name (event
    types and ``pair-envelope.v1``)."""
    return complete(generated(topics), schemas, topics)


def complete(
    generated: Document, schemas: Mapping[str, Schema], topics: TopicNames | None = None
) -> Document:
    """FastStream's document with what it leaves out (see the module's docstring)."""
    doc = copy.deepcopy(generated)
    _servers(doc)
    components = doc.setdefault("components", {})
    components["schemas"] = _embedded(schemas)
    by_address = {c["address"]: key for key, c in doc["channels"].items()}
    channels: dict[str, Any] = {}
    for kind, address in (topics or TopicNames()).addresses().items():
        channel_id = CHANNELS[kind]
        declared = doc["channels"][by_address[address]]  # its endpoints declare the same
        channels[channel_id] = {
            "address": address,
            "title": channel_id,
            "description": declared["description"],
            "parameters": {p: PARAMETERS[p] for p in _parameters(address)},
            "messages": _messages(kind, schemas),
            "bindings": declared["bindings"],
        }
    operations: dict[str, Any] = {}
    for operation_id, operation in doc["operations"].items():
        spec = OPERATIONS[operation_id]
        channel_id = CHANNELS[spec["channel"]]
        messages = channels[channel_id]["messages"]
        operations[operation_id] = {
            "action": operation["action"],
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": spec["summary"],
            "description": spec["description"],
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{_pointer(name)}"} for name in messages
            ],
        }
    doc["channels"] = channels
    doc["operations"] = operations
    components.pop("messages", None)
    return doc


def _servers(doc: Document) -> None:
    """FastStream's one server, named and with its variable; the local stack beside it."""
    (server,) = doc["servers"].values()
    server.pop("pathname", None)
    server.pop("protocolVersion", None)
    server["variables"] = {
        "bootstrap": {
            "description": "host:port of the cluster's SASL_SSL listener, from its operator.",
            "examples": ["kafka-1.example.org:9094"],
        }
    }
    local = {
        "host": "127.0.0.1:19094",
        "protocol": "kafka",
        "description": LOCAL_SERVER,
        "security": server["security"],
    }
    doc["servers"] = {"cluster": server, "local": local}
    for channel in doc["channels"].values():
        channel.pop("servers", None)  # on every server


def _parameters(address: str) -> list[str]:
    return [name for name in PARAMETERS if "{" + name + "}" in address]


def _pointer(name: str) -> str:
    """``name`` as one token of a JSON pointer."""
    return name.replace("~", "~0").replace("/", "~1")


def _messages(kind: str, schemas: Mapping[str, Schema]) -> dict[str, Any]:
    """The messages of one kind of topic, by name."""
    if kind == "dead_letter":
        return {DEAD_LETTER_TYPE: _dead_letter_message()}
    topic = Topic(kind)
    return {
        event_type: _event_message(event_type, route, topic, schemas[event_type])
        for event_type, route in sorted(ROUTES.items())
        if topic in route.topics
    }


def _event_message(event_type: str, route: Route, topic: Topic, schema: Schema) -> Document:
    payload: Document = {"$ref": f"#/components/schemas/{_pointer(event_type)}"}
    if topic is Topic.PAIR:
        payload = {"allOf": [payload, {"$ref": f"#/components/schemas/{PAIR_ENVELOPE}"}]}
    message: Document = {
        "name": event_type,
        "title": CATALOGUE[event_type].__name__,
        "summary": schema["description"].split("\n\n")[0],
        "description": f"Sent by {route.sender}. Key: {route.key_meaning}.",
        "contentType": STRUCTURED_CONTENT_TYPE.split(";")[0],
        "headers": _headers(event_type, STRUCTURED_CONTENT_TYPE, "CloudEvents structured mode."),
        "payload": payload,
        "bindings": {"kafka": {"key": _key(route), "bindingVersion": KAFKA_BINDING}},
    }
    if route.key is not None and "correlationid" in route.key_meaning:
        message["correlationId"] = {
            "description": "The movement or visitor claim the event concerns.",
            "location": "$message.payload#/correlationid",
        }
    return message


def _key(route: Route) -> Document:
    if route.key is None:
        return {"type": "string", "const": "link", "description": route.key_meaning}
    return {"type": "string", "format": "uuid", "description": route.key_meaning}


def _headers(record_type: str, content_type: str, what: str) -> Document:
    """The headers the relay sets on a record (``topics.record_headers``)."""
    return {
        "type": "object",
        "properties": {
            "content-type": {"type": "string", "const": content_type, "description": what},
            "ce_type": {
                "type": "string",
                "const": record_type,
                "description": "The record's type, for routing without parsing the value.",
            },
            "trace_id": {
                "type": "string",
                "pattern": "^[0-9a-f]{32}$",
                "description": "The trace id of the event's `traceparent`.",
            },
        },
        "required": ["content-type", "ce_type", "trace_id"],
    }


def _dead_letter_message() -> Document:
    headers = _headers(
        DEAD_LETTER_TYPE, DEAD_LETTER_CONTENT_TYPE, "Plain JSON (`DeadLetter`), not a CloudEvent."
    )
    headers["properties"]["trace_id"]["description"] = "Thirty-two zeros."
    return {
        "name": DEAD_LETTER_TYPE,
        "title": "DeadLetter",
        "summary": "A record a consumer of the node refused, and why.",
        "description": "Whole (key and value in base64) while it is small (a quarter of"
        " the largest record a node publishes); otherwise the key and the value are each"
        " their SHA-256, size and first bytes, and the reason and the errors are cut"
        " short (the node's database keeps the record whole). Key: the refused record's"
        " key, or its SHA-256 if longer than the excerpt.",
        "contentType": DEAD_LETTER_CONTENT_TYPE,
        "headers": headers,
        "payload": {"$ref": "#/components/schemas/DeadLetter"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "format": "binary",
                    "description": "The refused record's key as it came: any bytes, not"
                    " necessarily UTF-8, and empty if it had none; the SHA-256 (64 hex"
                    " digits) of it if it was longer than 4 KiB.",
                },
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


_EXCERPT: Document = {
    "type": ["object", "null"],
    "properties": {
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "bytes": {"type": "integer", "minimum": 0},
        "head": {"type": "string", "description": "The first bytes, in base64."},
    },
    "required": ["sha256", "bytes", "head"],
}

DEAD_LETTER: Document = {
    "title": "DeadLetter",
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Each offending field and why (empty when cut short).",
        },
        "topic": {"type": "string"},
        "partition": {"type": "integer", "minimum": 0},
        "offset": {"type": "integer", "minimum": 0},
        "key": {"type": ["string", "null"], "description": "The record's key, in base64."},
        "value": {"type": ["string", "null"], "description": "The record's value, in base64."},
        "received_at": {"type": "string", "format": "date-time"},
        "errors_excerpt": {"type": ["string", "null"]},
        "key_excerpt": _EXCERPT,
        "value_excerpt": _EXCERPT,
    },
    "required": ["reason", "errors", "topic", "partition", "offset", "key", "value", "received_at"],
}
"""The value of a dead-letter record (written by the sync service)."""


def _embedded(schemas: Mapping[str, Schema]) -> dict[str, Any]:
    """The published schemas as AsyncAPI component schemas: each without ``$schema`` and
    ``$id``, its ``$defs`` lifted beside it and its references pointed at them (every
    schema is made from the same models, so a name always means the same definition)."""
    out: dict[str, Any] = {"DeadLetter": DEAD_LETTER}
    for name, schema in sorted(schemas.items()):
        body = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}
        for def_name, definition in schema.get("$defs", {}).items():
            if out.setdefault(def_name, _rehomed(definition)) != _rehomed(definition):
                raise ValueError(f"two schemas define {def_name!r} differently")
        out[name] = _rehomed(body)
    return out


def _rehomed(node: Any) -> Any:
    """``node`` with ``#/$defs/X`` references made ``#/components/schemas/X``."""
    if isinstance(node, dict):
        return {
            k: (
                v.replace("#/$defs/", "#/components/schemas/", 1)
                if k == "$ref" and isinstance(v, str)
                else _rehomed(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rehomed(v) for v in node]
    return node
