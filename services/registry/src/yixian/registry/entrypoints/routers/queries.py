"""What secretaries, operators and auditors read, always within their subtree."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator

from yixian.contracts import ShortText, UtcDateTime
from yixian.registry.domain import GroupBy, MemberStatus, Queue, Side
from yixian.registry.entrypoints.dependencies import Api
from yixian.registry.service_layer import queries

router = APIRouter(tags=["queries"])
OrgFilter = Annotated[UUID | None, Query(description="Default: your whole subtree.")]
PartnerFilter = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{6}$",
        description="Only movements shared with this partner node (its division code).",
    ),
]


def _decoded(value: str) -> str:
    """A query's bytes that are not UTF-8 arrive as U+FFFD, which no name holds."""
    if "\ufffd" in value:
        raise ValueError("is not valid UTF-8: percent-encode the text's UTF-8 bytes")
    return value


QueryText = Annotated[ShortText, AfterValidator(_decoded)]
"""Text in a query string: the contracts' rules, and valid UTF-8."""


@router.get("/v1/movements/{movement_id}")
async def get_movement(movement_id: UUID, api: Api) -> JSONResponse:
    """A movement with both groups, its state, its history and its participations."""
    return await api.read(lambda uow: queries.get_movement(uow, movement_id))


PageLimit = Annotated[
    int | None, Query(ge=1, le=500, description="At most this many (default: every one).")
]
NameFilter = Annotated[
    QueryText | None, Query(max_length=100, description="Part of the member's name, any case.")
]


def _after(what: str) -> Any:
    return Query(
        description=f"The last {what} of the previous page: the page starts after it (one"
        " the caller may list, else 422)."
    )


@router.get("/v1/members/away")
async def members_away(
    api: Api,
    org_id: OrgFilter = None,
    name: NameFilter = None,
    limit: PageLimit = None,
    after: Annotated[UUID | None, _after("movement id")] = None,
) -> JSONResponse:
    """Members of this node away in other jurisdictions (open movements), oldest first;
    `limit` and `after` page the list."""
    page = queries.Page(after=after, limit=limit)
    return await api.read(lambda uow: queries.members_away(uow, org_id, name=name, page=page))


@router.get("/v1/members/visiting")
async def members_visiting(
    api: Api,
    org_id: OrgFilter = None,
    name: NameFilter = None,
    limit: PageLimit = None,
    after: Annotated[UUID | None, _after("movement id")] = None,
) -> JSONResponse:
    """Members of other jurisdictions expected or hosted here, oldest first; `limit` and
    `after` page the list."""
    page = queries.Page(after=after, limit=limit)
    return await api.read(lambda uow: queries.members_visiting(uow, org_id, name=name, page=page))


@router.get("/v1/members")
async def search_members(
    api: Api,
    org_id: OrgFilter = None,
    name: Annotated[
        QueryText | None, Query(max_length=100, description="Part of the name, any case.")
    ] = None,
    phone: Annotated[
        str | None,
        Query(max_length=50, description="The digits the number ends with (4 to 20)."),
    ] = None,
    national_id: Annotated[
        str | None,
        Query(
            min_length=18,
            max_length=18,
            description="Matched through this node's keyed hash; never stored or shown.",
        ),
    ] = None,
    status: Annotated[MemberStatus | None, Query(description="home, away, transferred_out")] = (
        None
    ),
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=1000, description="`next_cursor` of the previous page.")
    ] = None,
) -> JSONResponse:
    """Search the members of your subtree by name, phone, national ID, organization and
    status; every key given must match. A page of summaries (no national ID) by name then
    id, and `next_cursor` while more follow."""
    return await api.read(
        lambda uow: queries.search_members(
            uow,
            org_id=org_id,
            name=name,
            phone=phone,
            national_id=national_id,
            status=status,
            limit=limit,
            cursor=cursor,
        )
    )


@router.get("/v1/members/{member_id}")
async def get_member(member_id: UUID, api: Api) -> JSONResponse:
    """A member of your subtree with its status, every movement of the member this node
    holds, and the changes made to it (newest first). Not found outside your subtree."""
    return await api.read(lambda uow: queries.get_member(uow, member_id))


