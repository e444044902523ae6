"""An audit read in parts, one process each (issue 8, round 12).

A log split by stream (`LogPart`) is audited by several processes side by side, and their
results add up in the calling one. What it finds must be exactly what one process reading the
whole log finds, on an intact log and on a tampered one, in the same order; the parts must
hold every event once, each stream whole and in log order.
"""

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest

from bench.traffic import generate
from consumers.pipeline import RawRecord, process_batch
from ledger.account import Account
from ledger.application import LedgerApp
from ledger.applied_ids import AppliedIdSummary, summary_of
from ledger.audit import IntakeTally
from ledger.recorder import LogPart
from ledger.store import memory_store, parse_store_url
from projections.log_audit import (
    PARALLEL_FROM_EVENTS,
    LogAudit,
    PartAudit,
    audit_log,
    parts_for,
)
from tests.cli_helpers import assert_one_line_error, new_store, run_json

PG = pytest.mark.postgres


def _store_traffic(url: str, accounts: int = 20, usage: int = 3000) -> LedgerApp:
    """Bench traffic, in batches from two sources; most accounts pass a snapshot."""
    app = LedgerApp(parse_store_url(url))
    lines = list(generate(accounts, usage, seed=7))
    for start in range(0, len(lines), 400):
        source = "file:a.jsonl" if start % 800 == 0 else "file:b.jsonl"
        batch = [RawRecord(start + n, value) for n, value in enumerate(lines[start : start + 400])]
        process_batch(app, source, batch, lambda letters: None)
    return app


def _comparable(found: LogAudit, app: LedgerApp) -> dict[str, Any]:
    """Everything an audit reports, whatever the number of parts it was read in."""
    doc = asdict(found)
    del doc["parts"], doc["intake"]
    doc["intake"] = found.intake.result(app.process_recorder.max_tracking_id).document()
    doc["applied_findings"] = app.applied_id_findings(found.applied_ids)
    return doc


@PG
def test_the_parts_of_a_log_hold_each_event_once_and_each_stream_whole_in_log_order(
    postgres_url: str,
) -> None:
    app = _store_traffic(postgres_url, accounts=12, usage=1200)
    through = app.recorder.max_notification_id()
    assert through is not None
    whole = [position for position, _ in app.logged_events(through)]
    assert whole == list(range(1, through + 1))
    for count in (2, 3, 7):
        part_of_stream: dict[UUID, int] = {}
        positions: list[int] = []
        nonempty = 0
        for index in range(count):
            read = list(app.logged_events(through, LogPart(index, count), page_size=50))
            assert [p for p, _ in read] == sorted(p for p, _ in read)  # log order
            nonempty += bool(read)
            for position, event in read:
                stream = event.originator_id  # type: ignore[attr-defined]
                assert part_of_stream.setdefault(stream, index) == index, "a stream split"
                positions.append(position)
        assert sorted(positions) == whole, count
        assert nonempty >= 2, count
    # Only up to the position asked for.
    assert [p for p, _ in app.logged_events(40, LogPart(1, 2))] == [
        p for p, e in app.logged_events(through, LogPart(1, 2)) if p <= 40
    ]


@PG
def test_R3_an_audit_in_parts_finds_what_one_process_finds(postgres_url: str) -> None:
    app = _store_traffic(postgres_url)
    through = app.recorder.max_notification_id()
    assert through is not None
    alone = audit_log(app, through, parts=1)
    assert alone.parts == 1
    assert alone.events == through and alone.streams == 20 + 1  # chains: accounts, catalog
    assert alone.snapshots > 10 and alone.replayed
    assert alone.chain_findings == alone.snapshot_findings == []
    assert _comparable(alone, app)["applied_findings"] == []
    for parts in (2, 3):
        found = audit_log(app, through, parts=parts)
        assert found.parts == parts
        assert _comparable(found, app) == _comparable(alone, app), parts


