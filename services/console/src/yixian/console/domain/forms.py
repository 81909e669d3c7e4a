"""The forms a secretary fills in: one per step of the registry's ``STEPS`` and one for an
outflow registration, each input named by its dotted path in the request body.

A form only collects and shapes what the person typed; the registry checks it (the rules
live there once) and answers a refusal naming the input at fault, which is shown beside
that input (``place_errors``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal[
    "text", "textarea", "date", "datetime", "month", "number", "select", "checkbox",
    "org", "partner", "generated",
]  # fmt: skip
"""How an input is drawn: ``org`` lists the organizations of the signed-in key's subtree,
``partner`` the node's linked partners, ``generated`` is a hidden id made when the form is
drawn (so that sending the same form twice records one thing)."""

BEIJING = "+08:00"
"""A time typed into a form is Beijing time."""


@dataclass(frozen=True, slots=True)
class Input:
    name: str
    """Dotted path into the request body: ``destination.jurisdiction``."""
    label: str
    kind: Kind = "text"
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    hint: str = ""


@dataclass(frozen=True, slots=True)
class StepForm:
    path: str
    """The step's path under ``/v1/movements/{id}/`` (``check-in``); ``""``: registration."""
    title: str
    inputs: tuple[Input, ...] = ()
    note: str = ""
    danger: bool = False
    """A step that closes or gives up something: drawn apart, asked to confirm."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)


ACTIVITY_KINDS = (
    ("theme_day", "主题党日"),
    ("branch_meeting", "支部会议"),
    ("party_lecture", "党课"),
    ("study_session", "学习"),
    ("volunteer_service", "志愿服务"),
    ("other", "其他"),
)
REASON_KINDS = (("work", "务工"), ("study", "学习"), ("business", "经商"), ("other", "其他"))
DECISIONS = (("accepted", "同意接收"), ("rejected", "不同意"))

_CONTACT = (
    Input("contact.phone", "联系电话"),
    Input("contact.email", "电子邮箱"),
    Input("contact.address", "联系地址", "textarea"),
)
_REASON = Input("reason", "理由", "textarea", required=True)
_FORCE = Input("force", "未到期限也办理", "checkbox", hint="规定期限未到时须勾选")

REGISTRATION = StepForm(
    "",
    "外出登记",
    (
        Input("destination.jurisdiction", "流入地", "partner", required=True),
        Input("destination.place", "外出地点", required=True, hint="城市、区县或单位"),
        Input("period.departed_on", "外出日期", "date", required=True),
        Input("period.expected_return_on", "预计返回日期", "date"),
        *_CONTACT,
        Input("reason.kind", "外出原因", "select", required=True, choices=REASON_KINDS),
        Input("reason.text", "原因说明", hint="选择“其他”时必填"),
    ),
    note="登记后由本节点签发流动党员活动证，流入地将收到通知。",
)

FORMS: dict[str, StepForm] = {
    form.path: form
    for form in (
        # -- the origin's steps -----------------------------------------------------------
        StepForm(
            "details",
            "更正外出信息",
            (
                Input("place", "外出地点"),
                Input("period.departed_on", "外出日期", "date"),
                Input("period.expected_return_on", "预计返回日期", "date"),
                *_CONTACT,
            ),
            note="只填写要更改的项目。",
        ),
        StepForm(
            "relocate",
            "转往新的流入地",
            (
                Input("destination.jurisdiction", "新的流入地", "partner", required=True),
                Input("destination.place", "外出地点", required=True),
                Input("departed_on", "前往日期", "date", required=True),
                *_CONTACT,
            ),
            note="本次流动关闭，并向新的流入地开启一次关联的流动。",
        ),
        StepForm("return", "返回", (Input("returned_on", "返回日期", "date", required=True),)),
        StepForm(
            "cancel", "撤销登记", note="撤销误登记的外出，流入地不再等待该党员。", danger=True
        ),
        StepForm(
            "transfer/request",
            "申请转接组织关系",
            (Input("note", "说明", "textarea"),),
        ),
        StepForm("transfer/withdraw", "撤回转接申请", danger=True),
        StepForm("transfer/complete", "完成组织关系转接", note="流入地已同意接收。"),
        StepForm(
            "forward/follow",
            "跟随流入地的转介",
            note="关闭本次流动，向流入地指明的节点开启新的流动。",
        ),
        StepForm(
            "origin/lost-contact",
            "登记失联（流出地）",
            (Input("since", "失联日期", "date", required=True),),
        ),
        StepForm("origin/restore-contact", "恢复联系（流出地）"),
        StepForm("suspend", "停止党籍", (_REASON, _FORCE), danger=True),
        StepForm("reinstate", "恢复党籍", (_REASON,)),
        StepForm("remove", "除名", (_REASON, _FORCE), danger=True),
        StepForm(
            "report", "党员向流出地报告", (Input("reported_on", "报告日期", "date", required=True),)
        ),
        # -- the host's steps -------------------------------------------------------------
        StepForm(
            "assign",
            "分配组织",
            (Input("org_id", "接收组织", "org", required=True),),
        ),
        StepForm(
            "check-in",
            "确认报到",
            (
                Input("host_org_id", "报到组织", "org", hint="默认：已分配的组织"),
                Input("branch_id", "所在支部", "org"),
                Input("checked_in_at", "报到时间", "datetime", hint="默认：现在（北京时间）"),
            ),
        ),
        StepForm("reject", "查无此人（退回）", (_REASON,), danger=True),
        StepForm(
            "forward",
            "转介至正确的流入地",
            (
                Input("forwarded_to", "应去的地区（6位行政区划代码）", required=True),
                _REASON,
            ),
        ),
        StepForm(
            "lost-contact",
            "登记失联",
            (Input("since", "失联日期", "date", required=True),),
        ),
        StepForm("restore-contact", "恢复联系"),
        StepForm(
            "participations",
            "记录参加组织生活",
            (
                Input("participation_id", "", "generated"),
                Input("kind", "活动类型", "select", required=True, choices=ACTIVITY_KINDS),
                Input("title", "活动名称", required=True),
                Input("attended_at", "参加时间", "datetime", required=True),
            ),
        ),
        StepForm(
            "dues",
            "登记党费缴纳",
            (
                Input("period.from_month", "起始月份", "month", required=True),
                Input("period.to_month", "截止月份", "month", required=True),
                Input("amount_fen", "金额（分）", "number", required=True, hint="4500 即 45.00 元"),
                Input("receipt", "收据号"),
            ),
        ),
        StepForm(
            "report-received",
            "代收党员向流出地的报告",
            (Input("reported_on", "报告日期", "date", required=True),),
        ),
        StepForm(
            "transfer/reply",
            "答复转接申请",
            (
                Input("decision", "答复", "select", required=True, choices=DECISIONS),
                Input("reason", "理由", "textarea", hint="不同意时请说明"),
            ),
        ),
        StepForm(
            "enrol",
            "接收为本节点党员",
            (Input("org_id", "所在组织", "org", hint="默认：报到的组织"),),
        ),
    )
}
"""Every step's form, by the step's path (``tests`` hold it against the registry's STEPS
and their body models)."""


def body_of(form: StepForm, values: Mapping[str, str]) -> dict[str, Any]:
    """The request body of a filled-in form: dotted names nested, blanks left out (the
    registry says what is missing), a time as Beijing time, a number as a number when it
    reads as one (else as typed, for the registry to refuse by name)."""
    body: dict[str, Any] = {}
    for spec in form.inputs:
        raw = values.get(spec.name)
        if spec.kind == "checkbox":
            if raw is not None:
                _put(body, spec.name, True)
            continue
        if raw is None or not raw.strip():
            continue
        _put(body, spec.name, _shaped(spec, raw.strip()))
    return body


_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def _shaped(spec: Input, raw: str) -> Any:
    if spec.kind == "datetime" and _LOCAL_TIME.match(raw):
        return (raw if raw.count(":") == 2 else raw + ":00") + BEIJING
    if spec.kind == "number" and re.fullmatch(r"-?\d{1,18}", raw):
        return int(raw)
    return raw


def _put(body: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[leaf] = value


@dataclass
class Placed:
    """A refusal's messages: each beside its input, the rest above the form."""

    by_input: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)


def place_errors(
    names: Sequence[str],
    field_name: str | None,
    message: str,
    errors: Iterable[Mapping[str, str]] = (),
) -> Placed:
    """Put each error beside the input it names: the input of that name, else the first of
    a group it names (``contact`` → ``contact.phone``), else above the form."""
    placed = Placed()
    every = [(e.get("field"), e.get("reason") or message) for e in errors] or [
        (field_name, message)
    ]
    for where, text in every:
        target = _input_for(names, where)
        if target is None:
            placed.general.append(text if where in (None, "body") else f"{where}: {text}")
        elif target in placed.by_input:
            placed.by_input[target] += f"；{text}"
        else:
            placed.by_input[target] = text
    return placed


def _input_for(names: Sequence[str], where: str | None) -> str | None:
    if not where:
        return None
    if where in names:
        return where
    return next((n for n in names if n.startswith(where + ".")), None)
