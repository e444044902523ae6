"""A ledger that runs for months: what grows with the log stays bounded in a consumer.

- Accounts and sources' intakes load from their latest snapshot and the events after it: an
  account gains an event per fact and an intake one per batch for as long as the ledger runs,
  and a consumer loads them again after every start, rebalance or failed batch. A snapshot
  gives back exactly the aggregate its events give, and the audit checks that it does (R3).
- The accounts a process keeps are bounded by their count, and trimmed only between batches.
  (The ids of the events an account applied are kept in the store: tests/test_applied_ids.py.)
"""

import json
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from bench.traffic import generate
from consumers.pipeline import RawRecord, process_batch
from ledger.account import SNAPSHOT_FORMAT, Account, AccountSnapshot
from ledger.application import (
    ACCOUNT_SNAPSHOT_INTERVAL,
    INTAKE_SNAPSHOT_INTERVAL,
    LedgerApp,
    mutated,
)
from ledger.applied_ids import TABLE_NAME
from ledger.history import account_history
from ledger.ids import account_stream_id, intake_stream_id
from ledger.store import StoreConfig, memory_store, parse_store_url
from projections.log_audit import audit_account, audit_log
from tests.cli_helpers import assert_one_line_error, run, run_json
from tests.factories import catalog_published, event, line, opened
from tests.test_applied_ids import edited
from tests.test_replay_audit import long_history

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


def snapshot_versions(app: LedgerApp, stream_id: UUID) -> list[int]:
    assert app.snapshots is not None
    return [s.originator_version for s in app.snapshots.get(stream_id)]


def delete_events_through(tmp_path: Path, stream_id: UUID, version: int) -> int:
    """Delete a stream's events up to that version from the SQLite store; how many."""
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        deleted: int = db.execute(
            "DELETE FROM stored_events WHERE originator_id = ? AND originator_version <= ?",
            (stream_id.hex, version),
        ).rowcount
    return deleted


def test_an_intake_is_snapshotted_every_interval_of_batches(sqlite_url: str) -> None:
    batches = 2 * INTAKE_SNAPSHOT_INTERVAL + 30
    ingest_one_record_batches(sqlite_url, batches)
    app = LedgerApp(parse_store_url(sqlite_url))
    # Version 1 is the intake's start; each batch adds one. A snapshot is of stored state,
    # taken just before the batch that would go past the interval is appended.
    assert snapshot_versions(app, intake_stream_id(SOURCE)) == [
        INTAKE_SNAPSHOT_INTERVAL,
        2 * INTAKE_SNAPSHOT_INTERVAL,
    ]
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
    deleted = delete_events_through(tmp_path, intake_stream_id(SOURCE), INTAKE_SNAPSHOT_INTERVAL)
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
    snapshot = app.due_snapshot(intake)  # as the failed attempt took and wrote it
    assert snapshot is not None and app.snapshots is not None
    app.snapshots.put([snapshot])
    app.forget_cached()  # as a failed batch does
    retry = event("balance.recharged", "ACC-LONG", amount="1.00")
    position = INTAKE_SNAPSHOT_INTERVAL + 1
    counts = process_batch(app, SOURCE, [RawRecord(position, line(retry).encode())], print)
    assert counts.applied == 1
    assert snapshot_versions(app, intake_stream_id(SOURCE)) == [INTAKE_SNAPSHOT_INTERVAL]


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
    assert snapshot_versions(app, intake_stream_id(SOURCE)) == [INTAKE_SNAPSHOT_INTERVAL]
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


def test_a_forgotten_account_still_knows_the_events_it_applied() -> None:
    """G1 across the cache: a record sent again after its account was forgotten is a
    duplicate, because the store keeps the ids of the events each account applied."""
    app = LedgerApp(memory_store())
    app.max_cached_accounts = 1
    first, second = opened_accounts(app, 2)
    recharge = recharges(first)
    process_batch(app, SOURCE, records(recharge, 100), print)
    process_batch(app, SOURCE, records(recharges(second), 101), print)
    assert list(app._accounts) == [app.account(second).id]
    again = process_batch(app, SOURCE, records(recharge, 102), print)
    assert (again.applied, again.duplicates) == (0, 1)


