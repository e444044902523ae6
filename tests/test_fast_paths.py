"""The shortcuts taken for speed give exactly what the long way gives (issue 8).

- Stored events are written and read by `LedgerTranscoder` (orjson) in the library's format.
- PostgreSQL inserts go through `LedgerPostgresRecorder` (binary arrays).
- Views take the events a process just stored from memory, not from the log, and keep the
  documents of its accounts across catch-up steps while no other process moves them on.
- On PostgreSQL a consumer writes the views in the events' own transaction (ViewsAlongside).
"""

import ast
import gc
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from click.testing import CliRunner
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    IntegrityError,
    JSONTranscoder,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.traffic import generate
from cli.main import main
from consumers.pipeline import RawRecord, process_batch
from ledger.account import Account
from ledger.application import LedgerApp
from ledger.chain import link
from ledger.outcome import Outcome
from ledger.recorder import Alongside, LockUse, LogPart
from ledger.recorder_postgres import LedgerPostgresRecorder
from ledger.records import LedgerEventStore
from ledger.runtime import GC_THRESHOLDS
from ledger.store import memory_store, parse_store_url
from ledger.transcoder import LedgerMapper, LedgerTranscoder, TimestampTexts
from projections.invoices import HeldInvoices, empty_invoice, line_kind, published
from projections.projection import KnownDocuments
from projections.runner import ViewsAlongside, catch_up, fold, view_documents
from projections.store import VIEW_TABLE, StaleViewPosition, open_view_store
from projections.store_postgres import PostgresViewStore
from tests.cli_helpers import ingest_events
from tests.factories import catalog_published, opened

LINES = list(generate(40, 1500, seed=7))


def _library_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


def _ingest(app: LedgerApp, lines: list[bytes], source: str = "bench", start: int = 0) -> None:
    records = [RawRecord(start + i + 1, line) for i, line in enumerate(lines)]
    process_batch(app, source, records, lambda letters: None)


def _state(event: object) -> tuple[str, dict[str, Any]]:
    return type(event).__qualname__, dict(vars(event))


def test_every_stored_event_is_byte_for_byte_the_library_format() -> None:
    app = LedgerApp(memory_store())
    _ingest(app, LINES)
    library, ours = _library_transcoder(), LedgerTranscoder()
    notifications = app.recorder.select_notifications(start=1, limit=100_000)
    topics = {n.topic.rsplit(".", 1)[-1] for n in notifications}
    assert {"Opened", "FactApplied", "VersionPublished", "BatchTaken"} <= topics
    for notification in notifications:
        expected = library.decode(notification.state)
        assert ours.decode(notification.state) == expected
        assert ours.encode(expected) == library.encode(expected) == notification.state


def test_every_stored_event_maps_back_as_the_librarys_mapper_maps_it() -> None:
    app = LedgerApp(memory_store())
    _ingest(app, LINES)
    ours, library = app.mapper, Mapper[UUID](transcoder=LedgerTranscoder())
    assert isinstance(ours, LedgerMapper)
    notifications = app.recorder.select_notifications(start=1, limit=100_000)
    for notification in notifications:
        assert _state(ours.to_domain_event(notification)) == _state(
            library.to_domain_event(notification)
        )
    # The library's way for what the short way does not take: a string id, state to upcast.
    first = notifications[0]
    as_text = StoredEvent(str(first.originator_id), 1, first.topic, first.state)
    assert _state(ours.to_domain_event(as_text)) == _state(library.to_domain_event(as_text))
    newer = StoredEvent(
        first.originator_id, 1, first.topic, first.state[:-1] + b',"class_version":1}'
    )
    assert _state(ours.to_domain_event(newer)) == _state(library.to_domain_event(newer))


