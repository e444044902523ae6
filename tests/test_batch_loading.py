"""Streams read many at a time: a batch's accounts, and an audit's snapshots.

On PostgreSQL every query is a round trip to the server. A consumer that has just started,
been given new partitions or failed a batch reads back every account it meets, and it took a
snapshot query and an events query for each (issue 8, round 11). `Batch.look_up` now reads all
of a batch's accounts that are not cached at once (`LedgerApp.load_accounts`): the latest
snapshots in one query, then the events after them in another. What it reads must be exactly
what reading the accounts one by one gives, and an account it found absent is absent for that
batch only. An audit checks the snapshots (R3) the same way, so many streams at a time.
"""

from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest

from bench.traffic import generate
from consumers.pipeline import RawRecord, process_batch
from ledger.account import SNAPSHOT_FORMAT
from ledger.application import ACCOUNT_SNAPSHOT_INTERVAL, LedgerApp, mutated
from ledger.ids import CATALOG_STREAM_ID, account_stream_id, intake_stream_id
from ledger.store import parse_store_url
from tests.factories import catalog_published, event, line, opened
from tests.test_long_history import assert_same_account, ingest_long_account

SOURCE = "file:batch.jsonl"
PG = pytest.mark.postgres


def _records(docs: list[dict[str, Any]], first: int) -> list[RawRecord]:
    return [RawRecord(first + n, line(doc).encode()) for n, doc in enumerate(docs)]