@router.get("/v1/members/{member_id}/dues")
async def member_dues(member_id: UUID, api: Api) -> JSONResponse:
    """Which months of the member's dues are paid where: each month with the hosts that
    recorded it paid (and the payment: period, amount in fen, receipt), and every payment.
    Not found outside your subtree."""
    return await api.read(lambda uow: queries.member_dues(uow, member_id))


@router.get("/v1/organizations/{org_id}/present")
async def present(
    org_id: UUID,
    api: Api,
    limit: PageLimit = None,
    after: Annotated[UUID | None, _after("member id")] = None,
) -> JSONResponse:
    """Everyone present in the organization's area, local or visiting, by presence (local
    first), name and id; `limit` and `after` page the list."""
    page = queries.Page(after=after, limit=limit)
    return await api.read(lambda uow: queries.present_in_area(uow, org_id, page))


@router.get("/v1/queues")
async def work_queues(
    api: Api,
    org_id: OrgFilter = None,
    queue: Annotated[Queue | None, Query(description="Only this queue.")] = None,
    partner: PartnerFilter = None,
    limit: Annotated[
        int | None, Query(ge=1, le=500, description="At most this many of each queue.")
    ] = None,
    after: Annotated[
        UUID | None,
        Query(
            description="The last movement id of the previous page of `queue`: the page"
            " starts after it."
        ),
    ] = None,
) -> JSONResponse:
    """To do, waiting on the other side, overdue, upcoming: the movements your organization
    answers for (a branch's own; an ancestor's whole subtree), each with the organization,
    oldest first; `limit` and `after` (with `queue`) page them, `/v1/queues/counts` counts
    them."""
    return await api.read(
        lambda uow: queries.work_queues(
            uow, org_id, queue=queue, partner=partner, after=after, limit=limit
        )
    )


@router.get("/v1/queues/counts")
async def work_queue_counts(
    api: Api, org_id: OrgFilter = None, partner: PartnerFilter = None
) -> JSONResponse:
    """How many movements each of the work queues holds (as `/v1/queues` lists them)."""
    return await api.read(lambda uow: queries.queue_counts(uow, org_id, partner=partner))


@router.get("/v1/statistics")
async def statistics(
    api: Api,
    org_id: OrgFilter = None,
    since: Annotated[
        date | None, Query(alias="from", description="First day of the period (included).")
    ] = None,
    until: Annotated[
        date | None, Query(alias="to", description="Last day of the period (included).")
    ] = None,
    group_by: Annotated[
        GroupBy | None, Query(description="branch, partner, state or month of departure.")
    ] = None,
    breakdown: Annotated[
        list[GroupBy] | None,
        Query(
            description="Also count by these (each may be given once): `breakdowns` has each"
            " one's groups with their movements and open movements (not their members)."
        ),
    ] = None,
    partner: PartnerFilter = None,
    side: Annotated[Side | None, Query(description="origin: members away; host: visiting.")] = (
        None
    ),
) -> JSONResponse:
    """Movements away during the period (departed by its last day, not closed before its
    first), counted as movements and as distinct members, in total and by `group_by`; as
    movements and open movements by each `breakdown` (a screen's charts in one request)."""
    return await api.read(
        lambda uow: queries.statistics(
            uow,
            org_id,
            since=since,
            until=until,
            group_by=group_by,
            partner=partner,
            side=side,
            breakdowns=breakdown or (),
        )
    )


@router.get("/v1/audit")
async def audit(
    api: Api,
    target: Annotated[ShortText | None, Query(max_length=100)] = None,
    actor: Annotated[
        QueryText | None, Query(max_length=100, description="As the log names it: key:<key id>.")
    ] = None,
    since: Annotated[UtcDateTime | None, Query(description="At or after (RFC 3339).")] = None,
    until: Annotated[UtcDateTime | None, Query(description="Before (RFC 3339).")] = None,
    before: Annotated[
        int | None,
        Query(ge=1, le=2**63 - 1, description="The `id` of the last row of the previous page."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    """The node's audit log, newest first (operators and auditors of the whole node); a
    change's row holds each changed field's before and after in `detail.changes`; `before`
    pages it."""
    return await api.read(
        lambda uow: queries.audit_entries(
            uow, target, limit, actor=actor, since=since, until=until, before=before
        )
    )
