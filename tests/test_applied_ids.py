"""G1 over years: the ids of the events each account applied are kept in the store.

An account used to hold every id it applied, so its memory and snapshots grew with its
history. The store keeps them in an index written with the events, on every backend; a store
written before the index gets it from its log; the store refuses an id applied twice; and the
audit checks that the index and the log agree.
"""

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from hashlib import blake2b
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from psycopg.sql import SQL

from consumers.pipeline import RawRecord, process_batch
from ledger.account import Account
from ledger.application import APPLYING_TOPICS, LedgerApp
from ledger.applied_ids import TABLE_NAME, AppliedIdTally, summary_of
from ledger.contract import parse_event
from ledger.ids import account_stream_id
from ledger.recorder_postgres import LedgerPostgresRecorder
from ledger.recorder_sqlite import LedgerSQLiteRecorder
from ledger.store import memory_store, parse_store_url
from tests.cli_helpers import run, run_json
from tests.factories import catalog_published, event, line, opened

SOURCE = "file:applied.jsonl"


def url_of(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory:"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_of(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def lasting_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store that outlives the process writing it."""
    return url_of(request.param, request, tmp_path)


def open_app(url: str) -> LedgerApp:
    return LedgerApp(memory_store() if url == "memory:" else parse_store_url(url))


def records(*docs: dict[str, Any], first: int = 1) -> list[RawRecord]:
    return [RawRecord(first + n, line(doc).encode()) for n, doc in enumerate(docs)]


def recharge(account: str, amount: str = "1.00") -> dict[str, Any]:
    return event("balance.recharged", account, amount=amount)


def applied_ids_in_log(app: LedgerApp) -> list[tuple[Any, str]]:
    return [
        (e.originator_id, e.fact["event_id"])
        for e in app.stored_events()
        if isinstance(e, (Account.Opened, Account.FactApplied))
    ]


@pytest.fixture
def mixed_history() -> list[RawRecord]:
    """Two accounts; a record repeated in its own batch, a bad one, and the same event id
    for both accounts (an id is an account's: the second account applies it too)."""
    first = recharge("ACC-1")
    shared = recharge("ACC-1", "2.00")
    return records(
        catalog_published(),
        opened("ACC-1"),
        opened("ACC-2"),
        first,
        first,
        recharge("ACC-NOPE"),
        shared,
        {**shared, "account_id": "ACC-2"},
    )


def test_the_index_holds_exactly_the_ids_of_the_events_each_account_applied(
    store_url: str, mixed_history: list[RawRecord]
) -> None:
    app = open_app(store_url)
    counts = process_batch(app, SOURCE, mixed_history, lambda _: None)
    assert (counts.applied, counts.duplicates, len(counts.dead_letters)) == (6, 1, 1)
    in_log = applied_ids_in_log(app)
    assert len(in_log) == 5 == len(set(in_log))
    assert app.applied_index.applied_id_summary() == summary_of(in_log)
    acc_2 = account_stream_id("ACC-2")
    assert app.applied_index.applied_id_summary(acc_2) == summary_of(
        [i for i in in_log if i[0] == acc_2]
    )
    assert app.applied_index.applied_among(set(in_log) | {(acc_2, "never-sent")}) == set(in_log)
    assert app.applied_id_findings(summary_of(in_log)) == []


def test_G1_a_record_sent_again_to_a_new_process_is_a_duplicate(
    lasting_store_url: str, mixed_history: list[RawRecord]
) -> None:
    """The process that applied it is gone, and with it everything it held in memory."""
    process_batch(open_app(lasting_store_url), SOURCE, mixed_history, lambda _: None)
    again = process_batch(open_app(lasting_store_url), SOURCE, mixed_history[1:], lambda _: None)
    assert (again.applied, again.duplicates, len(again.dead_letters)) == (0, 6, 1)
    fresh = open_app(lasting_store_url)
    assert [fresh.account(a).balance for a in ("ACC-1", "ACC-2")] == [  # type: ignore[union-attr]
        Decimal("3.00"),
        Decimal("2.00"),
    ]


def test_the_store_refuses_an_event_id_applied_twice(
    store_url: str, mixed_history: list[RawRecord]
) -> None:
    """A batch that looked a record up before another batch stored it (another process, on
    a rebalance) stores nothing, though its account is read at the version the other left."""
    app = open_app(store_url)
    process_batch(app, SOURCE, mixed_history[:3], lambda _: None)
    record = RawRecord(4, line(recharge("ACC-1")).encode())
    late = app.begin(SOURCE)
    late.look_up([parse_event(record.value)])
    assert process_batch(app, SOURCE, [record], lambda _: None).applied == 1
    assert late.apply(record.position, parse_event(record.value)) == "applied"
    stored_before = len(list(app.stored_events()))
    with pytest.raises(IntegrityError):
        late.commit()
    assert len(list(app.stored_events())) == stored_before
    assert app.account("ACC-1").balance == Decimal("1.00")  # type: ignore[union-attr]


def test_an_account_holds_the_same_whatever_the_length_of_its_history() -> None:
    """Its memory and its snapshots do not grow with the events it applied."""
    app = LedgerApp(memory_store())
    process_batch(app, SOURCE, records(catalog_published(), opened("ACC-1")), print)
    sizes = []
    position = 10
    for batch in (10, 990):
        docs = [recharge("ACC-1") for _ in range(batch)]
        process_batch(app, SOURCE, records(*docs, first=position), print)
        position += batch
        account = app.account("ACC-1")
        assert account is not None
        sizes.append(len(json.dumps(account.snapshot_document())))
    assert app.account("ACC-1").balance == Decimal("1000.00")  # type: ignore[union-attr]
    assert sizes[1] - sizes[0] <= 2  # the balance's digits: 10.00 -> 1000.00


def edited(url: str, statement: str) -> None:
    """A lasting store changed by hand, as someone with its rights can: one SQL statement."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as db:
            db.execute(statement)
    else:
        with psycopg.connect(url) as db:
            db.execute(statement)


def drop_index(url: str) -> None:
    edited(url, f"DROP TABLE {TABLE_NAME}")


def test_a_store_written_before_the_index_gets_it_from_its_log(
    lasting_store_url: str, mixed_history: list[RawRecord]
) -> None:
    process_batch(open_app(lasting_store_url), SOURCE, mixed_history, lambda _: None)
    drop_index(lasting_store_url)
    app = open_app(lasting_store_url)
    in_log = applied_ids_in_log(app)
    assert app.applied_index.applied_id_summary() == summary_of(in_log)
    assert app.applied_index.create_applied_index(APPLYING_TOPICS, lambda _: []) == 0
    again = process_batch(app, SOURCE, mixed_history[1:], lambda _: None)
    assert (again.applied, again.duplicates) == (0, 6)
    assert run_json("--store", lasting_store_url, "audit")["adds_up"] is True


@pytest.fixture
def audited_store(sqlite_url: str, mixed_history: list[RawRecord]) -> Iterator[str]:
    process_batch(open_app(sqlite_url), SOURCE, mixed_history, lambda _: None)
    yield sqlite_url


def edit_first_id(url: str, account: str, change: str) -> None:
    """Apply `change` ("DELETE FROM ..." or "UPDATE ... SET ...") to the index row of the
    account's lowest event id, as someone editing the store by hand would."""
    stream = account_stream_id(account).hex
    where = (
        f" WHERE stream_id = '{stream}' AND event_id = "
        f"(SELECT min(event_id) FROM {TABLE_NAME} WHERE stream_id = '{stream}')"
    )
    with sqlite3.connect(url[len("sqlite:///") :]) as db:
        assert db.execute(change + where).rowcount == 1


def test_G1_the_audit_counts_the_applied_ids_and_finds_them_indexed(audited_store: str) -> None:
    doc = run_json("--store", audited_store, "audit")
    assert doc["applied_ids"] == {"count": 5, "findings": []}
    assert run_json("--store", audited_store, "audit", "ACC-2")["applied_ids"]["count"] == 2
    text = run("--store", audited_store, "audit").stdout.splitlines()
    assert "applied ids: 5 event ids, indexed" in text


def test_G1_the_audit_names_an_id_missing_from_the_index(audited_store: str) -> None:
    edit_first_id(audited_store, "ACC-2", f"DELETE FROM {TABLE_NAME}")
    finding = (
        "the log holds 5 applied event ids but the index of applied event ids 4: "
        "an event applied twice, or the index edited"
    )
    doc = run_json("--store", audited_store, "audit", expect=1)
    assert doc["applied_ids"]["findings"] == [finding] and finding in doc["findings"]
    # The account's own audit finds it too; the other account's index is whole.
    assert run_json("--store", audited_store, "audit", "ACC-2", expect=1)["adds_up"] is False
    assert run_json("--store", audited_store, "audit", "ACC-1")["adds_up"] is True
    text = run("--store", audited_store, "audit", expect=1).stdout.splitlines()
    assert "applied ids: 5 event ids, 1 finding" in text


def test_G1_the_audit_names_an_index_whose_ids_differ_from_the_log(audited_store: str) -> None:
    edit_first_id(audited_store, "ACC-1", f"UPDATE {TABLE_NAME} SET event_id = 'changed'")
    doc = run_json("--store", audited_store, "audit", expect=1)
    assert doc["applied_ids"]["findings"] == [
        "the index of applied event ids differs from the event ids in the log: "
        "the index or the log was edited"
    ]


def test_a_lookup_probes_the_index_and_never_reads_the_whole_table(
    lasting_store_url: str,
) -> None:
    """A batch's lookup costs the same with a year of ids stored as with a day's: the
    planners chose to read the whole table for the first forms of the query."""
    app = open_app(lasting_store_url)
    ids = [(account_stream_id(f"ACC-{n}"), f"evt-{n}") for n in range(500)]
    if lasting_store_url.startswith("sqlite:///"):
        with sqlite3.connect(lasting_store_url[len("sqlite:///") :]) as db:
            db.executemany(
                f"INSERT INTO {TABLE_NAME} (stream_id, event_id) VALUES (?, ?)",
                [(account_stream_id(f"ACC-{n % 997}").hex, f"old-{n}") for n in range(20_000)],
            )
            db.execute("ANALYZE")
            statement = LedgerSQLiteRecorder.select_applied_statement(len(ids))
            values = [value for stream, event_id in ids for value in (stream.hex, event_id)]
            plan = " | ".join(
                row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", values)
            )
        assert "SEARCH a USING PRIMARY KEY" in plan and "SCAN a" not in plan, plan
    else:
        recorder = app.applied_index
        assert isinstance(recorder, LedgerPostgresRecorder)
        with psycopg.connect(lasting_store_url) as db:
            db.execute(
                f"INSERT INTO {TABLE_NAME} SELECT gen_random_uuid(), 'old-' || n "
                "FROM generate_series(1, 20000) AS n"
            )
            db.execute(f"ANALYZE {TABLE_NAME}")
            columns = ([stream for stream, _ in ids], [event_id for _, event_id in ids])
            rows = db.execute(
                SQL("EXPLAIN ") + recorder.select_applied_statement, columns, binary=True
            ).fetchall()
        plan = " | ".join(row[0] for row in rows)
        assert f"Index Only Scan using {TABLE_NAME}_pkey" in plan and "Seq Scan" not in plan, plan
    assert app.applied_index.applied_among(set(ids[:10])) == set()


def test_a_re_sent_record_is_known_as_a_duplicate_without_loading_its_account(
    lasting_store_url: str, mixed_history: list[RawRecord]
) -> None:
    """A producer re-sending a whole file costs a lookup per batch, not a load per account."""
    process_batch(open_app(lasting_store_url), SOURCE, mixed_history, lambda _: None)
    app = open_app(lasting_store_url)
    again = process_batch(app, SOURCE, mixed_history[1:], lambda _: None)
    assert (again.applied, again.duplicates) == (0, 6)
    assert list(app._accounts) == []


def test_filling_the_index_of_an_older_store_is_told_to_the_operator(
    sqlite_url: str, mixed_history: list[RawRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It takes about as long as a replay, once: the CLI says so on stderr, with progress."""
    process_batch(open_app(sqlite_url), SOURCE, mixed_history, lambda _: None)
    drop_index(sqlite_url)
    monkeypatch.setattr("ledger.application.INDEXING_NOTICE_EVERY", 2)
    first = run("--store", sqlite_url, "audit")
    lines = first.stderr.splitlines()
    assert lines[0] == "ledger: indexing the applied event ids of the log: 5 so far"
    assert lines[1].startswith("ledger: indexed the 5 applied event ids of the log in ")
    assert lines[1].endswith(" s (once, for G1)") and len(lines) == 2
    assert run("--store", sqlite_url, "audit").stderr == ""


def test_the_digest_of_ids_is_the_sum_of_each_ids_blake2b_whatever_streams_are_kept() -> None:
    """An id's hash goes on from its stream's, kept started: the same 64-bit BLAKE2b as of the
    stream id's bytes and the event id's at once, also once the kept streams were dropped."""
    ids = [(UUID(int=n % 3 + 1), f"e{n}") for n in range(10)]
    expected = sum(
        int.from_bytes(blake2b(stream.bytes + event_id.encode(), digest_size=8).digest(), "big")
        for stream, event_id in ids
    )
    for max_streams in (1, 2, 3, 100):
        tally = AppliedIdTally(max_streams)
        for stream, event_id in ids:
            tally.add(stream, event_id)
        assert tally.summary().count == len(ids)
        assert tally.summary().digest == expected % (1 << 64)
