"""Kafka ingestion: the same pipeline as files, exactly once through stored tracking (G1-G3).

Positions live in the ledger's store, not in Kafka: each partition batch is committed with a
tracking record `kafka:<topic>:<partition>` = next offset, in the same transaction as the
ledger events it produced. On every assignment the consumer seeks to that stored position.
Offsets are also committed to Kafka after each batch, but only so lag can be monitored.
"""

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import Tracking
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, TopicAlreadyExistsError

from consumers.pipeline import STORE_ERRORS, RawRecord, process_batch
from ledger.application import BatchCounts, DeadLetter, LedgerApp
from ledger.contract import parse_event
from ledger.errors import InvalidEvent, LedgerError
from projections.projection import KnownDocuments
from projections.runner import ViewsAlongside, catch_up
from projections.store import PostgresViewStore, StaleViewPosition, ViewStore

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
MAX_POLL_RECORDS = 5000  # explicit limit on one batch
DEAD_LETTER_TIMEOUT_SECONDS = 30.0
# A consumer that dies is noticed after this long and its partitions move to the others.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 3_000


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = field(
        default_factory=lambda: os.environ.get("LEDGER_KAFKA", DEFAULT_BOOTSTRAP)
    )
    topic: str = "ledger.events"
    catalog_topic: str = "ledger.catalog"
    dead_letter_topic: str = "ledger.events.deadletter"
    group: str = "ledger"


def tracking_name(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


def ensure_topics(settings: KafkaSettings, partitions: int) -> None:
    """Create the events, catalog and dead-letter topics when they do not exist yet."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="ledger-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(settings.topic, partitions, 1),
            # One partition: catalog versions are global and read in publication order (C1).
            NewTopic(settings.catalog_topic, 1, 1),
            NewTopic(settings.dead_letter_topic, 1, 1),
        ]
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            # Another process may create them in the meantime.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()


class DeadLetterTopic:
    """Produces dead letters with the original bytes; reason and origin travel in headers."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def sink_for(self, source_topic: str, partition: int) -> Callable[[Sequence[DeadLetter]], None]:
        def sink(letters: Sequence[DeadLetter]) -> None:
            sent = []
            for letter in letters:
                future = self.producer.send(
                    self.topic,
                    value=letter.value,
                    headers=[
                        ("reason", letter.reason.encode("utf-8")),
                        ("source-topic", source_topic.encode("utf-8")),
                        ("source-partition", str(partition).encode("ascii")),
                        ("source-offset", str(letter.position).encode("ascii")),
                    ],
                )
                sent.append(future)
            self.producer.flush()
            for future in sent:
                # A dead letter the broker did not take fails the batch (KafkaError): it is
                # read again later rather than committed without its dead letter (G2).
                future.get(timeout=DEAD_LETTER_TIMEOUT_SECONDS)

        return sink


def _producer(settings: KafkaSettings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=4 * 1024 * 1024,
        client_id="ledger",
    )


def _batch(
    app: LedgerApp,
    sink: DeadLetterTopic,
    topic: str,
    partition: int,
    messages: Sequence[object],
    views: ViewsAlongside | None,
) -> BatchCounts:
    records = [RawRecord(m.offset, m.value or b"") for m in messages]  # type: ignore[attr-defined]
    name = tracking_name(topic, partition)
    return process_batch(
        app,
        name,
        records,
        sink.sink_for(topic, partition),
        Tracking(application_name=name, notification_id=records[-1].position + 1),
        views,
    )


def read_catalog_topic(
    app: LedgerApp,
    settings: KafkaSettings,
    sink: DeadLetterTopic,
    consumer: KafkaConsumer,
    views: ViewsAlongside | None = None,
) -> BatchCounts:
    """Read the catalog topic from the stored position to its current end (C1)."""
    totals = BatchCounts()
    partitions = consumer.partitions_for_topic(settings.catalog_topic) or set()
    assigned = [TopicPartition(settings.catalog_topic, p) for p in sorted(partitions)]
    if not assigned:
        return totals
    if set(consumer.assignment()) != set(assigned):
        consumer.assign(assigned)
    for tp in assigned:
        consumer.seek(tp, app.next_position(tracking_name(tp.topic, tp.partition)))
    end = consumer.end_offsets(assigned)
    while any(consumer.position(tp) < end[tp] for tp in assigned):
        for tp, messages in consumer.poll(timeout_ms=1000, max_records=MAX_POLL_RECORDS).items():
            totals.add(_batch(app, sink, tp.topic, tp.partition, messages, views))
    return totals


class _SeekToStoredPosition(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, app: LedgerApp, consumer: KafkaConsumer, forget: Callable[[], None]) -> None:
        self.app = app
        self.consumer = consumer
        self.forget = forget

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Another consumer may now write these accounts: cached state could go stale.
        self.forget()

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.forget()
        for tp in assigned:
            self.consumer.seek(tp, self.app.next_position(tracking_name(tp.topic, tp.partition)))


# What passes: the store or the broker briefly away, or another consumer that wrote a
# partition first in a rebalance race (a version or tracking conflict). The batch was not
# stored, so it is read again from the stored position once the outage is over.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (*STORE_ERRORS, KafkaError)
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
                f"gave up after {self.limit:.0f} s of {type(error).__name__}: {error}"
            ) from error
        delay = min(0.25 * 2**self.attempts, 5.0)
        self.attempts += 1
        deadline = now + delay
        while time.monotonic() < deadline and not should_stop():
            time.sleep(0.05)

    def over(self) -> None:
        self.since = None
        self.attempts = 0