def test_the_log_read_as_rows_gives_the_events_the_librarys_notifications_give(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL replays and audits map the log's rows straight to domain events, with
    no `Notification` built first: the same events, at the same positions, whole or in parts."""
    app = LedgerApp(parse_store_url(postgres_url))
    _ingest(app, LINES)
    assert isinstance(app.recorder, LedgerPostgresRecorder)
    library = Mapper[UUID](transcoder=LedgerTranscoder())
    # The library's own query and records, through the library's own mapper.
    notifications = super(LedgerPostgresRecorder, app.recorder).select_notifications(
        start=1, limit=100_000
    )
    expected = [(n.id, _state(library.to_domain_event(n))) for n in notifications]
    assert len(expected) > len(LINES) // 2

    def no_notifications(*row: object) -> None:
        raise AssertionError("a Notification was built to read the log")

    monkeypatch.setattr("ledger.recorder_postgres._notification", no_notifications)
    paged = [(p, _state(e)) for p, e in app.stored_page(0, 100_000)]
    assert paged == expected
    through = expected[-1][0]
    assert [(p, _state(e)) for p, e in app.logged_events(through)] == expected
    parts = [
        (p, _state(e))
        for index in range(3)
        for p, e in app.logged_events(through, LogPart(index, 3))
    ]
    assert sorted(parts) == expected
    app.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_log_is_decoded_one_event_at_a_time_as_a_replay_takes_it(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay or an audit decodes each stored event when it takes it, not a page of them
    first, which held a page of events' objects where one is needed (and cost reading the log
    a third more CPU, session 41). The events are the same, in the same order."""
    url = request.getfixturevalue(f"{kind}_url")
    app = LedgerApp(parse_store_url(url))
    _ingest(app, LINES[:300])
    whole = [(p, _state(e)) for p, e in app.stored_page(0, 100_000)]
    through = whole[-1][0]
    decoded = [0]
    event_of = app.mapper.event_of

    def counted(*row: Any) -> Any:
        decoded[0] += 1
        return event_of(*row)

    monkeypatch.setattr(app.mapper, "event_of", counted)
    for read in (app.stored_events(page_size=100), app.logged_events(through, page_size=100)):
        decoded[0] = 0
        next(read)
        assert decoded[0] == 1
        next(read)
        assert decoded[0] == 2
    assert [_state(e) for e in app.stored_events(page_size=7)] == [e for _, e in whole]
    assert [(p, _state(e)) for p, e in app.logged_events(through, page_size=7)] == whole
    assert [p for p, _ in app.logged_events(through - 5, page_size=7)] == [
        p for p, _ in whole if p <= through - 5
    ]
    app.close()


def _same_record(ours: object, theirs: object) -> bool:
    """Built by `ledger.frozen.built` or by the dataclass's own __init__: no difference."""
    return (
        type(ours) is type(theirs)
        and vars(ours) == vars(theirs)
        and ours == theirs
        and (repr(ours) == repr(theirs))
    )


def test_stored_records_built_in_fewer_steps_are_the_librarys_own() -> None:
    app = LedgerApp(memory_store())
    _ingest(app, LINES)
    ours, library = app.mapper, Mapper[UUID](transcoder=LedgerTranscoder())
    notifications = app.recorder.select_notifications(start=1, limit=100_000)
    for notification in notifications:
        event = ours.to_domain_event(notification)
        stored = ours.to_stored_event(event)
        assert _same_record(stored, library.to_stored_event(event))
        assert hash(stored) == hash(library.to_stored_event(event))
    # Each event's recording, as the ledger's event store puts it into a fresh store.
    events = [ours.to_domain_event(n) for n in notifications]
    fresh = LedgerApp(memory_store())
    assert isinstance(fresh.events, LedgerEventStore)
    recordings = fresh.events.put(events)
    assert len(recordings) == len(events)
    for notification_id, (event, recording) in enumerate(zip(events, recordings, strict=True), 1):
        stored = library.to_stored_event(event)
        expected = Recording(
            event,
            Notification(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=stored.state,
                id=notification_id,
            ),
        )
        assert _same_record(recording, expected)
        assert _same_record(recording.notification, expected.notification)
        assert hash(recording.notification) == hash(expected.notification)


def test_events_stored_without_records_are_stored_as_put_stores_them() -> None:
    source = LedgerApp(memory_store())
    _ingest(source, LINES)
    events = [
        source.mapper.to_domain_event(n) for n in source.recorder.select_notifications(1, 100_000)
    ]
    put, stored = LedgerApp(memory_store()), LedgerApp(memory_store())
    put.events.put(events)
    assert stored.events.store(events) is None
    ours = stored.recorder.select_notifications(1, 100_000)
    assert len(ours) == len(events) > 100
    assert ours == put.recorder.select_notifications(1, 100_000)


def _recorded_by_trigger_event(account: Account, fact: dict[str, Any], outcome: Outcome) -> None:
    """`Account.record` as it was, the long way: the library's `trigger_event`."""
    outcome_doc = outcome.document()
    account.trigger_event(
        Account.FactApplied,
        fact=fact,
        outcome=outcome_doc,
        chain=link(account.chain_head, fact, outcome_doc),
    )


def _without_timestamp(state: bytes) -> tuple[list[str], dict[str, Any]]:
    """A stored event's fields in their order, and their values but for when it was made."""
    fields = orjson.loads(state)
    del fields["timestamp"]
    return list(fields), fields


def test_an_account_records_the_event_the_librarys_trigger_event_makes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """And a batch collects the account's events as the library's `collect_events` would."""
    ours = LedgerApp(memory_store())
    _ingest(ours, LINES)
    monkeypatch.setattr(Account, "record", _recorded_by_trigger_event)
    monkeypatch.setattr(Account, "collect_events", Aggregate.collect_events)
    theirs = LedgerApp(memory_store())
    _ingest(theirs, LINES)
    stored = [app.recorder.select_notifications(start=1, limit=100_000) for app in (ours, theirs)]
    assert len(stored[0]) == len(stored[1]) > len(LINES) / 2
    last: dict[str, tuple[int, datetime]] = {}  # of each account: its last event's version, time
    for mine, library in zip(*stored, strict=True):
        assert (mine.originator_id, mine.originator_version, mine.topic) == (
            library.originator_id,
            library.originator_version,
            library.topic,
        )
        assert _without_timestamp(mine.state) == _without_timestamp(library.state)
        event = ours.mapper.to_domain_event(mine)
        assert list(vars(event)) == list(vars(theirs.mapper.to_domain_event(library)))
        if isinstance(event, Account.FactApplied):
            last[event.fact["account_id"]] = (event.originator_version, event.timestamp)
    assert len(last) > 10
    for account_id, (version, timestamp) in last.items():
        mine, library = (app.account(account_id) for app in (ours, theirs))
        assert mine is not None and library is not None
        assert (mine.version, len(mine.pending_events)) == (library.version, 0)
        assert (mine.version, mine.modified_on) == (version, timestamp)
        made_at = {"created_on": None, "modified_on": None}
        assert mine.snapshot_document() | made_at == library.snapshot_document() | made_at
    assert view_documents(fold(ours.stored_events())) == view_documents(
        fold(theirs.stored_events())
    )


@settings(max_examples=300)
@given(
    st.lists(
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]))
        | st.datetimes(
            min_value=datetime(2026, 11, 22, 13), max_value=datetime(2026, 11, 22, 14)
        ).map(lambda at: at.replace(tzinfo=UTC)),
        min_size=1,
        max_size=20,
    )
)
def test_timestamps_are_written_as_isoformat_writes_them(stamps: list[datetime]) -> None:
    """Any instant, any zone, in any order: within one minute, across minutes, far apart."""
    texts = TimestampTexts()
    assert [texts.text(stamp) for stamp in stamps] == [stamp.isoformat() for stamp in stamps]


