"""The sync service's reads and writes, on one connection inside one transaction
(``service_layer.repositories.Store`` on PostgreSQL).

It writes only the partner's group of a movement, received participations, and its own
tables (inbox, links, dead letters); everything it publishes goes through the outbox.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from yixian.contracts import (
    DEAD_LETTER_CONTENT_TYPE,
    DEAD_LETTER_TYPE,
    DigestEntry,
    Envelope,
    HostGroup,
    OriginGroup,
    ParticipationRecorded,
    TopicNames,
    VisitorClaimAnswered,
    VisitorClaimAsked,
    recorded_status,
)
from yixian.record.history import (
    HISTORY_INSERT,
    add_history,
    add_history_rows,
    add_participation,
    add_participations,
)
from yixian.record.outbox import MAX_RECORD_BYTES, Outbox
from yixian.runtime import DbConnection
from yixian.sync.domain import Replica, SequenceTracker, StoredMovement, bucket_of
from yixian.sync.domain.apply import Mark
from yixian.sync.service_layer.repositories import Claim, Inbound, ReplayAsked, Replayed

__all__ = [
    "DEAD_LETTER_MAX_BYTES",
    "DEAD_LETTER_TYPE",
    "EXCERPT_BYTES",
    "OPEN_DEAD_LETTERS",
    "Claim",
    "Inbound",
    "StoredMovement",
    "SyncStore",
    "dead_letter_document",
]


def _stored(row: Any) -> StoredMovement:
    origin = OriginGroup.model_validate(row["origin_group"]) if row["origin_group"] else None
    host = HostGroup.model_validate(row["host_group"]) if row["host_group"] else None
    seq = row["partner_pairseq"]
    set_by = None if seq is None else (row["partner_epoch"] or 0, seq)
    return StoredMovement(row["origin"], row["host"], Replica(origin, host), set_by)


_MOVEMENT_COLUMNS = (
    "movement_id, origin, host, origin_group, host_group, partner_epoch, partner_pairseq"
)


_PUT_ORIGIN = (
    "INSERT INTO movements (movement_id, origin, host, member_id, origin_version,"
    " origin_status, origin_group, partner_epoch, partner_pairseq)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (movement_id) DO UPDATE SET origin_version = EXCLUDED.origin_version,"
    " origin_status = EXCLUDED.origin_status, origin_group = EXCLUDED.origin_group,"
    " partner_epoch = EXCLUDED.partner_epoch, partner_pairseq = EXCLUDED.partner_pairseq,"
    " updated_at = now() WHERE movements.origin_version < EXCLUDED.origin_version"
)
_PUT_HOST = (
    "UPDATE movements SET host_version = $2, host_status = $3, host_group = $4,"
    " partner_epoch = $5, partner_pairseq = $6,"
    " updated_at = now() WHERE movement_id = $1 AND host_version < $2"
)
# the owner's repair copy: replaces the replica's whenever it differs, whatever the versions
_REPLACE_ORIGIN = _PUT_ORIGIN.replace(
    "movements.origin_version < EXCLUDED.origin_version",
    "movements.origin_group IS DISTINCT FROM EXCLUDED.origin_group",
)
_REPLACE_HOST = _PUT_HOST.replace("host_version < $2", "host_group IS DISTINCT FROM $4")

# a replayed run: its inbox rows with their outcomes (a row from before a rebuild rewritten
# only if it differs: the replay claims an event once), and their numbers as arrived
_CLAIM_ALL_SETTLED = (  # a Claim's columns, then the outcome
    "WITH c AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[],"
    " $5::integer[], $6::bigint[], $7::bigint[], $8::text[], $9::timestamptz[], $10::uuid[],"
    " $11::bigint[], $12::text[]) AS c(source, event_id, event_type, topic, partition,"
    ' "offset", pairseq, trace_id, event_time, movement_id, epoch, outcome)),'
    " claimed AS (INSERT INTO inbox (source, event_id, event_type, topic, partition,"
    ' "offset", pairseq, outcome, trace_id, event_time, movement_id)'
    ' SELECT source, event_id, event_type, topic, partition, "offset", pairseq, outcome,'
    " trace_id, event_time, movement_id FROM c ON CONFLICT (source, event_id) DO UPDATE"
    " SET event_type = EXCLUDED.event_type, topic = EXCLUDED.topic,"
    ' partition = EXCLUDED.partition, "offset" = EXCLUDED."offset",'
    " pairseq = EXCLUDED.pairseq, outcome = EXCLUDED.outcome, trace_id = EXCLUDED.trace_id,"
    " event_time = EXCLUDED.event_time, movement_id = EXCLUDED.movement_id,"
    " received_at = clock_timestamp() WHERE (inbox.event_type, inbox.topic, inbox.partition,"
    ' inbox."offset", inbox.pairseq, inbox.outcome, inbox.trace_id, inbox.event_time,'
    " inbox.movement_id) IS DISTINCT FROM (EXCLUDED.event_type, EXCLUDED.topic,"
    ' EXCLUDED.partition, EXCLUDED."offset", EXCLUDED.pairseq, EXCLUDED.outcome,'
    " EXCLUDED.trace_id, EXCLUDED.event_time, EXCLUDED.movement_id))"
    " INSERT INTO link_received (partner, epoch, seq) SELECT source, epoch, pairseq FROM c"
    " WHERE pairseq IS NOT NULL ON CONFLICT DO NOTHING"
)
# its movements' last partner groups, as the rules decided in memory on the locked rows;
# the movements it created
# (a row that holds them already is not written again: a rebuild over replicas that were
# right writes no movement)
_SET_PARTNER_GROUP = (  # the groups as UTF-8 JSON (bytea)
    "UPDATE movements SET {side}_version = u.v, {side}_status = u.status,"
    " {side}_group = u.g, partner_epoch = u.e, partner_pairseq = u.s, updated_at = now()"
    " FROM (SELECT m, v, status, convert_from(g, 'UTF8')::jsonb AS g, e, s FROM unnest("
    "$1::uuid[], $2::integer[], $3::text[], $4::bytea[], $5::bigint[], $6::bigint[])"
    " AS u(m, v, status, g, e, s)) AS u WHERE movements.movement_id = u.m"
    " AND (movements.{side}_group IS DISTINCT FROM u.g OR {side}_version <> u.v"
    " OR {side}_status IS DISTINCT FROM u.status OR partner_epoch IS DISTINCT FROM u.e"
    " OR partner_pairseq IS DISTINCT FROM u.s)"
)
_SET_ORIGINS = _SET_PARTNER_GROUP.format(side="origin")
_SET_HOSTS = _SET_PARTNER_GROUP.format(side="host")
_PUT_ORIGINS = (
    "INSERT INTO movements (movement_id, origin, host, member_id, origin_version,"
    " origin_status, origin_group, partner_epoch, partner_pairseq)"
    " SELECT m, o, h, member, v, status, convert_from(g, 'UTF8')::jsonb, e, s"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::integer[], $6::text[],"
    " $7::bytea[], $8::bigint[],"
    " $9::bigint[]) AS u(m, o, h, member, v, status, g, e, s)"
    " ON CONFLICT (movement_id) DO UPDATE SET origin_version = EXCLUDED.origin_version,"
    " origin_status = EXCLUDED.origin_status, origin_group = EXCLUDED.origin_group,"
    " partner_epoch = EXCLUDED.partner_epoch, partner_pairseq = EXCLUDED.partner_pairseq,"
    " updated_at = now()"
)

_CONTENT_HASH = "encode(sha256(convert_to({}::text, 'UTF8')), 'hex')"
"""A group's content hash: SHA-256 of its stored JSON in PostgreSQL's jsonb text form
(keys in jsonb's order, one spelling of each value), the same at both nodes for the same
snapshot; participations: of their ids in order."""
_PARTICIPATION_IDS = (
    "coalesce(string_agg(p.participation_id::text, ',' ORDER BY p.participation_id), '')"
)
_ENTRIES = (
    "SELECT m.movement_id, m.origin, m.origin_version, m.host_version,"  # noqa: S608 - constants
    f" {_CONTENT_HASH.format('m.origin_group')} AS origin_hash,"
    f" {_CONTENT_HASH.format('m.host_group')} AS host_hash,"
    f" (SELECT {_CONTENT_HASH.format(_PARTICIPATION_IDS)}"
    " FROM participations p WHERE p.movement_id = m.movement_id) AS participations_hash"
    " FROM movements m WHERE (m.origin = $1 AND m.host = $2) OR (m.origin = $2 AND m.host = $1)"
)


class SyncStore:
    def __init__(
        self, conn: DbConnection, node: str, topics: TopicNames, *, deferred: bool = False
    ) -> None:
        """``deferred``: the append-only writes (outbox rows, history versions, outcomes)
        wait for ``flush``, one round trip each kind for a whole batch; what is read back
        within a batch (the inbox claim, the movement row) is always written at once."""
        self.conn = conn
        self.node = node
        self.topics = topics
        self.deferred = deferred
        self.outbox = Outbox(conn, deferred=deferred)
        self._settled: list[tuple[str, UUID, str]] = []
        self._history: list[tuple[UUID, str, int, Any]] = []
        self._claimed: set[tuple[str, UUID]] | None = None
        self._movements: dict[UUID, StoredMovement | None] = {}
        self._replicas: list[tuple[str, tuple[Any, ...]]] = []
        self._highest: dict[str, int] = {}
        self._epochs: dict[str, int] = {}

    async def flush(self) -> None:
        """Write what waits: replicas, outbox rows, history versions, outcomes."""
        await self.flush_replicas()
        await self.outbox.flush()
        if self._history:
            await self.conn.executemany(HISTORY_INSERT, self._history)
            self._history.clear()
        await self.settle_all()

    async def flush_replicas(self) -> None:
        """Write the replicas' changes that wait, in the order they were made: one round
        trip for each run of the same statement."""
        for statement, runs in groupby(self._replicas, key=itemgetter(0)):
            await self.conn.executemany(statement, [args for _, args in runs])
        self._replicas.clear()

    # -- a whole batch at once ---------------------------------------------------------------

    async def claim_all(self, claims: list[Claim]) -> None:
        """Claim a batch's events in one statement; ``claim`` then answers from the result."""
        rows = await self.conn.fetch(
            "WITH c AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[],"
            " $5::integer[], $6::bigint[], $7::bigint[], $8::text[], $9::timestamptz[],"
            " $10::uuid[], $11::bigint[]) AS c(source, event_id, event_type, topic, partition,"
            ' "offset", pairseq, trace_id, event_time, movement_id, epoch)),'
            " claimed AS (INSERT INTO inbox (source, event_id, event_type, topic,"
            ' partition, "offset", pairseq, outcome, trace_id, event_time, movement_id)'
            ' SELECT source, event_id, event_type, topic, partition, "offset", pairseq,'
            " 'received', trace_id, event_time, movement_id FROM c"
            " ON CONFLICT DO NOTHING RETURNING source, event_id, pairseq),"
            " arrived AS (INSERT INTO link_received (partner, epoch, seq)"
            " SELECT claimed.source, c.epoch, claimed.pairseq FROM claimed JOIN c"
            " USING (source, event_id) WHERE claimed.pairseq IS NOT NULL ON CONFLICT DO NOTHING)"
            " SELECT source, event_id FROM claimed",
            *(list(column) for column in zip(*claims, strict=True)),
        )
        self._claimed = {(r["source"], r["event_id"]) for r in rows}

    async def lock_movements(self, movement_ids: set[UUID]) -> None:
        """Read and lock a batch's movements in one statement; ``movement`` then answers
        from what was read, and the replicas' writes wait for ``flush``."""
        rows = await self.conn.fetch(
            f"SELECT {_MOVEMENT_COLUMNS} FROM movements"  # noqa: S608 - constants
            " WHERE movement_id = ANY($1::uuid[]) ORDER BY movement_id FOR UPDATE",
            list(movement_ids),
        )
        self._movements = dict.fromkeys(movement_ids)
        for row in rows:
            self._movements[row["movement_id"]] = _stored(row)

    # -- a run of events replayed at once -------------------------------------------------------

    async def known_events(self, source: str, event_ids: list[UUID]) -> set[UUID]:
        rows = await self.conn.fetch(
            "SELECT event_id FROM inbox WHERE source = $1 AND event_id = ANY($2::uuid[])",
            source,
            event_ids,
        )
        return {r["event_id"] for r in rows}

    async def known_participations(self, participation_ids: list[UUID]) -> set[UUID]:
        if not participation_ids:
            return set()
        rows = await self.conn.fetch(
            "SELECT participation_id FROM participations WHERE participation_id = ANY($1::uuid[])",
            participation_ids,
        )
        return {r["participation_id"] for r in rows}

    async def partner_copies(
        self, partner: str, movement_ids: set[UUID]
    ) -> dict[UUID, StoredMovement]:
        # the partner's group only, as text: parsed by its model in one pass
        rows = await self.conn.fetch(
            "SELECT movement_id, origin, host,"
            " CASE WHEN origin = $1 THEN origin_group::text END AS origin_group,"
            " CASE WHEN host = $1 THEN host_group::text END AS host_group,"
            " partner_epoch, partner_pairseq FROM movements"
            " WHERE movement_id = ANY($2::uuid[]) ORDER BY movement_id FOR UPDATE",
            partner,
            list(movement_ids),
        )
        copies = {}
        for movement_id, origin, host, origin_group, host_group, epoch, seq in rows:
            copies[movement_id] = StoredMovement(
                origin,
                host,
                Replica(
                    OriginGroup.model_validate_json(origin_group) if origin_group else None,
                    HostGroup.model_validate_json(host_group) if host_group else None,
                ),
                None if seq is None else (epoch or 0, seq),
            )
        return copies

    async def partner_groups_held(self, partner: str) -> dict[UUID, tuple[str, str]]:
        # two arrays rather than a row a movement: a fraction of the memory
        row = await self.conn.fetchrow(
            "SELECT (SELECT coalesce(array_agg(movement_id), '{}') FROM movements"
            " WHERE origin = $1 AND host = $2 AND (origin_group IS NOT NULL"
            " OR origin_version <> 0 OR origin_status IS NOT NULL OR partner_epoch IS NOT NULL"
            " OR partner_pairseq IS NOT NULL)),"
            " (SELECT coalesce(array_agg(movement_id), '{}') FROM movements"
            " WHERE origin = $2 AND host = $1 AND (host_group IS NOT NULL OR host_version <> 0"
            " OR host_status IS NOT NULL OR partner_epoch IS NOT NULL"
            " OR partner_pairseq IS NOT NULL))",
            partner,
            self.node,
        )
        assert row is not None
        hosted, originated = (partner, self.node), (self.node, partner)
        held = dict.fromkeys(row[0], hosted)
        held.update(dict.fromkeys(row[1], originated))
        return held

    async def clear_partner_groups(self, partner: str, movement_ids: set[UUID]) -> None:
        if not movement_ids:
            return
        ids = list(movement_ids)
        await self.conn.execute(
            "UPDATE movements SET origin_version = 0, origin_status = NULL, origin_group = NULL,"
            " partner_epoch = NULL, partner_pairseq = NULL, updated_at = now()"
            " WHERE origin = $1 AND host = $2 AND movement_id = ANY($3::uuid[])",
            partner,
            self.node,
            ids,
        )
        await self.conn.execute(
            "UPDATE movements SET host_version = 0, host_status = NULL, host_group = NULL,"
            " partner_epoch = NULL, partner_pairseq = NULL, updated_at = now()"
            " WHERE origin = $2 AND host = $1 AND movement_id = ANY($3::uuid[])",
            partner,
            self.node,
            ids,
        )

    async def forget_events(self, source: str, event_ids: list[UUID]) -> None:
        await self.conn.execute(
            "DELETE FROM inbox WHERE source = $1 AND event_id = ANY($2::uuid[])",
            source,
            event_ids,
        )

    async def forget_events_but(self, source: str, event_ids: set[UUID]) -> None:
        await self.conn.execute(
            "DELETE FROM inbox i WHERE source = $1 AND NOT EXISTS (SELECT FROM"
            " unnest($2::uuid[]) AS kept(event_id) WHERE kept.event_id = i.event_id)",
            source,
            list(event_ids),
        )

    async def write_replayed(self, replayed: Replayed) -> None:
        # a chunk's arrays are kept in memory, not spilled to a temporary file
        await self.conn.execute("SET LOCAL work_mem = '64MB'")
        if replayed.claims:
            claims, outcomes = zip(*replayed.claims, strict=True)
            await self.conn.execute(
                _CLAIM_ALL_SETTLED,
                *(list(column) for column in zip(*claims, strict=True)),
                list(outcomes),
            )
        # each group's JSON once, as bytes (its UTF-8 is not decoded and encoded again)
        snapshots = {id(g): g.__pydantic_serializer__.to_json(g) for g in replayed.versions}
        created = replayed.created
        origins = [o for key, o in replayed.origins.items() if key not in created]
        if origins:
            await self.conn.execute(
                _SET_ORIGINS,
                [g.movement_id for g, _ in origins],
                [g.version for g, _ in origins],
                [recorded_status(g) for g, _ in origins],
                [snapshots[id(g)] for g, _ in origins],
                [mark[0] if mark else None for _, mark in origins],
                [mark[1] if mark else None for _, mark in origins],
            )
        new = [(o, created[key]) for key, o in replayed.origins.items() if key in created]
        if new:
            await self.conn.execute(
                _PUT_ORIGINS,
                [g.movement_id for (g, _), _ in new],
                [g.origin for (g, _), _ in new],
                [g.destination.jurisdiction for (g, _), _ in new],
                [member for _, member in new],
                [g.version for (g, _), _ in new],
                [recorded_status(g) for (g, _), _ in new],
                [snapshots[id(g)] for (g, _), _ in new],
                [mark[0] if mark else None for (_, mark), _ in new],
                [mark[1] if mark else None for (_, mark), _ in new],
            )
        if replayed.hosts:
            hosts = list(replayed.hosts.values())
            await self.conn.execute(
                _SET_HOSTS,
                [g.movement_id for g, _ in hosts],
                [g.version for g, _ in hosts],
                [g.status.value for g, _ in hosts],
                [snapshots[id(g)] for g, _ in hosts],
                [mark[0] if mark else None for _, mark in hosts],
                [mark[1] if mark else None for _, mark in hosts],
            )
        await add_history_rows(
            self.conn,
            [
                (
                    g.movement_id,
                    "origin" if isinstance(g, OriginGroup) else "host",
                    g.version,
                    snapshots[id(g)],
                )
                for g in replayed.versions
            ],
        )
        await add_participations(self.conn, replayed.participations)

    # -- inbox ------------------------------------------------------------------------------

    async def claim(
        self, source: str, event_id: UUID, event_type: str, record: Inbound, **extra: Any
    ) -> bool:
        """Record the event in the inbox, and its pair number as arrived (folded in by
        ``tracker``); False if it was received before. One round trip, or none after
        ``claim_all``."""
        if self._claimed is not None and extra.get("pairseq") is not None:
            try:
                self._claimed.remove((source, event_id))
            except KeyError:
                return False  # received before, or earlier in this batch
            return True
        claimed = await self.conn.fetchval(
            "WITH claimed AS (INSERT INTO inbox (source, event_id, event_type, topic,"
            ' partition, "offset", pairseq, outcome, trace_id, event_time, movement_id)'
            " VALUES ($1, $2, $3, $4, $5, $6, $7, 'received', $8, $9, $10)"
            " ON CONFLICT DO NOTHING RETURNING pairseq),"
            " arrived AS (INSERT INTO link_received (partner, epoch, seq) SELECT $1, $11,"
            " pairseq FROM claimed WHERE pairseq IS NOT NULL ON CONFLICT DO NOTHING)"
            " SELECT EXISTS (SELECT FROM claimed)",
            source,
            event_id,
            event_type,
            record.topic,
            record.partition,
            record.offset,
            extra.get("pairseq"),
            extra.get("trace_id"),
            extra.get("event_time"),
            extra.get("movement_id"),
            extra.get("epoch", 0),
        )
        return bool(claimed)

    def settle(self, source: str, event_id: UUID, outcome: str) -> None:
        """Note what became of a claimed event; written by ``settle_all``, before commit."""
        self._settled.append((source, event_id, outcome))

    async def settle_all(self) -> None:
        """Write the noted outcomes: one statement for a whole batch."""
        if not self._settled:
            return
        sources, event_ids, outcomes = zip(*self._settled, strict=True)
        await self.conn.execute(
            "UPDATE inbox SET outcome = s.outcome"
            " FROM unnest($1::text[], $2::uuid[], $3::text[]) AS s(source, event_id, outcome)"
            " WHERE inbox.source = s.source AND inbox.event_id = s.event_id",
            list(sources),
            list(event_ids),
            list(outcomes),
        )
        self._settled.clear()

    # -- movements ----------------------------------------------------------------------------

    async def movement(self, movement_id: UUID) -> StoredMovement | None:
        if movement_id in self._movements:
            return self._movements[movement_id]
        row = await self.conn.fetchrow(
            f"SELECT {_MOVEMENT_COLUMNS} FROM movements"  # noqa: S608 - constants
            " WHERE movement_id = $1 FOR UPDATE",
            movement_id,
        )
        return None if row is None else _stored(row)

    async def put_partner_origin(
        self, group: OriginGroup, *, repair: bool = False, set_by: Mark | None = None
    ) -> None:
        """At a host: the origin's group, creating the movement on first sight; ``repair``:
        the origin's repair copy, taken whatever the versions; ``set_by``: the mark it
        keeps (``later_mark``)."""
        snapshot = group.model_dump(mode="json")
        known = self._movements.get(group.movement_id)
        host_group = known.replica.host if known else None
        await self._write_replica(
            group.movement_id,
            StoredMovement(
                group.origin,
                group.destination.jurisdiction,
                Replica(group, host_group),
                set_by,
            ),
            _REPLACE_ORIGIN if repair else _PUT_ORIGIN,
            (
                group.movement_id,
                group.origin,
                group.destination.jurisdiction,
                group.member.member_id,
                group.version,
                recorded_status(group),
                snapshot,
                *(set_by or (None, None)),
            ),
        )
        await self._keep_version(group.movement_id, "origin", group.version, snapshot)

    async def put_partner_host(
        self, group: HostGroup, *, repair: bool = False, set_by: Mark | None = None
    ) -> None:
        """At an origin: the host's group (``repair``: its repair copy; ``set_by`` as for
        ``put_partner_origin``)."""
        snapshot = group.model_dump(mode="json")
        known = self._movements.get(group.movement_id)
        await self._write_replica(
            group.movement_id,
            None
            if known is None
            else replace(known, replica=Replica(known.replica.origin, group), set_by=set_by),
            _REPLACE_HOST if repair else _PUT_HOST,
            (
                group.movement_id,
                group.version,
                group.status.value,
                snapshot,
                *(set_by or (None, None)),
            ),
        )
        await self._keep_version(group.movement_id, "host", group.version, snapshot)

    async def _write_replica(
        self, movement_id: UUID, now: StoredMovement | None, statement: str, args: tuple[Any, ...]
    ) -> None:
        """Write at once, or, for a movement ``lock_movements`` read, note the write for
        ``flush`` and answer the batch's next reads from ``now``."""
        if movement_id not in self._movements:
            await self.conn.execute(statement, *args)
            return
        self._movements[movement_id] = now
        self._replicas.append((statement, args))

    async def _keep_version(
        self, movement_id: UUID, group: str, version: int, snapshot: Any
    ) -> None:
        if self.deferred:
            self._history.append((movement_id, group, version, snapshot))
        else:
            await add_history(self.conn, movement_id, group, version, snapshot)

    async def add_participation(self, p: ParticipationRecorded) -> bool:
        await self.flush_replicas()  # the movement it belongs to is written first
        return await add_participation(self.conn, p)

    async def participations(self, movement_id: UUID) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM participations WHERE movement_id = $1 ORDER BY attended_at", movement_id
        )
        return [dict(r) for r in rows]

    # -- what this node owns, for repairs ------------------------------------------------------

    async def own_group(self, movement_id: UUID) -> OriginGroup | HostGroup | None:
        row = await self.conn.fetchrow(
            "SELECT origin, origin_group, host_group FROM movements WHERE movement_id = $1",
            movement_id,
        )
        if row is None:
            return None
        if row["origin"] == self.node:
            return OriginGroup.model_validate(row["origin_group"]) if row["origin_group"] else None
        return HostGroup.model_validate(row["host_group"]) if row["host_group"] else None

    async def entries(
        self, partner: str, bucket_count: int, only: Iterable[int] | None = None
    ) -> list[DigestEntry]:
        """Every movement shared with ``partner``: (id, origin, versions, content hashes)."""
        await self.flush_replicas()
        rows = await self.conn.fetch(_ENTRIES, self.node, partner)
        wanted = set(only) if only is not None else None
        return [
            DigestEntry(
                movement_id=r["movement_id"],
                origin=r["origin"],
                origin_version=r["origin_version"],
                host_version=r["host_version"],
                origin_hash=r["origin_hash"],
                host_hash=r["host_hash"],
                participations_hash=r["participations_hash"],
            )
            for r in rows
            if wanted is None or bucket_of(r["movement_id"], bucket_count) in wanted
        ]

    async def copy_of(self, movement_id: UUID) -> StoredMovement | None:
        """This node's whole copy of a movement, unlocked (to send back to an owner)."""
        row = await self.conn.fetchrow(
            f"SELECT {_MOVEMENT_COLUMNS} FROM movements WHERE movement_id = $1",  # noqa: S608
            movement_id,
        )
        return None if row is None else _stored(row)

    async def restore_own(self, group: OriginGroup | HostGroup, *, member_id: UUID) -> bool:
        """Take back this node's own group from a partner's copy, only where this node has
        none (its row or its group lost); whether it did. The organization columns come
        from the group (the origin's organization; the host's branch, else its org)."""
        await self.flush_replicas()
        snapshot = group.model_dump(mode="json")
        if isinstance(group, OriginGroup):
            done = await self.conn.fetchval(
                "INSERT INTO movements (movement_id, origin, host, member_id, origin_version,"
                " origin_status, origin_group, origin_org_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (movement_id) DO UPDATE"
                " SET origin_version = EXCLUDED.origin_version, origin_status ="
                " EXCLUDED.origin_status, origin_group = EXCLUDED.origin_group, origin_org_id ="
                " EXCLUDED.origin_org_id, updated_at = now()"
                " WHERE movements.origin_group IS NULL RETURNING true",
                group.movement_id, group.origin, group.destination.jurisdiction, member_id,
                group.version, recorded_status(group), snapshot, group.origin_org.org_id,
            )  # fmt: skip
            name = "origin"
        else:
            org = group.branch or group.host_org
            done = await self.conn.fetchval(
                "UPDATE movements SET host_version = $2, host_status = $3, host_group = $4,"
                " host_org_id = COALESCE(host_org_id, $5), updated_at = now()"
                " WHERE movement_id = $1 AND host_group IS NULL RETURNING true",
                group.movement_id, group.version, group.status.value, snapshot,
                org.org_id if org else None,
            )  # fmt: skip
            name = "host"
        self._movements.pop(group.movement_id, None)
        if done:
            await add_history(self.conn, group.movement_id, name, group.version, snapshot)
        return bool(done)

    # -- publishing -------------------------------------------------------------------------

    async def publish_local(self, event: Envelope[Any]) -> None:
        await self.outbox.add(event, local_topic=self.topics.local(self.node), pair=None)

    async def publish_to(self, partner: str, event: Envelope[Any]) -> None:
        await self.outbox.add(
            event, local_topic=None, pair=(self.topics.pair(self.node, partner), partner)
        )

    async def replay(
        self, partner: str, epoch: int, runs: list[tuple[int, int]]
    ) -> tuple[int, int]:
        """Put the already published pair events of ``runs`` (of link ``epoch``) back in the
        relay's queue; how many went back, and how many can be sent at all."""
        return await self.outbox.requeue(partner, epoch, runs)

    async def replayed_lately(self, partner: str, since: datetime) -> list[tuple[int, int]]:
        """The runs replayed to ``partner`` since ``since`` (older notes are dropped)."""
        await self.conn.execute(
            "DELETE FROM replays_answered WHERE partner = $1 AND answered_at < $2", partner, since
        )
        rows = await self.conn.fetch(
            "SELECT first_seq, last_seq FROM replays_answered WHERE partner = $1", partner
        )
        return [(r["first_seq"], r["last_seq"]) for r in rows]

    async def note_replayed(self, partner: str, runs: list[tuple[int, int]], now: datetime) -> None:
        await self.conn.executemany(
            "INSERT INTO replays_answered (partner, first_seq, last_seq, answered_at)"
            " VALUES ($1, $2, $3, $4)",
            [(partner, first, last, now) for first, last in runs],
        )

    async def last_sent(self, partner: str) -> int:
        return (await self.sent(partner))[1]

    async def sent(self, partner: str) -> tuple[int | None, int]:
        """The link epoch this node numbers its events to ``partner`` in (None: none sent
        yet) and the last number sent in it."""
        return await self.outbox.sent(partner)

    async def backlog(self, partner: str | None = None) -> int:
        return await self.outbox.backlog(partner)

    # -- links ------------------------------------------------------------------------------

    async def heard_heartbeat(self, partner: str, last_sequence: int, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO links (partner, partner_sent, last_heartbeat_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (partner) DO UPDATE SET partner_sent ="
            " greatest(links.partner_sent, $2), last_heartbeat_at = $3",
            partner,
            last_sequence,
            now,
        )

    async def link_epoch(self, partner: str) -> int:
        """The partner's link epoch this link follows (0: before epochs, or none yet)."""
        if partner not in self._epochs:
            value = await self.conn.fetchval("SELECT epoch FROM links WHERE partner = $1", partner)
            self._epochs[partner] = int(value or 0)
        return self._epochs[partner]

    async def enter_epoch(self, partner: str, epoch: int) -> None:
        """Follow the partner's newer link ``epoch``: its numbering starts afresh; what the
        older one still missed is given up (ADR 16)."""
        highest = await self.highest_seen(partner)
        await self.conn.execute(
            "INSERT INTO links (partner, epoch) VALUES ($1, $2) ON CONFLICT (partner) DO UPDATE"
            " SET epoch = $2, older_highest = greatest(links.older_highest, $3),"
            " contiguous = 0, partner_sent = 0, missing_since = NULL,"
            " replay_requested_at = NULL, replay_requested_upto = 0, replay_attempts = 0,"
            " updated_at = now() WHERE links.epoch < $2",
            partner,
            epoch,
            highest,
        )
        await self.conn.execute(
            "DELETE FROM link_received WHERE partner = $1 AND epoch < $2", partner, epoch
        )
        self._epochs[partner] = epoch
        self._highest.pop(partner, None)

    async def older_highest(self, partner: str) -> int:
        """The highest number seen from ``partner`` in the epochs before the link's."""
        value = await self.conn.fetchval(
            "SELECT older_highest FROM links WHERE partner = $1", partner
        )
        return int(value or 0)

    async def highest_seen(self, partner: str) -> int:
        """The highest pair number of the link's epoch that arrived from ``partner`` (read
        once a store)."""
        if partner not in self._highest:
            self._highest[partner] = int(
                await self.conn.fetchval(
                    "SELECT greatest((SELECT contiguous FROM links WHERE partner = $1),"
                    " (SELECT max(seq) FROM link_received WHERE partner = $1 AND epoch = $2), 0)",
                    partner,
                    await self.link_epoch(partner),
                )
            )
        return self._highest[partner]

    async def count_received(self, partner: str, epoch: int, seq: int) -> None:
        """Count a number (of link ``epoch``) as arrived though its event was not applied
        (an unknown type, a refused record): it was sent, and asking for it again would not
        change that."""
        await self.conn.execute(
            "INSERT INTO link_received (partner, epoch, seq) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            partner,
            epoch,
            seq,
        )

    async def settle_up_to(self, partner: str, sequence: int) -> None:
        await self.conn.execute(
            "INSERT INTO links (partner, contiguous) VALUES ($1, $2) ON CONFLICT (partner)"
            " DO UPDATE SET contiguous = greatest(links.contiguous, $2)",
            partner,
            sequence,
        )

    async def tracker(self, partner: str, now: datetime) -> SequenceTracker:
        """The link's state, with the numbers received since last time folded in (and saved)."""
        await self.conn.execute(
            "INSERT INTO links (partner) VALUES ($1) ON CONFLICT DO NOTHING", partner
        )
        row = await self.conn.fetchrow("SELECT * FROM links WHERE partner = $1 FOR UPDATE", partner)
        assert row is not None
        tracker = SequenceTracker(
            contiguous=row["contiguous"],
            partner_sent=row["partner_sent"],
            missing_since=row["missing_since"],
        )
        await self.conn.execute(  # numbers of an older epoch count for nothing
            "DELETE FROM link_received WHERE partner = $1 AND epoch < $2", partner, row["epoch"]
        )
        arrivals = await self.conn.fetch(
            "SELECT seq, received_at FROM link_received WHERE partner = $1 AND epoch = $2"
            " ORDER BY seq",
            partner,
            row["epoch"],
        )
        for arrival in arrivals:
            tracker.receive(arrival["seq"], now)
        tracker.refresh(now)
        latest = max([row["last_event_at"], *(a["received_at"] for a in arrivals)], key=_when)
        tracker.last_event_at = latest
        tracker.last_heartbeat_at = row["last_heartbeat_at"]
        await self.conn.execute(
            "UPDATE links SET contiguous = $2, missing_since = $3, last_event_at = $4,"
            " updated_at = now() WHERE partner = $1",
            partner,
            tracker.contiguous,
            tracker.missing_since,
            latest,
        )
        await self.conn.execute(
            "DELETE FROM link_received WHERE partner = $1 AND epoch = $2 AND seq <= $3",
            partner,
            row["epoch"],
            tracker.contiguous,
        )
        return tracker

    async def add_visitor_claim(self, claim: VisitorClaimAsked) -> bool:
        added = await self.conn.fetchval(
            "INSERT INTO visitor_claims_received (claim_id, host, name, id_ending, asked_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (claim_id) DO NOTHING RETURNING true",
            claim.claim_id,
            claim.host,
            claim.name,
            claim.id_ending,
            claim.asked_at,
        )
        return bool(added)

    async def put_visitor_answer(self, answer: VisitorClaimAnswered) -> bool:
        kept = await self.conn.fetchval(
            "INSERT INTO visitor_answers_received (claim_id, origin, result, movement_id,"
            " answered_at) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (claim_id) DO UPDATE SET result = EXCLUDED.result,"
            " movement_id = EXCLUDED.movement_id, answered_at = EXCLUDED.answered_at,"
            " received_at = now()"
            " WHERE visitor_answers_received.answered_at < EXCLUDED.answered_at"
            " RETURNING true",
            answer.claim_id,
            answer.origin,
            answer.result.value,
            answer.movement_id,
            answer.answered_at,
        )
        return bool(kept)

    async def save_partner_view(self, partner: str, view: dict[str, Any]) -> None:
        await self.conn.execute(
            "UPDATE links SET partner_view = $2, updated_at = now() WHERE partner = $1",
            partner,
            view,
        )

    async def partners(self) -> list[str]:
        rows = await self.conn.fetch("SELECT partner FROM links ORDER BY partner")
        return [r["partner"] for r in rows]

    async def links_astir(self) -> dict[str, bool]:
        rows = await self.conn.fetch(
            "SELECT partner, missing_since IS NOT NULL OR partner_sent > contiguous"
            " OR replay_attempts > 0"
            " OR EXISTS (SELECT 1 FROM link_received r WHERE r.partner = links.partner)"
            " AS astir FROM links"
        )
        return {r["partner"]: r["astir"] for r in rows}

    async def add_link(self, partner: str) -> bool:
        made = await self.conn.fetchval(
            "INSERT INTO links (partner) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true",
            partner,
        )
        return made is True

    async def last_sent_at(self, partner: str) -> datetime | None:
        return await self.outbox.last_added(partner)

    async def note_heartbeat_sent(self, partner: str, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO links (partner, last_heartbeat_sent_at) VALUES ($1, $2)"
            " ON CONFLICT (partner) DO UPDATE SET last_heartbeat_sent_at = $2",
            partner,
            now,
        )

    async def replay_asked(self, partner: str) -> ReplayAsked:
        row = await self.conn.fetchrow(
            "SELECT epoch, replay_requested_at, replay_attempts FROM links WHERE partner = $1",
            partner,
        )
        if row is None:
            return ReplayAsked(0, None, 0)
        return ReplayAsked(
            int(row["epoch"] or 0), row["replay_requested_at"], row["replay_attempts"]
        )

    async def note_replay_attempts(self, partner: str, attempts: int) -> None:
        await self.conn.execute(
            "UPDATE links SET replay_attempts = $2 WHERE partner = $1", partner, attempts
        )

    async def note_replay_asked(
        self, partner: str, now: datetime, up_to: int, attempts: int
    ) -> None:
        await self.conn.execute(
            "UPDATE links SET replay_requested_at = $2, replay_requested_upto = $3,"
            " replay_attempts = $4 WHERE partner = $1",
            partner,
            now,
            up_to,
            attempts,
        )

    async def last_digest_sent_at(self, partner: str) -> datetime | None:
        value: datetime | None = await self.conn.fetchval(
            "SELECT last_digest_sent_at FROM links WHERE partner = $1", partner
        )
        return value

    async def partner_view(self, partner: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self.conn.fetchval(
            "SELECT partner_view FROM links WHERE partner = $1", partner
        )
        return value

    async def note_digest_sent(self, partner: str, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO links (partner, last_digest_sent_at) VALUES ($1, $2)"
            " ON CONFLICT (partner) DO UPDATE SET last_digest_sent_at = $2",
            partner,
            now,
        )

    # -- dead letters -----------------------------------------------------------------------

    async def dead_letter(
        self, record: Inbound, reason: str, errors: list[dict[str, Any]], now: datetime
    ) -> bool:
        """Keep what could not be accepted, and send it to the dead-letter topic."""
        inserted = await self.conn.fetchval(
            'INSERT INTO dead_letters (topic, partition, "offset", record_key, value, reason,'
            " errors) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ' ON CONFLICT (topic, partition, "offset") DO NOTHING RETURNING true',
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            reason,
            errors,
        )
        if not inserted:
            return False
        key = record.key or b""
        await self.outbox.add_raw(
            event_id=uuid4(),
            event_type=DEAD_LETTER_TYPE,
            topic=self.topics.dead_letter(self.node, "sync"),
            key=key if len(key) <= EXCERPT_BYTES else _digest(key).encode(),
            value=dead_letter_document(record, reason, errors, now),
            trace_id="0" * 32,
            content_type=DEAD_LETTER_CONTENT_TYPE,
        )
        return True

    async def dead_letter_record(self, dead_letter_id: int) -> Inbound | None:
        row = await self.conn.fetchrow(
            'SELECT topic, partition, "offset", record_key, value FROM dead_letters WHERE id = $1',
            dead_letter_id,
        )
        if row is None:
            return None
        return Inbound(
            row["topic"], row["partition"], row["offset"], row["record_key"], row["value"]
        )

    async def reopen_dead_letter(self, dead_letter_id: int, record: Inbound) -> None:
        await self.conn.execute(
            'DELETE FROM inbox WHERE topic = $1 AND partition = $2 AND "offset" = $3'
            " AND outcome = 'dead_letter'",
            record.topic,
            record.partition,
            record.offset,
        )
        await self.conn.execute(
            "UPDATE dead_letters SET retried_at = clock_timestamp(), retry_outcome = 'pending'"
            " WHERE id = $1",
            dead_letter_id,
        )

    async def note_retry(self, dead_letter_id: int, outcome: str) -> None:
        await self.conn.execute(
            "UPDATE dead_letters SET retry_outcome = $2 WHERE id = $1", dead_letter_id, outcome
        )

    async def discard_dead_letters(self, ids: list[int], reason: str) -> list[asyncpg.Record]:
        """Give up on open dead letters: kept, marked, never retried; the rows discarded
        (id, where the record was, why it was refused)."""
        return await self.conn.fetch(
            "UPDATE dead_letters SET discarded_at = clock_timestamp(), discard_reason = $2"  # noqa: S608 (a constant)
            f" WHERE id = ANY($1::bigint[]) AND {OPEN_DEAD_LETTERS}"
            ' RETURNING id, topic, partition, "offset", reason',
            ids,
            reason,
        )


OPEN_DEAD_LETTERS = "discarded_at IS NULL AND (retried_at IS NULL OR retry_outcome = 'dead_letter')"
"""A dead letter still waiting for the operator: neither discarded nor retried with success
(an SQL condition on ``dead_letters``)."""


DEAD_LETTER_MAX_BYTES = MAX_RECORD_BYTES // 4
"""A dead letter's record is whole up to this size, and bounded beyond it."""
EXCERPT_BYTES = 4096


def dead_letter_document(
    record: Inbound, reason: str, errors: list[dict[str, Any]], now: datetime
) -> bytes:
    """The dead-letter topic's copy of ``record``, with why it was refused.

    Whole (key and value in base64) while it stays under ``DEAD_LETTER_MAX_BYTES``;
    otherwise the key and the value are each their SHA-256, size and first
    ``EXCERPT_BYTES`` bytes, and the reason and the errors are cut to about as much, so
    a hostile partner's largest record never makes a record the relay cannot publish
    (the ``dead_letters`` table keeps it whole, for ``yixian dlq retry``).
    """
    document: dict[str, Any] = {
        "reason": reason,
        "errors": errors,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": base64.b64encode(record.key).decode() if record.key else None,
        "value": base64.b64encode(record.value).decode(),
        "received_at": now.isoformat(),
    }
    whole = json.dumps(document, ensure_ascii=False).encode()
    if len(whole) <= DEAD_LETTER_MAX_BYTES:
        return whole
    error_text = json.dumps(errors, ensure_ascii=False)
    document |= {
        "reason": reason[:EXCERPT_BYTES],
        "errors": errors if len(error_text) <= EXCERPT_BYTES else [],
        "errors_excerpt": error_text[:EXCERPT_BYTES] if len(error_text) > EXCERPT_BYTES else None,
        "key": None,
        "key_excerpt": _excerpt(record.key) if record.key else None,
        "value": None,
        "value_excerpt": _excerpt(record.value),
    }
    return json.dumps(document, ensure_ascii=False).encode()


def _excerpt(data: bytes) -> dict[str, Any]:
    return {
        "sha256": _digest(data),
        "bytes": len(data),
        "head": base64.b64encode(data[:EXCERPT_BYTES]).decode(),
    }


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _when(value: datetime | None) -> datetime:
    return value or datetime.min.replace(tzinfo=UTC)
