"""Movements: the origin registers an outflow; then every step either side takes comes
from one table, ``STEPS``, which makes its route, its operation and its audit action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from yixian.registry.domain import Side
from yixian.registry.entrypoints import schemas as s
from yixian.registry.entrypoints.dependencies import Api
from yixian.registry.service_layer import handlers
from yixian.registry.service_layer.unit_of_work import Result, UnitOfWork

router = APIRouter()

StepHandler = Callable[..., Awaitable[Result]]
"""``handler(uow, movement_id, **fields of the body)``."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step on a movement: ``POST /v1/movements/{movement_id}/<path>``."""

    path: str
    action: str
    """The audit log's action; with ``.`` as ``_``, the OpenAPI operation id."""
    side: Side
    """Whose group the step changes (the OpenAPI tag); the other side is refused."""
    body: type[s.Body] | None
    handler: StepHandler
    summary: str

    async def run(self, uow: UnitOfWork, movement_id: UUID, body: s.Body | None) -> Result:
        arguments = s.fields(body) if body is not None else {}
        return await self.handler(uow, movement_id, **arguments)


ORIGIN, HOST = Side.ORIGIN, Side.HOST
STEPS = (
    Step("details", "movement.update_details", ORIGIN, s.DetailsUpdate, handlers.update_details,
         "Correct the destination's details, the period or the contact"),
    Step("relocate", "movement.relocate", ORIGIN, s.Relocation, handlers.relocate,
         "The member moved on to another host: close this movement, open a linked one"),
    Step("cancel", "movement.cancel", ORIGIN, None, handlers.cancel,
         "Cancel a registration made in error"),
    Step("return", "movement.return", ORIGIN, s.Return, handlers.return_home,
         "返回: the member came back; the movement closes"),
    Step("transfer/request", "movement.transfer.request", ORIGIN, s.TransferRequestBody,
         handlers.request_transfer,
         "组织关系转接: ask the host to take over the formal membership"),
    Step("transfer/withdraw", "movement.transfer.withdraw", ORIGIN, None,
         handlers.withdraw_transfer,
         "Withdraw the transfer request; membership stays at the origin"),
    Step("transfer/complete", "movement.transfer.complete", ORIGIN, None,
         handlers.complete_transfer, "Complete a transfer the host accepted"),
    Step("assign", "movement.assign", HOST, s.Assignment, handlers.assign,
         "分配: place an arriving member with an organization of this node (again: move)"),
    Step("origin/lost-contact", "movement.origin.lost_contact", ORIGIN, s.LostContact,
         handlers.mark_lost_contact_at_origin,
         "失联: the origin cannot reach the member (checked in or never arrived)"),
    Step("origin/restore-contact", "movement.origin.restore_contact", ORIGIN, None,
         handlers.restore_contact_at_origin, "The origin reaches the member again"),
    Step("suspend", "movement.suspend", ORIGIN, s.Suspension, handlers.suspend,
         "停止党籍: suspend a member after six months of lost contact, with a reason"),
    Step("reinstate", "movement.reinstate", ORIGIN, s.Reinstatement, handlers.reinstate,
         "恢复党籍: reinstate a suspended member, with a reason"),
    Step("remove", "movement.remove", ORIGIN, s.Removal, handlers.remove,
         "除名: remove a suspended member after two more years, with a reason; closes"),
    Step("report", "movement.report", ORIGIN, s.Report, handlers.record_report,
         "The member's report to the origin (yearly): closes its reminder"),
    Step("check-in", "movement.check_in", HOST, s.CheckIn, handlers.confirm_check_in,
         "报到: confirm the member reported, assign an organization"),
    Step("reject", "movement.reject", HOST, s.Rejection, handlers.reject,
         "The host does not know the member"),
    Step("forward", "movement.forward", HOST, s.Forwarding, handlers.forward,
         "Point the origin to the right host"),
    Step("forward/follow", "movement.forward.follow", ORIGIN, None, handlers.follow_forward,
         "Follow the host's forward: close this movement, open one to the host it named"),
    Step("lost-contact", "movement.lost_contact", HOST, s.LostContact, handlers.mark_lost_contact,
         "失联: the host cannot reach the member"),
    Step("restore-contact", "movement.restore_contact", HOST, None, handlers.restore_contact,
         "Contact with the member restored"),
    Step("participations", "movement.participation", HOST, s.ParticipationBody,
         handlers.record_participation, "参加组织生活: record an attendance"),
    Step("dues", "movement.dues_paid", HOST, s.DuesPaid, handlers.confirm_dues_paid,
         "缴纳党费: the member paid dues here for these months (amount, receipt)"),
    Step("report-received", "movement.report_received", HOST, s.ReportReceived,
         handlers.record_report_received,
         "The member's report to the origin, given here: the origin counts it"),
    Step("transfer/reply", "movement.transfer.reply", HOST, s.TransferReplyBody,
         handlers.reply_transfer, "Accept or reject the origin's transfer request"),
    Step("enrol", "movement.enrol", HOST, s.Enrolment, handlers.enrol,
         "After the origin completed the transfer, enrol the member as this node's own"),
)  # fmt: skip
"""Every step on an existing movement, in the order the OpenAPI document lists them."""


@router.post("/v1/movements", status_code=201, tags=["origin"])
async def register_outflow(body: s.OutflowRegistration, api: Api) -> JSONResponse:
    """外出登记: record a member's departure to another jurisdiction."""
    return await api.command(
        "movement.register", None, lambda uow: handlers.register_outflow(uow, **s.fields(body))
    )


def _endpoint(step: Step) -> Callable[..., Awaitable[JSONResponse]]:
    """The route function of a step, with its body model as the body's type when it has
    one (FastAPI reads the signature)."""
    if step.body is None:

        async def without_body(movement_id: UUID, api: Api) -> JSONResponse:
            return await api.command(
                step.action, str(movement_id), lambda uow: step.run(uow, movement_id, None)
            )

        return without_body

    async def with_body(movement_id: UUID, body: Any, api: Api) -> JSONResponse:
        return await api.command(
            step.action, str(movement_id), lambda uow: step.run(uow, movement_id, body)
        )

    with_body.__annotations__ = {**with_body.__annotations__, "body": step.body}
    return with_body


for _step in STEPS:
    router.post(
        f"/v1/movements/{{movement_id}}/{_step.path}",
        tags=[_step.side.value],
        summary=_step.summary,
        name=_step.action,
        operation_id=_step.action.replace(".", "_"),
    )(_endpoint(_step))
