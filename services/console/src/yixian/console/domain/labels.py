"""The console's words for the records' codes (zh-CN), and the fixed texts a page shows for
a code in its URL (``?reason=`` on the sign-in page, ``?done=`` after an operator's action):
a URL names a code, never the words, so nobody can make a page of the console say what
they wrote."""

from __future__ import annotations

STATES = {
    "awaiting_check_in": "待报到",
    "active": "已报到",
    "not_found_by_host": "流入地查无此人",
    "forwarded": "已转介",
    "lost_contact": "失联",
    "transfer_pending": "转接待答复",
    "transfer_accepted": "转接已同意",
    "transfer_rejected": "转接未同意",
    "closed_returned": "已返回",
    "closed_relocated": "已转往他处",
    "closed_transferred": "已转接",
    "closed_removed": "已除名",
    "cancelled": "已撤销",
}
QUEUES = {"to_do": "待办", "waiting": "等待对方", "overdue": "已逾期", "upcoming": "即将到期"}
SIDES = {"origin": "流出地", "host": "流入地"}
ORIGIN_STATUSES = {
    "registered": "已登记",
    "relocated": "已转往他处",
    "returned": "已返回",
    "cancelled": "已撤销",
    "transfer_requested": "已申请转接",
    "transferred": "已转接",
    "removed": "已除名",
}
HOST_STATUSES = {
    "expected": "待报到",
    "checked_in": "已报到",
    "not_found": "查无此人",
    "forwarded": "已转介",
    "lost_contact": "失联",
}
MEMBER_STATUSES = {
    "home": "在本地",
    "away": "外出",
    "transferred_out": "已转出",
    "removed": "已除名",
    "transferred_in": "转入",
}
LINK_STATES = {"healthy": "正常", "lagging": "滞后", "gap": "缺号", "silent": "静默"}
PRESENCE = {"local": "本地党员", "visiting": "流入党员"}
OUTCOMES = {"ok": "成功", "denied": "拒绝", "refused": "驳回"}
NOTICE_STATUSES = {
    "sent": "已发送",
    "pending": "待发送",
    "suppressed": "未发送（退订或静默）",
    "dead": "发送失败",
}
GROUP_BY = {"partner": "按伙伴节点", "state": "按状态", "month": "按外出月份", "branch": "按组织"}

SIGN_IN_REASONS = {
    "needed": "请先登录",
    "expired": "登录已过期，请重新登录",
    "revoked": "密钥已被吊销，请使用有效的密钥登录",
    "signed_out": "已退出登录",
}
DONE = {
    "retried": "重试结果：{outcome}",
    "discarded": "已放弃",
    "requeued": "已重新排队 {count} 条暂存事件",
    "parked_discarded": "已放弃 {count} 条暂存事件",
    "sent": "{partner}：已发送",
    "replay_requested": "{partner}：已请求补发",
}
"""After an operator's action: each code's text, filled in only with what the page checked
(a partner of the node, a count, the outcome recorded in the database)."""


def done(code: str | None, **values: object) -> str:
    """The text of a ``DONE`` code, or nothing for an unknown code or a missing value."""
    text = DONE.get(code or "")
    if text is None:
        return ""
    try:
        return text.format(**{name: v for name, v in values.items() if v is not None})
    except (KeyError, IndexError):
        return ""


def label(table: dict[str, str], code: object) -> str:
    """The word for ``code``, or the code itself when it has none (a newer one)."""
    text = str(code) if code is not None else ""
    return table.get(text, text)
