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
from kafka.errors import TopicAlreadyExistsError

from consumers.pipeline import RawRecord, process_batch
from ledger.application import BatchCounts, DeadLetter, LedgerApp
from ledger.contract import parse_event
from ledger.errors import InvalidEvent
from projections.runner import catch_up
from projections.store import ViewStore

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
MAX_POLL_RECORDS = 5000  # explicit limit on one batch


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
            for letter in letters:
                self.producer.send(
                    self.topic,
                    value=letter.value,
                    headers=[
                        ("reason", letter.reason.encode("utf-8")),
                        ("source-topic", source_topic.encode("utf-8")),
                        ("source-partition", str(partition).encode("ascii")),
                        ("source-offset", str(letter.position).encode("ascii")),
                    ],
                )
            self.producer.flush()

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
    app: LedgerApp, sink: DeadLetterTopic, topic: str, partition: int, messages: Sequence[object]
) -> BatchCounts:
    records = [RawRecord(m.offset, m.value or b"") for m in messages]  # type: ignore[attr-defined]
    name = tracking_name(topic, partition)
    return process_batch(
        app,
        name,
        records,
        sink.sink_for(topic, partition),
        Tracking(application_name=name, notification_id=records[-1].position + 1),
    )


def read_catalog_topic(
    app: LedgerApp, settings: KafkaSettings, sink: DeadLetterTopic, consumer: KafkaConsumer
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
            totals.add(_batch(app, sink, tp.topic, tp.partition, messages))
    return totals


class _SeekToStoredPosition(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, app: LedgerApp, consumer: KafkaConsumer) -> None:
        self.app = app
        self.consumer = consumer

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Another consumer may now write these accounts: cached state could go stale.
        self.app.forget_cached()

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.app.forget_cached()
        for tp in assigned:
            self.consumer.seek(tp, self.app.next_position(tracking_name(tp.topic, tp.partition)))


@dataclass
class ConsumeReport:
    totals: BatchCounts = field(default_factory=BatchCounts)
    catalog: BatchCounts = field(default_factory=BatchCounts)
    batches: int = 0


def consume(
    app: LedgerApp,
    views: ViewStore,
    settings: KafkaSettings,
    until_idle: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[ConsumeReport], None] | None = None,
) -> ConsumeReport:
    """Consume until stopped (or until no record came for `until_idle` seconds)."""
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
        client_id="ledger",
    )
    try:
        report.catalog.add(read_catalog_topic(app, settings, sink, catalog_consumer))
        catch_up(app, views)
        consumer.subscribe([settings.topic], listener=_SeekToStoredPosition(app, consumer))
        last_record_at = time.monotonic()
        while not should_stop():
            polled = consumer.poll(timeout_ms=500)
            if not polled:
                if until_idle is not None and time.monotonic() - last_record_at >= until_idle:
                    break
                report.catalog.add(read_catalog_topic(app, settings, sink, catalog_consumer))
                continue
            last_record_at = time.monotonic()
            report.catalog.add(read_catalog_topic(app, settings, sink, catalog_consumer))
            for tp, messages in polled.items():
                report.totals.add(_batch(app, sink, tp.topic, tp.partition, messages))
            catch_up(app, views)
            consumer.commit()
            report.batches += 1
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