# Accounts: snapshots every ACCOUNT_SNAPSHOT_INTERVAL events, giving back exactly the account.


def through_the_store(app: LedgerApp, account: Account) -> Account:
    """The account as a process reads it back from its snapshot in the store's format."""
    stored = app.mapper.to_stored_event(AccountSnapshot.take(account))
    restored = app.mapper.to_domain_event(stored).mutate(None)  # type: ignore[attr-defined]
    assert isinstance(restored, Account)
    return restored


def assert_same_account(got: Account, expected: Account) -> None:
    assert got.snapshot_document() == expected.snapshot_document()
    assert vars(got) == vars(expected)


def blocked_and_credited() -> list[dict[str, object]]:
    """A prepaid account blocked for a while, with a duplicated call's charge credited (F1)."""
    account, number = "ACC-F", "+14155550101"

    def call(event_id: str, at: str) -> dict[str, object]:
        return event(
            "call.completed",
            account,
            at,
            event_id=event_id,
            msisdn=number,
            destination="+12125550100",
            duration_seconds=95,
            call_id="call-1",
        )

    return [
        catalog_published(),
        opened(account),
        event("number.added", account, "2026-11-01T09:30:00Z", msisdn=number),
        event("balance.recharged", account, "2026-11-01T09:45:00Z", amount="10.00"),
        call("call-a", "2026-11-05T10:00:00Z"),
        call("call-b", "2026-11-05T10:02:00Z"),
        event("account.blocked", account, "2026-11-06T10:00:00Z", reason="AUP: spam"),
        event(
            "refund.requested",
            account,
            "2026-11-07T10:00:00Z",
            charge_id="call-b:payg",
            reason="charged twice",
        ),
        event("account.unblocked", account, "2026-11-08T10:00:00Z", reason="paid"),
    ]


def cancelled_then_switched_back_on_late() -> list[dict[str, object]]:
    """A plan ended by a bill run for autorenew off, kept aside, then renewed by a switch back
    on dated before that bill run (V7, T2)."""
    account, number = "ACC-V7", "+14155550101"
    return [
        catalog_published(),
        opened(account, "postpaid"),
        event("number.added", account, "2026-11-01T09:30:00Z", msisdn=number),
        event(
            "plan.purchased",
            account,
            "2026-11-05T12:00:00Z",
            msisdn=number,
            plan_id="na-500",
            channel="portal",
        ),
        event(
            "plan.autorenew_changed", account, "2026-11-10T10:00:00Z", msisdn=number, enabled=False
        ),
        event("cycle.started", account, "2026-12-01T00:00:00Z", period="2026-12"),
        event(
            "plan.autorenew_changed", account, "2026-11-20T10:00:00Z", msisdn=number, enabled=True
        ),
        event("cycle.started", account, "2027-01-01T00:00:00Z", period="2027-01"),
    ]


def late_record_of_a_replaced_number() -> list[dict[str, object]]:
    """A port-in's new number replaced by the ported one, then its call dated before that,
    logged after it and rated on the ported number (P1, T2)."""
    account, new, ported = "ACC-P1", "+14155550777", "+13125550199"
    port = {"msisdn": new, "ported_msisdn": ported}
    return [
        catalog_published(),
        opened(account, "postpaid"),
        event("port_in.requested", account, "2026-11-02T10:00:00Z", **port),
        event(
            "plan.purchased",
            account,
            "2026-11-02T11:00:00Z",
            msisdn=new,
            plan_id="na-500",
            channel="portal",
        ),
        event("port_in.completed", account, "2026-11-10T10:00:00Z", **port),
        event(
            "call.completed",
            account,
            "2026-11-09T10:00:00Z",
            msisdn=new,
            destination="+12125550100",
            duration_seconds=120,
            call_id="late-call",
        ),
        event("cycle.started", account, "2026-12-01T00:00:00Z", period="2026-12"),
    ]


