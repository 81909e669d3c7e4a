"""Every table has one owner, and the canvases say who writes and reads it (ADR 17).

The tables and views are what the migrations create: the node schema (owned by
``yixian.record``) and each service's own. Every canvas (``libs/record/README.md``,
``services/*/README.md``) holds a matrix of the tables its package owns, with the packages
that write and read each; this test reads the SQL in every package's source and holds the
matrix against it, both ways:

- every table and view is in exactly one canvas, its owner's (the package whose
  migrations create it);
- the packages found writing (``INSERT INTO``, ``UPDATE``, ``DELETE FROM``, ``COPY``,
  ``TRUNCATE``) and reading (``FROM``, ``JOIN``) each table are exactly the matrix's;
- only the owner writes a table, but for the exceptions below, each with its reason;
- a service reads another service's data only through that service's views, never its
  tables (the node's record is read by all: it is shared by design).

Package sources scanned: ``yixian.record``, ``yixian.runtime``, the three services,
``yixian.ops`` (the operator's command, shipped with the node) and ``yixian.console``
(which owns no table and writes no SQL: it calls the owners' functions and APIs). The benchmark and the
local stack's demo seed and inspect a node's database as tests do, and are left out, as
are tests. ``schema_migrations`` is the migration runner's bookkeeping, not a migration's
table.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from yixian.record.schema import NODE_SCHEMA

ROOT = Path(__file__).resolve().parents[2]

SOURCES = {
    "record": ROOT / "libs" / "record" / "src",
    "runtime": ROOT / "libs" / "runtime" / "src",
    "registry": ROOT / "services" / "registry" / "src",
    "sync": ROOT / "services" / "sync" / "src",
    "notify": ROOT / "services" / "notify" / "src",
    "ops": ROOT / "ops" / "src",
    "console": ROOT / "services" / "console" / "src",
}
SERVICES = ("registry", "sync", "notify")
CANVASES = {
    "record": ROOT / "libs" / "record" / "README.md",
    **{name: ROOT / "services" / name / "README.md" for name in SERVICES},
}
MIGRATIONS = {
    "record": NODE_SCHEMA,
    **{
        name: ROOT / "services" / name / "src" / "yixian" / name / "migrations" for name in SERVICES
    },
}

WRITERS_BESIDES_THE_OWNER = {
    ("movements", "registry"): "this node's group of each movement (ADR 7)",
    ("movements", "sync"): "the partner's group; this node's own only when a partner returns "
    "the replica of a group the node lost (ADR 7, replica_returned)",
}
"""(table, package) -> why a package that does not own a table writes it."""

_CREATE = re.compile(
    r"\bCREATE\s+(OR\s+REPLACE\s+)?(TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I
)
_WRITE = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|COPY)\s+(\w+)"
    r"|\bcopy_(?:records_)?to_table\(\s*[\"'](\w+)[\"']"
)
_READ = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)")
_PACKAGES = re.compile(r"\b(record|runtime|registry|sync|notify|ops|console)\b")


@dataclass(frozen=True)
class Row:
    owner: str
    written_by: frozenset[str]
    read_by: frozenset[str]


def created() -> dict[str, tuple[str, str]]:
    """Every table and view a migration creates -> (owning package, TABLE or VIEW). A later
    migration of the same owner may redefine its view (``CREATE OR REPLACE VIEW``)."""
    found: dict[str, tuple[str, str]] = {}
    for owner, directory in MIGRATIONS.items():
        for path in sorted(directory.glob("*.sql")):
            sql = _without_sql_comments(path.read_text())
            for replace, kind, name in _CREATE.findall(sql):
                redefined = (
                    bool(replace) and kind.upper() == "VIEW" and found.get(name) == (owner, "VIEW")
                )
                assert name not in found or redefined, f"{name} is created twice ({path.name})"
                found[name] = (owner, kind.upper())
    return found


def _without_sql_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def used_in_code(
    names: set[str], sources: dict[str, Path] = SOURCES
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(table -> packages whose SQL writes it, table -> packages whose SQL reads it)."""
    writers: dict[str, set[str]] = defaultdict(set)
    readers: dict[str, set[str]] = defaultdict(set)
    for package, source in sources.items():
        for path in source.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for match in _WRITE.finditer(text):
                name = match.group(1) or match.group(2)
                if name in names:
                    writers[name].add(package)
            # a DELETE's FROM names what it writes, not what it reads
            for match in _READ.finditer(re.sub(r"\bDELETE\s+FROM\b", "DELETE", text)):
                if match.group(1) in names:
                    readers[match.group(1)].add(package)
    return writers, readers


