"""Which pair topics sync reads: the linked partners' ones, as a list, and when it changes.
In memory: the link keeper on the fake store, no broker."""

from __future__ import annotations

from yixian.contracts import TopicNames
from yixian.contracts.examples import AT
from yixian.sync.service_layer.links import LinkKeeper, LinkPolicy
from yixian.sync.service_layer.subscription import incoming_topics, resubscription

from .fakes import FakeTransactions, NodeTables

GUSHI, CHAOYANG, PUTIAN, CHANGPING = "411525", "110105", "350300", "110114"
TOPICS = TopicNames(namespace="t1")


def _keeper() -> tuple[LinkKeeper, NodeTables]:
    tables = NodeTables(CHAOYANG, clock=lambda: AT)
    keeper = LinkKeeper(
        FakeTransactions(tables, TOPICS),
        node=CHAOYANG,
        partners=frozenset({GUSHI}),
        topics=TOPICS,
        policy=LinkPolicy(),
        clock=lambda: AT,
    )
    return keeper, tables


def test_the_topics_are_the_partners_pair_topics_to_the_node_each_once() -> None:
    assert incoming_topics(TOPICS, CHAOYANG, [PUTIAN, GUSHI, GUSHI, CHAOYANG]) == [
        "t1.yixian.v1.350300.to.110105",
        "t1.yixian.v1.411525.to.110105",
    ]
    assert incoming_topics(TOPICS, CHAOYANG, []) == []


def test_a_change_is_the_new_list_and_the_same_set_is_none() -> None:
    a, b = TOPICS.pair(GUSHI, CHAOYANG), TOPICS.pair(PUTIAN, CHAOYANG)
    assert resubscription({a}, [a]) is None
    assert resubscription({b, a}, [a, b]) is None  # order does not matter
    assert resubscription({a}, [a, b]) == sorted([a, b])  # a partner added
    assert resubscription({a, b}, [b]) == [b]  # one gone


async def test_the_linked_partners_are_the_settings_and_the_links_table() -> None:
    keeper, tables = _keeper()
    assert await keeper.linked_partners() == [GUSHI]  # from YIXIAN_PARTNERS, no row yet

    assert await keeper.link(PUTIAN) is True  # added while the node runs
    assert await keeper.link(PUTIAN) is False  # again: nothing new
    assert await keeper.link(GUSHI) is False  # in the settings already
    assert await keeper.linked_partners() == sorted([GUSHI, PUTIAN])
    assert set(tables.links) == {GUSHI, PUTIAN}

    # a partner heard from before keeps its link (its row), settings or not
    tables.links.pop(PUTIAN)
    assert await keeper.link(CHANGPING) is True
    assert await keeper.linked_partners() == [CHANGPING, GUSHI]
    assert incoming_topics(TOPICS, CHAOYANG, await keeper.linked_partners()) == [
        TOPICS.pair(CHANGPING, CHAOYANG),
        TOPICS.pair(GUSHI, CHAOYANG),
    ]