HISTORIES = {
    "every kind of event": lambda: [line(doc).encode() for doc in long_history()],
    "a block and a credited dispute": lambda: [line(d).encode() for d in blocked_and_credited()],
    "a plan switched back on late": lambda: [
        line(d).encode() for d in cancelled_then_switched_back_on_late()
    ],
    "a late record of a replaced number": lambda: [
        line(d).encode() for d in late_record_of_a_replaced_number()
    ],
    "a month of bench traffic": lambda: list(generate(12, 1500)),
}


@pytest.mark.parametrize("history", HISTORIES)
def test_an_account_snapshot_gives_back_the_account_at_any_version(history: str) -> None:
    """Snapshot at a version, then the events after it: the account a full replay gives."""
    app = LedgerApp(memory_store())
    lines = HISTORIES[history]()
    counts = process_batch(app, SOURCE, [RawRecord(n, v) for n, v in enumerate(lines)], print)
    if history != "a month of bench traffic":  # which has a few bad records on purpose
        assert counts.dead_letters == []
    opened = [json.loads(value) for value in lines if b'"account.opened"' in value]
    assert opened
    for account_id in (doc["account_id"] for doc in opened):
        stream = list(app.account_events(account_id))
        replayed = mutated(stream)
        for version in range(1, len(stream) + 1, 7 if history == "a month of bench traffic" else 1):
            at_version = mutated(stream[:version])
            restored = through_the_store(app, at_version)
            assert restored.version == version
            assert_same_account(restored, at_version)
            for later in stream[version:]:
                restored = later.mutate(restored)
            assert_same_account(restored, replayed)


def ingest_long_account(url: str, recharges_count: int, batch: int = 50) -> list[RawRecord]:
    """The catalog, ACC-LONG opened, then its recharges `batch` records at a time."""
    docs = [catalog_published(), opened("ACC-LONG"), *recharges(*["ACC-LONG"] * recharges_count)]
    stream = records(docs, 1)
    app = LedgerApp(parse_store_url(url))
    for start in range(0, len(stream), batch):
        counts = process_batch(app, SOURCE, stream[start : start + batch], print)
        assert counts.dead_letters == []
    return stream


def account_snapshot_versions(app: LedgerApp) -> list[int]:
    return snapshot_versions(app, account_stream_id("ACC-LONG"))