def _rewind(app: LedgerApp, consumer: KafkaConsumer, tp: TopicPartition, first: int) -> None:
    """Read a partition again from the stored position (or, with the store away, from the
    first record of the batch that did not commit)."""
    try:
        position = app.next_position(tracking_name(tp.topic, tp.partition))
    except TRANSIENT_ERRORS:
        position = first
    with contextlib.suppress(KafkaError, AssertionError, ValueError):
        consumer.seek(tp, position)  # a partition revoked meanwhile cannot be sought


def _lag(consumer: KafkaConsumer) -> int | None:
    assigned = list(consumer.assignment())
    if not assigned:
        return 0
    try:
        ends = consumer.end_offsets(assigned)
        return int(sum(max(ends[tp] - consumer.position(tp), 0) for tp in assigned))
    except (KafkaError, AssertionError, KeyError):
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
        self.held: frozenset[TopicPartition] = frozenset()

    def record_seen(self, now: float) -> None:
        self.since = now

    def is_over(self, now: float, assignment: Iterable[TopicPartition]) -> bool:
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
) -> ConsumeReport:
    """Consume until stopped (or until no record came for `until_idle` seconds while this
    consumer held partitions: joining the group and rebalancing do not count as idle).

    Stopping (SIGTERM, Ctrl-C) is checked between batches: the batch in hand is finished and
    committed first. Transient failures of the store or broker are retried with back-off.
    """
    report = ConsumeReport()
    producer = _producer(settings)
    sink = DeadLetterTopic(producer, settings.dead_letter_topic)
    catalog_consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id="ledger-catalog",
    )
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=settings.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=MAX_POLL_RECORDS,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        client_id="ledger",
    )
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

    def start_again(pending: dict[TopicPartition, int]) -> None:
        """After a batch that did not commit: drop what memory holds, read it again."""
        forget()
        for tp, first in pending.items():
            _rewind(app, consumer, tp, first)

    try:
        subscribed = False
        views_behind = True  # until the first catch-up
        idle = IdleClock(until_idle, started_at=time.monotonic())
        lag_asked_at = 0.0
        while not should_stop():
            pending: dict[TopicPartition, int] = {}  # polled, not yet committed: first offset
            try:
                if views_behind:
                    catch_up(app, views, known=known)
                    views_behind = False
                report.catalog.add(
                    read_catalog_topic(app, settings, sink, catalog_consumer, alongside)
                )
                if not subscribed:
                    consumer.subscribe(
                        [settings.topic], listener=_SeekToStoredPosition(app, consumer, forget)
                    )
                    subscribed = True
                polled = consumer.poll(timeout_ms=500)
                if not polled:
                    outage.over()
                    if idle.is_over(time.monotonic(), consumer.assignment()):
                        break
                    continue
                idle.record_seen(time.monotonic())
                pending = {tp: messages[0].offset for tp, messages in polled.items()}
                for tp, messages in polled.items():
                    report.totals.add(
                        _batch(app, sink, tp.topic, tp.partition, messages, alongside)
                    )
                    del pending[tp]
                if alongside is None:
                    catch_up(app, views, known=known)
                report.last_batch_timestamps = [
                    m.timestamp for messages in polled.values() for m in messages
                ]
            except StaleViewPosition:
                # Events were stored without their views (a file ingest meanwhile): the batch
                # rolled back; catch the views up, then read it again.
                start_again(pending)
                views_behind = True
                continue
            except TRANSIENT_ERRORS as error:
                start_again(pending)
                report.retries += 1
                report.last_error = f"{type(error).__name__}: {error}"
                outage.wait(error, should_stop)
                continue
            outage.over()
            with contextlib.suppress(KafkaError):
                consumer.commit()  # for lag monitoring only; correctness reads the store
            report.batches += 1
            if time.monotonic() - lag_asked_at >= LAG_EVERY_SECONDS:
                report.lag = _lag(consumer)
                lag_asked_at = time.monotonic()
            if on_batch is not None:
                on_batch(report)
    finally:
        consumer.close()
        catalog_consumer.close()
        producer.close()
    return report


@dataclass
class PublishReport:
    events: int = 0
    catalog_versions: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


def publish(
    records: Iterable[RawRecord],
    settings: KafkaSettings,
    validate: bool = True,
    partitions: int = 3,
) -> PublishReport:
    """Produce JSON lines to Kafka keyed by account (catalog versions to their own topic).

    With validation (the default) nothing is sent unless every line is valid; without it,
    every line goes out as it is, so the consumer's dead-lettering can be exercised.
    """
    report = PublishReport()
    outgoing: list[tuple[str, bytes | None, bytes]] = []
    for record in records:
        if validate:
            try:
                event = parse_event(record.value)
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
    if report.invalid:
        return report
    ensure_topics(settings, partitions)
    producer = _producer(settings)
    try:
        for topic, key, value in outgoing:
            producer.send(topic, key=key, value=value)
            if topic == settings.catalog_topic:
                report.catalog_versions += 1
            else:
                report.events += 1
        producer.flush()
    finally:
        producer.close()
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
