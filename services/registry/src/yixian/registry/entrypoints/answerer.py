"""The origin's first look at every claim a host asked of it (ADR 21).

sync keeps the claims partners ask (its view ``visitor_claims_asked``); this loop, beside
the API like the forward follower, takes each one it has not looked at through the same
runner as a request (one transaction with its answer in the outbox and its audit row, in
the name ``registry:claim-answerer``): no member or several fitting are answered at once;
one waits in ``GET /v1/visitor-claims`` for a secretary to confirm. Several registry
instances may run it: the decision's primary key lets one look count.
"""

from __future__ import annotations

from functools import partial
from uuid import UUID

from yixian.contracts import new_traceparent
from yixian.registry.adapters.postgres import Visitors
from yixian.registry.domain import DomainError
from yixian.registry.service_layer import visitors
from yixian.registry.service_layer.unit_of_work import Request
from yixian.runtime import get_logger

from .node_loop import NodeLoop

log = get_logger(__name__)
NAME = "claim-answerer"
ACTION = "visitor_claim.look"
BATCH = 100
_IDENTITY = UUID("0d6c2a8e-5b1f-4c3a-9e7d-2f4a6b8c0e1d")


class ClaimAnswerer(NodeLoop):
    name = NAME
    identity = _IDENTITY

    async def answer_once(self) -> int:
        """Look at every claim waiting now; how many were looked at."""
        async with self.pool.acquire() as conn:
            waiting = await Visitors(conn).unanswered(BATCH)
        principal = await self.principal() if waiting else None
        if principal is None:
            return 0
        looked = 0
        for claim_id in waiting:
            request = Request(principal=principal, now=self.clock(), traceparent=new_traceparent())
            try:
                result = await self.runner.run(
                    request,
                    action=ACTION,
                    target=str(claim_id),
                    work=partial(visitors.look_at_claim, claim_id=claim_id),
                )
            except DomainError as refusal:  # audited by the runner
                log.warning("claim not looked at", claim_id=str(claim_id), reason=refusal.message)
                continue
            if result.status == 201:
                looked += 1
                log.info(
                    "claim looked at",
                    claim_id=str(claim_id),
                    result=result.body.get("result"),
                    trace_id=request.trace_id,
                )
        return looked

    once = answer_once
