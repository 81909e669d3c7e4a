"""Bulk import of members from CSV or JSON lines, streamed: rows are validated one by one,
written in batches with COPY, and every rejected row is reported with its line and field.
Nothing is held in memory beyond one batch."""

from __future__ import annotations

import asyncio
import csv
import hmac
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

from yixian.contracts import PlainText, ShortText
from yixian.registry.domain import Conflict, DomainError, Invalid, dates
from yixian.registry.domain.member import mask_national_id, national_id_hash

from .handlers import WRITERS
from .repositories import MemberValues
from .unit_of_work import STREAM_LEASE, Denied, Request, Result, TransactionRunner, fingerprint

BATCH = 2000
MAX_REPORTED_ERRORS = 1000
MEMBER_NAMESPACE = uuid.UUID("b6f1c3e2-58a4-4c1e-9d7a-2f0e8c6b5a49")
COLUMNS = ("member_id", "org_id", "name", "joined_on", "phone", "email", "national_id")
MAX_LINE_BYTES = 64 * 1024
"""The longest line read; a longer one is rejected, and never held in memory whole."""


class MemberRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    member_id: UUID | None = None
    org_id: UUID
    name: ShortText
    joined_on: date
    phone: Annotated[str, Field(max_length=50), PlainText] | None = None
    email: EmailStr | None = None
    national_id: str | None = None


@dataclass
class ImportReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, line: int, *problems: tuple[str, str]) -> None:
        """One rejected row, with each (field, reason) wrong in it."""
        self.rejected += 1
        for field_name, reason in problems:
            if len(self.errors) < MAX_REPORTED_ERRORS:
                self.errors.append({"line": line, "field": field_name, "reason": reason})

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
            "errors_truncated": self.rejected > len(self.errors),
        }


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A line that cannot be read as text; it is rejected with this reason."""

    reason: str


_TOO_LONG = Unreadable(f"is longer than {MAX_LINE_BYTES} bytes")


def _decoded(raw: bytes, number: int) -> str | Unreadable:
    if len(raw) > MAX_LINE_BYTES:
        return _TOO_LONG
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Unreadable(f"is not valid UTF-8 (byte {exc.start + 1} of the line)")
    return (line.removeprefix("\ufeff") if number == 1 else line).rstrip("\r")


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, str | Unreadable]]:
    """The stream's lines, each decoded on its own; a line longer than MAX_LINE_BYTES is
    dropped as it arrives and reported, so memory holds at most one line and one chunk."""
    pending = b""
    overlong = False
    number = 0
    async for chunk in chunks:
        pending += chunk
        if b"\n" in chunk:
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                number += 1
                yield number, _TOO_LONG if overlong else _decoded(raw, number)
                overlong = False
        if len(pending) > MAX_LINE_BYTES:
            overlong, pending = True, b""
    if overlong or pending.strip():
        yield number + 1, _TOO_LONG if overlong else _decoded(pending, number + 1)


def _csv_fields(header: list[str], line: str) -> dict[str, Any]:
    # without a quote, the csv module's reading of a line is its split on commas
    values = line.split(",") if '"' not in line else next(csv.reader([line]))
    if len(values) != len(header):
        raise ValueError(f"has {len(values)} values; the header names {len(header)}")
    return {k: (v if v != "" else None) for k, v in zip(header, values, strict=True)}


def _random_ids(chunk: int = BATCH) -> Iterator[UUID]:
    """Version 4 UUIDs, as ``uuid.uuid4`` makes them, from one read of the system's random
    source per ``chunk`` ids rather than one per id."""
    while True:
        pool = os.urandom(16 * chunk)
        for start in range(0, len(pool), 16):
            yield UUID(bytes=pool[start : start + 16], version=4)


def _pydantic_errors(exc: ValidationError) -> Iterator[tuple[str, str]]:
    for err in exc.errors(include_url=False):
        yield ".".join(str(p) for p in err["loc"]) or "(row)", err["msg"]


async def import_members(
    runner: TransactionRunner,
    request: Request,
    chunks: AsyncIterator[bytes],
    fmt: Literal["csv", "jsonl"],
    report: ImportReport,
) -> None:
    """Validate and insert members into ``report`` as they go; duplicates (same member id,
    national ID, or organization, name, joining date and phone) are skipped."""
    principal = request.principal
    async with runner.reading(request) as uow:
        allowed = await uow.organizations.ids_within(principal.org_path)
    key = runner.config.id_hash_key
    batch: list[tuple[int, MemberValues]] = []
    header: list[str] | None = None
    fresh_ids = _random_ids()
    writing: asyncio.Task[None] | None = None
    """The previous batch's write: the database writes one batch while the next is parsed."""

    try:
        async for number, line in _lines(chunks):
            if isinstance(line, Unreadable):
                report.reject(number, ("(row)", line.reason))
                continue
            if not line.strip():
                continue
            try:
                if fmt == "csv":
                    if header is None:
                        header = [h.strip() for h in next(csv.reader([line]))]
                        unknown = sorted(set(header) - set(COLUMNS))
                        if unknown:
                            raise DomainError(f"unknown columns {unknown}; known: {list(COLUMNS)}")
                        continue
                    raw = _csv_fields(header, line)
                else:
                    raw = json.loads(line)
                    if not isinstance(raw, dict):
                        raise ValueError("each line must be a JSON object")
                row = MemberRow.model_validate(raw)
            except ValidationError as exc:
                report.reject(number, *_pydantic_errors(exc))
                continue
            except (ValueError, csv.Error) as exc:
                report.reject(number, ("(row)", str(exc)))
                continue
            except RecursionError:  # json.loads of a line nested thousands deep
                report.reject(number, ("(row)", "is nested too deeply"))
                continue
            if row.org_id not in allowed:
                reason = f"organization {row.org_id} is not in your subtree"
                report.reject(number, ("org_id", reason))
                continue
            try:
                dates.require_joined(row.joined_on, request.now)
            except Invalid as exc:
                report.reject(number, ("joined_on", exc.message))
                continue
            try:
                id_hash = national_id_hash(key, row.national_id) if row.national_id else None
                masked = mask_national_id(row.national_id) if row.national_id else None
            except DomainError as exc:
                report.reject(number, ("national_id", exc.message))
                continue
            member_id = row.member_id or (
                uuid.uuid5(MEMBER_NAMESPACE, id_hash) if id_hash else next(fresh_ids)
            )
            batch.append(
                (
                    number,
                    (
                        member_id,
                        row.org_id,
                        row.name,
                        row.joined_on,
                        row.phone,
                        row.email,
                        id_hash,
                        masked,
                    ),
                )
            )
            if len(batch) >= BATCH:
                if writing is not None:
                    await writing
                writing = asyncio.create_task(_flush(runner, request, batch, report))
                batch = []
    finally:
        if writing is not None:
            await writing  # a batch being written is finished, whatever stopped the parsing
    if header is None and fmt == "csv" and report.rejected == 0 and not batch:
        raise DomainError("the CSV has no header line", field="body")
    if batch:
        await _flush(runner, request, batch, report)


