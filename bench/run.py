"""One benchmark run: raw baselines and the ledger, measured on the same machine in one go.

    .venv/bin/python -m bench.run [--accounts 2000] [--events 100000] [--partitions 4] \
        [--uuid-ids]

Needs the real services (bash scripts/postgres.sh start; bash scripts/kafka.sh start). Prints:
raw kafka-python consume rate, raw PostgreSQL batched insert rate, the exactly-once floor (the
records stored as they came with their positions, nothing rated) and the CPU it costs, the
ledger's end-to-end rate (Kafka -> rated -> stored exactly once in PostgreSQL -> views current)
with its ratio to each raw rate, the CPU one event costs the machine, how long the events table
lock was held, event-to-view latency percentiles, replay and audit rates, query latency, and
memory. Nothing is asserted: the machines are shared and noisy, so read ratios, not absolute
figures.
"""

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import psycopg
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as AssignedPartition
from kafka import KafkaConsumer, TopicPartition

from bench.cpu import cpu_budget, machine_cpu_seconds
from bench.replay import AUDIT_PROCESSES, rate
from bench.replay import measure as replay_rates
from bench.scratch import ADMIN_URL, scratch_database, scratch_topics
from bench.traffic import FIRST_PERIOD, account_id, generate
from consumers.kafka import (
    ConsumeReport,
    Publisher,
    consume,
    ensure_topics,
    publish,
)
from consumers.kafka_settings import KafkaSettings
from consumers.pipeline import RawRecord
from ledger.application import LedgerApp
from ledger.recorder_postgres import LedgerPostgresRecorder
from ledger.runtime import tune_for_long_runs
from ledger.store import parse_store_url
from projections.invoices import read_invoices
from projections.store import open_view_store

