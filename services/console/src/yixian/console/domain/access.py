"""Who reaches which part of the console: the areas, and the navigation each role sees.

The services decide what a key may do with each record (the registry: role and subtree;
notify: who reads deliveries); the console decides only who reaches its own screens over
what runs in-process with the node's credentials (the node's health, dead letters, replay,
the trail of events), which no API guards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from yixian.runtime.apikeys import Role


class Area(StrEnum):
    WORK = "work"
    """Queues, movements, members and the step forms (a reader sees, never acts)."""
    STATISTICS = "statistics"
    NODE = "node"
    """The node itself: services, outbox, lag, links, dead letters, replay."""
    TRAIL = "trail"
    """The whole node's trail: traces, events, the audit log."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in, as the console needs to know it."""

    name: str
    role: Role
    node_wide: bool
    """The key is bound to the node's root organization."""

    @property
    def acts(self) -> bool:
        """Takes steps (an auditor only reads)."""
        return self.role in (Role.OPERATOR, Role.SECRETARY)


def may_enter(viewer: Viewer, area: Area) -> bool:
    """The node and its trail are for keys of the whole node: its operators, and for the
    trail also its auditors (as the registry lets them read the audit log)."""
    if area is Area.NODE:
        return viewer.role is Role.OPERATOR and viewer.node_wide
    if area is Area.TRAIL:
        return viewer.node_wide and viewer.role in (Role.OPERATOR, Role.AUDITOR)
    return True


def why_not(viewer: Viewer, area: Area) -> str:
    """What a refusal page says."""
    if area is Area.NODE:
        return "节点运维页面仅限全节点的管理员（operator）密钥访问"
    return "审计与追踪页面仅限全节点的管理员或审计员密钥访问"


@dataclass(frozen=True, slots=True)
class Link:
    area: Area
    path: str
    label: str


NAVIGATION = (
    Link(Area.WORK, "/queues", "工作队列"),
    Link(Area.WORK, "/members/away", "外出党员"),
    Link(Area.WORK, "/members/visiting", "流入党员"),
    Link(Area.WORK, "/members", "党员查询"),
    Link(Area.STATISTICS, "/statistics", "统计"),
    Link(Area.NODE, "/node", "节点概况"),
    Link(Area.NODE, "/node/dead-letters", "死信"),
    Link(Area.NODE, "/node/links", "伙伴链路"),
    Link(Area.TRAIL, "/trace", "追踪"),
    Link(Area.TRAIL, "/events", "事件"),
    Link(Area.TRAIL, "/audit", "审计日志"),
)
"""Every screen's entry in the navigation, in order."""


def navigation(viewer: Viewer) -> list[Link]:
    return [link for link in NAVIGATION if may_enter(viewer, link.area)]


ROLE_LABELS = {Role.OPERATOR: "管理员", Role.SECRETARY: "书记", Role.AUDITOR: "审计员"}