def test_tags_anywhere_read_back_as_the_library_reads_them() -> None:
    ours, library = LedgerTranscoder(), _library_transcoder()
    state = {
        "id": UUID("6f1c7a9e-3b52-4d1a-9a57-2d0e6c1b8f40"),
        "at": datetime(2026, 11, 21, 12, 0, tzinfo=UTC),
        "nested": {"amount": Decimal("1.2300"), "when": [datetime(2026, 1, 1, tzinfo=UTC)]},
        "text": "_type_",
    }
    given = dict(state)
    encoded = ours.encode(state)
    assert state == given  # tagged in a copy: the caller's value is left as it was
    assert encoded == library.encode(state)
    assert ours.decode(encoded) == state


def test_views_from_memory_equal_views_from_the_log(postgres_url: str) -> None:
    store = parse_store_url(postgres_url)
    app = LedgerApp(store)
    half = len(LINES) // 2
    _ingest(app, LINES[:half])
    from_memory = app.recently_stored(after=0, limit=100_000)
    logged = app.recorder.select_notifications(start=1, limit=100_000)
    assert [n.id for n in logged] == [nid for nid, _ in from_memory]
    assert [_state(app.mapper.to_domain_event(n)) for n in logged] == [
        _state(event) for _, event in from_memory
    ]
    with open_view_store(store) as views:
        catch_up(app, views)
        _ingest(app, LINES[half:], start=half)
        catch_up(app, views)
        assert view_documents(views) == view_documents(fold(app.stored_events()))


