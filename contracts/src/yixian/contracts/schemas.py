"""The published contract: a JSON Schema per event type, the pair envelope's rules and
the AsyncAPI document; export, staleness check, compatibility check, publishing.

``python -m yixian.contracts.schemas export``   write contracts/schemas/current/v1/
``python -m yixian.contracts.schemas check``    fail if the committed files are stale,
                                                 break a published release, or differ
                                                 from the frozen release of their version
``python -m yixian.contracts.schemas publish X`` freeze the current files as release X
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from . import asyncapi
from .asyncapi import PAIR_ENVELOPE
from .catalogue import CATALOGUE, envelope_model
from .compat import asyncapi_breaks, catalogue_breaks
from .envelope import schema_uri
from .routes import ROUTES, Topic
from .topics import CONTRACT_MAJOR, CONTRACT_RELEASE, TopicNames

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ROOT = Path(__file__).resolve().parents[3] / "schemas"
"""contracts/schemas in a source checkout: current/<major>/ and published/<release>/."""
ASYNCAPI_FILE = "asyncapi.json"
"""The AsyncAPI document's file, beside the JSON Schemas of its release."""

_TOPICS = {
    Topic.PAIR: "pair topics (`yixian.v1.<source>.to.<destination>`)",
    Topic.LOCAL: "the sender's local topic (`yixian.v1.<node>.local`)",
}


def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one event type, envelope included: what its producers send.
    A type that travels only on pair topics requires ``pairseq``."""
    schema = envelope_model(event_type).model_json_schema(mode="validation")
    schema["properties"]["type"] = {"const": event_type, "title": "Type", "type": "string"}
    schema["properties"]["dataschema"] = {
        "const": schema_uri(event_type),
        "title": "Dataschema",
        "type": "string",
    }
    route = ROUTES[event_type]
    if route.pair_only:
        schema["properties"]["pairseq"] = _never_null(schema["properties"]["pairseq"])
        schema["required"].insert(schema["required"].index("data"), "pairseq")
    payload = CATALOGUE[event_type]
    schema["title"] = event_type
    schema["description"] = _description(event_type, payload.__doc__ or event_type)
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_uri(event_type), **schema}


def _description(event_type: str, doc: str) -> str:
    route = ROUTES[event_type]
    travels = " and ".join(_TOPICS[t] for t in Topic if t in route.topics)
    pair = (
        f" On a pair topic every record also carries `pairseq` (`{schema_uri(PAIR_ENVELOPE)}`)."
        if Topic.PAIR in route.topics
        else ""
    )
    return (
        f"{doc.strip().splitlines()[0]}\n\nTravels on {travels}; sent by {route.sender}."
        f" Kafka record key: {route.key_meaning}.{pair}"
    )


def _never_null(attribute: dict[str, Any]) -> dict[str, Any]:
    """An optional envelope attribute (``anyOf`` a value or null) as a present one."""
    (value,) = (s for s in attribute["anyOf"] if s.get("type") != "null")
    annotations = {k: attribute[k] for k in ("description", "title") if k in attribute}
    return {**value, **annotations}


def pair_envelope_schema() -> dict[str, Any]:
    """What every event on a pair topic carries beyond the schema of its type."""
    attributes = envelope_model(next(iter(CATALOGUE))).model_json_schema()["properties"]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_uri(PAIR_ENVELOPE),
        "title": PAIR_ENVELOPE,
        "description": "The rules of an event on a pair topic"
        " (`yixian.v1.<source>.to.<destination>`), beyond the schema of its type (its"
        " `dataschema`): validate a record from a pair topic against both. `pairseq`"
        " numbers the events from `<source>` to `<destination>` in the link epoch"
        " `pairepoch` (absent: epoch 0): within an epoch the sender numbers its events 1,"
        " 2, 3... in the order it first publishes them (a replay sends an event again with"
        " its number). A number may be missing for good (an event the sender's operator"
        " discarded): a receiver asks for a missing number but must not wait for it for"
        " ever; the digest exchange settles what the data lacks. `source` must name the"
        " topic's `<source>` (a rule no schema can state: the receiver checks it).",
        "type": "object",
        "properties": {
            "pairseq": _never_null(attributes["pairseq"]),
            "pairepoch": _never_null(attributes["pairepoch"]),
        },
        "required": ["pairseq"],
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every published JSON Schema by name: the event types and the pair envelope."""
    schemas = {event_type: event_schema(event_type) for event_type in sorted(CATALOGUE)}
    schemas[PAIR_ENVELOPE] = pair_envelope_schema()
    return schemas


