"""Who reaches which screen, and the navigation each role sees."""

from __future__ import annotations

import pytest

from yixian.console.domain.access import Area, Viewer, may_enter, navigation
from yixian.runtime.apikeys import Role

NODE_OPERATOR = Viewer("op", Role.OPERATOR, node_wide=True)
BRANCH_OPERATOR = Viewer("op2", Role.OPERATOR, node_wide=False)
SECRETARY = Viewer("sec", Role.SECRETARY, node_wide=True)
NODE_AUDITOR = Viewer("aud", Role.AUDITOR, node_wide=True)
BRANCH_AUDITOR = Viewer("aud2", Role.AUDITOR, node_wide=False)


@pytest.mark.parametrize(
    ("viewer", "areas"),
    [
        (NODE_OPERATOR, {Area.WORK, Area.STATISTICS, Area.NODE, Area.TRAIL}),
        (BRANCH_OPERATOR, {Area.WORK, Area.STATISTICS}),
        (SECRETARY, {Area.WORK, Area.STATISTICS}),
        (NODE_AUDITOR, {Area.WORK, Area.STATISTICS, Area.TRAIL}),
        (BRANCH_AUDITOR, {Area.WORK, Area.STATISTICS}),
    ],
)
def test_each_role_enters_its_areas_only(viewer: Viewer, areas: set[Area]) -> None:
    assert {area for area in Area if may_enter(viewer, area)} == areas
    assert {link.area for link in navigation(viewer)} == areas


def test_only_operators_and_secretaries_take_steps() -> None:
    assert NODE_OPERATOR.acts
    assert SECRETARY.acts
    assert BRANCH_OPERATOR.acts
    assert not NODE_AUDITOR.acts
    assert not BRANCH_AUDITOR.acts