def test_documents_kept_across_steps_are_dropped_when_another_process_writes(
    postgres_url: str,
) -> None:
    store = parse_store_url(postgres_url)
    first, second = LedgerApp(store), LedgerApp(store)
    known = KnownDocuments()
    thirds = [LINES[: len(LINES) // 3], LINES[len(LINES) // 3 : 2 * len(LINES) // 3]]
    thirds.append(LINES[2 * len(LINES) // 3 :])
    with open_view_store(store) as views, open_view_store(store) as other_views:
        _ingest(first, thirds[0], source="a")
        catch_up(first, views, known=known)
        assert known.accounts, "the first process keeps its accounts' documents"
        # Another process moves the same accounts' views on.
        _ingest(second, thirds[1], source="b")
        catch_up(second, other_views)
        first.forget_cached()  # the accounts moved on in the store, not in this memory
        _ingest(first, thirds[2], source="a", start=len(thirds[0]))
        catch_up(first, views, known=known)
        assert view_documents(views) == view_documents(fold(first.stored_events()))


def test_views_alongside_commit_with_the_events_they_reflect(postgres_url: str) -> None:
    store = parse_store_url(postgres_url)
    app = LedgerApp(store)
    with open_view_store(store) as views:
        assert isinstance(views, PostgresViewStore)
        alongside = ViewsAlongside(app, views)
        half = len(LINES) // 2
        for start, lines in ((0, LINES[:half]), (half, LINES[half:])):
            records = [RawRecord(start + i + 1, line) for i, line in enumerate(lines)]
            process_batch(app, "bench", records, lambda letters: None, None, alongside)
            # No catch-up: the views are at the log's end as soon as the batch commits.
            assert views.position() == app.recorder.max_notification_id()
        assert view_documents(views) == view_documents(fold(app.stored_events()))


def test_a_consumer_keeps_at_most_its_limit_of_view_documents(postgres_url: str) -> None:
    """An account gains documents for as long as it lives: the kept ones are bounded by their
    number, not only by their accounts', and forgetting them leaves the views exact."""
    store = parse_store_url(postgres_url)
    app = LedgerApp(store)
    with open_view_store(store) as views:
        assert isinstance(views, PostgresViewStore)
        alongside = ViewsAlongside(app, views)
        alongside.known.max_documents = 300
        kept = []
        for start in range(0, len(LINES), 100):
            lines = LINES[start : start + 100]
            records = [RawRecord(start + i + 1, line) for i, line in enumerate(lines)]
            process_batch(app, "bench", records, lambda letters: None, None, alongside)
            kept.append(len(alongside.known.docs))
        assert 0 < max(kept) <= 300 and 0 in kept[1:], kept
        assert view_documents(views) == view_documents(fold(app.stored_events()))


def test_views_documents_are_written_before_the_events_table_is_locked(
    postgres_url: str,
) -> None:
    """The lock on the events table serialises every writer of the log: only the events and
    the views' position are written under it, the documents before it (round 7)."""
    store = parse_store_url(postgres_url)
    app = LedgerApp(store)
    table = app.recorder.events_table_name
    seen: list[tuple[str, bool, int]] = []

    def look(cursor: Any, step: str) -> None:
        cursor.execute(
            "SELECT (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
            "AND locktype = 'relation' AND relation = %s::regclass AND mode = 'ExclusiveLock' "
            f"AND granted) AS locked, (SELECT count(*) FROM {VIEW_TABLE}) AS documents",
            (table,),
        )
        row = cursor.fetchone()
        seen.append((step, row["locked"] == 1, row["documents"]))

    class Watched(ViewsAlongside):
        def prepare(self, events: Sequence[object]) -> Alongside:
            written = super().prepare(events)

            def unlocked(cursor: Any) -> None:
                look(cursor, "before documents")
                written.unlocked(cursor)
                look(cursor, "after documents")

            def locked(cursor: Any, previous: int, ids: Sequence[int]) -> None:
                look(cursor, "position")
                written.locked(cursor, previous, ids)

            return Alongside(unlocked, locked)

    with open_view_store(store) as views:
        assert isinstance(views, PostgresViewStore)
        records = [RawRecord(i + 1, line) for i, line in enumerate(LINES)]
        process_batch(app, "bench", records, lambda letters: None, None, Watched(app, views))
        documents = len(view_documents(views))
        assert views.position() == app.recorder.max_notification_id()
    recorder = app.recorder
    assert isinstance(recorder, LedgerPostgresRecorder)
    # Every stored event was stored under the lock once, and the time it was held is counted.
    assert recorder.lock_use.events == recorder.max_notification_id()
    assert recorder.lock_use.seconds > 0
    assert seen == [
        ("before documents", False, 0),
        ("after documents", False, documents),
        ("position", True, documents),
    ]


def test_lock_use_gives_the_most_events_a_second_the_log_takes() -> None:
    use = LockUse()
    assert use.events_per_s() is None  # nothing stored: no limit to speak of
    use.held(0.25, 100)
    use.held(0.75, 300)
    assert (use.seconds, use.events, use.events_per_s()) == (1.0, 400, 400.0)


def test_views_behind_the_log_refuse_the_batch_and_lose_nothing(postgres_url: str) -> None:
    store = parse_store_url(postgres_url)
    app = LedgerApp(store)
    half = len(LINES) // 2
    _ingest(app, LINES[:half])  # stored without views: they are behind
    with open_view_store(store) as views:
        assert isinstance(views, PostgresViewStore)
        alongside = ViewsAlongside(app, views)
        stored = app.recorder.max_notification_id()
        records = [RawRecord(half + i + 1, line) for i, line in enumerate(LINES[half:])]
        with pytest.raises(StaleViewPosition):
            process_batch(app, "late", records, lambda letters: None, None, alongside)
        assert app.recorder.max_notification_id() == stored  # rolled back: nothing stored
        assert views.position() == 0
        catch_up(app, views)
        process_batch(app, "late", records, lambda letters: None, None, alongside)
        assert views.position() == app.recorder.max_notification_id()
        assert view_documents(views) == view_documents(fold(app.stored_events()))


def test_log_pages_read_as_binary_rows_equal_the_librarys(postgres_url: str) -> None:
    app = LedgerApp(parse_store_url(postgres_url))
    _ingest(app, LINES)
    recorder = app.recorder
    assert isinstance(recorder, LedgerPostgresRecorder)
    library = super(LedgerPostgresRecorder, recorder)
    for start, inclusive in ((None, True), (1, True), (1, False), (57, True), (57, False)):
        ours = recorder.select_notifications(start, 100, inclusive_of_start=inclusive)
        theirs = library.select_notifications(start, 100, inclusive_of_start=inclusive)
        assert ours == theirs and len(ours) == 100
        # Built without the dataclass's __init__: the same fields, nothing more or less.
        assert [vars(n) for n in ours] == [vars(n) for n in theirs]
        assert [(repr(n), hash(n)) for n in ours] == [(repr(n), hash(n)) for n in theirs]
    # A batch's streams read together, each row built the same way.
    streams = list(dict.fromkeys(n.originator_id for n in ours))[:5]
    together = recorder.select_ranges({stream_id: (1, 3) for stream_id in streams})
    alone = sorted(  # in stream order, as the server sorts stream ids
        (row for sid in streams for row in library.select_events(sid, gt=1, lte=3)),
        key=lambda row: (row.originator_id, row.originator_version),
    )
    assert together and all(_same_record(a, b) for a, b in zip(together, alone, strict=True))
    assert [hash(row) for row in together] == [hash(row) for row in alone]


def test_a_consumer_starts_again_from_the_store_when_another_process_wrote_its_accounts(
    postgres_url: str,
) -> None:
    store = parse_store_url(postgres_url)
    consumer, other = LedgerApp(store), LedgerApp(store)
    third = len(LINES) // 3
    parts = [LINES[:third], LINES[third : 2 * third], LINES[2 * third :]]
    records = [RawRecord(2 * third + i + 1, line) for i, line in enumerate(parts[2])]
    with open_view_store(store) as views, open_view_store(store) as other_views:
        assert isinstance(views, PostgresViewStore)
        alongside = ViewsAlongside(consumer, views)
        first = [RawRecord(i + 1, line) for i, line in enumerate(parts[0])]
        process_batch(consumer, "kafka", first, lambda letters: None, None, alongside)
        assert alongside.known.accounts, "the consumer keeps its accounts' documents"
        # A file ingest of the same accounts, its views caught up: the position is current,
        # but the consumer's kept documents and aggregates are not.
        _ingest(other, parts[1], source="file", start=third)
        catch_up(other, other_views)
        with pytest.raises(IntegrityError):  # the accounts' stream versions moved on
            process_batch(consumer, "kafka", records, lambda letters: None, None, alongside)
        assert not alongside.known.accounts, "a failed batch forgets the kept documents"
        process_batch(consumer, "kafka", records, lambda letters: None, None, alongside)
        assert views.position() == consumer.recorder.max_notification_id()
        assert view_documents(views) == view_documents(fold(consumer.stored_events()))


def test_the_ledger_command_runs_the_garbage_collector_less_often(tmp_path: Any) -> None:
    """Every `ledger` command (consume, ingest, replay, audit...) sets the collector's
    thresholds before it works: with the defaults, scans of the many live events and view
    documents cost a third of a replay."""
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        result = CliRunner().invoke(
            main, ["--store", f"sqlite:///{tmp_path / 'ledger.db'}", "balance", "ACC-NONE"]
        )
        assert result.exit_code == 1, result.output
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)


# Loaded only by the commands that use them: the Kafka client, and PostgreSQL's driver with
# the ledger's and the library's modules built on it.
KAFKA_MODULES = {"confluent_kafka", "consumers.kafka"}
POSTGRES_MODULES = {
    "psycopg",
    "eventsourcing.postgres",
    "ledger.recorder_postgres",
    "projections.store_postgres",
}
# What a command that works on the events needs; a query reads the views alone.
APPLICATION_MODULES = {"ledger.application", "eventsourcing.application", "projections.runner"}


def _modules_loaded_by(code: str) -> set[str]:
    loaded = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[-1]
    return set(ast.literal_eval(loaded))


def _modules_loaded_by_command(*args: str) -> set[str]:
    """The modules a `ledger` command with these arguments loads, run to its end (exit 0)."""
    return _modules_loaded_by(
        "from cli.main import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code"
    )


def test_a_command_on_an_embedded_store_loads_neither_kafka_nor_postgresql(
    sqlite_url: str, tmp_path: Any
) -> None:
    """A command's start is mostly loading modules: the Kafka client (30-80 ms), PostgreSQL's
    driver with what is built on it (about 180 ms) and the application (about 80 ms) were
    loaded by every command, whatever its store and work (session 41). A query on an embedded
    store loads none of them, an audit the application; one on PostgreSQL loads the driver,
    and `consume` and `publish` the client."""
    ingest_events(tmp_path, sqlite_url, catalog_published(), opened("ACC-1"))
    imported = _modules_loaded_by("import cli.main")
    assert "cli.main" in imported
    assert not (KAFKA_MODULES | POSTGRES_MODULES | APPLICATION_MODULES) & imported
    queried = _modules_loaded_by_command("--store", sqlite_url, "balance", "ACC-1")
    assert "projections.store" in queried
    assert not (KAFKA_MODULES | POSTGRES_MODULES | APPLICATION_MODULES) & queried
    audited = _modules_loaded_by_command("--store", sqlite_url, "audit")
    assert APPLICATION_MODULES | {"ledger.recorder_sqlite"} <= audited
    assert not (KAFKA_MODULES | POSTGRES_MODULES) & audited


def test_a_command_on_postgresql_loads_its_driver(postgres_url: str, tmp_path: Any) -> None:
    ingest_events(tmp_path, postgres_url, catalog_published(), opened("ACC-1"))
    queried = _modules_loaded_by_command("--store", postgres_url, "balance", "ACC-1")
    # A query reads the views alone: the events' recorder is not needed, nor loaded.
    assert {"psycopg", "projections.store_postgres"} <= queried
    assert not KAFKA_MODULES & queried


def _charge(charge_id: str, amount: str) -> dict[str, Any]:
    return {
        "charge_id": charge_id,
        "kind": "payg_call",
        "amount": amount,
        "period": "2026-11",
        "billed_period": "2026-11",
        "payer": "invoice",
        "msisdn": "+14150000001",
        "label": None,
    }


def test_an_invoice_read_again_is_not_billed_through_the_lines_of_its_old_copy() -> None:
    held = HeldInvoices()
    kept = empty_invoice("ACC-1", "2026-11", "postpaid", "USD")
    held.of(kept).add_charge(_charge("e1:payg", "1.2345"), "e1")
    # The same invoice as the store gives it back: equal, but new lists and dicts.
    read_again = orjson.loads(orjson.dumps(kept))
    held.of(read_again).add_charge(_charge("e2:payg", "0.0055"), "e2")
    charge_ids = [line["charge_ids"] for line in published(read_again, [])["lines"]]
    assert charge_ids == [["e1:payg", "e2:payg"]]
    assert (read_again["lines"][0][5:], read_again["total"]) == (["1.2400", 2], "1.24")
    assert published(kept, [])["lines"][0]["charge_ids"] == ["e1:payg"]
    assert kept["total"] == "1.23"


def test_a_held_invoice_moves_on_from_the_amounts_its_texts_say() -> None:
    """The sums held beside an invoice start from its texts, whoever wrote them."""
    statement = empty_invoice("ACC-1", "2026-11", "prepaid", "USD")
    statement["lines"] = [[0, "payg_calls", "+14150000001", "2026-11", "balance", "7.1049", 1]]
    statement["charges"] = [[0, "e0", "payg"]]
    statement["total"] = "7.10"
    statement["balance_change"] = "-7.1049"
    held = HeldInvoices().of(statement)
    charge = {**_charge("c1", "0.0001"), "payer": "balance"}
    held.move_balance(-held.add_charge({**charge, "charge_id": "e1:payg"}, "e1"))
    assert len(statement["lines"]) == 1
    line = statement["lines"][0]
    assert (line[5:], statement["total"]) == (["7.1050", 2], "7.11")
    [shown] = published(statement, [])["lines"]
    assert (shown["amount"], shown["charge_count"]) == ("7.11", 2)
    assert statement["balance_change"] == "-7.1050"
    assert statement["charges"] == [[0, "e0", "payg"], [0, "e1", "payg"]]


def test_a_negative_zero_charge_is_not_a_credit() -> None:
    assert line_kind(_charge("c1", "-0.0000")) == "payg_calls"
    assert line_kind(_charge("c1", "-0.0001")) == "credits"
