"""A source that runs for months: its intake loads from a snapshot, not from its whole stream.

A source's intake (G2) gains one stored event per batch for as long as the source runs, and a
consumer loads it again after every restart, rebalance or failed batch. Loading it from a
snapshot taken every INTAKE_SNAPSHOT_INTERVAL batches keeps that to a bounded read.
"""

import sqlite3
from pathlib import Path

import pytest

from consumers.pipeline import RawRecord, process_batch
from ledger.application import INTAKE_SNAPSHOT_INTERVAL, LedgerApp
from ledger.ids import intake_stream_id
from ledger.store import parse_store_url
from tests.cli_helpers import run_json
from tests.factories import catalog_published, event, line, opened

SOURCE = "file:months.jsonl"


def ingest_one_record_batches(url: str, batches: int) -> list[RawRecord]:
    """The catalog and an account, then `batches` recharges, one batch each."""
    records = [
        RawRecord(1, line(catalog_published()).encode()),
        RawRecord(2, line(opened("ACC-LONG")).encode()),
    ] + [
        RawRecord(3 + n, line(event("balance.recharged", "ACC-LONG", amount="1.00")).encode())
        for n in range(batches)
    ]
    app = LedgerApp(parse_store_url(url))
    process_batch(app, SOURCE, records[:2], lambda _: None)
    for record in records[2:]:
        process_batch(app, SOURCE, [record], lambda _: None)
    return records


def snapshot_versions(app: LedgerApp) -> list[int]:
    assert app.snapshots is not None
    return [s.originator_version for s in app.snapshots.get(intake_stream_id(SOURCE))]


def test_an_intake_is_snapshotted_every_interval_of_batches(sqlite_url: str) -> None:
    batches = 2 * INTAKE_SNAPSHOT_INTERVAL + 30
    ingest_one_record_batches(sqlite_url, batches)
    app = LedgerApp(parse_store_url(sqlite_url))
    # Version 1 is the intake's start; each batch adds one. A snapshot is of stored state,
    # taken just before the batch that would go past the interval is appended.
    assert snapshot_versions(app) == [INTAKE_SNAPSHOT_INTERVAL, 2 * INTAKE_SNAPSHOT_INTERVAL]
    intake = app.intake(SOURCE)
    assert intake is not None
    assert intake.version == 1 + 1 + batches  # started, the first batch, one per recharge
    assert intake.last_position == 2 + batches
    assert (intake.consumed, intake.applied) == (2 + batches, 2 + batches)


def test_an_intake_loads_from_its_latest_snapshot_not_its_whole_stream(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The intake's events before its latest snapshot are deleted from the store: a process
    that reads them to load the intake could not give the same intake."""
    batches = INTAKE_SNAPSHOT_INTERVAL + 20
    ingest_one_record_batches(sqlite_url, batches)
    before = LedgerApp(parse_store_url(sqlite_url)).intake(SOURCE)
    assert before is not None
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        deleted = db.execute(
            "DELETE FROM stored_events WHERE originator_id = ? AND originator_version <= ?",
            (intake_stream_id(SOURCE).hex, INTAKE_SNAPSHOT_INTERVAL),
        ).rowcount
    assert deleted == INTAKE_SNAPSHOT_INTERVAL
    after = LedgerApp(parse_store_url(sqlite_url)).intake(SOURCE)
    assert after is not None
    assert vars(after) == vars(before)
    # The next batch appends after it as if nothing had been deleted.
    more = event("balance.recharged", "ACC-LONG", amount="1.00")
    app = LedgerApp(parse_store_url(sqlite_url))
    counts = process_batch(app, SOURCE, [RawRecord(3 + batches, line(more).encode())], print)
    assert counts.applied == 1
    reloaded = LedgerApp(parse_store_url(sqlite_url)).intake(SOURCE)
    assert reloaded is not None and reloaded.version == before.version + 1


def test_a_batch_retried_after_its_intake_was_snapshotted_does_not_snapshot_it_again(
    sqlite_url: str,
) -> None:
    """The snapshot is written before the batch's events; if the batch then fails, the source
    retries it in a process that forgot its cache, and the snapshot is already there."""
    ingest_one_record_batches(sqlite_url, INTAKE_SNAPSHOT_INTERVAL - 2)
    app = LedgerApp(parse_store_url(sqlite_url))
    intake = app.intake(SOURCE)
    assert intake is not None and intake.version == INTAKE_SNAPSHOT_INTERVAL
    app.snapshot_intake_if_due(SOURCE)  # as the failed attempt did
    app.forget_cached()  # as a failed batch does
    retry = event("balance.recharged", "ACC-LONG", amount="1.00")
    position = INTAKE_SNAPSHOT_INTERVAL + 1
    counts = process_batch(app, SOURCE, [RawRecord(position, line(retry).encode())], print)
    assert counts.applied == 1
    assert snapshot_versions(app) == [INTAKE_SNAPSHOT_INTERVAL]


def test_an_audit_of_a_long_running_source_adds_up(sqlite_url: str) -> None:
    """Snapshots are not ledger events: the audit's intake tally still reads every batch."""
    batches = INTAKE_SNAPSHOT_INTERVAL + 5
    ingest_one_record_batches(sqlite_url, batches)
    audit = run_json("--store", sqlite_url, "audit")
    assert audit["adds_up"] is True, audit["findings"]
    (source,) = [s for s in audit["intake"]["sources"] if s["source"] == SOURCE]
    assert (source["consumed"], source["applied"]) == (2 + batches, 2 + batches)


@pytest.mark.postgres
def test_an_intake_on_postgresql_is_snapshotted_and_loads_from_it(postgres_url: str) -> None:
    batches = INTAKE_SNAPSHOT_INTERVAL + 3
    ingest_one_record_batches(postgres_url, batches)
    app = LedgerApp(parse_store_url(postgres_url))
    assert snapshot_versions(app) == [INTAKE_SNAPSHOT_INTERVAL]
    intake = app.intake(SOURCE)
    assert intake is not None
    assert (intake.version, intake.last_position) == (2 + batches, 2 + batches)
