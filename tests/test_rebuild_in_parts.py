"""`ledger rebuild` on PostgreSQL: staged beside the live views, in parts, swapped in at once
(issue 8, round 17).

The rebuilt views must be exactly a fold of the log, however many parts it was read in; the
live views must stay whole while a rebuild runs, and a consumer writing them meanwhile must
end up with the views of every event; one rebuild at a time, and nothing staged left behind.
"""

from typing import Any

import psycopg
import pytest

from bench.traffic import generate
from consumers.pipeline import RawRecord, process_batch
from ledger.application import LedgerApp
from ledger.recorder import LogPart
from ledger.store import parse_store_url
from projections.log_rebuild import (
    REBUILD_LOCK_ID,
    STAGED_PREFIX,
    RebuildRunning,
    rebuild_in_parts,
    rebuild_views,
    staged_views,
)
from projections.runner import ViewsAlongside, catch_up, fold, view_documents
from projections.store import Doc, StaleViewPosition
from projections.store_postgres import PostgresViewStore
from tests.cli_helpers import assert_one_line_error, new_store, run, run_json

PG = pytest.mark.postgres
BATCH = 400


def _lines(accounts: int = 16, usage: int = 2400) -> list[Any]:
    return list(generate(accounts, usage, seed=11))


def _store(
    app: LedgerApp, lines: list[Any], first: int, alongside: ViewsAlongside | None = None
) -> None:
    """Store records from offset `first` in batches, as a consumer would; with the views
    alongside, a batch the views went stale under is caught up and stored again."""
    for start in range(0, len(lines), BATCH):
        batch = [
            RawRecord(first + start + n, line)
            for n, line in enumerate(lines[start : start + BATCH])
        ]
        try:
            process_batch(app, "file:t.jsonl", batch, lambda letters: None, None, alongside)
        except StaleViewPosition:
            assert alongside is not None
            alongside.forget()
            catch_up(app, alongside.views)
            process_batch(app, "file:t.jsonl", batch, lambda letters: None, None, alongside)


def _folded(app: LedgerApp) -> dict[str, Doc]:
    return view_documents(fold(app.stored_events()))


def _staged_tables(url: str) -> list[str]:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE %s ORDER BY tablename",
            (STAGED_PREFIX + "%",),
        ).fetchall()
    return [row[0] for row in rows]


@PG
def test_a_rebuild_in_parts_writes_exactly_the_views_of_the_log(postgres_url: str) -> None:
    app = LedgerApp(parse_store_url(postgres_url))
    _store(app, _lines(), first=0)  # stored without views: a rebuild makes them
    through = app.recorder.max_notification_id()
    expected = _folded(app)
    assert len(expected) > 100
    with PostgresViewStore(postgres_url) as views:
        assert views.position() == 0 and view_documents(views) == {}
        for parts in (1, 2, 3):
            assert rebuild_views(app, views, parts) == through
            assert views.position() == through, parts
            assert view_documents(views) == expected, parts
            assert _staged_tables(postgres_url) == [], parts


@PG
def test_the_live_views_stay_whole_during_a_rebuild_and_a_consumer_meanwhile_counts(
    postgres_url: str,
) -> None:
    """While the rebuild folds the log, a reader sees the views as they were, and a consumer
    stores a batch with its views alongside; after the swap the views are every event's, and
    the consumer's next batch (its kept documents now stale) lands right too."""
    app = LedgerApp(parse_store_url(postgres_url))
    lines = _lines(accounts=16, usage=3000)
    first, meanwhile, after = lines[:2400], lines[2400:2800], lines[2800:]
    with PostgresViewStore(postgres_url) as views, PostgresViewStore(postgres_url) as reader:
        alongside = ViewsAlongside(app, views)
        _store(app, first, 0, alongside)
        live = [view_documents(reader)]  # the views a reader should see, as they move
        through = app.recorder.max_notification_id()
        assert live[0] == _folded(app) and views.position() == through
        seen: list[int] = []

        def during(applied: int, position: int) -> None:
            if position > through:  # the catch-up after the swap
                return
            assert view_documents(reader) == live[-1], "a reader saw a rebuild half done"
            if not seen:
                _store(app, meanwhile, len(first), alongside)  # a consumer's batch meanwhile
                live.append(view_documents(reader))
                assert live[-1] != live[0] and live[-1] == _folded(app)
            seen.append(applied)

        replayed = rebuild_in_parts(app, views, 2, progress=during, page_events=300)
        assert len(seen) >= 2 and replayed == app.recorder.max_notification_id()
        assert views.position() == app.recorder.max_notification_id()
        assert view_documents(reader) == _folded(app)
        _store(app, after, len(first) + len(meanwhile), alongside)
        assert views.position() == app.recorder.max_notification_id()
        assert view_documents(reader) == _folded(app)


@PG
def test_one_rebuild_at_a_time(postgres_url: str) -> None:
    app = LedgerApp(parse_store_url(postgres_url))
    _store(app, _lines(accounts=4, usage=400), first=0)
    with psycopg.connect(postgres_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (REBUILD_LOCK_ID,))
        with PostgresViewStore(postgres_url) as views, pytest.raises(RebuildRunning):
            rebuild_views(app, views, 1)
        assert_one_line_error(postgres_url, "rebuild", says="another `ledger rebuild` is running")
    assert (
        run_json("--store", postgres_url, "rebuild")["replayed"]
        == app.recorder.max_notification_id()
    )


@PG
def test_an_interrupted_rebuilds_staged_tables_go_with_the_next_one(postgres_url: str) -> None:
    app = LedgerApp(parse_store_url(postgres_url))
    _store(app, _lines(accounts=4, usage=400), first=0)
    with staged_views(postgres_url, LogPart(5, 8)) as left:
        left.write({("balance", "ACC-X"): {"left": True}}, expected=0, position=7)
    assert _staged_tables(postgres_url) == [f"{STAGED_PREFIX}5", f"{STAGED_PREFIX}5_position"]
    with PostgresViewStore(postgres_url) as views:
        rebuild_views(app, views, 2)
        assert view_documents(views) == _folded(app)
    assert _staged_tables(postgres_url) == []


@PG
def test_the_rebuild_command_says_how_many_parts_and_replays_every_event(postgres_url: str) -> None:
    app = LedgerApp(parse_store_url(postgres_url))
    _store(app, _lines(accounts=8, usage=1600), first=0)
    result = run("--store", postgres_url, "--json", "rebuild", "--processes", "2")
    assert result.stderr.splitlines()[0] == "rebuild: the log in 2 parts, one process each"
    assert result.stderr.splitlines()[1].startswith("rebuild: part 1: ")
    through = app.recorder.max_notification_id()
    assert result.stdout.strip() == f'{{"replayed":{through}}}'
    with PostgresViewStore(postgres_url) as views:
        assert view_documents(views) == _folded(app)


def test_the_rebuild_command_refuses_parts_on_an_embedded_store(sqlite_url: str) -> None:
    new_store(sqlite_url)
    assert_one_line_error(
        sqlite_url, "rebuild", "--processes", "2", says="needs a PostgreSQL store"
    )