async def _flush(
    runner: TransactionRunner,
    request: Request,
    batch: list[tuple[int, MemberValues]],
    report: ImportReport,
) -> None:
    async with runner.writing(request) as uow:
        inserted = await uow.members.add_new([values for _, values in batch])
    for number, values in batch:
        if values[0] in inserted:
            report.accepted += 1
            inserted.discard(values[0])
        else:
            report.duplicates += 1
            if len(report.errors) < MAX_REPORTED_ERRORS:
                report.errors.append(
                    {"line": number, "field": "member_id", "reason": "already registered; skipped"}
                )


async def run_import(
    runner: TransactionRunner,
    request: Request,
    path: str,
    chunks: AsyncIterator[bytes],
    fmt: Literal["csv", "jsonl"],
) -> Result:
    """An import as one command: the caller is authorized before anything else; under an
    Idempotency-Key it takes effect once however many retries run at once, and another body
    under the same key is a conflict; it is audited with its counts whether it finishes,
    is refused or is cut off."""
    digest = fingerprint(runner.config.id_hash_key, "POST", path)
    try:
        principal = request.principal
        if principal.role not in WRITERS:
            raise Denied(f"{principal.actor} is an {principal.role.value} and may only read")
        if request.idempotency_key is not None:
            first = await runner.claim_stream(request)
            if first is not None:  # a retry: read it only to tell whether it is the same body
                async for chunk in chunks:
                    digest.update(chunk)
                first_hash, first_result = first
                if not hmac.compare_digest(digest.hexdigest(), first_hash):
                    raise Conflict(
                        "this Idempotency-Key was used for a different request",
                        field="Idempotency-Key",
                    )
                return first_result
    except DomainError as refusal:
        await runner.record_refusal(request, action="member.import", target=None, refusal=refusal)
        raise

    async def fingerprinted() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            digest.update(chunk)
            yield chunk

    report = ImportReport()
    keeping = asyncio.create_task(_keep_claim(runner, request))
    try:
        await import_members(runner, request, fingerprinted(), fmt, report)
    except BaseException as stop:  # refused, cut off, or the server stopping: say what stayed
        outcome = "partial" if report.accepted else "refused"
        reason = stop.message if isinstance(stop, DomainError) else type(stop).__name__
        await asyncio.shield(_end_import(runner, request, report, outcome, reason))
        if isinstance(stop, DomainError):
            stop.audited = True
        raise
    finally:
        keeping.cancel()
    result = Result(200, report.as_json())
    await _end_import(runner, request, report, "ok", None, digest.hexdigest(), result)
    return result


async def _keep_claim(runner: TransactionRunner, request: Request) -> None:
    if request.idempotency_key is None:
        return
    while True:
        await asyncio.sleep(STREAM_LEASE.total_seconds() / 3)
        await runner.renew_stream(request)


async def _end_import(
    runner: TransactionRunner,
    request: Request,
    report: ImportReport,
    outcome: str,
    reason: str | None,
    request_hash: str | None = None,
    result: Result | None = None,
) -> None:
    """The audit row with the counts; the idempotency key finished, or freed for a retry."""
    counts: dict[str, Any] = {k: v for k, v in report.as_json().items() if k != "errors"}
    if reason is not None:
        counts["reason"] = reason
    async with runner.writing(request) as uow:
        await uow.audit.record(
            actor=request.principal.actor,
            role=request.principal.role.value,
            action="member.import",
            target=None,
            outcome=outcome,
            detail=counts,
            trace_id=request.trace_id,
        )
    if request.idempotency_key is None:
        return
    if result is not None and request_hash is not None:
        await runner.finish_stream(request, request_hash, result)
    else:
        await runner.release_stream(request)