def test_an_account_loads_from_its_latest_snapshot_not_its_whole_stream(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Snapshotted once its interval of events is stored, before the batch that goes past
    it moves it. Its events before the snapshot are then deleted from the store: a process
    that read them could not load the same account."""
    stream = ingest_long_account(sqlite_url, ACCOUNT_SNAPSHOT_INTERVAL + 120)
    app = LedgerApp(parse_store_url(sqlite_url))
    [snapshot_version] = account_snapshot_versions(app)
    # Versions move by up to one batch (50 records) between two looks at the account.
    assert ACCOUNT_SNAPSHOT_INTERVAL <= snapshot_version < ACCOUNT_SNAPSHOT_INTERVAL + 50
    replayed = mutated(app.account_events("ACC-LONG"))
    assert replayed.version == ACCOUNT_SNAPSHOT_INTERVAL + 121
    deleted = delete_events_through(tmp_path, account_stream_id("ACC-LONG"), snapshot_version)
    assert deleted == snapshot_version
    loaded = LedgerApp(parse_store_url(sqlite_url)).account("ACC-LONG")
    assert loaded is not None
    assert_same_account(loaded, replayed)
    assert loaded.balance == Decimal(ACCOUNT_SNAPSHOT_INTERVAL + 120)
    # G1 still holds for the events before the snapshot: their ids came with it.
    again = process_batch(LedgerApp(parse_store_url(sqlite_url)), SOURCE, stream[2:3], print)
    assert (again.applied, again.duplicates) == (0, 1)


@pytest.mark.postgres
def test_an_account_on_postgresql_is_snapshotted_and_loads_from_it(postgres_url: str) -> None:
    ingest_long_account(postgres_url, ACCOUNT_SNAPSHOT_INTERVAL + 210, batch=200)
    app = LedgerApp(parse_store_url(postgres_url))
    [snapshot_version] = account_snapshot_versions(app)
    assert ACCOUNT_SNAPSHOT_INTERVAL <= snapshot_version < ACCOUNT_SNAPSHOT_INTERVAL + 200
    loaded = app.account("ACC-LONG")
    assert loaded is not None
    assert_same_account(loaded, mutated(app.account_events("ACC-LONG")))


# R3: the audit checks the state a process starts from.


def tamper_snapshot(tmp_path: Path, stream_id: object, change: Callable[[dict], None]) -> int:
    """Edit the state of a stream's latest snapshot in the SQLite store; its version."""
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        version, state = db.execute(
            "SELECT originator_version, state FROM stored_snapshots WHERE originator_id = ? "
            "ORDER BY originator_version DESC LIMIT 1",
            (stream_id.hex,),  # type: ignore[attr-defined]
        ).fetchone()
        doc = json.loads(state)
        change(doc["state"])
        db.execute(
            "UPDATE stored_snapshots SET state = ? WHERE originator_id = ? AND "
            "originator_version = ?",
            (json.dumps(doc).encode(), stream_id.hex, version),  # type: ignore[attr-defined]
        )
    return int(version)


def test_R3_the_audit_checks_every_latest_snapshot_against_its_events(sqlite_url: str) -> None:
    ingest_long_account(sqlite_url, INTAKE_SNAPSHOT_INTERVAL * 10 + 120, batch=10)
    whole = run_json("--store", sqlite_url, "audit")
    assert whole["adds_up"] is True, whole["findings"]
    assert whole["snapshots"] == {"checked": 2, "findings": []}  # the account and the intake
    own = run_json("--store", sqlite_url, "audit", "ACC-LONG")
    assert own["snapshots"] == {"checked": 1, "findings": []}
    text = run("--store", sqlite_url, "audit", "ACC-LONG").stdout
    assert "snapshots: 1 checked, equal a replay" in text.splitlines()


def test_R3_a_changed_account_snapshot_is_named_by_the_audit(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A process would start from the snapshot: a balance changed in it must not pass."""
    ingest_long_account(sqlite_url, INTAKE_SNAPSHOT_INTERVAL * 10 + 120, batch=10)
    version = tamper_snapshot(
        tmp_path, account_stream_id("ACC-LONG"), lambda state: state.update(balance="5000.00")
    )
    finding = (
        f"account ACC-LONG: the snapshot at version {version} differs from its events "
        "replayed to that version"
    )
    for scope in ((), ("ACC-LONG",)):
        doc = run_json("--store", sqlite_url, "audit", *scope, expect=1)
        assert doc["snapshots"]["findings"] == [finding]
        assert doc["adds_up"] is False and finding in doc["findings"]
    text = run("--store", sqlite_url, "audit", "ACC-LONG", expect=1).stdout
    assert "snapshots: 1 checked, 1 differs from a replay" in text.splitlines()


def test_R3_a_changed_intake_snapshot_is_named_by_the_audit(
    tmp_path: Path, sqlite_url: str
) -> None:
    ingest_one_record_batches(sqlite_url, INTAKE_SNAPSHOT_INTERVAL + 5)
    version = tamper_snapshot(
        tmp_path, intake_stream_id(SOURCE), lambda state: state.update(consumed=1)
    )
    doc = run_json("--store", sqlite_url, "audit", expect=1)
    assert doc["snapshots"]["findings"] == [
        f"intake of {SOURCE}: the snapshot at version {version} differs from its events "
        "replayed to that version"
    ]


def count_streams_read_again(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The audit's reads of streams' events after its read of the log: the streams each read
    asks for."""
    asked: list[int] = []
    read_ranges = LedgerApp._stored_ranges

    def counted(app: LedgerApp, ranges: Any) -> Any:
        asked.append(len(ranges))
        return read_ranges(app, ranges)

    monkeypatch.setattr(LedgerApp, "_stored_ranges", counted)
    return asked


CHANGED_BALANCE = (
    "account ACC-LONG: the snapshot at version {} differs from its events replayed to that version"
)


@pytest.mark.parametrize("way", ["as read", "looked up at the end", "over the limit"])
def test_R3_the_audit_checks_snapshots_as_it_reads_the_log_and_the_rest_after_it(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """Each stream's latest snapshot is compared with its events as the audit's one read of
    the log passes them, not by reading them again: nearly the whole log, once every account
    has a snapshot. A stream's events are kept until its snapshot is looked up, however late
    that is. Streams beyond those replayed at once are checked after the read, their events
    read again. Either way the same snapshots are checked, with the same findings, whole log
    or one account."""
    ingest_long_account(sqlite_url, INTAKE_SNAPSHOT_INTERVAL * 10 + 120, batch=10)
    version = tamper_snapshot(
        tmp_path, account_stream_id("ACC-LONG"), lambda state: state.update(balance="5000.00")
    )
    if way == "looked up at the end":
        monkeypatch.setattr("ledger.snapshot_audit.LOOK_UP_AT_VERSION", 10**9)
        monkeypatch.setattr("ledger.snapshot_audit.SNAPSHOTS_CHECKED_AT_ONCE", 10**6)
    elif way == "over the limit":
        monkeypatch.setattr("ledger.snapshot_audit.MAX_STREAMS_REPLAYED", 0)
    asked = count_streams_read_again(monkeypatch)
    app = LedgerApp(parse_store_url(sqlite_url))
    whole = audit_log(app, app.recorder.max_notification_id())
    assert whole.snapshots == 2  # the account's and the intake's
    assert whole.snapshot_findings == [CHANGED_BALANCE.format(version)]
    own = audit_account(app, "ACC-LONG")
    assert (own.snapshots, own.snapshot_findings) == (1, [CHANGED_BALANCE.format(version)])
    assert asked == ([2, 1] if way == "over the limit" else [])


def test_an_account_snapshot_of_another_layout_is_not_read(tmp_path: Path, sqlite_url: str) -> None:
    """After an upgrade that changes `Account.snapshot_document`, older snapshots are passed
    over: the account loads from its events, and the next snapshot is due from the old one's
    version (a snapshot at the same version again would fail every batch)."""
    stream = ingest_long_account(sqlite_url, ACCOUNT_SNAPSHOT_INTERVAL + 120)
    tamper_snapshot(
        tmp_path,
        account_stream_id("ACC-LONG"),
        lambda state: state.update(format=SNAPSHOT_FORMAT + 1, balance="5000.00"),
    )
    app = LedgerApp(parse_store_url(sqlite_url))
    loaded = app.account("ACC-LONG")
    assert loaded is not None
    assert_same_account(loaded, mutated(app.account_events("ACC-LONG")))
    audit = run_json("--store", sqlite_url, "audit")
    assert audit["adds_up"] is True
    assert audit["snapshots"] == {"checked": 0, "findings": []}  # the only one is passed over
    more = records(recharges("ACC-LONG"), len(stream) + 1)
    assert process_batch(app, SOURCE, more, print).applied == 1
    assert len(account_snapshot_versions(app)) == 1


def test_the_latest_history_entries_of_a_long_account_are_its_whole_history_s_last(
    sqlite_url: str,
) -> None:
    """`ledger history --limit N` reads the latest entries from the end of the stream: the
    same entries, in the same order, as the end of the whole history."""
    ingest_long_account(sqlite_url, 300)
    app = LedgerApp(parse_store_url(sqlite_url))
    whole = account_history(app, "ACC-LONG")
    assert whole is not None and len(whole) == 301
    for latest in (1, 7, 301, 500):
        assert account_history(app, "ACC-LONG", latest=latest) == whole[-latest:]
    shown = run_json("--store", sqlite_url, "history", "ACC-LONG", "--limit", "3")
    assert [e["version"] for e in shown["entries"]] == [299, 300, 301]
    assert account_history(app, "ACC-NOBODY", latest=5) is None


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_R4_a_charge_applied_before_the_index_kept_versions_is_found_by_the_store(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written before the index of applied event ids kept the version of each id's
    event: opening it adds the column, the ids already in it keep none, and `explain` finds
    their charges by the store's search of the stream, as before; ids applied since have
    their versions. A version that points at another event (the index edited) is checked,
    and passed over for the search."""
    monkeypatch.setattr("ledger.application.LATEST_EVENTS_SEARCHED", 7)
    url = request.getfixturevalue(f"{kind}_url")
    busy_account_with_colons(parse_store_url(url))
    account_id = "ACC-000000"
    edited(url, f"ALTER TABLE {TABLE_NAME} DROP COLUMN version")  # as it was
    app = LedgerApp(parse_store_url(url))
    surcharges = [
        event(
            "surcharge.applied",
            account_id,
            "2026-11-20T10:00:00Z",
            amount="0.10",
            kind="carrier",
            description=f"Carrier fee {n}",
        )
        for n in range(10)
    ]
    assert process_batch(app, SOURCE, records(surcharges, 10_000), print).applied == 10
    made = [
        (event.originator_version, charge)
        for event in app.account_events(account_id)
        if isinstance(event, Account.FactApplied)
        for charge in event.outcome["charges"]
    ]
    (old_version, old), (new_version, new) = made[0], made[-10]
    assert new["kind"] == "carrier_surcharge"
    reads = count_reads(app, monkeypatch)
    latest = {"desc": True, "limit": 7}

    def explained(version: int, charge: dict[str, Any], path: list[object]) -> None:
        reads.clear()
        found = app.charge_of(account_id, charge["charge_id"])
        assert found is not None and (found[0].originator_version, found[1]) == (version, charge)
        assert reads == path

    explained(
        old_version, old, [latest, "index", "search", {"gt": old_version - 1, "lte": old_version}]
    )
    explained(new_version, new, [latest, "index", {"gt": new_version - 1, "lte": new_version}])
    new_event_id = new["charge_id"].removesuffix(":surcharge")
    edited(url, f"UPDATE {TABLE_NAME} SET version = 2 WHERE event_id = '{new_event_id}'")
    explained(
        new_version,
        new,
        [
            latest,
            "index",
            {"gt": 1, "lte": 2},
            "search",
            {"gt": new_version - 1, "lte": new_version},
        ],
    )
    assert run_json("--store", url, "audit")["adds_up"] is True


def count_reads(app: LedgerApp, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What the app reads of the store from now on, in order: each read of a stream's events
    (its keyword arguments), each look-up of versions in the index of applied event ids
    ("index"), each search of a stream ("search")."""
    reads: list[object] = []
    read = app.events.get
    versions = app.applied_index.versions_applying
    search = app.stream_search.versions_holding

    def counted_read(*args: object, **kwargs: object) -> object:
        reads.append(kwargs)
        return read(*args, **kwargs)

    def counted_versions(*args: Any) -> dict[str, int]:
        reads.append("index")
        return versions(*args)

    def counted_search(*args: Any) -> list[int]:
        reads.append("search")
        return search(*args)

    monkeypatch.setattr(app.events, "get", counted_read)
    monkeypatch.setattr(app.applied_index, "versions_applying", counted_versions)
    monkeypatch.setattr(app.stream_search, "versions_holding", counted_search)
    return reads


def busy_account_with_colons(store: StoreConfig) -> LedgerApp:
    """One account's month of the bench's traffic, its usage events' ids holding colons as a
    switch's may ("sw:u12:1"), so each charge id has colons on both sides of its event id's end;
    every seventh also a quote, a backslash and a letter beyond ASCII, which JSON escapes or
    encodes in more than one byte."""
    docs = [json.loads(raw) for raw in generate(1, 600)]
    for doc in docs:
        if doc["event_id"].startswith("u"):
            number = doc["event_id"]
            doc["event_id"] = f'sw:"{number}\\é:1' if number.endswith("7") else f"sw:{number}:1"
    app = LedgerApp(store)
    stream = [RawRecord(n, json.dumps(doc).encode()) for n, doc in enumerate(docs, 1)]
    for start in range(0, len(stream), 100):
        assert process_batch(app, SOURCE, stream[start : start + 100], print).dead_letters == []
    return app


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_R4_a_charge_is_found_among_the_latest_events_or_by_the_store_without_reading_back(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R4: `explain` finds any charge of a long account, the oldest as well as the latest: a
    recent one among the account's latest events, in one small read; an older one at the
    version the index of applied event ids (G1) gives its event, read alone, however long
    the stream. A charge id the account never made is answered from that index without
    reading the stream at all. It read the stream back from the end until it found the event:
    most of a second for a busy account's first charges of the month (20,000 events); then
    the store searched the stream's stored events for its id, in time growing with the
    stream (35-45 ms for that month's first charge)."""
    monkeypatch.setattr("ledger.application.LATEST_EVENTS_SEARCHED", 7)
    url = "" if kind == "memory" else request.getfixturevalue(f"{kind}_url")
    app = busy_account_with_colons(memory_store() if kind == "memory" else parse_store_url(url))
    account_id = "ACC-000000"
    stream = list(app.account_events(account_id))
    assert len(stream) > 500
    made = [
        (event, charge)
        for event in stream
        if isinstance(event, Account.FactApplied)
        for charge in event.outcome["charges"]
    ]
    assert len(made) > 100 and any(c["charge_id"].count(":") >= 3 for _, c in made)
    escaped = [(e, c) for e, c in made if '"' in e.fact["event_id"]]
    assert escaped and all("é" in e.fact["event_id"] for e, _ in escaped)
    reads = count_reads(app, monkeypatch)
    oldest, middle, latest, escaped_one = made[0], made[len(made) // 2], made[-1], escaped[0]
    for source, charge in (oldest, middle, latest, escaped_one):
        reads.clear()
        found = app.charge_of(account_id, charge["charge_id"])
        assert found is not None
        assert (found[0].originator_version, found[1]) == (source.originator_version, charge)
        if source.originator_version > len(stream) - 7:  # among the latest seven
            assert reads == [{"desc": True, "limit": 7}]
        else:
            version = source.originator_version
            assert reads == [
                {"desc": True, "limit": 7},
                "index",
                {"gt": version - 1, "lte": version},
            ]
    reads.clear()
    last_event_id = latest[0].fact["event_id"]
    for never in ("sw:u99999:1:payg", f"{last_event_id}:refund", "nope", ":", ""):
        # The latest event's id, applied: its events looked at, and the store not asked.
        expected = [{"desc": True, "limit": 7}] if never.startswith(f"{last_event_id}:") else []
        assert app.charge_of(account_id, never) is None
        assert reads == expected, never
        reads.clear()
    # The month's first event's id, applied, without that charge: found by the index, and read.
    first_event, first_version = oldest[0].fact["event_id"], oldest[0].originator_version
    assert app.charge_of(account_id, f"{first_event}:refund") is None
    assert reads[1:] == ["index", {"gt": first_version - 1, "lte": first_version}]
    reads.clear()
    assert app.charge_of("ACC-NOBODY", latest[1]["charge_id"]) is None
    assert reads == []
    if kind == "memory":
        return  # a store in memory is the process's own: the command would open an empty one
    # The command says the same, and still tells an unknown account from an unknown charge.
    first_source, first_charge = made[0]
    shown = run_json("--store", url, "explain", account_id, first_charge["charge_id"])
    assert (shown["position"], shown["charge"]) == (first_source.originator_version, first_charge)
    assert_one_line_error(
        url,
        "explain",
        account_id,
        "sw:u99999:1:payg",
        says=f"no charge sw:u99999:1:payg on account {account_id}",
    )
    assert_one_line_error(url, "explain", "ACC-NOBODY", "x:payg", says="unknown account ACC-NOBODY")