RAW_BATCH = 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__.split("\n\n")[0],
        epilog="Figures and what they mean: docs/PERFORMANCE.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--accounts", type=int, default=2000, help="accounts in the traffic")
    parser.add_argument(
        "--events", type=int, default=100_000, help="usage events (calls, data records...)"
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topic")
    parser.add_argument(
        "--uuid-ids",
        action="store_true",
        help="event ids as an upstream system makes them (UUIDs) instead of the bench's short ones",
    )
    parser.add_argument(
        "--admin-url",
        default=ADMIN_URL,
        help="a PostgreSQL role with CREATEDB: each step gets a database of its own, dropped after",
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="the Kafka broker")
    parser.add_argument("--output", default="bench/out/latest.json", help="the figures as JSON")
    parser.add_argument(
        "--consumers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="consumer process counts to measure sustained throughput with (e.g. 1,2)",
    )
    args = parser.parse_args(argv)
    tune_for_long_runs()  # as the `ledger` command does

    lines = list(generate(args.accounts, args.events, uuid_ids=args.uuid_ids))
    figures: dict[str, Any] = {
        "records": len(lines),
        "accounts": args.accounts,
        "uuid_ids": args.uuid_ids,
    }
    ids = " (event ids: UUIDs)" if args.uuid_ids else ""
    say(f"bench: {len(lines):,} records for {args.accounts:,} accounts{ids}")
    with scratch_topics(args.bootstrap, prefix="bench-") as names:
        settings = KafkaSettings(bootstrap=args.bootstrap, **names)
        measure(args, settings, lines, figures)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report(figures)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


def measure(
    args: argparse.Namespace, settings: KafkaSettings, lines: list[bytes], figures: dict[str, Any]
) -> None:
    ensure_topics(settings, args.partitions)
    records = [RawRecord(i + 1, line) for i, line in enumerate(lines)]
    start = time.perf_counter()
    published = publish(records, settings, validate=False, partitions=args.partitions)
    figures["publish_per_s"] = rate(len(lines), time.perf_counter() - start)
    events_in_topic = published.events

    figures["raw_kafka_consume_per_s"] = raw_kafka_consume(settings, events_in_topic)
    with scratch_database(args.admin_url) as url:
        figures["raw_postgres_insert_per_s"] = raw_postgres_insert(url, lines)
    with scratch_database(args.admin_url) as url:
        floor_rate, floor_budget = exactly_once_floor(url, settings, events_in_topic)
    figures["exactly_once_floor_per_s"] = floor_rate
    if floor_budget is not None:
        figures["exactly_once_floor_cpu_per_event"] = floor_budget
    with scratch_database(args.admin_url) as url:
        end_to_end(url, settings, events_in_topic, figures)
    figures["ratio_to_raw_kafka"] = round(
        figures["end_to_end_per_s"] / figures["raw_kafka_consume_per_s"], 3
    )
    figures["ratio_to_raw_postgres"] = round(
        figures["end_to_end_per_s"] / figures["raw_postgres_insert_per_s"], 3
    )
    lock = figures["events_table_lock"]
    lock["ratio_to_raw_postgres"] = round(
        lock["most_per_s"] / figures["raw_postgres_insert_per_s"], 2
    )
    for processes in args.consumers:
        with scratch_database(args.admin_url) as url:
            sustained = scale_out(url, settings, events_in_topic, processes)
        if sustained is None:
            continue
        rate_n, budget = sustained
        figures[f"consumers_{processes}_per_s"] = rate_n
        figures[f"consumers_{processes}_ratio_to_raw_kafka"] = round(
            rate_n / figures["raw_kafka_consume_per_s"], 3
        )
        if budget is not None:
            figures[f"consumers_{processes}_cpu_per_event"] = budget
            # Against the ceiling of the same span: a busy moment of the machine moves both.
            figures[f"consumers_{processes}_share_of_ceiling"] = round(
                rate_n / budget["ceiling_per_s"], 3
            )


def raw_kafka_consume(settings: KafkaSettings, expected: int) -> float:
    """kafka-python reading the events topic, doing nothing with the records."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap, enable_auto_commit=False, group_id=None
    )
    partitions = [
        TopicPartition(settings.topic, p)
        for p in sorted(consumer.partitions_for_topic(settings.topic) or ())
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen = 0
    start = time.perf_counter()
    while seen < expected:
        for messages in consumer.poll(timeout_ms=1000, max_records=5000).values():
            seen += len(messages)
    elapsed = time.perf_counter() - start
    consumer.close()
    return rate(seen, elapsed)


def raw_postgres_insert(url: str, lines: list[bytes]) -> float:
    """psycopg inserting the same records as rows, 1,000 per transaction (no rating, no views)."""
    with psycopg.connect(url) as db:
        db.execute(
            "CREATE TABLE raw_events (id BIGSERIAL PRIMARY KEY, stream UUID NOT NULL, "
            "version INTEGER NOT NULL, topic TEXT NOT NULL, state BYTEA NOT NULL, "
            "UNIQUE (stream, version))"
        )
        db.commit()
        rows = [(uuid.uuid4(), 1, "raw", line) for line in lines]
        start = time.perf_counter()
        for i in range(0, len(rows), RAW_BATCH):
            with db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO raw_events (stream, version, topic, state) VALUES (%s,%s,%s,%s)",
                    rows[i : i + RAW_BATCH],
                )
            db.commit()
        return rate(len(rows), time.perf_counter() - start)


class FloorStreams:
    """The floor's streams, one an account: the row of each record, at its stream's next
    version."""

    def __init__(self) -> None:
        self._ids: dict[str, uuid.UUID] = {}
        self._versions: dict[uuid.UUID, int] = {}

    def row(self, record: bytes) -> tuple[uuid.UUID, int, bytes]:
        try:
            account = str(orjson.loads(record)["account_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            account = ""  # a bad record: kept in a stream of its own
        stream = self._ids.get(account)
        if stream is None:
            stream = self._ids[account] = uuid.uuid5(uuid.NAMESPACE_URL, f"floor:{account}")
        version = self._versions[stream] = self._versions.get(stream, 0) + 1
        return stream, version, record


def exactly_once_floor(
    url: str, settings: KafkaSettings, expected: int
) -> tuple[float, dict[str, float] | None]:
    """The least a Kafka consumer storing exactly once does: the ledger's Kafka client reading
    the topic, each partition's records of a poll stored as they came, one row each in their
    account's stream (its account id decoded), in one transaction with the partition's next
    offset. No validation, rating, chain or views. Its rate, and the CPU per event it costs
    this process, PostgreSQL and Kafka: what every event of the ledger costs the machine at
    the least, the rest being the ledger's own work."""
    with psycopg.connect(url) as db:
        db.execute(
            "CREATE TABLE floor_events (stream UUID NOT NULL, version BIGINT NOT NULL, "
            "state BYTEA NOT NULL, id BIGSERIAL, PRIMARY KEY (stream, version))"
        )
        db.execute("CREATE TABLE floor_positions (partition INTEGER PRIMARY KEY, next BIGINT)")
        db.commit()
        consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap,
                "group.id": f"{settings.group}-floor",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        partitions = consumer.list_topics(settings.topic, timeout=10).topics[settings.topic]
        consumer.assign([AssignedPartition(settings.topic, p, 0) for p in partitions.partitions])
        streams = FloorStreams()
        seen = 0
        machine_before = machine_cpu_seconds({os.getpid()})
        start = time.perf_counter()
        while seen < expected:
            by_partition: dict[int | None, list[Any]] = {}
            for message in consumer.consume(5000, 1.0):
                if message.error() is not None:
                    raise RuntimeError(f"the floor's consumer: {message.error()}")
                by_partition.setdefault(message.partition(), []).append(message)
            for partition, messages in by_partition.items():
                with db.transaction(), db.cursor() as cur:
                    with cur.copy(
                        "COPY floor_events (stream, version, state) FROM STDIN (FORMAT BINARY)"
                    ) as copy:
                        copy.set_types(["uuid", "int8", "bytea"])
                        for message in messages:
                            copy.write_row(streams.row(message.value()))
                    cur.execute(
                        "INSERT INTO floor_positions VALUES (%s, %s) ON CONFLICT (partition) "
                        "DO UPDATE SET next = excluded.next",
                        (partition, messages[-1].offset() + 1),
                    )
                seen += len(messages)
        elapsed = time.perf_counter() - start
        machine_after = machine_cpu_seconds({os.getpid()})
        consumer.close()
    return rate(seen, elapsed), cpu_budget(seen, machine_before, machine_after)


def end_to_end(url: str, settings: KafkaSettings, expected: int, figures: dict[str, Any]) -> None:
    """The ledger consuming the topic into PostgreSQL with views kept current."""
    store = parse_store_url(url)
    app = LedgerApp(store)
    rss: list[float] = []
    done = {"records": 0, "last_at": 0.0}

    def on_batch(progress: ConsumeReport) -> None:
        done["records"] = progress.totals.consumed
        done["last_at"] = time.perf_counter()
        while len(rss) < 4 and progress.totals.consumed >= expected * (len(rss) + 1) / 4:
            rss.append(current_rss_mb())

    with open_view_store(store) as views:
        machine_before = machine_cpu_seconds({os.getpid()})
        start, cpu = time.perf_counter(), time.process_time()
        result = consume(
            app,
            views,
            settings,
            until_idle=3.0,
            should_stop=lambda: done["records"] >= expected,
            on_batch=on_batch,
        )
        consumer_cpu = time.process_time() - cpu
        machine_after = machine_cpu_seconds({os.getpid()})
        elapsed = done["last_at"] - start
        figures["end_to_end_per_s"] = rate(result.totals.consumed, elapsed)
        # Per second of this process's own CPU: steadier than wall time on a shared machine.
        figures["end_to_end_per_cpu_s"] = rate(result.totals.consumed, consumer_cpu)
        budget = cpu_budget(result.totals.consumed, machine_before, machine_after)
        if budget is not None:
            figures["cpu_per_event"] = budget
        figures["events_table_lock"] = lock_figures(app, elapsed)
        figures["end_to_end_seconds"] = round(elapsed, 2)
        figures["applied"] = result.totals.applied
        figures["dead_lettered"] = len(result.totals.dead_letters)
        figures["rss_mb_at_quarters"] = rss

        figures["event_to_view_ms"] = latency(app, settings, views)

        log = replay_rates(app)
        figures["replay_per_s"] = log["replay"]["per_s"]
        figures["replay_per_cpu_s"] = log["replay"]["per_cpu_s"]
        figures["audit_per_s"] = log["audit"]["per_s"]
        figures["audit_per_cpu_s"] = log["audit"]["per_cpu_s"]
        figures["audit_in_parts_per_s"] = log["audit_in_parts"]["per_s"]
        figures["audit_in_parts_per_cpu_s"] = log["audit_in_parts"]["per_cpu_s"]

        figures["query_ms"] = query_latency(views, figures["accounts"])


def lock_figures(app: LedgerApp, elapsed: float) -> dict[str, float]:
    """How long the consumer held the events table lock: writers of the log take turns under
    it, so however many consumers run, the log takes no more events a second than it allows."""
    recorder = app.recorder
    assert isinstance(recorder, LedgerPostgresRecorder)
    use = recorder.lock_use
    most = use.events_per_s()
    assert most is not None, "the run stored events"
    return {"held_s": round(use.seconds, 2), "of_s": round(elapsed, 2), "most_per_s": round(most)}


WATCH_SECONDS = 0.05  # how often the scale-out run counts the records stored


def scale_out(
    url: str, settings: KafkaSettings, expected: int, processes: int
) -> tuple[float, dict[str, float] | None] | None:
    """Sustained rate of `processes` consumer processes in one group, each rating, storing
    and writing views: from the moment every one has committed a batch (the group is settled)
    until every record is stored; with the CPU budget of that span. None: too few records to
    settle before the end."""
    LedgerApp(parse_store_url(url))  # the schema, before the processes race for it
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    started = context.Value("i", 0)
    group = replace(settings, group=f"{settings.group}-x{processes}")
    workers = [
        context.Process(target=_consumer_process, args=(url, group, stop, started))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    settled_at, settled_count = None, 0
    pids = {worker.pid for worker in workers if worker.pid is not None}
    machine_at_settle: dict[str, float] | None = None
    machine_at_end: dict[str, float] | None = None
    # One connection for the whole watch, polled every 50 ms: connecting anew each time took
    # the consumers' CPU (a PostgreSQL backend started per poll) and lowered their rate.
    try:
        with psycopg.connect(url, autocommit=True) as db:
            while True:
                count = _stored_records(db, settings.topic)
                now = time.perf_counter()
                if settled_at is None and started.value >= processes:
                    settled_at, settled_count = now, count
                    machine_at_settle = machine_cpu_seconds(pids)
                if count >= expected:
                    machine_at_end = machine_cpu_seconds(pids)
                    break
                if not any(worker.is_alive() for worker in workers):
                    raise RuntimeError("every consumer process stopped before the end")
                time.sleep(WATCH_SECONDS)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    if settled_at is None or count - settled_count < expected // 10:
        say(f"bench: too few records to measure {processes} consumers once settled")
        return None
    say(f"bench: {processes} consumer(s) settled with {settled_count:,} of {expected:,} stored")
    budget = cpu_budget(expected - settled_count, machine_at_settle, machine_at_end)
    return rate(expected - settled_count, now - settled_at), budget


def _consumer_process(url: str, settings: KafkaSettings, stop: Any, started: Any) -> None:
    tune_for_long_runs()
    store = parse_store_url(url)
    app = LedgerApp(store)
    first = {"batch": True}

    def on_batch(progress: ConsumeReport) -> None:
        if first["batch"] and progress.totals.consumed:
            first["batch"] = False
            with started.get_lock():
                started.value += 1

    with open_view_store(store) as views:
        consume(app, views, settings, should_stop=stop.is_set, on_batch=on_batch)


def _stored_records(db: psycopg.Connection[Any], topic: str) -> int:
    """Records consumed and stored: the sum of the partitions' stored next offsets."""
    row = db.execute(
        "SELECT coalesce(sum(n), 0) FROM (SELECT max(notification_id) AS n "
        "FROM ledger_tracking WHERE application_name LIKE %s GROUP BY application_name) p",
        (f"kafka:{topic}:%",),
    ).fetchone()
    return int(row[0]) if row else 0


LATENCY_WAIT_SECONDS = 60  # the longest the trickle's records may take to reach the views


def latency(app: LedgerApp, settings: KafkaSettings, views: Any) -> dict[str, float]:
    """Publish a trickle while consuming: event (Kafka timestamp) to views current."""
    samples: list[float] = []
    stop = threading.Event()

    def on_batch(progress: ConsumeReport) -> None:
        now_ms = time.time() * 1000
        samples.extend(now_ms - ts for ts in progress.last_batch_timestamps)

    trickle = list(generate(50, 2000, seed=99))[1:]  # new accounts, no catalog again
    records = [
        RawRecord(i, line.replace(b'"ACC-', b'"LAT-').replace(b'"u', b'"lat-u'))
        for i, line in enumerate(trickle)
    ]
    consumer = threading.Thread(
        target=consume,
        kwargs={
            "app": app,
            "views": views,
            "settings": settings,
            "should_stop": stop.is_set,
            "on_batch": on_batch,
        },
    )
    # One producer for the whole trickle, as an upstream system keeps one: a record's Kafka
    # timestamp is taken when it is sent, so a producer made per burst would add its own
    # start (an idempotent producer's id from the broker) to every burst's latency.
    with Publisher(settings) as publisher:
        consumer.start()
        time.sleep(2)
        for i in range(0, len(records), 50):  # about 1,000 events/s in bursts of 50
            publish(records[i : i + 50], settings, validate=False, publisher=publisher)
            time.sleep(0.05)
    # Until every trickled record is in the views: a consumer slow to join the group must not
    # leave the figures empty or cut off the slowest records.
    deadline = time.monotonic() + LATENCY_WAIT_SECONDS
    while len(samples) < len(records) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    consumer.join()
    if not samples:
        return {}
    samples.sort()
    return {
        "p50": round(statistics.median(samples), 1),
        "p95": round(samples[int(len(samples) * 0.95) - 1], 1),
        "p99": round(samples[int(len(samples) * 0.99) - 1], 1),
        "max": round(samples[-1], 1),
        "samples": len(samples),
    }


def query_latency(views: Any, accounts: int) -> dict[str, float]:
    """Support queries in the process: a balance and a whole invoice read."""
    timings: list[float] = []
    for i in range(1000):
        account = account_id((i * 7919) % accounts)
        start = time.perf_counter()
        views.get("balance", account)
        read_invoices(views, account, FIRST_PERIOD)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return {"p50": round(statistics.median(timings), 2), "p99": round(timings[989], 2)}


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return round(pages * resource.getpagesize() / 1024 / 1024, 1)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report(figures: dict[str, Any]) -> None:
    rows: list[tuple[str, Callable[[Any], str], str]] = [
        ("records", str, "records"),
        ("raw_kafka_consume_per_s", fmt_rate, "raw kafka-python consume"),
        ("raw_postgres_insert_per_s", fmt_rate, "raw PostgreSQL batched insert"),
        ("exactly_once_floor_per_s", fmt_rate, "exactly-once floor (Kafka -> PostgreSQL, as is)"),
        (
            "exactly_once_floor_cpu_per_event",
            fmt_budget,
            "  CPU per event (consumer, PostgreSQL, Kafka)",
        ),
        ("end_to_end_per_s", fmt_rate, "ledger end to end (Kafka -> PostgreSQL -> views)"),
        ("ratio_to_raw_kafka", str, "  ratio to raw Kafka consume"),
        ("ratio_to_raw_postgres", str, "  ratio to raw PostgreSQL insert"),
        ("end_to_end_per_cpu_s", fmt_rate, "  per second of the consumer's own CPU"),
        ("cpu_per_event", fmt_budget, "  CPU per event (consumer, PostgreSQL, Kafka)"),
        ("events_table_lock", fmt_lock, "  events table locked"),
        ("consumers_1_per_s", fmt_rate, "sustained, 1 consumer process"),
        ("consumers_1_ratio_to_raw_kafka", str, "  ratio to raw Kafka consume"),
        ("consumers_1_cpu_per_event", fmt_budget, "  CPU per event (consumers, PostgreSQL, Kafka)"),
        ("consumers_1_share_of_ceiling", str, "  share of what the cores could carry"),
        ("consumers_2_per_s", fmt_rate, "sustained, 2 consumer processes"),
        ("consumers_2_ratio_to_raw_kafka", str, "  ratio to raw Kafka consume"),
        ("consumers_2_cpu_per_event", fmt_budget, "  CPU per event (consumers, PostgreSQL, Kafka)"),
        ("consumers_2_share_of_ceiling", str, "  share of what the cores could carry"),
        ("event_to_view_ms", json.dumps, "event-to-view latency (ms)"),
        ("replay_per_s", fmt_rate, "replay (fold every stored event)"),
        ("replay_per_cpu_s", fmt_rate, "  per second of its own CPU"),
        ("audit_per_s", fmt_rate, "audit (chains, intake, views)"),
        ("audit_per_cpu_s", fmt_rate, "  per second of its own CPU"),
        ("audit_in_parts_per_s", fmt_rate, f"audit in {AUDIT_PROCESSES} processes"),
        ("audit_in_parts_per_cpu_s", fmt_rate, "  per second of their CPU"),
        ("query_ms", json.dumps, "query: balance + invoice (ms)"),
        ("rss_mb_at_quarters", json.dumps, "RSS at 25/50/75/100% of the run (MB)"),
        ("peak_rss_mb", str, "peak RSS (MB)"),
    ]
    width = max(len(label) for _, _, label in rows)
    for key, show, label in rows:
        if key in figures:
            print(f"{label:<{width}}  {show(figures[key])}")


def fmt_rate(value: float) -> str:
    return f"{value:,.0f} /s"


def fmt_budget(budget: dict[str, float]) -> str:
    return (
        f"{budget['consumer_us']:,.0f} + {budget['postgresql_us']:,.0f} + "
        f"{budget['kafka_us']:,.0f} = {budget['total_us']:,.0f} us; "
        f"{budget['cores']:.0f} cores carry at most {budget['ceiling_per_s']:,.0f} /s"
    )


def fmt_lock(lock: dict[str, float]) -> str:
    return (
        f"{lock['held_s']:.2f} s of {lock['of_s']:.2f} s; "
        f"one writer at a time, the log takes at most {lock['most_per_s']:,.0f} /s "
        f"({lock['ratio_to_raw_postgres']} of raw insert)"
    )


if __name__ == "__main__":
    main()