def _no_account_read_one_by_one(app: LedgerApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the app reads an account on its own. (It still reads the catalog
    and a source's intake so, once each.)"""
    load = app._load
    not_accounts = {CATALOG_STREAM_ID, intake_stream_id(SOURCE), intake_stream_id("kafka")}

    def one_by_one(stream_id: UUID) -> Any:
        if stream_id not in not_accounts:
            raise AssertionError(f"stream {stream_id} read on its own")
        return load(stream_id)

    monkeypatch.setattr(app, "_load", one_by_one)


def _store_traffic(url: str) -> list[str]:
    """Bench traffic of 40 accounts, several past a snapshot, and ACC-LONG past two."""
    ingest_long_account(url, 2 * ACCOUNT_SNAPSHOT_INTERVAL + 30, batch=40)
    lines = list(generate(40, 6000, seed=11))
    app = LedgerApp(parse_store_url(url))
    for start in range(0, len(lines), 500):
        batch = [RawRecord(start + n, value) for n, value in enumerate(lines[start : start + 500])]
        process_batch(app, "bench", batch, lambda letters: None)
    return ["ACC-LONG", *(f"ACC-{n:06d}" for n in range(40))]


@pytest.mark.parametrize("store", ["sqlite_url", pytest.param("postgres_url", marks=PG)])
def test_accounts_read_in_bulk_are_the_accounts_read_one_by_one(
    store: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(store)
    accounts = _store_traffic(url)
    in_bulk = LedgerApp(parse_store_url(url))
    absent = in_bulk.load_accounts([*accounts, "ACC-NEVER", accounts[3]])
    assert absent == {account_stream_id("ACC-NEVER")}
    assert list(in_bulk._accounts) == [account_stream_id(a) for a in accounts]  # batch order
    one_by_one = LedgerApp(parse_store_url(url))
    snapshotted = 0
    for account_id in accounts:
        expected = one_by_one.account(account_id)
        stream_id = account_stream_id(account_id)
        assert expected is not None
        assert_same_account(in_bulk._accounts[stream_id], expected)
        assert_same_account(expected, mutated(one_by_one.account_events(account_id)))
        version = one_by_one._snapshot_versions[stream_id]
        assert in_bulk._snapshot_versions[stream_id] == version
        snapshotted += version > 0
    assert snapshotted >= 5  # both ways were taken: from a snapshot, and from the events alone
    assert in_bulk.load_accounts(accounts) == set()  # all cached now: nothing read


@PG
def test_a_batch_reads_no_account_on_its_own(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = _store_traffic(postgres_url)
    app = LedgerApp(parse_store_url(postgres_url))
    _no_account_read_one_by_one(app, monkeypatch)
    docs = [
        *(event("balance.recharged", a, amount="1.00") for a in accounts[:10]),
        opened("ACC-NEW"),
        event("balance.recharged", "ACC-NEW", amount="2.00"),
        event("balance.recharged", "ACC-NEVER", amount="3.00"),
    ]
    counts = process_batch(app, SOURCE, _records(docs, 1), lambda letters: None)
    assert counts.applied == 12
    assert [letter.reason for letter in counts.dead_letters] == ["unknown account ACC-NEVER"]
    again = LedgerApp(parse_store_url(postgres_url))
    new = again.account("ACC-NEW")
    assert new is not None and new.balance == Decimal("2.00")


@PG
def test_an_account_found_absent_is_read_again_by_the_next_batch(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may open it in between: a file ingest, or the consumer given the
    partition after a rebalance. Absent is what one batch read, not a fact to keep."""
    setup = LedgerApp(parse_store_url(postgres_url))
    process_batch(setup, SOURCE, _records([catalog_published()], 1), lambda letters: None)
    consumer = LedgerApp(parse_store_url(postgres_url))
    _no_account_read_one_by_one(consumer, monkeypatch)
    early = [event("balance.recharged", "ACC-LATE", amount="1.00")]
    first = process_batch(consumer, "kafka", _records(early, 1), lambda letters: None)
    assert [letter.reason for letter in first.dead_letters] == ["unknown account ACC-LATE"]
    other = LedgerApp(parse_store_url(postgres_url))
    process_batch(other, SOURCE, _records([opened("ACC-LATE")], 2), lambda letters: None)
    late = [event("balance.recharged", "ACC-LATE", amount="4.00")]
    second = process_batch(consumer, "kafka", _records(late, 2), lambda letters: None)
    assert (second.applied, second.dead_letters) == (1, [])


@PG
def test_an_account_snapshot_of_another_layout_is_passed_over_in_bulk_too(
    postgres_url: str,
) -> None:
    ingest_long_account(postgres_url, ACCOUNT_SNAPSHOT_INTERVAL + 30, batch=40)
    stream_id = account_stream_id("ACC-LONG")
    with psycopg.connect(postgres_url) as db:
        version, state = db.execute(
            "SELECT originator_version, state FROM ledger_snapshots WHERE originator_id = %s",
            (stream_id,),
        ).fetchone()
        doc = orjson.loads(state)
        doc["state"].update(format=SNAPSHOT_FORMAT + 1, balance="5000.00")
        db.execute(
            "UPDATE ledger_snapshots SET state = %s WHERE originator_id = %s",
            (orjson.dumps(doc), stream_id),
        )
    app = LedgerApp(parse_store_url(postgres_url))
    assert app.load_accounts(["ACC-LONG"]) == set()
    assert_same_account(app._accounts[stream_id], mutated(app.account_events("ACC-LONG")))
    assert app._snapshot_versions[stream_id] == version  # the next one is due from it


@PG
def test_R3_an_audit_checks_snapshots_many_streams_at_a_time_and_names_a_changed_one(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = _store_traffic(postgres_url)
    with psycopg.connect(postgres_url) as db:
        snapshotted = db.execute(
            "SELECT originator_id, max(originator_version) FROM ledger_snapshots "
            "GROUP BY originator_id"
        ).fetchall()
        changed, version = next(
            (stream_id, version)
            for stream_id, version in snapshotted
            if stream_id == account_stream_id(accounts[0])
        )
        state = db.execute(
            "SELECT state FROM ledger_snapshots WHERE originator_id = %s "
            "AND originator_version = %s",
            (changed, version),
        ).fetchone()[0]
        doc = orjson.loads(state)
        doc["state"]["balance"] = "5000.00"
        db.execute(
            "UPDATE ledger_snapshots SET state = %s WHERE originator_id = %s "
            "AND originator_version = %s",
            (orjson.dumps(doc), changed, version),
        )
    app = LedgerApp(parse_store_url(postgres_url))
    monkeypatch.setattr("ledger.application.SNAPSHOTS_CHECKED_AT_ONCE", 3)

    def one_by_one(*args: object, **kwargs: object) -> Any:
        raise AssertionError("a stream read on its own")

    assert app.snapshots is not None
    monkeypatch.setattr(app.recorder, "select_events", one_by_one)
    monkeypatch.setattr(app.snapshots.recorder, "select_events", one_by_one)
    streams = {account_stream_id(a): f"account {a}" for a in [*accounts, "ACC-NEVER"]}
    for stream_id, _ in snapshotted:  # and the sources' intakes
        streams.setdefault(stream_id, "an intake")
    checked, findings = app.snapshot_findings(streams)
    assert checked == len(snapshotted) >= 5
    assert findings == [
        f"account {accounts[0]}: the snapshot at version {version} differs from its events "
        "replayed to that version"
    ]
