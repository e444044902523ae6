"""Kafka ingestion: the same pipeline as files, exactly once through stored tracking (G1-G3).

Positions live in the ledger's store, not in Kafka: each partition batch is committed with a
tracking record `kafka:<topic>:<partition>` = next offset, in the same transaction as the
ledger events it produced. On every assignment the consumer starts each partition at that
stored position. Offsets are also committed to Kafka after each batch, but only so lag can be
monitored.

The client is confluent-kafka (librdkafka, in C): it parses records in about a fifth of the
CPU kafka-python takes (docs/PERFORMANCE.md, round 22). librdkafka keeps its connections and
the group's heartbeats in threads of its own and reconnects by itself, so an unreachable
broker shows here as requests that time out (reading the catalog topic's end, each loop).
"""

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from eventsourcing.persistence import Tracking

from consumers.kafka_settings import KafkaSettings
from consumers.pipeline import RawRecord, parse_record, process_batch, store_errors
from ledger.application import BatchCounts, DeadLetter, LedgerApp
from ledger.errors import InvalidEvent, LedgerError
from projections.projection import KnownDocuments
from projections.runner import ViewsAlongside, catch_up
from projections.store import StaleViewPosition, ViewStore
from projections.store_postgres import PostgresViewStore

DEFAULT_PARTITIONS = 3  # of the events topic, when a publish or a consumer has to create it
MAX_POLL_RECORDS = 5000  # explicit limit on one batch
DEAD_LETTER_TIMEOUT_SECONDS = 30.0
# How long a request to the broker (metadata, a partition's end, creating topics) may take
# before the broker counts as unreachable.
BROKER_TIMEOUT_SECONDS = 10.0
PUBLISH_TIMEOUT_SECONDS = 120.0  # every record of a publish delivered, or it failed
POLL_SECONDS = 0.5
# A consumer that dies is noticed after this long and its partitions move to the others.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 3_000
# Records librdkafka fetches ahead per partition: an explicit limit on the consumer's memory.
PREFETCH_KBYTES = 8192
# librdkafka's own log lines (a broker refusing connections while it restarts) go to Python's
# logging under this name, not straight to stderr.
CLIENT_LOG = logging.getLogger("consumers.kafka.librdkafka")