def matrix() -> dict[str, Row]:
    """The canvases' matrices: the tables in a table whose columns include ``written by``
    and ``read by``, one row per table, the canvas's package its owner."""
    rows: dict[str, Row] = {}
    for owner, canvas in CANVASES.items():
        found = 0
        header: list[str] | None = None
        for line in canvas.read_text(encoding="utf-8").splitlines():
            if not line.startswith("|"):
                header = None
                continue
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if header is None:
                header = [cell.lower() for cell in cells]
                continue
            if set(cells) <= {"", "---"} or not {"written by", "read by"} <= set(header):
                continue
            name = re.fullmatch(r"`(\w+)`(?:\s.*)?", cells[0])
            assert name, f"{canvas}: a matrix row names one table: {line}"
            table = name.group(1)
            assert table not in rows, f"{table} is in two matrices ({owner}, {rows[table].owner})"
            rows[table] = Row(
                owner,
                _packages(cells[header.index("written by")]),
                _packages(cells[header.index("read by")]),
            )
            found += 1
        assert found, f"{canvas} has no matrix (columns 'written by' and 'read by')"
    return rows


def _packages(cell: str) -> frozenset[str]:
    """The packages a cell names, leaving out what parentheses explain."""
    return frozenset(_PACKAGES.findall(re.sub(r"\([^)]*\)", "", cell)))


def test_every_table_is_in_its_owners_matrix_once() -> None:
    tables = created()
    rows = matrix()
    assert sorted(set(tables) - set(rows)) == [], "tables no canvas's matrix names"
    assert sorted(set(rows) - set(tables)) == [], "matrix rows no migration creates"
    assert {t: r.owner for t, r in rows.items()} == {t: o for t, (o, _) in tables.items()}


def test_the_matrices_name_exactly_who_writes_and_reads_each_table() -> None:
    rows = matrix()
    writers, readers = used_in_code(set(rows))
    assert {t: set(writers.get(t, ())) for t in rows} == {
        t: set(r.written_by) for t, r in rows.items()
    }
    assert {t: set(readers.get(t, ())) for t in rows} == {
        t: set(r.read_by) for t, r in rows.items()
    }


def test_only_the_owner_writes_a_table_but_for_the_exceptions() -> None:
    tables = created()
    writers, _ = used_in_code(set(tables))
    others = {
        (table, package)
        for table, packages in writers.items()
        for package in packages
        if package != tables[table][0]
    }
    assert sorted(others - set(WRITERS_BESIDES_THE_OWNER)) == []
    assert sorted(set(WRITERS_BESIDES_THE_OWNER) - others) == [], "an exception no longer needed"


def reached_into(
    tables: dict[str, tuple[str, str]], readers: dict[str, set[str]]
) -> list[tuple[str, str]]:
    """(service, table) for every table of another service a service reads."""
    return sorted(
        (package, table)
        for table, packages in readers.items()
        for package in packages
        if tables[table][1] == "TABLE"
        and tables[table][0] in SERVICES
        and package in SERVICES
        and package != tables[table][0]
    )


def test_a_service_reads_another_service_only_through_its_views() -> None:
    tables = created()
    _, readers = used_in_code(set(tables))
    assert reached_into(tables, readers) == [], "read the owner's view instead"


def test_reaching_into_another_service_is_seen(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(
        'Q = "SELECT path FROM organizations WHERE org_id = $1"\n'
        'V = "SELECT name FROM member_contacts"\n'
        'R = "SELECT origin_group FROM movements"\n'
    )
    tables = created()
    _, readers = used_in_code(set(tables), {"notify": tmp_path})
    assert reached_into(tables, readers) == [("notify", "organizations")]


@pytest.mark.parametrize(
    ("sql", "writes", "reads"),
    [
        ("INSERT INTO outbox (a) SELECT a FROM movements", {"outbox"}, {"movements"}),
        ("UPDATE outbox o SET x = 1 FROM parked WHERE o.id = parked.id", {"outbox"}, set()),
        ("DELETE FROM inbox WHERE source = $1", {"inbox"}, set()),
        (
            "SELECT 1 FROM members m JOIN organizations o USING (org_id)",
            set(),
            {"members", "organizations"},
        ),
        (
            'await conn.copy_records_to_table("member_import", records=rows)',
            {"member_import"},
            set(),
        ),
        ("the relay publishes from the outbox; update if needed", set(), set()),
    ],
)
def test_the_scanner_sees_writes_and_reads(
    tmp_path: Path, sql: str, writes: set[str], reads: set[str]
) -> None:
    """The patterns are not vacuous: they find what a statement writes and reads, and
    nothing in prose."""
    (tmp_path / "module.py").write_text(f'QUERY = """{sql}"""\n')
    names = {"outbox", "movements", "inbox", "members", "organizations", "member_import"}
    writers, readers = used_in_code(names, {"probe": tmp_path})
    assert set(writers) == writes
    assert set(readers) == reads


def test_a_cell_names_packages_without_its_notes() -> None:
    assert _packages("registry (this node's group), sync (the partner's group)") == {
        "registry",
        "sync",
    }
    assert _packages("—") == frozenset()
