"""Migrations on the real database: once each, safe when instances start together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from yixian.runtime.migrations import MigrationError, apply, pending

pytestmark = pytest.mark.integration


def _write(folder: Path, name: str, sql: str) -> None:
    (folder / name).write_text(sql)


async def test_concurrent_starts_apply_each_migration_once(
    database_url: str, tmp_path: Path
) -> None:
    _write(tmp_path, "0001_first.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    _write(tmp_path, "0002_second.sql", "INSERT INTO things VALUES (1);")
    results = await asyncio.gather(*(apply(database_url, "svc", tmp_path) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 2]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM things") == 1
        assert await pending(conn, "svc", tmp_path) == []
    finally:
        await conn.close()


async def test_an_applied_migration_may_not_change(database_url: str, tmp_path: Path) -> None:
    _write(tmp_path, "0001_first.sql", "CREATE TABLE a (id int);")
    await apply(database_url, "svc", tmp_path)
    _write(tmp_path, "0001_first.sql", "CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply(database_url, "svc", tmp_path)


async def test_services_keep_separate_histories(database_url: str, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    _write(one, "0001_a.sql", "CREATE TABLE one_a (id int);")
    _write(two, "0001_a.sql", "CREATE TABLE two_a (id int);")
    assert await apply(database_url, "one", one) == ["0001_a"]
    assert await apply(database_url, "two", two) == ["0001_a"]


def test_gaps_in_numbering_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "0001_a.sql", "SELECT 1;")
    _write(tmp_path, "0003_c.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="without gaps"):
        asyncio.run(apply("postgresql://unused", "svc", tmp_path))
