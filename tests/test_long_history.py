"""A ledger that runs for months: what grows with the log stays bounded in a consumer.

- A source's intake (G2) gains one stored event per batch for as long as the source runs, and
  a consumer loads it again after every restart, rebalance or failed batch. It loads from a
  snapshot taken every INTAKE_SNAPSHOT_INTERVAL batches.
- An account holds the id of every event it applied (G1). The accounts a process keeps are
  bounded by their count and by those events, and trimmed only between batches.
"""

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from consumers.pipeline import RawRecord, process_batch
from ledger.application import INTAKE_SNAPSHOT_INTERVAL, LedgerApp
from ledger.ids import intake_stream_id
from ledger.store import memory_store, parse_store_url
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


def recharges(*accounts: str, amount: str = "1.00") -> list[dict[str, object]]:
    return [event("balance.recharged", account, amount=amount) for account in accounts]


def records(docs: list[dict[str, object]], first: int) -> list[RawRecord]:
    return [RawRecord(first + n, line(doc).encode()) for n, doc in enumerate(docs)]


def opened_accounts(app: LedgerApp, count: int) -> list[str]:
    accounts = [f"ACC-{n}" for n in range(count)]
    docs = [catalog_published(), *(opened(account) for account in accounts)]
    assert process_batch(app, SOURCE, records(docs, 1), print).applied == len(docs)
    return accounts


def held_by_cached_accounts(app: LedgerApp) -> int:
    return sum(account.applied_events for account in app._accounts.values())


def test_a_batch_touching_more_accounts_than_the_cache_keeps_applies_every_record() -> None:
    """Forgetting an account the batch had moved would read it back without the batch's
    event, and the batch would store two events of one version: it failed on every retry."""
    app = LedgerApp(memory_store())
    app.max_cached_accounts = 3
    accounts = opened_accounts(app, 5)
    app.forget_cached()
    docs = [*recharges(*accounts), *recharges(accounts[0], amount="2.00")]
    counts = process_batch(app, SOURCE, records(docs, 100), print)
    assert (counts.applied, counts.duplicates) == (6, 0)
    assert len(app._accounts) == 3  # trimmed once the batch was stored
    balances = {a: getattr(app.account(a), "balance", None) for a in accounts}
    assert balances == {
        a: Decimal("3.00") if a == accounts[0] else Decimal("1.00") for a in accounts
    }


def test_the_cached_accounts_are_bounded_by_the_events_they_hold() -> None:
    app = LedgerApp(memory_store())
    app.max_cached_history = 12
    accounts = opened_accounts(app, 4)
    position = 100
    for round_ in range(5):
        docs = recharges(*accounts[: 1 + round_ % 4])
        process_batch(app, SOURCE, records(docs, position), print)
        position += len(docs)
        assert app.cached_history() == held_by_cached_accounts(app)
        assert app.cached_history() <= app.max_cached_history
    # Every account is still there to be read back, each recharge applied once.
    assert [app.account(a).applied_events for a in accounts] == [6, 4, 3, 2]
    assert app.cached_history() == held_by_cached_accounts(app)


def test_a_forgotten_account_still_knows_the_events_it_applied() -> None:
    """G1 across the cache: a record sent again after its account was forgotten is a
    duplicate, because the account is read back with every event id it applied."""
    app = LedgerApp(memory_store())
    app.max_cached_accounts = 1
    first, second = opened_accounts(app, 2)
    recharge = recharges(first)
    process_batch(app, SOURCE, records(recharge, 100), print)
    process_batch(app, SOURCE, records(recharges(second), 101), print)
    assert list(app._accounts) == [app.account(second).id]
    again = process_batch(app, SOURCE, records(recharge, 102), print)
    assert (again.applied, again.duplicates) == (0, 1)
