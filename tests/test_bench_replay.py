"""`python -m bench.replay` measures replay, audit and rebuilds of a stored log and changes
nothing of it: the rebuilds write a scratch database's views."""

import json

import pytest

from bench.replay import STEPS, main
from bench.traffic import generate
from consumers.pipeline import RawRecord, process_batch
from ledger.application import LedgerApp
from ledger.store import parse_store_url
from projections.runner import view_documents
from projections.store_postgres import PostgresViewStore


@pytest.mark.postgres
def test_bench_replay_reads_every_stored_event_and_stores_nothing(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = list(generate(10, 200, seed=3))
    app = LedgerApp(parse_store_url(postgres_url))
    process_batch(app, "file", [RawRecord(i + 1, line) for i, line in enumerate(lines)], print)
    stored = sum(1 for _ in app.stored_events())
    position = app.recorder.max_notification_id()

    main(["--store", postgres_url, "--repeat", "2", "--json"])

    figures = json.loads(capsys.readouterr().out)
    assert figures["events"] == stored > len(lines) // 2
    assert figures["processes"] == 2
    for step in STEPS:
        assert figures[step]["per_s"] > 0 and figures[step]["per_cpu_s"] > 0, step
    assert app.recorder.max_notification_id() == position
    with PostgresViewStore(postgres_url) as views:  # the rebuilds wrote a scratch database's
        assert views.position() == 0 and view_documents(views) == {}


@pytest.mark.postgres
def test_bench_replay_prints_a_table_for_people(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    LedgerApp(parse_store_url(postgres_url))
    main(["--store", postgres_url, "--repeat", "1"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "0 stored events, best of 1"
    assert [line.split("  ")[0] for line in out[1:]] == [
        "read",
        "fold",
        "replay",
        "audit",
        "audit in 2 processes",
        "rebuild in place",
        "rebuild",
        "rebuild in 2 processes",
    ]


def test_bench_replay_refuses_a_step_it_does_not_know() -> None:
    with pytest.raises(SystemExit):
        main(["--store", "sqlite:///unused.db", "--steps", "replay,rebuid"])


@pytest.mark.postgres
def test_bench_replay_makes_no_database_when_it_times_no_rebuild(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reading steps alone need no role that may create databases."""
    LedgerApp(parse_store_url(postgres_url))
    unreachable = "postgresql://nobody:wrong@127.0.0.1:1/none"
    main(["--store", postgres_url, "--steps", "replay,audit", "--admin-url", unreachable])
    out = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in out[1:]] == ["replay", "audit"]