@PG
def test_R3_a_tampered_log_read_in_parts_gives_the_same_findings_in_the_same_order(
    postgres_url: str,
) -> None:
    """Two accounts' events changed in the store, one removed from a third, and one account's
    snapshot edited: each part finds its own, and together they read as one process's."""
    app = _store_traffic(postgres_url)
    through = app.recorder.max_notification_id()
    assert through is not None
    charged = [
        (position, event)
        for position, event in app.logged_events(through)
        if isinstance(event, Account.FactApplied) and event.outcome["charges"]
    ]
    tampered = {event.fact["account_id"]: event for _, event in charged}
    first, second, third = sorted(tampered)[:3]
    with psycopg.connect(postgres_url, autocommit=True) as db:
        for account in (first, second):
            event = tampered[account]
            state = orjson.loads(
                db.execute(
                    "SELECT state FROM ledger_events WHERE originator_id = %s "
                    "AND originator_version = %s",
                    (event.originator_id, event.originator_version),
                ).fetchone()[0]  # type: ignore[index]
            )
            state["outcome"]["charges"][0]["amount"] = "99.0000"
            db.execute(
                "UPDATE ledger_events SET state = %s WHERE originator_id = %s "
                "AND originator_version = %s",
                (orjson.dumps(state), event.originator_id, event.originator_version),
            )
        db.execute(
            "DELETE FROM ledger_events WHERE originator_id = %s AND originator_version = 3",
            (tampered[third].originator_id,),
        )
        account_of = {event.originator_id: account for account, event in tampered.items()}
        snapshotted = [
            account_of[stream]
            for (stream,) in db.execute("SELECT originator_id FROM ledger_snapshots").fetchall()
            if stream in account_of
        ]
        edited = sorted(snapshotted)[0]
        db.execute(
            "UPDATE ledger_snapshots SET state = overlay(state placing 'X' from 1 for 1) "
            "WHERE originator_id = %s",
            (tampered[edited].originator_id,),
        )
    alone = _comparable(audit_log(app, through, parts=1), app)
    assert len(alone["chain_findings"]) >= 3, alone["chain_findings"]
    assert any(third in finding for finding in alone["chain_findings"])
    assert alone["snapshot_findings"] and edited in alone["snapshot_findings"][0]
    assert alone["applied_findings"]  # the removed event's id is still in the index
    for parts in (2, 3):
        assert _comparable(audit_log(app, through, parts=parts), app) == alone, parts


@PG
def test_R3_the_audit_command_reads_in_parts_when_asked_and_reports_the_same(
    postgres_url: str,
) -> None:
    _store_traffic(postgres_url, accounts=8, usage=800)
    one = run_json("--store", postgres_url, "audit", "--processes", "1")
    two = run_json("--store", postgres_url, "audit", "--processes", "2")
    assert one["adds_up"] is True
    assert two == one


def test_the_audit_command_refuses_parts_on_an_embedded_store(sqlite_url: str) -> None:
    new_store(sqlite_url)
    assert_one_line_error(sqlite_url, "audit", "--processes", "2", says="needs a PostgreSQL store")


def test_an_audit_reads_in_parts_by_itself_only_a_long_log_on_postgresql() -> None:
    postgres = parse_store_url("postgresql://ledger:ledger@127.0.0.1:55432/ledger")
    assert parts_for(memory_store(), 10 * PARALLEL_FROM_EVENTS) == 1
    assert parts_for(parse_store_url("sqlite:///x.db"), 10 * PARALLEL_FROM_EVENTS) == 1
    assert parts_for(postgres, PARALLEL_FROM_EVENTS - 1) == 1
    assert 1 <= parts_for(postgres, PARALLEL_FROM_EVENTS) <= 8