def asyncapi_document(topics: TopicNames | None = None) -> dict[str, Any]:
    """The AsyncAPI document of a node's Kafka traffic, with these schemas in it."""
    return asyncapi.document(all_schemas(), topics)


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def current_dir(root: Path = SCHEMA_ROOT) -> Path:
    return root / "current" / CONTRACT_MAJOR


def published_dirs(root: Path = SCHEMA_ROOT) -> list[Path]:
    """Every frozen release of this major version, oldest first."""
    base = root / "published"
    if not base.is_dir():
        return []
    major = CONTRACT_MAJOR.removeprefix("v")
    return sorted(
        (d for d in base.iterdir() if d.is_dir() and d.name.split(".")[0] == major),
        key=lambda d: tuple(int(x) for x in d.name.split(".")),
    )


def load_dir(directory: Path) -> dict[str, dict[str, Any]]:
    """The JSON Schemas of a release (or of the current contract), by name."""
    return {
        p.name.removesuffix(".json"): json.loads(p.read_text())
        for p in sorted(directory.glob("*.json"))
        if p.name != ASYNCAPI_FILE
    }


def load_asyncapi(directory: Path) -> dict[str, Any] | None:
    """The AsyncAPI document of a release, if it has one (1.0.0 has none)."""
    path = directory / ASYNCAPI_FILE
    if not path.is_file():
        return None
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def expected_files() -> dict[str, str]:
    """The current contract's files as the code makes them: name → text."""
    schemas = all_schemas()
    files = {f"{name}.json": render(schema) for name, schema in schemas.items()}
    files[ASYNCAPI_FILE] = render(asyncapi.document(schemas))
    return files


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    for stale in set(directory.glob("*.json")) - set(written):
        stale.unlink()
    return written


def stale_files(directory: Path) -> list[str]:
    """Names of committed files that differ from the code (or are missing/extra)."""
    expected = expected_files()
    present = (
        {p.name: p.read_text() for p in directory.glob("*.json")} if directory.is_dir() else {}
    )
    names = set(expected) | set(present)
    return sorted(n for n in names if expected.get(n) != present.get(n))


def breaks_against_published(root: Path = SCHEMA_ROOT) -> list[str]:
    """How the current contract breaks each published release of its major version."""
    current = all_schemas()
    document = asyncapi.document(current)
    problems: list[str] = []
    for release in published_dirs(root):
        problems.extend(
            f"[{release.name}] {p}"
            for p in catalogue_breaks(load_dir(release), current, release.name)
        )
        if (published := load_asyncapi(release)) is not None:
            problems.extend(
                f"[{release.name}] {ASYNCAPI_FILE} {p}"
                for p in asyncapi_breaks(published, document)
            )
    return problems


def drift_from_release(root: Path = SCHEMA_ROOT) -> list[str]:
    """Files of the contract the code makes that differ from (or are missing in, or are
    extra to) the frozen release it claims to be, ``topics.CONTRACT_RELEASE``; empty
    while that release is not frozen yet."""
    frozen = root / "published" / CONTRACT_RELEASE
    if not frozen.is_dir():
        return []
    expected = expected_files()
    present = {p.name: p.read_text() for p in frozen.glob("*.json")}
    return sorted(n for n in set(expected) | set(present) if expected.get(n) != present.get(n))


def main(argv: list[str] | None = None, root: Path = SCHEMA_ROOT) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "check"
    if command == "export":
        for path in export(current_dir(root)):
            print(path.relative_to(root.parent))
        return 0
    if command == "check":
        stale = stale_files(current_dir(root))
        breaks = breaks_against_published(root)
        drift = drift_from_release(root)
        for name in stale:
            print(f"stale: {name} (run: make schemas)")
        for problem in breaks:
            print(f"breaking: {problem}")
        for name in drift:
            print(
                f"{name} differs from release {CONTRACT_RELEASE}, frozen in published/: a"
                " published release is never changed; a new contract is a new release"
                " (raise topics.CONTRACT_RELEASE)"
            )
        return 1 if stale or breaks or drift else 0
    if command == "publish" and len(args) == 2:
        target = root / "published" / args[1]
        if target.exists():
            print(f"{target} exists: a published release is never changed")
            return 1
        if args[1] != CONTRACT_RELEASE:
            print(f"the current contract is {CONTRACT_RELEASE} (topics.CONTRACT_RELEASE)")
            return 1
        if stale := stale_files(current_dir(root)):
            print(f"stale: {', '.join(stale)} (run: make schemas)")
            return 1
        shutil.copytree(current_dir(root), target)
        print(f"published {target.relative_to(root.parent)}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
