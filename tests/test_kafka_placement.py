"""Where a consumer starts the partitions the group gives it (consumers.kafka.Placement).

librdkafka calls `on_assign` from inside a poll. Had the callback raised (the store away when
partitions come), librdkafka would have started the partitions at the offsets Kafka holds and
handed out records from there in that same poll: a record was lost that way in a trial. So the
placement never raises there: it takes no partition until it can read the stored positions.

These are the placement's own rules, with a stand-in for the consumer that records what it was
told; the real broker and store run it in tests/test_kafka_faults.py.
"""

from typing import Any

import psycopg
from confluent_kafka import TopicPartition

from consumers.kafka import Placement, tracking_name

TOPIC = "events"


class Store:
    """The stored positions, or a store that is away."""

    def __init__(self, positions: dict[int, int]) -> None:
        self.positions = positions
        self.away = False

    def next_position(self, name: str) -> int:
        if self.away:
            raise psycopg.OperationalError("connection refused")
        return next(at for p, at in self.positions.items() if tracking_name(TOPIC, p) == name)


class RecordingConsumer:
    """What the placement told the consumer to read, as (partition, offset) pairs."""

    def __init__(self) -> None:
        self.assigned: list[tuple[int, int]] | None = None
        self.committed: list[tuple[int, int]] = []  # the offsets committed to Kafka, in order

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = [(tp.partition, tp.offset) for tp in partitions]

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous  # never waits for the broker inside a rebalance callback
        self.committed += [(tp.partition, tp.offset) for tp in offsets]

    def unassign(self) -> None:
        self.assigned = None


def recording() -> Any:
    return RecordingConsumer()


def placement(store: Store, forgotten: list[str]) -> Placement:
    app: Any = store
    return Placement(app, TOPIC, lambda: forgotten.append("forgot"))


def given(*partitions: int) -> list[TopicPartition]:
    return [TopicPartition(TOPIC, p) for p in partitions]


def test_partitions_given_start_at_their_stored_positions_not_kafkas() -> None:
    store, forgotten, consumer = Store({0: 17, 1: 0, 2: 4}), list[str](), recording()
    place = placement(store, forgotten)
    place.on_assign(consumer, given(2, 0))
    assert consumer.assigned == [(0, 17), (2, 4)]
    assert place.placed and place.held() == [(TOPIC, 0), (TOPIC, 2)]
    assert forgotten == ["forgot"]  # cached accounts may have been written by another member
    # Kafka's offsets say where the store is, for lag monitoring (they never decide a read).
    assert consumer.committed == [(0, 17), (2, 4)]


def test_with_the_store_away_no_partition_is_read_until_its_position_can_be() -> None:
    store, forgotten, consumer = Store({0: 17, 1: 5}), list[str](), recording()
    place = placement(store, forgotten)
    store.away = True
    place.on_assign(consumer, given(0, 1))  # must not raise
    assert consumer.assigned == []  # librdkafka would otherwise start them where Kafka says
    assert not place.placed
    assert place.held() == [(TOPIC, 0), (TOPIC, 1)]  # still the group's to this consumer
    store.away = False
    store.positions[0] = 20  # stored meanwhile (another member, before the rebalance)
    place.place_again(consumer)
    assert consumer.assigned == [(0, 20), (1, 5)]
    assert place.placed


def test_placing_again_reads_every_partition_back_from_the_store() -> None:
    """After a batch that did not commit, what was read past the stored position is read again."""
    store, forgotten, consumer = Store({0: 3, 1: 9}), list[str](), recording()
    place = placement(store, forgotten)
    place.on_assign(consumer, given(0, 1))
    place.place_again(consumer)
    assert consumer.assigned == [(0, 3), (1, 9)]


def test_partitions_taken_away_are_no_longer_held_or_read() -> None:
    store, forgotten, consumer = Store({0: 3}), list[str](), recording()
    place = placement(store, forgotten)
    place.on_assign(consumer, given(0))
    place.on_revoke(consumer, given(0))
    assert consumer.assigned is None and place.held() == [] and place.placed
    assert forgotten == ["forgot", "forgot"]


def test_the_client_log_lets_each_line_through_once_a_minute_whatever_its_numbers() -> None:
    """librdkafka repeats a refused connection at every attempt; the operator sees it once a
    minute, with any other line, not hundreds of times before the consumer's own error."""
    import logging

    from consumers.kafka import RepeatsDropped

    now = [0.0]
    kept = RepeatsDropped(every=60.0, limit=3, clock=lambda: now[0])

    def shown(message: str) -> bool:
        return kept.filter(logging.LogRecord("x", logging.ERROR, "", 0, message, None, None))

    refused = "Connect to 127.0.0.1:{} failed: Connection refused (after {}ms in state CONNECT)"
    assert shown(refused.format(1, 0))
    assert not any(shown(refused.format(1, n)) for n in range(1, 300))
    assert shown("Broker transport failure")  # another line
    now[0] = 59.9
    assert not shown(refused.format(1, 7))
    now[0] = 60.0
    assert shown(refused.format(1, 7))  # a minute on: once more
    for other in ("a", "b", "c"):  # over the limit, what is remembered starts again
        assert shown(other)
    assert shown(refused.format(1, 8))