def _part(position: int, error_at: int | None, findings: list[tuple[int, str]]) -> PartAudit:
    return PartAudit(
        events=position,
        streams=1,
        chain_findings=findings,
        applied_ids=summary_of([(UUID(int=position), f"e{position}")]),
        replayed={} if error_at else {f"balance/ACC-{position}": {"balance": "1.0000"}},
        replay_error=None if error_at is None else (error_at, f"broke at {error_at}"),
        snapshots=1,
        snapshot_findings=[f"account ACC-{position}: snapshot differs"],
        intake=IntakeTally(),
    )


def test_parts_add_up_findings_in_log_order_and_the_first_replay_error() -> None:
    parts = [
        _part(1, None, [(5, "c"), (9, "e")]),
        _part(2, 7, [(2, "a"), (5, "d")]),
        _part(3, 4, [(3, "b")]),
    ]
    found = LogAudit.of(parts)
    assert found.chain_findings == ["a", "b", "c", "d", "e"]
    assert found.replayed is None and found.replay_error == "broke at 4"
    assert found.snapshot_findings == [f"account ACC-{n}: snapshot differs" for n in (1, 2, 3)]
    assert found.applied_ids == summary_of((UUID(int=n), f"e{n}") for n in (1, 2, 3))
    assert (found.events, found.streams, found.snapshots) == (6, 3, 3)
    clean = LogAudit.of([parts[0], _part(4, None, [])])
    assert clean.replayed == {
        "balance/ACC-1": {"balance": "1.0000"},
        "balance/ACC-4": {"balance": "1.0000"},
    }


def test_G1_an_applied_id_summary_means_the_same_in_every_process() -> None:
    """The parts' summaries are made in other processes and added up in this one."""
    ids = [(UUID(int=n), f"event-{n}") for n in range(50)]
    here = summary_of(ids)
    elsewhere = subprocess.run(
        [
            sys.executable,
            "-c",
            "from uuid import UUID; from ledger.applied_ids import summary_of; "
            "print(summary_of((UUID(int=n), f'event-{n}') for n in range(50)).digest)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    assert int(elsewhere.stdout) == here.digest
    assert summary_of(ids[:20]).plus(summary_of(ids[20:])) == here
    assert here.plus(AppliedIdSummary()) == here
    assert summary_of(ids[:20]).plus(summary_of(ids[21:])) != here


def test_R3_intake_tallies_of_parts_add_up_to_the_whole_logs() -> None:
    app = LedgerApp(memory_store())
    lines = list(generate(3, 60, seed=2))
    half = len(lines) // 2
    for source, some in (("file:a", lines[:half]), ("file:b", lines[half:])):
        records = [RawRecord(n + 1, value) for n, value in enumerate(some)]
        process_batch(app, source, records, lambda letters: None)
    whole, parts = IntakeTally(), [IntakeTally(), IntakeTally()]
    for event in app.stored_events():
        whole.see(event)
        parts[event.originator_id.int % 2].see(event)  # type: ignore[attr-defined]
    parts[0].absorb(parts[1])

    def no_position(source: str) -> None:
        return None

    expected = whole.result(no_position).document()
    assert [s["source"] for s in expected["sources"]] == ["file:a", "file:b"]
    assert expected["applied"] == expected["ledger_events"] > 0
    assert parts[0].result(no_position).document() == expected
    with pytest.raises(AssertionError, match="parts share a stream"):
        parts[0].absorb(parts[0])


def test_the_log_of_an_embedded_store_is_read_whole_up_to_the_position_asked_for(
    sqlite_url: str,
) -> None:
    app = LedgerApp(parse_store_url(sqlite_url))
    records = [RawRecord(n + 1, value) for n, value in enumerate(generate(3, 60, seed=2))]
    process_batch(app, "file:a", records, lambda letters: None)
    last = app.recorder.max_notification_id()
    assert last is not None and last > 25
    assert [p for p, _ in app.logged_events(last, page_size=10)] == list(range(1, last + 1))
    assert [p for p, _ in app.logged_events(25, page_size=10)] == list(range(1, 26))
    with pytest.raises(ValueError, match="only a PostgreSQL store can be read in parts"):
        next(app.logged_events(last, LogPart(0, 2)))
