"""Topic filters match as the broker matches them (MQTT 5.0, 4.7), and the router takes
the first filter that matches: a topic outside the device topics is no device message
because its last level is `status`, `ack` or `hb`."""

from __future__ import annotations

import pytest

from core.topics import TopicFilter, TopicRouter, matches
from wire import protocol


@pytest.mark.parametrize(
    ("topic_filter", "topic"),
    [
        ("bc/v1/cluster/+/status", "bc/v1/cluster/70-123-4567/status"),
        ("bc/v1/cluster/+/ack", "bc/v1/cluster/x/ack"),
        ("bc/v1/cluster/+/hb", "bc/v1/cluster/x/hb"),
        ("sport/tennis/player1/#", "sport/tennis/player1"),  # `#` takes the parent too
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking"),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"),
        ("sport/#", "sport"),
        ("#", "sport/tennis"),
        ("+", "sport"),
        ("sport/+", "sport/"),  # `+` is one level, and a level may be empty
        ("+/+", "/finance"),
        ("/+", "/finance"),
        ("+/tennis/#", "sport/tennis/player1"),
        ("$SYS/#", "$SYS/broker/uptime"),  # named, not wildcarded: `$` topics match
        ("$SYS/+/uptime", "$SYS/broker/uptime"),
        ("a/b", "a/b"),
    ],
)
def test_a_filter_matches(topic_filter: str, topic: str) -> None:
    assert matches(topic_filter, topic)


@pytest.mark.parametrize(
    ("topic_filter", "topic"),
    [
        ("bc/v1/cluster/+/status", "bc/v1/cluster/x/y/status"),  # a level too many
        ("bc/v1/cluster/+/status", "other/v1/cluster/x/status"),  # another root
        ("bc/v1/cluster/+/status", "bc/v1/area/x/status"),
        ("bc/v1/cluster/+/status", "bc/v1/cluster/status"),  # a level too few
        ("bc/v1/cluster/+/status", "bc/v1/cluster/x/status/"),
        ("bc/v1/cluster/+/ack", "bc/v1/cluster/x/status"),
        ("sport/tennis/+", "sport/tennis"),
        ("sport/tennis/+", "sport/tennis/player1/ranking"),
        ("sport/+", "sport"),
        ("+", "/finance"),
        ("Sport/#", "sport/tennis"),  # case counts
        ("#", "$SYS/broker/uptime"),  # no wildcard first level takes a `$` topic
        ("+/broker/uptime", "$SYS/broker/uptime"),
        ("+/monitor/Clients", "$SYS/monitor/Clients"),
        ("a/b", "a/b/c"),
    ],
)
def test_a_filter_does_not_match(topic_filter: str, topic: str) -> None:
    assert not matches(topic_filter, topic)


@pytest.mark.parametrize("text", ["", "a/#/b", "a/b#", "a/#b", "a+/b", "a/+b", "#/a", "a/++"])
def test_what_is_no_filter_is_refused_when_the_routes_are_built(text: str) -> None:
    with pytest.raises(ValueError, match="not an MQTT topic filter"):
        TopicFilter(text)
    with pytest.raises(ValueError):
        TopicRouter({text: 1})


def test_the_device_routes_take_only_the_device_topics() -> None:
    router = TopicRouter(
        {
            protocol.ACK_FILTER: "ack",
            protocol.STATUS_FILTER: "status",
            protocol.HEARTBEAT_FILTER: "hb",
        }
    )
    assert router.route(protocol.ack_topic("70-1")) == "ack"
    assert router.route(protocol.status_topic("70-1")) == "status"
    assert router.route(protocol.heartbeat_topic("70-1")) == "hb"
    for stranger in (
        "bc/v1/cluster/x/y/status",
        "other/v1/cluster/x/status",
        "bc/v2/cluster/x/ack",
        "bc/v1/area/70/hb",
        "status",
        protocol.cluster_command_topic("70-1"),
        protocol.schedule_topic("70-1"),
    ):
        assert router.route(stranger) is None, stranger


def test_where_filters_overlap_the_first_given_wins() -> None:
    """Across shapes too: the order is the routes', not the tables'."""
    router = TopicRouter({"a/+/c": 1, "a/#": 2, "a/b/c": 3, "+/b/c": 4})
    assert router.route("a/b/c") == 1
    assert router.route("a/x") == 2
    assert router.route("a") == 2
    assert router.route("z/b/c") == 4
    assert TopicRouter({"a/#": 2, "a/+/c": 1}).route("a/b/c") == 2
    assert TopicRouter({}).route("a") is None
