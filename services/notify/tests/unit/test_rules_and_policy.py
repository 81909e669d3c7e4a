"""Rules, templates and the pace of delivery."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jinja2.exceptions import SecurityError

from yixian.contracts import MovementStep
from yixian.notify.bootstrap import TEMPLATES
from yixian.notify.domain.policy import QuietHours, TokenBucket, backoff
from yixian.notify.domain.rules import (
    RULES,
    Channel,
    Group,
    Recipient,
    Rule,
    rules_for,
    sender_node,
)
from yixian.notify.domain.templates import TemplateError, Templates

GUSHI, CHAOYANG = "411525", "110105"


def test_each_step_triggers_its_rules() -> None:
    assert {r.reason for r in rules_for(MovementStep.REGISTERED)} == {
        "outflow_registered",
        "member_expected",
    }
    assert [r.reason for r in rules_for(MovementStep.CHECKED_IN)] == ["checked_in"]
    assert [r.reason for r in rules_for(MovementStep.CONTACT_RESTORED)] == ["contact_restored"]
    assert [r.reason for r in rules_for(MovementStep.TRANSFER_ACCEPTED)] == ["transfer_accepted"]
    assert [r.reason for r in rules_for(MovementStep.TRANSFER_REJECTED)] == ["transfer_rejected"]
    assert [r.reason for r in rules_for(MovementStep.REJECTED)] == ["not_found"]
    assert [r.reason for r in rules_for(MovementStep.TRANSFER_COMPLETED)] == ["transferred"]
    assert [r.reason for r in rules_for(MovementStep.SUSPENDED)] == ["suspended"]
    assert [r.reason for r in rules_for(MovementStep.REINSTATED)] == ["reinstated"]
    assert [r.reason for r in rules_for(MovementStep.REMOVED)] == ["removed"]
    assert [r.reason for r in rules_for(MovementStep.LOST_CONTACT_AT_ORIGIN)] == [
        "lost_contact_at_origin"
    ]
    assert [r.reason for r in rules_for(MovementStep.CANCELLED)] == ["registration_cancelled"]
    (cancelled,) = rules_for(MovementStep.CANCELLED)
    assert cancelled.recipients == (Recipient.HOST_SECRETARY,)


def test_steps_nobody_is_told_of_trigger_nothing() -> None:
    for step in (
        MovementStep.DETAILS_UPDATED,
        MovementStep.RELOCATED,
        MovementStep.TRANSFER_WITHDRAWN,
        MovementStep.PARTICIPATION_RECORDED,
        MovementStep.REPORT_RECORDED,
    ):
        assert rules_for(step) == [], step
    assert rules_for(None) == []


def test_every_movement_rule_answers_a_step_of_its_own_group() -> None:
    origin_steps = {
        MovementStep.REGISTERED,
        MovementStep.CANCELLED,
        MovementStep.TRANSFER_REQUESTED,
        MovementStep.RETURNED,
        MovementStep.TRANSFER_COMPLETED,
        MovementStep.LOST_CONTACT_AT_ORIGIN,
        MovementStep.CONTACT_RESTORED_AT_ORIGIN,
        MovementStep.SUSPENDED,
        MovementStep.REINSTATED,
        MovementStep.REMOVED,
    }
    for rule in RULES:
        if rule.group in (Group.ACTIVITY, Group.SCHEDULE):
            assert rule.step is None, rule.reason
        else:
            assert (rule.step in origin_steps) is (rule.group is Group.ORIGIN), rule.reason


def test_each_recipient_hears_from_exactly_one_node() -> None:
    assert sender_node(Recipient.ORIGIN_SECRETARY, Group.HOST, GUSHI, CHAOYANG) == GUSHI
    assert sender_node(Recipient.HOST_SECRETARY, Group.ORIGIN, GUSHI, CHAOYANG) == CHAOYANG
    assert sender_node(Recipient.MEMBER, Group.ORIGIN, GUSHI, CHAOYANG) == GUSHI
    assert sender_node(Recipient.MEMBER, Group.HOST, GUSHI, CHAOYANG) == CHAOYANG


def test_every_rule_has_templates_in_chinese_and_english() -> None:
    templates = Templates(TEMPLATES)
    for rule in RULES:
        assert ("zh-CN", rule.template) in templates.sources
        assert ("en", rule.template) in templates.sources


def test_rendering_in_chinese_and_falling_back_to_english(tmp_path: Path) -> None:
    rule = Rule(
        "greeting",
        Group.ORIGIN,
        MovementStep.REGISTERED,
        (Recipient.MEMBER,),
        "greeting",
        frozenset({"member_name"}),
    )
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "greeting.txt").write_text(
        "Subject: Hello {{ member_name }}\nWelcome, {{ member_name }}."
    )
    rendered = Templates(tmp_path, (rule,)).render("greeting", {"member_name": "李明"}, "zh-CN")
    assert (rendered.language, rendered.subject, rendered.body) == (
        "en",
        "Hello 李明",
        "Welcome, 李明.",
    )


def test_a_template_using_an_unknown_variable_fails_at_load(tmp_path: Path) -> None:
    rule = Rule(
        "greeting",
        Group.ORIGIN,
        MovementStep.REGISTERED,
        (Recipient.MEMBER,),
        "greeting",
        frozenset({"member_name"}),
    )
    (tmp_path / "zh-CN").mkdir()
    (tmp_path / "zh-CN" / "greeting.txt").write_text(
        "主题：你好\n{{ member_name }}，{{ nickname }}"
    )
    with pytest.raises(TemplateError, match="nickname"):
        Templates(tmp_path, (rule,))


def test_templates_are_sandboxed(tmp_path: Path) -> None:
    rule = Rule(
        "x",
        Group.ORIGIN,
        MovementStep.REGISTERED,
        (Recipient.MEMBER,),
        "x",
        frozenset({"member_name"}),
    )
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "x.txt").write_text("Subject: s\n{{ member_name.__class__.__mro__ }}")
    with pytest.raises(SecurityError):
        Templates(tmp_path, (rule,)).render("x", {"member_name": "a"})


BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("local", "channel", "urgent", "held_until"),
    [
        (
            datetime(2026, 3, 1, 23, 30, tzinfo=BEIJING),
            Channel.SMS,
            False,
            datetime(2026, 3, 2, 7, 0, tzinfo=BEIJING),
        ),
        (
            datetime(2026, 3, 2, 6, 59, tzinfo=BEIJING),
            Channel.SMS,
            False,
            datetime(2026, 3, 2, 7, 0, tzinfo=BEIJING),
        ),
        (datetime(2026, 3, 2, 7, 0, tzinfo=BEIJING), Channel.SMS, False, None),
        (datetime(2026, 3, 1, 23, 30, tzinfo=BEIJING), Channel.SMS, True, None),
        (datetime(2026, 3, 1, 23, 30, tzinfo=BEIJING), Channel.EMAIL, False, None),
    ],
)
def test_quiet_hours(
    local: datetime, channel: Channel, urgent: bool, held_until: datetime | None
) -> None:
    quiet = QuietHours(time(22, 0), time(7, 0), BEIJING)
    assert quiet.holds(channel, local.astimezone(UTC), urgent) == held_until


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    delays = [backoff(n, rng=rng) for n in range(1, 12)]
    assert delays[0] <= 2
    assert delays[4] >= 8
    assert max(delays) <= 600
    assert len(set(delays)) == len(delays)


def test_token_bucket_paces_sends() -> None:
    bucket = TokenBucket(rate=10, burst=2)
    assert bucket.wait(0.0) == 0
    assert bucket.wait(0.0) == 0
    assert bucket.wait(0.0) == pytest.approx(0.1)
    assert bucket.wait(0.1) == 0
