"""The views rebuilt from the log on PostgreSQL: staged beside the live ones, in parts side by
side, then swapped in at once.

Views are kept per account, so the log's parts by stream (`LogPart`, as the audit reads them)
fold into documents no other part touches. Each part is folded by a process of its own into
tables of its own (`ledger_views_rebuild_N`), page by page with its position, as a catch-up
writes the live views: memory stays bounded however long the log. The calling process folds
the first part, then puts every part's documents in place of the live ones in one transaction,
at the position the rebuild read up to, and catches up on what was stored meanwhile.

So the live views stay whole while a rebuild runs: a support query sees them as they were,
then as rebuilt, never half of them (an in-place rebuild emptied them first). One rebuild at a
time: a second one is refused while the first holds its lock.
"""

from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from multiprocessing import get_context

import psycopg

from ledger.application import LedgerApp
from ledger.errors import LedgerError
from ledger.recorder import MAX_LOG_PARTS, WHOLE_LOG, LogPart
from ledger.runtime import tune_for_long_runs
from ledger.store import StoreConfig
from projections.projection import KnownDocuments, ViewChanges
from projections.runner import Progress, catch_up, default_projections, project, rebuild
from projections.store import ViewStore
from projections.store_postgres import PostgresViewStore

STAGED_PREFIX = "ledger_views_rebuild_"
# An explicit limit on the events a staged fold holds before writing their documents. No one
# reads staged views, so a page can be larger than a catch-up's (PAGE_SIZE): a document an
# account's events change is written once a page, and on the bench's log of 226,811 events
# pages of 5,000 rebuilt at 9,776-9,928 /s where pages of 1,000 did at 8,201-8,823.
STAGED_PAGE_EVENTS = 5_000
# Held by the process that runs a rebuild, for as long as it runs.
REBUILD_LOCK_ID = 727002


class RebuildRunning(LedgerError):
    """Another `ledger rebuild` holds the views' rebuild lock."""


def staged_views(conninfo: str, part: LogPart) -> PostgresViewStore:
    """The tables a part's documents are folded into, made if missing."""
    table = _staged_table(part.index)
    return PostgresViewStore(conninfo, table=table, position_table=f"{table}_position")


def _staged_table(index: int) -> str:
    return f"{STAGED_PREFIX}{index}"


def rebuild_views(
    app: LedgerApp, views: ViewStore, parts: int = 1, progress: Progress | None = None
) -> int:
    """Rebuild the views from the whole log; returns the events replayed. PostgreSQL's are
    staged and swapped in, the log read in `parts` parts (`log_audit.parts_for` suits them
    to a log, as an audit's); the embedded stores' are rebuilt in place, by this process."""
    if isinstance(views, PostgresViewStore):
        return rebuild_in_parts(app, views, parts, progress)
    if parts > 1:
        raise ValueError("only PostgreSQL views can be rebuilt in parts")
    return rebuild(app, views, progress)


def rebuild_in_parts(
    app: LedgerApp,
    views: PostgresViewStore,
    parts: int,
    progress: Progress | None = None,
    page_events: int = STAGED_PAGE_EVENTS,
) -> int:
    """Rebuild the views from the whole log, read in `parts` parts by as many processes (this
    one and parts - 1 it starts); returns the events replayed, those stored meanwhile too."""
    assert 1 <= parts <= MAX_LOG_PARTS, parts
    conninfo = views.conninfo
    with psycopg.connect(conninfo, autocommit=True) as lock:
        got = lock.execute("SELECT pg_try_advisory_lock(%s)", (REBUILD_LOCK_ID,)).fetchone()
        if got is None or not got[0]:
            raise RebuildRunning("another `ledger rebuild` is running on these views")
        _drop_staged(lock)  # an interrupted rebuild's
        through = app.recorder.max_notification_id() or 0
        if parts == 1:
            folded = fold_part(app, conninfo, through, WHOLE_LOG, progress, page_events)
        else:
            # Spawned, not forked: this process holds a connection pool and its threads.
            with ProcessPoolExecutor(parts - 1, mp_context=get_context("spawn")) as pool:
                others = [
                    pool.submit(
                        _fold_part, app.store, conninfo, through, LogPart(index, parts), page_events
                    )
                    for index in range(1, parts)
                ]
                first = LogPart(0, parts)
                folded = fold_part(app, conninfo, through, first, progress, page_events)
                folded += sum(other.result() for other in others)
        views.replace_with([_staged_table(index) for index in range(parts)], position=through)
        _drop_staged(lock)
    return folded + catch_up(app, views, progress=progress)


def fold_part(
    app: LedgerApp,
    conninfo: str,
    through: int,
    part: LogPart,
    progress: Progress | None = None,
    page_events: int = STAGED_PAGE_EVENTS,
) -> int:
    """Fold one part of the log, up to that position, into its staged views, emptied first;
    returns its events."""
    with staged_views(conninfo, part) as staged:
        staged.reset()
        return fold_pages(staged, app.logged_events(through, part), progress, page_events)


def fold_pages(
    views: PostgresViewStore,
    events: Iterable[tuple[int, object]],
    progress: Progress | None = None,
    page_events: int = STAGED_PAGE_EVENTS,
) -> int:
    """Fold (log position, event) pairs into views only this process writes, a page at a time,
    each page's documents written with its last position."""
    projections = default_projections()
    known = KnownDocuments()
    position = views.position()
    folded = 0
    for page in _pages(events, page_events):
        changes = ViewChanges(views, known.at(position))
        project([event for _, event in page], changes, projections)
        last = page[-1][0]
        views.write(changes.changed, expected=position, position=last, settled=changes.settled)
        known.committed(changes.changed, last, changes.settled)
        position = last
        folded += len(page)
        if progress is not None:
            progress(folded, last)
    return folded


def _pages(events: Iterable[tuple[int, object]], size: int) -> Iterator[list[tuple[int, object]]]:
    it = iter(events)
    while page := list(islice(it, size)):
        yield page


def _fold_part(
    store: StoreConfig, conninfo: str, through: int, part: LogPart, page_events: int
) -> int:
    """One part's fold, in a process of its own."""
    tune_for_long_runs()
    app = LedgerApp(store)
    try:
        return fold_part(app, conninfo, through, part, page_events=page_events)
    finally:
        app.close()


def _drop_staged(db: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = db.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
        (STAGED_PREFIX.replace("_", r"\_") + "%",),
    ).fetchall()
    for (table,) in rows:
        db.execute(f'DROP TABLE IF EXISTS "{table}"')