class RepeatsDropped(logging.Filter):
    """Each distinct log line once per `every` seconds. librdkafka says the same thing at
    every reconnect attempt to a broker that is down: hundreds of lines a minute before the
    consumer's own one-line error. Lines that differ only in their numbers ("after 0ms",
    "after 1ms") count as the same; at most `limit` lines are remembered."""

    def __init__(
        self, every: float = 60.0, limit: int = 1_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.every, self.limit, self.clock = every, limit, clock
        self._shown: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = re.sub(r"\d+", "#", record.getMessage())
        now = self.clock()
        shown = self._shown.get(key)
        if shown is not None and now - shown < self.every:
            return False
        if len(self._shown) >= self.limit:
            self._shown.clear()
        self._shown[key] = now
        return True


class HeldUntilAnswered(logging.Filter):
    """librdkafka's lines while a command waits for its first broker answer are held, not
    shown: at a wrong or unreachable address every client says the same thing, and the
    command's one-line error gives the latest of them as its reason. Once a broker has
    answered they are no longer wanted (they were about the wait), and later lines show."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = False
        self.latest: str | None = None

    def hold(self) -> None:
        self.holding, self.latest = True, None

    def release(self) -> None:
        self.holding = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.holding:
            self.latest = record.getMessage()
        return not self.holding

    def reason(self) -> str | None:
        """The latest held line in librdkafka's words, without its client and thread names
        and its timing ("FAIL [ledger#consumer-1] [thrd:...]: host:9092/bootstrap: Connect
        to ... failed: Connection refused (after 0ms in state CONNECT)")."""
        if self.latest is None:
            return None
        said = self.latest.rsplit("]: ", 1)[-1]
        # Its timing, with what it adds when it repeats itself: ", 1 identical error(s)
        # suppressed".
        return re.sub(r" \(after \d+ms in state \w+(, .*)?\)$", "", said)


FIRST_ANSWER = HeldUntilAnswered()
CLIENT_LOG.addFilter(FIRST_ANSWER)  # first: a held line does not count as shown
CLIENT_LOG.addFilter(RepeatsDropped())


class BrokerUnreachable(LedgerError):
    """No Kafka broker answered at the bootstrap address in time."""


class RecordsNotDelivered(LedgerError):
    """The broker did not take every record a publish sent."""


def tracking_name(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


def _client_config(settings: KafkaSettings, client_id: str, **more: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap,
        "client.id": client_id,
        "logger": CLIENT_LOG,
        **more,
    }


def reason_of(error: Exception) -> str:
    """What went wrong, in librdkafka's words for its own errors (not its error's repr)."""
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        return error.args[0].str()
    return str(error)


def _unreachable(settings: KafkaSettings, error: KafkaException) -> BrokerUnreachable:
    reason = FIRST_ANSWER.reason() or reason_of(error)
    return BrokerUnreachable(
        f"no Kafka broker answered at {settings.bootstrap} "
        f"in {BROKER_TIMEOUT_SECONDS:g} s: {reason}"
    )


def ensure_topics(
    settings: KafkaSettings, partitions: int, only: Collection[str] | None = None
) -> int:
    """Create the events, catalog and dead-letter topics (`only` those named) when they do not
    exist yet, the events topic with `partitions`; the events topic's partitions. The first
    request of a publish and of a consumer: no broker answering is its one-line error."""
    admin = AdminClient(_client_config(settings, "ledger-admin"))
    FIRST_ANSWER.hold()
    try:
        existing = admin.list_topics(timeout=BROKER_TIMEOUT_SECONDS).topics
    except KafkaException as error:
        admin.poll(0)  # hands over its log lines: the reason
        raise _unreachable(settings, error) from error
    FIRST_ANSWER.release()
    wanted = [
        NewTopic(settings.topic, partitions, 1),
        # One partition: catalog versions are global and read in publication order (C1).
        NewTopic(settings.catalog_topic, 1, 1),
        NewTopic(settings.dead_letter_topic, 1, 1),
    ]
    events = existing.get(settings.topic)
    has = partitions if events is None else len(events.partitions)
    missing = [
        topic
        for topic in wanted
        if topic.topic not in existing and (only is None or topic.topic in only)
    ]
    if not missing:
        return has
    created = admin.create_topics(missing, request_timeout=BROKER_TIMEOUT_SECONDS)
    for future in created.values():
        try:
            future.result()
        except KafkaException as error:
            # Another process may create them in the meantime.
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return has


# A record to produce: topic, key, value, headers.
Outgoing = tuple[str, bytes | None, bytes, list[tuple[str, str | bytes | None]] | None]


def _deliver(
    producer: Producer, records: Iterable[Outgoing], timeout: float
) -> tuple[int, KafkaError | None]:
    """Produce the records in order and wait for them all: how many the broker did not take,
    and the first error it gave. With librdkafka's queue full, deliveries are served until
    there is room (it drains as the broker takes records, or as they time out undelivered)."""
    failed: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failed.append(error)

    for topic, key, value, headers in records:
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(timeout)
    return len(failed) + left, failed[0] if failed else None


class DeadLetterTopic:
    """Produces dead letters with the original bytes; reason and origin travel in headers."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def sink_for(
        self, source_topic: str, partition: int, messages: Sequence[Message]
    ) -> Callable[[Sequence[DeadLetter]], None]:
        """The sink of one batch of `messages`: each dead letter keeps its record's key, so
        republished as it is, it lands on its account's partition again (G3)."""

        def sink(letters: Sequence[DeadLetter]) -> None:
            keys = {_offset(m): m.key() for m in messages} if letters else {}
            missing, error = _deliver(
                self.producer,
                (
                    (
                        self.topic,
                        keys.get(letter.position),
                        letter.value,
                        [
                            ("reason", letter.reason.encode("utf-8")),
                            ("source-topic", source_topic.encode("utf-8")),
                            ("source-partition", str(partition).encode("ascii")),
                            ("source-offset", str(letter.position).encode("ascii")),
                        ],
                    )
                    for letter in letters
                ),
                DEAD_LETTER_TIMEOUT_SECONDS,
            )
            # A dead letter the broker did not take fails the batch (a KafkaException): it is
            # read again later rather than committed without its dead letter (G2).
            if missing:
                raise KafkaException(
                    error
                    or KafkaError(KafkaError._TIMED_OUT, f"{missing} dead letters not delivered")
                )

        return sink


def _producer(settings: KafkaSettings, timeout_seconds: float) -> Producer:
    return Producer(
        _client_config(
            settings,
            "ledger",
            **{
                "acks": "all",
                "enable.idempotence": True,
                # Keys to partitions as Kafka's Java client and kafka-python place them, so an
                # account stays in the partition earlier records of it went to.
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                "message.max.bytes": 4 * 1024 * 1024,
                # A record not delivered by then is reported failed, not retried for ever.
                "message.timeout.ms": int(timeout_seconds * 1000),
            },
        )
    )


def _batch(
    app: LedgerApp,
    sink: DeadLetterTopic,
    topic: str,
    partition: int,
    messages: Sequence[Message],
    views: ViewsAlongside | None,
) -> BatchCounts:
    records = [RawRecord(_offset(m), m.value() or b"") for m in messages]
    name = tracking_name(topic, partition)
    return process_batch(
        app,
        name,
        records,
        sink.sink_for(topic, partition, messages),
        Tracking(application_name=name, notification_id=records[-1].position + 1),
        views,
    )


def _offset(message: Message) -> int:
    offset = message.offset()
    assert offset is not None and offset >= 0, message
    return offset


# A message that reports one of these is not a record and not an outage: the end of a
# partition, or a subscribed topic that does not exist yet (it is created by a publish).
_NOT_RECORDS = frozenset({KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART})


def _poll(consumer: Consumer, timeout: float) -> dict[int, list[Message]]:
    """The records that came, by partition in offset order, at most MAX_POLL_RECORDS: the
    first waited for up to `timeout`, the rest taken as they are already fetched (librdkafka's
    `consume` would wait for all of them)."""
    first = consumer.poll(timeout)
    if first is None:
        return {}
    by_partition: dict[int, list[Message]] = {}
    for message in [first, *consumer.consume(MAX_POLL_RECORDS - 1, 0)]:
        error = message.error()
        if error is not None:
            if error.code() in _NOT_RECORDS:
                continue
            raise KafkaException(error)
        partition = message.partition()
        assert partition is not None
        by_partition.setdefault(partition, []).append(message)
    return by_partition


class CatalogReader:
    """Reads the catalog topic from the stored position to its current end (C1), with a
    consumer of its own that no group manages."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.topic = settings.catalog_topic
        self.consumer = Consumer(
            _client_config(
                settings,
                "ledger-catalog",
                **{
                    "group.id": "ledger-catalog",  # required by librdkafka; never joined
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "isolation.level": "read_committed",
                    "queued.max.messages.kbytes": PREFETCH_KBYTES,
                },
            )
        )
        self.partitions: list[int] = []
        # Per partition, (stored position, end) when a read stopped short of the end: the
        # offsets left are no records (a transaction's markers), so it is not read again
        # until the end moves.
        self.stopped_at: dict[int, tuple[int, int]] = {}

    def read(
        self, app: LedgerApp, sink: DeadLetterTopic, views: ViewsAlongside | None
    ) -> BatchCounts:
        totals = BatchCounts()
        for partition in self._partitions():
            tp = TopicPartition(self.topic, partition)
            _, end = self.consumer.get_watermark_offsets(
                tp, timeout=BROKER_TIMEOUT_SECONDS, cached=False
            )
            position = app.next_position(tracking_name(self.topic, partition))
            if position >= end or self.stopped_at.get(partition) == (position, end):
                continue
            self.consumer.assign([TopicPartition(self.topic, partition, position)])
            try:
                while position < end:
                    polled = _poll(self.consumer, 1.0).get(partition)
                    if not polled:
                        self.stopped_at[partition] = (position, end)
                        break
                    totals.add(_batch(app, sink, self.topic, partition, polled, views))
                    position = _offset(polled[-1]) + 1
            finally:
                self.consumer.unassign()
        return totals

    def _partitions(self) -> list[int]:
        if not self.partitions:  # until the topic exists; a topic's partitions stay
            topics = self.consumer.list_topics(self.topic, timeout=BROKER_TIMEOUT_SECONDS).topics
            found = topics.get(self.topic)
            if found is not None and found.error is None:
                self.partitions = sorted(found.partitions)
        return self.partitions

    def close(self) -> None:
        self.consumer.close()


class Placement:
    """Where the group's consumer reads each partition it is given: at the position stored
    with the ledger, never at one Kafka holds. With the store away when partitions come, it
    holds none of them (nothing is read) until `place_again` can read their positions."""

    def __init__(self, app: LedgerApp, topic: str, forget: Callable[[], None]) -> None:
        self.app = app
        self.topic = topic
        self.forget = forget
        self.assigned: list[int] = []  # partitions the group gave this consumer
        self.placed = True
        self.stored: dict[int, int] = {}  # each one's stored position when it was placed

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.forget()
        self.assigned = sorted(tp.partition for tp in partitions)
        # Raising here would leave librdkafka to start the partitions where Kafka says.
        self.place_or_hold(consumer)

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another consumer may now write these accounts: cached state could go stale.
        self.forget()
        self.assigned = []
        self.placed = True
        with contextlib.suppress(KafkaException):
            consumer.unassign()

    def place_again(self, consumer: Consumer) -> None:
        """Every assigned partition at its stored position (after a batch that did not
        commit: what was read past it is read again)."""
        at = [
            TopicPartition(self.topic, p, self.app.next_position(tracking_name(self.topic, p)))
            for p in self.assigned
        ]
        consumer.assign(at)
        self.placed = True
        self.stored = {tp.partition: tp.offset for tp in at}
        if at:
            # Kafka's committed offsets only serve lag monitoring (the store decides where to
            # read), but they should say where the ledger is: a partition found complete in the
            # store would otherwise keep a crashed owner's offset, a lag that never clears.
            with contextlib.suppress(KafkaException):
                consumer.commit(offsets=at, asynchronous=True)

    def place_or_hold(self, consumer: Consumer) -> None:
        """`place_again`, or with the store away, no partition read until it can be."""
        try:
            self.place_again(consumer)
        except transient_errors():
            with contextlib.suppress(KafkaException):
                consumer.assign([])
            self.placed = False

    def held(self) -> list[tuple[str, int]]:
        return [(self.topic, p) for p in self.assigned]


def transient_errors() -> tuple[type[Exception], ...]:
    """What passes: the store or the broker briefly away, or another consumer that wrote a
    partition first in a rebalance race (a version or tracking conflict). The batch was not
    stored, so it is read again from the stored position once the outage is over."""
    return (*store_errors(), KafkaException)


# Explicit limit: a store or broker gone for longer stops the consumer (exit non-zero) so a
# supervisor can alert and restart it, rather than retrying silently for ever.
MAX_OUTAGE_SECONDS = 300.0
LAG_EVERY_SECONDS = 1.0  # how often the progress line asks the broker for end offsets
# How long --until-idle waits for partitions before idleness counts anyway: a member of a group
# with more members than partitions never gets one.
JOIN_WAIT_SECONDS = 60.0


class TooLongOutage(LedgerError):
    """The store or broker stayed unreachable for longer than MAX_OUTAGE_SECONDS."""


@dataclass
class ConsumeReport:
    totals: BatchCounts = field(default_factory=BatchCounts)
    catalog: BatchCounts = field(default_factory=BatchCounts)
    batches: int = 0
    retries: int = 0
    lag: int | None = None  # records on the assigned partitions not yet consumed
    last_error: str | None = None
    # Kafka timestamps (ms) of the records whose effects the views show since the last batch:
    # for event-to-view latency. Replaced every batch (bounded by MAX_POLL_RECORDS).
    last_batch_timestamps: list[int] = field(default_factory=list)
    # Reported after a poll that found nothing new (once per stretch of waiting), not a batch.
    waiting: bool = False


class _Outage:
    """Backs off while a transient error repeats; gives up after the limit."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.since: float | None = None
        self.attempts = 0

    def wait(self, error: Exception, should_stop: Callable[[], bool]) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
        if now - self.since > self.limit:
            raise TooLongOutage(
                f"gave up after {self.limit:.0f} s of {type(error).__name__}: {reason_of(error)}"
            ) from error
        delay = min(0.25 * 2**self.attempts, 5.0)
        self.attempts += 1
        deadline = now + delay
        while time.monotonic() < deadline and not should_stop():
            time.sleep(0.05)

    def over(self) -> None:
        self.since = None
        self.attempts = 0


def _lag(consumer: Consumer, placement: Placement) -> int | None:
    if not placement.assigned:
        return 0
    try:
        lag = 0
        held = [TopicPartition(placement.topic, p) for p in placement.assigned]
        for tp in consumer.position(held):
            # The ends the last fetches brought: asking the broker would wait behind the
            # fetch in flight on the same connection (up to fetch.wait.max.ms).
            low, high = consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                return None  # not fetched yet
            # Before its first record is handed out a partition has no position: it starts
            # where it was placed, not at the start of the log.
            start = tp.offset if tp.offset >= 0 else placement.stored.get(tp.partition, low)
            lag += max(high - start, 0)
        return lag
    except KafkaException:
        return None


class IdleClock:
    """When `--until-idle` ends a consumer: after `limit` seconds without a record while it held
    the same partitions. Joining the group or a rebalance is not idleness (on a busy broker a
    join can take longer than the limit), but a member left without partitions (more members
    than partitions) stops waiting for them after `join_wait` seconds."""

    def __init__(
        self, limit: float | None, started_at: float, join_wait: float = JOIN_WAIT_SECONDS
    ) -> None:
        self.limit = limit
        self.started_at = self.since = started_at
        self.join_wait = join_wait
        self.held: frozenset[Hashable] = frozenset()

    def record_seen(self, now: float) -> None:
        self.since = now

    def is_over(self, now: float, assignment: Iterable[Hashable]) -> bool:
        """Whether to stop, after a poll that brought nothing."""
        held = frozenset(assignment)
        if held != self.held or (not held and now - self.started_at < self.join_wait):
            self.held, self.since = held, now
        return self.limit is not None and now - self.since >= self.limit


def consume(
    app: LedgerApp,
    views: ViewStore,
    settings: KafkaSettings,
    until_idle: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[ConsumeReport], None] | None = None,
    max_outage: float = MAX_OUTAGE_SECONDS,
    on_wait: Callable[[ConsumeReport], None] | None = None,
) -> ConsumeReport:
    """Consume until stopped (or until no record came for `until_idle` seconds while this
    consumer held partitions: joining the group and rebalancing do not count as idle).

    `on_batch` is called after each committed batch, `on_wait` once when a poll after some
    batches finds nothing new (the report's `waiting` is set then, and its lag fresh).

    Stopping (SIGTERM, Ctrl-C) is checked between batches: the batch in hand is finished and
    committed first. Transient failures of the store or broker are retried with back-off.
    """
    report = ConsumeReport()
    consumer = Consumer(
        _client_config(
            settings,
            "ledger",
            **{
                "group.id": settings.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
                "queued.max.messages.kbytes": PREFETCH_KBYTES,
            },
        )
    )
    catalog = CatalogReader(settings)
    producer = _producer(settings, DEAD_LETTER_TIMEOUT_SECONDS)
    sink = DeadLetterTopic(producer, settings.dead_letter_topic)
    outage = _Outage(max_outage)
    # On PostgreSQL the views commit with each batch; elsewhere they catch up after it.
    alongside = (
        ViewsAlongside(app, views)
        if isinstance(views, PostgresViewStore) and app.store.kind == "postgresql"
        else None
    )
    known = KnownDocuments()  # for catching up: view documents of this process's accounts

    def forget() -> None:
        app.forget_cached()
        known.forget()
        if alongside is not None:
            alongside.forget()

    placement = Placement(app, settings.topic, forget)

    def start_again(in_hand: bool) -> None:
        """After a failure: drop what memory holds; with records taken from the client and not
        all committed, read them again from the stored positions."""
        forget()
        if in_hand:
            placement.place_or_hold(consumer)  # held: the loop places them again

    try:
        # A topic subscribed to before it exists would give this consumer no partitions.
        ensure_topics(settings, DEFAULT_PARTITIONS)
        consumer.subscribe(
            [settings.topic], on_assign=placement.on_assign, on_revoke=placement.on_revoke
        )
        views_behind = True  # until the first catch-up
        idle = IdleClock(until_idle, started_at=time.monotonic())
        lag_asked_at = 0.0
        waiting_since_batch = 0  # report.batches when the last wait was reported
        while not should_stop():
            # Records taken from the client and not all committed: from the poll on, since a
            # poll that fails on an error has taken records before it (they must be read again).
            in_hand = False
            try:
                if views_behind:
                    catch_up(app, views, known=known)
                    views_behind = False
                report.catalog.add(catalog.read(app, sink, alongside))
                if not placement.placed:
                    placement.place_again(consumer)
                in_hand = True
                polled = _poll(consumer, POLL_SECONDS)
                if not polled:
                    outage.over()
                    if on_wait is not None and waiting_since_batch != report.batches:
                        # Caught up: one report with a fresh lag, so the last line of a busy
                        # stretch does not stand for the state while it waits.
                        waiting_since_batch = report.batches
                        report.lag, report.waiting = _lag(consumer, placement), True
                        on_wait(report)
                        report.waiting = False
                    if idle.is_over(time.monotonic(), placement.held()):
                        break
                    continue
                idle.record_seen(time.monotonic())
                for partition, messages in polled.items():
                    report.totals.add(
                        _batch(app, sink, settings.topic, partition, messages, alongside)
                    )
                in_hand = False
                if alongside is None:
                    catch_up(app, views, known=known)
                report.last_batch_timestamps = [
                    m.timestamp()[1] for messages in polled.values() for m in messages
                ]
            except StaleViewPosition:
                # Events were stored without their views (a file ingest meanwhile): the batch
                # rolled back; catch the views up, then read it again.
                start_again(in_hand)
                views_behind = True
                continue
            except transient_errors() as error:
                start_again(in_hand)
                report.retries += 1
                report.last_error = f"{type(error).__name__}: {reason_of(error)}"
                outage.wait(error, should_stop)
                continue
            outage.over()
            with contextlib.suppress(KafkaException):
                consumer.commit(asynchronous=True)  # for lag monitoring only: the store decides
            report.batches += 1
            if time.monotonic() - lag_asked_at >= LAG_EVERY_SECONDS:
                report.lag = _lag(consumer, placement)
                lag_asked_at = time.monotonic()
            if on_batch is not None:
                on_batch(report)
    finally:
        consumer.close()
        catalog.close()
        producer.flush(DEAD_LETTER_TIMEOUT_SECONDS)
    return report


@dataclass
class PublishReport:
    events: int = 0
    catalog_versions: int = 0
    partitions: int = 0  # the events topic's, which it may have had before
    invalid: list[tuple[int, str]] = field(default_factory=list)


class Publisher:
    """A producer for `publish`, kept open across publishes by a publisher that sends often
    (its first delivery waits for the broker to give it an idempotent producer's id)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.producer = _producer(settings, PUBLISH_TIMEOUT_SECONDS)

    def send(self, records: Sequence[tuple[str, bytes | None, bytes]]) -> None:
        """Every record (topic, key, value) delivered, in order, or RecordsNotDelivered."""
        sends = [(topic, key, value, None) for topic, key, value in records]
        missing, error = _deliver(self.producer, sends, PUBLISH_TIMEOUT_SECONDS)
        if missing:
            raise RecordsNotDelivered(
                f"{missing} of {len(records)} records were not delivered to "
                f"{self.settings.bootstrap}: {error.str() if error else 'timed out'}"
            )

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.producer.flush(PUBLISH_TIMEOUT_SECONDS)


def publish(
    records: Iterable[RawRecord],
    settings: KafkaSettings,
    validate: bool = True,
    partitions: int = DEFAULT_PARTITIONS,
    publisher: Publisher | None = None,
) -> PublishReport:
    """Produce JSON lines to Kafka keyed by account (catalog versions to their own topic),
    with a producer of its own unless given one.

    With validation (the default) nothing is sent unless every line is valid; without it,
    every line goes out as it is, so the consumer's dead-lettering can be exercised.
    """
    report = PublishReport()
    outgoing: list[tuple[str, bytes | None, bytes]] = []
    for record in records:
        if validate:
            try:
                event = parse_record(record)
            except InvalidEvent as error:
                report.invalid.append((record.position, error.reason))
                continue
            event_type: str | None = event.type
            account_id: str | None = event.account_id
        else:
            event_type, account_id = _peek(record.value)
        topic = settings.catalog_topic if event_type == "catalog.published" else settings.topic
        key = account_id.encode("utf-8") if account_id is not None else None
        outgoing.append((topic, key, record.value))
        if topic == settings.catalog_topic:
            report.catalog_versions += 1
        else:
            report.events += 1
    if report.invalid:
        return PublishReport(invalid=report.invalid)
    # Only the topics written to: a catalog publish makes no events topic of the default name
    # beside the one the consumers read, and the dead-letter topic is the consumer's to make.
    report.partitions = ensure_topics(settings, partitions, only={topic for topic, *_ in outgoing})
    (publisher or Publisher(settings)).send(outgoing)
    return report


def _peek(value: bytes) -> tuple[str | None, str | None]:
    """Type and account of a record that may be garbage (unvalidated publish)."""
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    event_type, account_id = doc.get("type"), doc.get("account_id")
    return (
        event_type if isinstance(event_type, str) else None,
        account_id if isinstance(account_id, str) else None,
    )
