"""Compatibility of two JSON Schemas of the same event type within one major version.

Events are replayed from the topics for years, and partners upgrade on their own
schedule, so within v1 a schema may change only in ways every reader of either
version accepts: new *optional* properties, and annotations (title, description,
examples, and the meta-data keywords deprecated, readOnly and writeOnly, which JSON
Schema 2020-12 defines as validating nothing). Everything else is a break, reported with
the path where it happens:

- a property removed, or added as required;
- a property that changes between optional and required;
- any change of a validating keyword (type, enum, const, format, pattern, bounds, ...);
- an event type removed from the catalogue.

One exception, listed rule by rule in :data:`TIGHTENINGS`: an envelope attribute every
producer has always sent in the form a new rule states may be made that rule (required,
a pattern) in a release. No event any producer wrote fails the new rule, so no reader of
either version meets one it cannot read; the old schema just said less than the
producers did. Only the exact change listed passes, only for the event types listed by
name, and only against a release older than the one that made the rule.

A break needs a new major version (new event types ``...v2`` on ``yixian.v2`` topics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .envelope import TRACEPARENT_PATTERN

ANNOTATIONS = frozenset(
    {"title", "description", "examples", "default", "$comment"}
    | {"deprecated", "readOnly", "writeOnly"}  # the meta-data vocabulary: validates nothing
)
STRUCTURAL = frozenset({"properties", "required", "$defs", "$id", "$schema"})
SUBSCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
SUBSCHEMAS = frozenset({"items", "additionalProperties", "not", "if", "then", "else"})

Schema = Mapping[str, Any]


class UnresolvedReference(ValueError):
    """A ``$ref`` to nothing in its document."""


def _resolve(node: Schema, root: Schema) -> Schema:
    """``node`` with its ``$ref`` (a JSON pointer within ``root``: ``#/$defs/X`` in a
    schema, ``#/components/schemas/X`` in an AsyncAPI document) followed."""
    seen: set[str] = set()
    while "$ref" in node:
        ref = node["$ref"]
        if ref in seen or not isinstance(ref, str) or not ref.startswith("#/"):
            raise ValueError(f"unsupported or cyclic $ref {ref!r}")
        seen.add(ref)
        target: Any = root
        for token in ref[2:].split("/"):
            try:
                target = target[token.replace("~1", "/").replace("~0", "~")]
            except (KeyError, TypeError):
                raise UnresolvedReference(f"$ref {ref!r} resolves to nothing") from None
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **extra}
    return node


@dataclass(frozen=True, slots=True)
class Tightening:
    """A rule a release made of an envelope attribute every producer already sent so."""

    attribute: str
    before: Schema
    """The attribute's validating keywords before (annotations aside)."""
    after: Schema
    """...and in the release that made the rule."""
    made_required: bool
    event_types: frozenset[str] | None
    """The event types it applies to, by name (None: all): fixed when the rule is made,
    never read from tables that change later."""
    release: str
    """The release that made the rule: it excuses the change against older releases only."""
    why: str

    def applies(self, event_type: str | None, against: str | None) -> bool:
        """Whether the rule excuses a change of ``event_type`` compared with release
        ``against`` (None: a release unknown, so never)."""
        if against is None or _release(against) >= _release(self.release):
            return False
        return self.event_types is None or event_type in self.event_types


def _release(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split("."))


