"""JSON Schema of every event type: export, staleness check, compatibility check.

``python -m yixian.contracts.schemas export``   write contracts/schemas/v1/*.json
``python -m yixian.contracts.schemas check``    fail if the committed files are stale
                                                 or break a published release
``python -m yixian.contracts.schemas publish X`` freeze the current files as release X
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from .catalogue import CATALOGUE, envelope_model
from .compat import catalogue_breaks
from .envelope import schema_uri
from .topics import CONTRACT_MAJOR

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ROOT = Path(__file__).resolve().parents[3] / "schemas"
"""contracts/schemas in a source checkout: current/<major>/ and published/<release>/."""


def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one event type, envelope included."""
    schema = envelope_model(event_type).model_json_schema(mode="validation")
    schema["properties"]["type"] = {"const": event_type, "title": "Type", "type": "string"}
    schema["properties"]["dataschema"] = {
        "const": schema_uri(event_type),
        "title": "Dataschema",
        "type": "string",
    }
    payload = CATALOGUE[event_type]
    schema["title"] = event_type
    schema["description"] = (payload.__doc__ or event_type).strip().splitlines()[0]
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_uri(event_type), **schema}


def all_schemas() -> dict[str, dict[str, Any]]:
    return {event_type: event_schema(event_type) for event_type in sorted(CATALOGUE)}


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
    return {
        p.name.removesuffix(".json"): json.loads(p.read_text())
        for p in sorted(directory.glob("*.json"))
    }


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in all_schemas().items():
        path = directory / f"{event_type}.json"
        path.write_text(render(schema))
        written.append(path)
    for stale in set(directory.glob("*.json")) - set(written):
        stale.unlink()
    return written


def stale_files(directory: Path) -> list[str]:
    """Names of committed schema files that differ from the models (or are missing/extra)."""
    expected = {f"{t}.json": render(s) for t, s in all_schemas().items()}
    present = (
        {p.name: p.read_text() for p in directory.glob("*.json")} if directory.is_dir() else {}
    )
    names = set(expected) | set(present)
    return sorted(n for n in names if expected.get(n) != present.get(n))


def breaks_against_published(root: Path = SCHEMA_ROOT) -> list[str]:
    current = all_schemas()
    problems: list[str] = []
    for release in published_dirs(root):
        problems.extend(
            f"[{release.name}] {p}" for p in catalogue_breaks(load_dir(release), current)
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "check"
    if command == "export":
        for path in export(current_dir()):
            print(path.relative_to(SCHEMA_ROOT.parent))
        return 0
    if command == "check":
        stale = stale_files(current_dir())
        breaks = breaks_against_published()
        for name in stale:
            print(f"stale: {name} (run: make schemas)")
        for problem in breaks:
            print(f"breaking: {problem}")
        return 1 if stale or breaks else 0
    if command == "publish" and len(args) == 2:
        target = SCHEMA_ROOT / "published" / args[1]
        if target.exists():
            print(f"{target} exists: a published release is never changed")
            return 1
        shutil.copytree(current_dir(), target)
        print(f"published {target.relative_to(SCHEMA_ROOT.parent)}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
