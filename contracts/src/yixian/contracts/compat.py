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

A break needs a new major version (new event types ``...v2`` on ``yixian.v2`` topics).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ANNOTATIONS = frozenset(
    {"title", "description", "examples", "default", "$comment"}
    | {"deprecated", "readOnly", "writeOnly"}  # the meta-data vocabulary: validates nothing
)
STRUCTURAL = frozenset({"properties", "required", "$defs", "$id", "$schema"})
SUBSCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
SUBSCHEMAS = frozenset({"items", "additionalProperties", "not", "if", "then", "else"})

Schema = Mapping[str, Any]


def _resolve(node: Schema, root: Schema) -> Schema:
    seen: set[str] = set()
    while "$ref" in node:
        ref = node["$ref"]
        if ref in seen or not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported or cyclic $ref {ref!r}")
        seen.add(ref)
        target = root["$defs"][ref.removeprefix("#/$defs/")]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **extra}
    return node


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Every way ``new`` breaks a reader or a writer of ``old``; empty when compatible."""
    problems: list[str] = []
    _compare(old, new, old, new, "$", problems)
    return problems


def _compare(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str, out: list[str]
) -> None:
    old = _resolve(old, old_root)
    new = _resolve(new, new_root)
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
    _compare_properties(old, new, old_root, new_root, path, out)


def _compare_properties(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str, out: list[str]
) -> None:
    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    old_required = set(old.get("required", ()))
    new_required = set(new.get("required", ()))
    for name in sorted(set(old_props) | set(new_props)):
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


def catalogue_breaks(old: Mapping[str, Schema], new: Mapping[str, Schema]) -> list[str]:
    """Breaking changes between two whole catalogues (event type → schema)."""
    problems: list[str] = []
    for event_type in sorted(old):
        if event_type not in new:
            problems.append(f"{event_type}: event type removed")
            continue
        problems.extend(
            f"{event_type} {p}" for p in breaking_changes(old[event_type], new[event_type])
        )
    return problems
