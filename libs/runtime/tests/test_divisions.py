"""The current list of divisions, and the node-wide settings that must name real ones."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from yixian.runtime import NodeSettings
from yixian.runtime.divisions import division_name, divisions


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("411525", "河南省信阳市固始县"),
        ("110105", "北京市朝阳区"),
        ("350300", "福建省莆田市"),
        ("110114", "北京市昌平区"),
        ("110000", "北京市"),  # a province-level node
        ("500157", "重庆市两江新区"),  # created in November 2025
    ],
)
def test_the_reference_nodes_are_current_divisions(code: str, name: str) -> None:
    assert division_name(code) == name


@pytest.mark.parametrize(
    "code",
    [
        "419999",  # never existed
        "500105",  # 江北区, merged into 两江新区 in 2025
        "110100",  # Beijing has no prefecture level
        "710000",  # Taiwan: nothing below it in the list, no node
        "810000",  # Hong Kong
        "820000",  # Macao
    ],
)
def test_codes_no_node_can_serve_are_not_divisions(code: str) -> None:
    assert division_name(code) is None


def test_the_list_has_every_level_and_only_six_digit_codes() -> None:
    codes = divisions()
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    provinces = [c for c in codes if c.endswith("0000")]
    assert len(provinces) == 31  # the mainland's province-level divisions
    assert len(codes) > 3000  # with ~330 prefectures and ~2,850 counties


def test_the_node_and_its_partners_must_be_current_divisions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("YIXIAN_NODE", "411525")
    monkeypatch.setenv("YIXIAN_PARTNERS", " 110105, 350300 ,")
    assert NodeSettings().partner_codes == {"110105", "350300"}
    monkeypatch.setenv("YIXIAN_PARTNERS", "110105,419999")
    with pytest.raises(ValidationError, match="419999 is not a current administrative division"):
        NodeSettings()
    monkeypatch.setenv("YIXIAN_PARTNERS", "411525")
    with pytest.raises(ValidationError, match="names the node itself"):
        NodeSettings()
    monkeypatch.setenv("YIXIAN_PARTNERS", "")
    monkeypatch.setenv("YIXIAN_NODE", "710000")
    with pytest.raises(ValidationError, match="node"):
        NodeSettings()