TIGHTENINGS: tuple[Tightening, ...] = (
    Tightening(
        "specversion",
        before={"const": "1.0", "type": "string"},
        after={"const": "1.0", "type": "string"},
        made_required=True,
        event_types=None,
        release="1.1.0",
        why="CloudEvents requires it; the envelope model has always written it",
    ),
    Tightening(
        "traceparent",
        before={"type": "string"},
        after={"pattern": TRACEPARENT_PATTERN, "type": "string"},
        made_required=False,
        event_types=None,
        release="1.1.0",
        why="the envelope model has always refused any other traceparent",
    ),
    Tightening(
        "pairseq",
        before={"anyOf": [{"minimum": 1, "type": "integer"}, {"type": "null"}]},
        after={"minimum": 1, "type": "integer"},
        made_required=True,
        event_types=frozenset(
            {
                "yixian.link.digest.v1",
                "yixian.link.digest_entries.v1",
                "yixian.link.heartbeat.v1",
                "yixian.link.replay_requested.v1",
                "yixian.link.replica_returned.v1",
                "yixian.link.resend_requested.v1",
                "yixian.link.status_reported.v1",
                "yixian.link.status_requested.v1",
                "yixian.visitor.claim_answered.v1",
                "yixian.visitor.claim_asked.v1",
            }
        ),
        release="1.1.0",
        why="these types travel only on pair topics, where the relay numbers every record",
    ),
)
"""Every tightening ever allowed within v1. Add one only for an attribute every producer
of every earlier release has always sent as the new rule says (ADR 3)."""


def breaking_changes(
    old: Schema, new: Schema, event_type: str | None = None, release: str | None = None
) -> list[str]:
    """Every way ``new`` breaks a reader or a writer of ``old``; empty when compatible.
    ``event_type``: the type both describe, and ``release``: the release ``old`` was
    published in, for the tightenings that apply (none without both)."""
    problems: list[str] = []
    _compare(old, new, old, new, "$", problems, _tightened(old, new, event_type, release))
    return problems


