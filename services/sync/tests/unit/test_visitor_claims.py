"""Visitors' claims and answers on the pair link (ADR 21), applied in memory: each kept
once in sync's own tables for the registry; a claim or answer naming another link's
nodes is refused, and nothing is announced on the local topic."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from yixian.contracts import ClaimResult, VisitorClaimAnswered, VisitorClaimAsked
from yixian.contracts.examples import AT, MOVEMENT

from .test_applier import CHANGPING, CHAOYANG, GUSHI, Node, Partner


def _claim(host: str = CHAOYANG, origin: str = GUSHI) -> VisitorClaimAsked:
    return VisitorClaimAsked(
        claim_id=uuid4(), host=host, origin=origin, name="张建国", id_ending="123X", asked_at=AT
    )


async def test_a_claim_is_kept_once_for_the_registry() -> None:
    gushi, from_chaoyang = Node.of(GUSHI), Partner(CHAOYANG, GUSHI)
    claim = _claim()
    assert await gushi.applier.handle(from_chaoyang.record(claim)) == "applied"
    assert await gushi.applier.handle(from_chaoyang.record(claim)) == "stale"  # another event
    assert gushi.tables.visitor_claims_received == {claim.claim_id: claim}
    assert gushi.announced() == []


async def test_a_claim_naming_a_third_node_is_refused() -> None:
    gushi = Node.of(GUSHI)
    from_changping = Partner(CHANGPING, GUSHI)
    # Changping asks in Chaoyang's name, or asks Gushi about a claim made of another origin
    for claim in (_claim(host=CHAOYANG), _claim(host=CHANGPING, origin=CHAOYANG)):
        assert await gushi.applier.handle(from_changping.record(claim)) == "dead_letter"
    assert gushi.tables.visitor_claims_received == {}
    assert len(gushi.dead_letters()) == 2


async def test_the_latest_answer_is_kept() -> None:
    chaoyang, from_gushi = Node.of(CHAOYANG), Partner(GUSHI, CHAOYANG)
    claim_id = uuid4()
    ambiguous = VisitorClaimAnswered(
        claim_id=claim_id, host=CHAOYANG, origin=GUSHI, result=ClaimResult.AMBIGUOUS,
        answered_at=AT,
    )  # fmt: skip
    match = VisitorClaimAnswered(
        claim_id=claim_id, host=CHAOYANG, origin=GUSHI, result=ClaimResult.MATCH,
        movement_id=MOVEMENT, answered_at=AT + timedelta(hours=1),
    )  # fmt: skip
    assert await chaoyang.applier.handle(from_gushi.record(match)) == "applied"
    assert await chaoyang.applier.handle(from_gushi.record(ambiguous)) == "stale"  # late, older
    assert chaoyang.tables.visitor_answers_received[claim_id] == match
    from_changping = Partner(CHANGPING, CHAOYANG)
    forged = match.model_copy(update={"origin": GUSHI, "answered_at": AT + timedelta(days=1)})
    assert await chaoyang.applier.handle(from_changping.record(forged)) == "dead_letter"
    assert chaoyang.tables.visitor_answers_received[claim_id] == match