def _validating(schema: Schema) -> dict[str, Any]:
    """A simple schema's keywords that validate: annotations left out, also in its options."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ANNOTATIONS:
            continue
        if key in SUBSCHEMA_LISTS:
            value = [_validating(v) for v in value]
        out[key] = value
    return out


def _tightened(
    old: Schema, new: Schema, event_type: str | None, release: str | None
) -> frozenset[str]:
    """The envelope attributes whose change from ``old`` (of ``release``) to ``new`` is
    exactly a listed tightening that applies to ``event_type``."""
    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    old_required = set(old.get("required", ()))
    new_required = set(new.get("required", ()))
    allowed = set()
    for rule in TIGHTENINGS:
        name = rule.attribute
        if not rule.applies(event_type, release):
            continue
        if name not in old_props or name not in new_props:
            continue
        was_required = name in old_required
        if (
            _validating(old_props[name]) == rule.before
            and _validating(new_props[name]) == rule.after
            and (name in new_required) == (was_required or rule.made_required)
        ):
            allowed.add(name)
    return frozenset(allowed)


def _compare(
    old: Schema,
    new: Schema,
    old_root: Schema,
    new_root: Schema,
    path: str,
    out: list[str],
    tightened: frozenset[str] = frozenset(),
) -> None:
    try:
        old = _resolve(old, old_root)
        new = _resolve(new, new_root)
    except UnresolvedReference as dangling:
        out.append(f"{path}: {dangling}")
        return
    keys = (set(old) | set(new)) - ANNOTATIONS - STRUCTURAL
    for key in sorted(keys):
        if key not in old or key not in new:
            state = "added" if key not in old else "removed"
            out.append(f"{path}: keyword {key!r} {state}")
            continue
        if key in SUBSCHEMA_LISTS:
            if len(old[key]) != len(new[key]):
                out.append(f"{path}: {key} changed from {len(old[key])} to {len(new[key])} options")
                continue
            for i, (o, n) in enumerate(zip(old[key], new[key], strict=True)):
                _compare(o, n, old_root, new_root, f"{path}.{key}[{i}]", out)
        elif key in SUBSCHEMAS and isinstance(old[key], Mapping) and isinstance(new[key], Mapping):
            _compare(old[key], new[key], old_root, new_root, f"{path}.{key}", out)
        elif old[key] != new[key]:
            out.append(f"{path}: {key} changed from {old[key]!r} to {new[key]!r}")
    _compare_properties(old, new, old_root, new_root, path, out, tightened)


def _compare_properties(
    old: Schema,
    new: Schema,
    old_root: Schema,
    new_root: Schema,
    path: str,
    out: list[str],
    tightened: frozenset[str],
) -> None:
    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    old_required = set(old.get("required", ()))
    new_required = set(new.get("required", ()))
    for name in sorted((set(old_props) | set(new_props)) - tightened):
        where = f"{path}.{name}"
        if name not in new_props:
            out.append(f"{where}: property removed")
        elif name not in old_props:
            if name in new_required:
                out.append(f"{where}: property added as required")
        else:
            if name in old_required and name not in new_required:
                out.append(f"{where}: required property became optional")
            elif name in new_required and name not in old_required:
                out.append(f"{where}: optional property became required")
            _compare(old_props[name], new_props[name], old_root, new_root, where, out)
    for name in sorted((old_required ^ new_required) - tightened):
        if name in old_props or (name in new_props and name in new_required):
            continue  # removed, added as required, or changed: reported above
        state = "added" if name in new_required else "removed"
        out.append(f"{path}: required name {name!r} {state}")


def catalogue_breaks(
    old: Mapping[str, Schema], new: Mapping[str, Schema], release: str | None = None
) -> list[str]:
    """Breaking changes between two whole catalogues (event type → schema); ``release``:
    the one ``old`` was published in."""
    problems: list[str] = []
    for event_type in sorted(old):
        if event_type not in new:
            problems.append(f"{event_type}: event type removed")
            continue
        problems.extend(
            f"{event_type} {p}"
            for p in breaking_changes(old[event_type], new[event_type], event_type, release)
        )
    return problems


_PARAMETER_ANNOTATIONS = frozenset({"description", "examples"})


def asyncapi_breaks(old: Schema, new: Schema) -> list[str]:
    """How the AsyncAPI document ``new`` breaks a client written against ``old``:

    - a server removed, its protocol changed, or a security requirement taken from it;
    - a channel, a message on a channel, an operation or a security scheme removed;
    - a channel's address or parameters changed; a binding (of a channel, a message or an
      operation) removed, or a field of it changed or removed;
    - a message's content type changed; its payload, key or headers changed other than
      by growing (compared as schemas, references followed: the schemas the document
      embeds beside the published ones, like the dead letter's, are held to the same
      rules);
    - an operation's action or channel changed, or a message taken from it.

    New servers, channels, messages, operations and binding fields, and all
    descriptions, are allowed."""
    problems = _server_breaks(old.get("servers", {}), new.get("servers", {}))
    old_channels: Schema = old.get("channels", {})
    new_channels: Schema = new.get("channels", {})
    for name, channel in sorted(old_channels.items()):
        if name not in new_channels:
            problems.append(f"channel {name}: removed")
            continue
        problems.extend(
            f"channel {name}: {p}" for p in _channel_breaks(channel, new_channels[name], old, new)
        )
    old_operations: Schema = old.get("operations", {})
    new_operations: Schema = new.get("operations", {})
    for name, operation in sorted(old_operations.items()):
        if name not in new_operations:
            problems.append(f"operation {name}: removed")
            continue
        now = new_operations[name]
        for field in ("action", "channel"):
            if operation.get(field) != now.get(field):
                problems.append(f"operation {name}: {field} changed")
        refs = {m["$ref"] for m in now.get("messages", ())}
        for message in operation.get("messages", ()):
            if message["$ref"] not in refs:
                problems.append(f"operation {name}: message {message['$ref']} removed")
        problems.extend(
            f"operation {name}: {p}"
            for p in _binding_breaks(operation.get("bindings", {}), now.get("bindings", {}))
        )
    old_schemes: Schema = old.get("components", {}).get("securitySchemes", {})
    new_schemes: Schema = new.get("components", {}).get("securitySchemes", {})
    for name, scheme in sorted(old_schemes.items()):
        if new_schemes.get(name, {}).get("type") != scheme.get("type"):
            problems.append(f"security scheme {name}: removed or changed")
    return problems


def _server_breaks(old: Schema, new: Schema) -> list[str]:
    problems: list[str] = []
    for name, server in sorted(old.items()):
        if name not in new:
            problems.append(f"server {name}: removed")
            continue
        now = new[name]
        if server.get("protocol") != now.get("protocol"):
            problems.append(
                f"server {name}: protocol changed from {server.get('protocol')!r}"
                f" to {now.get('protocol')!r}"
            )
        kept = list(now.get("security", ()))
        problems.extend(
            f"server {name}: security {requirement.get('$ref', requirement)} removed"
            for requirement in server.get("security", ())
            if requirement not in kept
        )
        problems.extend(
            f"server {name}: {p}"
            for p in _binding_breaks(server.get("bindings", {}), now.get("bindings", {}))
        )
    return problems


def _channel_breaks(old: Schema, new: Schema, old_doc: Schema, new_doc: Schema) -> list[str]:
    problems: list[str] = []
    if old.get("address") != new.get("address"):
        problems.append(f"address changed from {old.get('address')!r} to {new.get('address')!r}")
    old_parameters: Schema = old.get("parameters", {})
    new_parameters: Schema = new.get("parameters", {})
    for name in sorted(set(old_parameters) | set(new_parameters)):
        if name not in old_parameters or name not in new_parameters:
            state = "removed" if name in old_parameters else "added"
            problems.append(f"parameter {name}: {state}")
        elif _without(old_parameters[name], _PARAMETER_ANNOTATIONS) != _without(
            new_parameters[name], _PARAMETER_ANNOTATIONS
        ):
            problems.append(f"parameter {name}: changed")
    problems.extend(_binding_breaks(old.get("bindings", {}), new.get("bindings", {})))
    old_messages: Schema = old.get("messages", {})
    new_messages: Schema = new.get("messages", {})
    for name, message in sorted(old_messages.items()):
        if name not in new_messages:
            problems.append(f"message {name}: removed")
            continue
        problems.extend(
            f"message {name}: {p}"
            for p in _message_breaks(message, new_messages[name], old_doc, new_doc)
        )
    return problems


def _message_breaks(old: Schema, new: Schema, old_doc: Schema, new_doc: Schema) -> list[str]:
    problems: list[str] = []
    if old.get("contentType") != new.get("contentType"):
        problems.append(
            f"contentType changed from {old.get('contentType')!r} to {new.get('contentType')!r}"
        )
    for part in ("payload", "headers"):
        _compare(old.get(part, {}), new.get(part, {}), old_doc, new_doc, f"{part} $", problems)
    old_bindings: Schema = old.get("bindings", {})
    new_bindings: Schema = new.get("bindings", {})
    old_key = old_bindings.get("kafka", {}).get("key", {})
    new_key = new_bindings.get("kafka", {}).get("key", {})
    _compare(old_key, new_key, old_doc, new_doc, "key $", problems)
    problems.extend(_binding_breaks(old_bindings, new_bindings, but=frozenset({"key"})))
    return problems


def _binding_breaks(old: Schema, new: Schema, but: frozenset[str] = frozenset()) -> list[str]:
    """Bindings (protocol → fields): a protocol's binding or a field of it removed, or a
    field changed (``but`` those compared otherwise); a field added is allowed."""
    problems: list[str] = []
    for protocol, binding in sorted(old.items()):
        if protocol not in new:
            problems.append(f"binding {protocol} removed")
            continue
        for field, value in sorted(binding.items()):
            if field in but:
                continue
            if field not in new[protocol]:
                problems.append(f"binding {protocol}.{field} removed")
            elif new[protocol][field] != value:
                problems.append(f"binding {protocol}.{field} changed")
    return problems


def _without(schema: Schema, keys: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in keys}
