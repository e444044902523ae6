"""The ledger application: applies validated incoming events to aggregates, batch by batch.

One batch is one transaction: the ledger events it produced, the Intake record of what the
source delivered, and (for Kafka) the consumed position are stored together, so a crash at any
instant loses nothing and applies nothing twice (G1).
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any, Literal, Protocol
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import (
    ProcessRecorder,
    Recording,
    StoredEvent,
    Tracking,
    Transcoder,
)
from eventsourcing.utils import get_topic

from ledger.account import Account, AccountSnapshot
from ledger.applied_ids import AppliedAt, AppliedIdIndex, AppliedIdSummary
from ledger.catalog import CatalogHistory
from ledger.catalog_book import CatalogBook
from ledger.contract import IncomingEvent
from ledger.errors import LedgerError, RejectedEvent
from ledger.ids import CATALOG_STREAM_ID, account_stream_id, intake_stream_id
from ledger.intake import Intake
from ledger.outcome import Charge
from ledger.recorder import WHOLE_LOG, Alongside, LogPart, LogRow, StreamSearch
from ledger.recorder_memory import LedgerMemoryRecorder
from ledger.recorder_sqlite import LedgerSQLiteRecorder
from ledger.records import LedgerEventStore
from ledger.rerate import Calls, later_on_number, logged_late
from ledger.rules import decide
from ledger.rules.refunds import DisputeEvidence
from ledger.store import StoreConfig, schema_lock
from ledger.transcoder import LedgerMapper, LedgerTranscoder

if TYPE_CHECKING:  # loaded only for a PostgreSQL store (`LedgerApp._postgres`)
    from ledger.recorder_postgres import LedgerPostgresRecorder

# Explicit limits on what grows in memory.
MAX_CACHED_ACCOUNTS = 50_000
MAX_BATCH_RECORDS = 100_000
MAX_CACHED_INTAKES = 10_000
MAX_RECENT_EVENTS = 20_000
# An audit looks up the latest snapshots of so many streams at a time as it reads the log,
# holding their first events meanwhile (ledger.snapshot_audit); the streams it leaves to after
# the read are checked so many at a time, their events up to their snapshots held for that.
SNAPSHOTS_CHECKED_AT_ONCE = 200
LAST_VERSION = 2**63 - 1  # a stream's versions are PostgreSQL bigints: through the end
# Looking for one charge, the account's latest events are read first, in one small read:
# support asks most often about a recent charge. An older one the store finds.
LATEST_EVENTS_SEARCHED = 100
# A row of the log, PostgreSQL's (`LogRow`) or a library recorder's notification's fields.
StoredRow = tuple[int, UUID | str, int, str, bytes]

# Streams grow for as long as the ledger runs: an account by one event per applied fact, a
# source's intake by one per batch. A process loads them from their latest snapshot, taken
# every this many events, and the events after it (bench/history.py, bench/months.py). An
# account's snapshot is about 460 bytes whatever its history, and a batch writes all those due
# in one transaction, so an account that applies 20-200 facts a month is read back from at
# most 100 events after a restart, not from up to a year of them.
ACCOUNT_SNAPSHOT_INTERVAL = 100
INTAKE_SNAPSHOT_INTERVAL = 100

Applied = Literal["applied", "duplicate"]

# The stored events that apply an event to an account, each with its id (ledger.applied_ids).
APPLYING_TOPICS = (get_topic(Account.Opened), get_topic(Account.FactApplied))
INDEXING_NOTICE_EVERY = 100_000


def mutated(events: Iterable[Any]) -> Any:
    """The aggregate these events (a snapshot first, if any) make; None when there are none.

    The library's `project_aggregate` without its assertion that each event is a
    `CanMutateProtocol`: on Python 3.11 that runtime protocol check costs about 17 µs an
    event, where mutating the account costs 3.
    """
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class WrittenAlongside(Protocol):
    """What commits in the same transaction as a batch's events (the views, on PostgreSQL):
    prepared from the events, written by the recorder in their transaction (ledger.recorder)."""

    def prepare(self, events: Sequence[object]) -> Alongside:
        """What to write with these events; called before the transaction."""

    def committed(self) -> None:
        """The transaction committed what `prepare` returned."""

    def abandoned(self) -> None:
        """The transaction failed: nothing prepared was stored."""


@dataclass
class DeadLetter:
    """A record the ledger could not apply, with its original bytes and the precise reason."""

    position: int
    value: bytes
    reason: str

    def document(self) -> dict[str, Any]:
        return {"position": self.position, "reason": self.reason}


@dataclass
class BatchCounts:
    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def add(self, other: "BatchCounts") -> None:
        self.consumed += other.consumed
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.dead_letters.extend(other.dead_letters)


class LedgerApp(Application[UUID]):
    """The event-sourced ledger. Built on a process recorder so batches carry tracking (G1)."""

    name = "Ledger"
    max_cached_accounts = MAX_CACHED_ACCOUNTS
    events: LedgerEventStore  # construct_event_store's
    mapper: LedgerMapper  # construct_mapper's

    def __init__(self, store: StoreConfig, notice: Callable[[str], None] | None = None) -> None:
        """`notice` takes a line for the operator about long work done on opening the store
        (the CLI prints it on stderr)."""
        self.store = store
        self._notice = notice or (lambda _: None)
        self._indexed = 0  # ids filled into a new index from the log, for `notice`
        with schema_lock(store):  # consumers starting together must not race to create tables
            super().__init__(env=store.eventsourcing_env())
            # Accounts and intakes are snapshotted by `due_snapshot`, not by the library,
            # which snapshots only what `Application.save` saves.
            self.snapshots = self.construct_snapshot_store()
            recorder = self.recorder
            # PostgreSQL's recorder, which reads and writes some things in fewer queries; its
            # module, and with it the driver, is loaded only for a PostgreSQL store.
            self._postgres: LedgerPostgresRecorder | None = None
            if store.kind == "postgresql":
                from ledger import recorder_postgres

                assert isinstance(recorder, recorder_postgres.LedgerPostgresRecorder)
                self._postgres = recorder
            else:
                assert isinstance(recorder, (LedgerSQLiteRecorder, LedgerMemoryRecorder))
            self.applied_index: AppliedIdIndex = recorder
            self.stream_search: StreamSearch = recorder
            # A store written before the index existed gets it filled from its log, once.
            started = time.monotonic()
            filled = recorder.create_applied_index(APPLYING_TOPICS, self._applied_ids_in)
            if filled:
                self._notice(
                    f"indexed the {filled:,} applied event ids of the log "
                    f"in {time.monotonic() - started:,.1f} s (once, for G1)"
                )
        # The version of the latest snapshot of each cached account and intake (0: none).
        self._snapshot_versions: dict[UUID, int] = {}
        self._accounts: OrderedDict[UUID, Account] = OrderedDict()
        self._catalog_book: CatalogBook | None = None
        self._intakes: dict[str, Intake] = {}
        # Events this process stored lately, by notification id: the views take them from
        # here rather than reading and decoding them back from the log.
        self._recent: OrderedDict[int, object] = OrderedDict()

    def construct_transcoder(self) -> Transcoder:
        return LedgerTranscoder()

    def construct_mapper(self) -> LedgerMapper:
        mapper = self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=LedgerMapper
        )
        assert isinstance(mapper, LedgerMapper)
        return mapper

    def construct_event_store(self) -> LedgerEventStore:
        return LedgerEventStore(mapper=self.mapper, recorder=self.recorder)

    def construct_recorder(self) -> ProcessRecorder:
        if self.store.kind == "memory":  # the library's factory takes no recorder class for it
            return LedgerMemoryRecorder()
        return self.factory.process_recorder()

    def _applied_ids_in(self, stored: Sequence[StoredEvent]) -> list[AppliedAt]:
        """The ids a page of stored events applied, while a new index is filled from the
        log: about as long as a replay, so its progress is noticed every so many ids."""
        applied = []
        for stored_event in stored:
            event = self.mapper.to_domain_event(stored_event)
            assert isinstance(event, (Account.Opened, Account.FactApplied))
            applied.append((event.originator_id, event.fact["event_id"], event.originator_version))
        before, self._indexed = self._indexed, self._indexed + len(applied)
        if before // INDEXING_NOTICE_EVERY != self._indexed // INDEXING_NOTICE_EVERY:
            self._notice(f"indexing the applied event ids of the log: {self._indexed:,} so far")
        return applied

    def applied_id_findings(
        self, in_log: AppliedIdSummary, stream_id: UUID | None = None
    ) -> list[str]:
        """G1 and R3 for the index of applied event ids: it holds exactly the ids of the
        account events in the log (`in_log`), of one account's stream or of all."""
        stored = self.applied_index.applied_id_summary(stream_id)
        if stored.count != in_log.count:
            return [
                f"the log holds {in_log.count} applied event ids but the index of applied "
                f"event ids {stored.count}: an event applied twice, or the index edited"
            ]
        if stored.digest != in_log.digest:
            return [
                "the index of applied event ids differs from the event ids in the log: "
                "the index or the log was edited"
            ]
        return []

    @property
    def process_recorder(self) -> ProcessRecorder:
        assert isinstance(self.recorder, ProcessRecorder)
        return self.recorder

    # Reading state.

    def account(self, account_id: str, absent: Collection[UUID] = ()) -> Account | None:
        """The account, cached or read from the store; None if it does not exist. `absent`:
        stream ids just read and found not to exist (`load_accounts`), not asked for again."""
        stream_id = account_stream_id(account_id)
        cached = self._accounts.get(stream_id)
        if cached is not None:
            self._accounts.move_to_end(stream_id)
            return cached
        if stream_id in absent:
            return None
        account, snapshot_version = self._load(stream_id)
        if account is None:
            return None
        assert isinstance(account, Account)
        self._remember(account, snapshot_version)
        return account

    def load_accounts(self, account_ids: Iterable[str]) -> set[UUID]:
        """Read the accounts of these ids that are not cached into the cache, all in two
        queries on PostgreSQL: a batch's accounts, before it applies their events. Returns
        the stream ids of those that do not exist."""
        # In the batch's order, which the cache keeps for forgetting the least recently used.
        wanted = [
            stream_id
            for stream_id in map(account_stream_id, dict.fromkeys(account_ids))
            if stream_id not in self._accounts
        ]
        absent = set()
        for stream_id, (account, snapshot_version) in self._restored(wanted).items():
            if account is None:
                absent.add(stream_id)
            else:
                assert isinstance(account, Account), stream_id
                self._remember(account, snapshot_version)
        return absent

    def _stored_latest_snapshots(self, stream_ids: Sequence[UUID]) -> dict[UUID, StoredEvent]:
        """The latest snapshot of each of these streams that has one, as stored: in one query
        on PostgreSQL, where each is a round trip to the server."""
        snapshots = self.snapshots
        assert snapshots is not None
        if self._postgres is not None:
            from eventsourcing.postgres import PostgresAggregateRecorder

            assert isinstance(snapshots.recorder, PostgresAggregateRecorder)
            rows = self._postgres.select_latest(snapshots.recorder.events_table_name, stream_ids)
        else:
            rows = [
                row
                for stream_id in stream_ids
                for row in snapshots.recorder.select_events(stream_id, desc=True, limit=1)
            ]
        return {row.originator_id: row for row in rows}

    def _stored_ranges(
        self, ranges: Mapping[UUID, tuple[int, int]]
    ) -> dict[UUID, list[StoredEvent]]:
        """The events of each stream after the first version of its range through the second,
        in version order, as stored: in one query on PostgreSQL."""
        if self._postgres is not None:
            rows = self._postgres.select_ranges(ranges)
        else:
            rows = [
                row
                for stream_id, (after, through) in ranges.items()
                for row in self.recorder.select_events(stream_id, gt=after, lte=through)
            ]
        by_stream: dict[UUID, list[StoredEvent]] = {}
        for row in rows:
            by_stream.setdefault(row.originator_id, []).append(row)
        return by_stream

    def _snapshot_of(self, stored: StoredEvent) -> Snapshot:
        assert self.snapshots is not None
        snapshot = self.snapshots.mapper.to_domain_event(stored)
        assert isinstance(snapshot, Snapshot), stored.topic
        return snapshot

    def _load(self, stream_id: UUID) -> tuple[Any, int]:
        """A stream's aggregate (None: no such stream) and its latest snapshot's version."""
        return self._restored([stream_id])[stream_id]

    def _restored(self, stream_ids: Sequence[UUID]) -> dict[UUID, tuple[Any, int]]:
        """Each stream's aggregate (None: no such stream) from its latest snapshot and the
        events after it, and that snapshot's version (0: none), in stream order. A snapshot in
        an older layout is passed over: the events say it all, and the next snapshot is due
        from its version (a new one at the same version would fail every batch)."""
        latest = {
            stream_id: self._snapshot_of(stored)
            for stream_id, stored in self._stored_latest_snapshots(stream_ids).items()
        }
        stored_events = self._stored_ranges(
            {
                stream_id: (_replayed_after(latest.get(stream_id)), LAST_VERSION)
                for stream_id in stream_ids
            }
        )
        restored = {}
        for stream_id in stream_ids:
            events = map(self.mapper.to_domain_event, stored_events.get(stream_id, []))
            snapshot = latest.get(stream_id)
            if snapshot is None:
                restored[stream_id] = mutated(events), 0
            else:
                start = [] if _unreadable(snapshot) else [snapshot]
                restored[stream_id] = mutated(chain(start, events)), snapshot.originator_version
        return restored

    def due_snapshot(self, aggregate: Account | Intake) -> Snapshot | None:
        """A snapshot of a cached account or intake when its interval of events has been
        stored since its latest snapshot. Taken before a batch moves it, so it is of stored
        state; the batch writes it before its events, and a failed write fails the batch,
        which the source retries (and which forgets the versions noted here)."""
        snapshot_class: type[Snapshot] = Snapshot
        interval = INTAKE_SNAPSHOT_INTERVAL
        if isinstance(aggregate, Account):
            snapshot_class, interval = AccountSnapshot, ACCOUNT_SNAPSHOT_INTERVAL
        if aggregate.version - self._snapshot_versions[aggregate.id] < interval:
            return None
        self._snapshot_versions[aggregate.id] = aggregate.version
        return snapshot_class.take(aggregate)

    def catalog_book(self) -> CatalogBook | None:
        if self._catalog_book is None:
            book, _ = self._load(CATALOG_STREAM_ID)
            if book is None:
                return None
            assert isinstance(book, CatalogBook)
            self._catalog_book = book
        return self._catalog_book

    def catalogs(self) -> CatalogHistory:
        book = self.catalog_book()
        return book.history if book is not None else CatalogHistory()

    def intake(self, source: str) -> Intake | None:
        cached = self._intakes.get(source)
        if cached is not None:
            return cached
        intake, snapshot_version = self._load(intake_stream_id(source))
        if intake is None:
            return None
        assert isinstance(intake, Intake)
        self._remember_intake(source, intake, snapshot_version)
        return intake

    def _remember_intake(self, source: str, intake: Intake, snapshot_version: int) -> None:
        if len(self._intakes) >= MAX_CACHED_INTAKES:
            for forgotten in self._intakes.values():
                del self._snapshot_versions[forgotten.id]
            self._intakes.clear()
        self._intakes[source] = intake
        self._snapshot_versions[intake.id] = snapshot_version

    def latest_snapshots(self, stream_ids: Sequence[UUID]) -> dict[UUID, Snapshot | Exception]:
        """The latest snapshot of each of these streams that has one in a layout this code
        reads, or the error reading it back raised (a tampered one): in one query on
        PostgreSQL."""
        latest: dict[UUID, Snapshot | Exception] = {}
        for stream_id, stored in self._stored_latest_snapshots(stream_ids).items():
            try:
                snapshot = self._snapshot_of(stored)
            except Exception as error:  # a tampered snapshot cannot be read back
                latest[stream_id] = error
                continue
            if not _unreadable(snapshot):
                latest[stream_id] = snapshot
        return latest

    def snapshot_findings(self, streams: Mapping[UUID, str]) -> tuple[int, list[str]]:
        """R3 for the state a process starts from: the latest snapshot of each of these streams
        (id -> name) equals its stored events replayed up to the snapshot's version. Returns
        the number of snapshots checked and the findings. Streams are read so many at a time,
        each time in two queries: the snapshots, then the events up to them. The audit checks
        most snapshots as it reads the log (`ledger.snapshot_audit`), and these the rest."""
        checked = 0
        findings: list[str] = []
        stream_ids = list(streams)
        for start in range(0, len(stream_ids), SNAPSHOTS_CHECKED_AT_ONCE):
            some = stream_ids[start : start + SNAPSHOTS_CHECKED_AT_ONCE]
            found: dict[UUID, str] = {}
            latest: dict[UUID, Snapshot] = {}
            for stream_id, snapshot in self.latest_snapshots(some).items():
                if isinstance(snapshot, Exception):
                    found[stream_id] = f"{streams[stream_id]}: {unreadable_finding(snapshot)}"
                else:
                    latest[stream_id] = snapshot
            stored_events = self._stored_ranges(
                {
                    stream_id: (0, snapshot.originator_version)
                    for stream_id, snapshot in latest.items()
                }
            )
            checked += len(latest)
            for stream_id, snapshot in latest.items():
                try:
                    replayed = mutated(
                        map(self.mapper.to_domain_event, stored_events.get(stream_id, []))
                    )
                except Exception as error:  # nor can a tampered stream
                    found[stream_id] = f"{streams[stream_id]}: {unreadable_finding(error)}"
                    continue
                finding = snapshot_finding(snapshot, replayed)
                if finding is not None:
                    found[stream_id] = f"{streams[stream_id]}: {finding}"
            findings.extend(found[stream_id] for stream_id in some if stream_id in found)
        return checked, findings

    def stored_events(self, after: int = 0, page_size: int = 1000) -> Iterator[object]:
        """Every stored domain event after that log position, in log order: read a page at
        a time, each decoded only as it is taken (`_decoded`)."""
        while rows := self._log_page(after, page_size):
            for _, event in self._decoded(rows):
                yield event
            after = rows[-1][0]

    def logged_events(
        self, through: int, part: LogPart = WHOLE_LOG, page_size: int = 1000
    ) -> Iterator[tuple[int, object]]:
        """Every stored event up to that log position, in log order, with its notification id;
        of one part of the log's streams when it is read in parts (PostgreSQL only)."""
        after = 0
        if self._postgres is not None:
            # Windows of ids that hold about a page of the part's events each.
            while after < through:
                window = min(through, after + page_size * part.count)
                yield from self._decoded(self._postgres.select_part(after, window, part))
                after = window
            return
        if part.count != 1:
            raise ValueError("only a PostgreSQL store can be read in parts")
        while after < through and (rows := self._log_page(after, page_size)):
            yield from self._decoded(row for row in rows if row[0] <= through)
            after = rows[-1][0]

    def stored_page(self, after: int, limit: int) -> list[tuple[int, object]]:
        """Up to `limit` stored events after that log position, as (notification id, event)."""
        return list(self._decoded(self._log_page(after, limit)))

    def _log_page(self, after: int, limit: int) -> Sequence[StoredRow]:
        """Up to `limit` rows of the log after that position, not decoded yet."""
        if self._postgres is not None:  # with no record built of each
            rows: list[LogRow] = self._postgres.select_log_page(after, limit)
            return rows
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications
        ]

    def _decoded(self, rows: Iterable[StoredRow]) -> Iterator[tuple[int, object]]:
        """Rows of the log as (notification id, event), each decoded as it is taken: a page
        of events decoded at once held a thousand events' objects where one is needed, and
        their memory is then reused from event to event (reading the log costs a third less
        CPU; docs/PERFORMANCE.md, session 41)."""
        event_of = self.mapper.event_of
        for position, stream_id, version, topic, state in rows:
            yield position, event_of(stream_id, version, topic, state)

    def recently_stored(self, after: int, limit: int) -> list[tuple[int, object]]:
        """The events stored by this process right after that log position, as (notification
        id, event), up to the first gap; empty when the next one was not stored here."""
        while self._recent and next(iter(self._recent)) <= after:
            self._recent.popitem(last=False)
        page: list[tuple[int, object]] = []
        for notification_id, event in self._recent.items():
            if notification_id != after + 1 + len(page) or len(page) >= limit:
                break
            page.append((notification_id, event))
        return page

    def _stored(self, recordings: Sequence[Recording[UUID]]) -> None:
        for recording in recordings:
            self._recent[recording.notification.id] = recording.domain_event
        while len(self._recent) > MAX_RECENT_EVENTS:
            self._recent.popitem(last=False)

    def account_events(self, account_id: str, through: int | None = None) -> Iterator[object]:
        """The stored events of one account's stream, in order, up to stream position
        `through` (all of them when None); nothing when the account is unknown."""
        return iter(self.events.get(account_stream_id(account_id), lte=through))

    def charge_of(
        self, account_id: str, charge_id: str
    ) -> tuple[Account.FactApplied, dict[str, Any]] | None:
        """The stored event that made this charge of the account, and the charge; None when
        the account made no such charge.

        A charge id is its event's id, a colon and a suffix (`ledger.rules`), and either may
        hold colons: the index of applied event ids (G1) says which of the ids it may begin
        with the account applied, without reading its stream, and only those events are looked
        for (`fact_events`). Reading a busy account's stream back took most of a second for its
        month's first charges (20,000 events)."""
        stream = account_stream_id(account_id)
        event_ids = {charge_id[:end] for end, char in enumerate(charge_id) if char == ":"}
        wanted = {
            event_id
            for _, event_id in self.applied_index.applied_among({(stream, e) for e in event_ids})
        }
        for event in self.fact_events(account_id, wanted):
            if isinstance(event, Account.FactApplied):
                for charge in event.outcome["charges"]:
                    if charge["charge_id"] == charge_id:
                        return event, charge
        return None

    def fact_events(self, account_id: str, event_ids: Collection[str]) -> Iterator[object]:
        """The account's stored events whose facts have these ids (its opening, applied facts):
        those among its latest events first, latest first, in one small read; then the older
        ones, each read alone at the version the index of applied ids gives it (G1). An id
        the index holds without a version (stored before it kept them) is looked for by the
        store, which finds the stored events holding its field without decoding the stream
        (`StreamSearch`). Nothing is read when no id is asked for."""
        if not event_ids:
            return
        stream = account_stream_id(account_id)
        latest = list(self.events.get(stream, desc=True, limit=LATEST_EVENTS_SEARCHED))
        seen = set()
        for event in latest:
            event_id = _fact_event_id(event)
            if event_id in event_ids:
                seen.add(event_id)
                yield event
        if len(latest) < LATEST_EVENTS_SEARCHED:
            return
        before = latest[-1].originator_version
        # An event id is applied once per account: one seen among the latest is nowhere else.
        older = sorted(set(event_ids) - seen)
        versions = self.applied_index.versions_applying(stream, older) if older else {}
        for event_id in older:
            for version in self._versions_of(stream, event_id, versions.get(event_id), before):
                held = [
                    event
                    for event in self.events.get(stream, gt=version - 1, lte=version)
                    if _fact_event_id(event) == event_id
                ]
                if held:
                    yield held[0]
                    break

    def _versions_of(
        self, stream: UUID, event_id: str, indexed: int | None, before: int
    ) -> Iterator[int]:
        """The versions below `before` where the stream's event of this fact id may be, each
        read and checked by the caller: the one the index gives it (`indexed`), then those
        the store finds holding the id's field, should that be none or not the event."""
        if indexed is not None and indexed < before:
            yield indexed
        # The field as every event's fact stores it: `"event_id":"..."`, by this transcoder.
        field = self.mapper.transcoder.encode({"event_id": event_id})[1:-1]
        yield from self.stream_search.versions_holding(stream, field, before)

    def dispute_evidence(
        self, account: Account, charge_id: str, pending: Sequence[object] = ()
    ) -> DisputeEvidence | None:
        """The charge a refund request names, its source event, the account just before it,
        and an earlier charge for the same call (F1). None: the account has no such charge.

        `pending` are the events of the batch being decided, not stored yet: a charge recorded
        earlier in the same batch is found as if it had arrived in a batch of its own (T2)."""
        stream: list[Any] = [*self.account_events(account.account_id)]
        stream += [
            event for event in pending if getattr(event, "originator_id", None) == account.id
        ]
        calls = Calls()
        for index, event in enumerate(stream):
            if not isinstance(event, Account.FactApplied):
                continue
            fact, charges = event.fact, event.outcome["charges"]
            for doc in charges:
                if doc["charge_id"] != charge_id:
                    continue
                before = mutated(stream[:index])
                assert isinstance(before, Account)
                assert before.version == event.originator_version - 1, (before.version, index)
                charge = Charge.from_document(doc)
                channel = None
                if charge.kind == "plan_fee" and charge.msisdn is not None:
                    if fact["type"] == "plan.purchased":
                        channel = fact["channel"]
                    else:
                        plan = before.numbers[charge.msisdn].plan
                        channel = plan.channel if plan is not None else None
                later = stream[index + 1 :]
                return DisputeEvidence(
                    charge=charge,
                    source_fact=fact,
                    before=before,
                    earlier=tuple(stream[:index]),
                    logged_late=logged_late(fact, later),
                    duplicate_of=calls.first_record(fact),
                    credited_by=account.credited_charges.get(charge_id),
                    credited=charge.amount - account.uncredited(charge_id, charge.amount),
                    channel=channel,
                    later_on_number=later_on_number(charge.msisdn, later),
                )
            calls.add(event)
        return None

    def next_position(self, tracking_name: str) -> int:
        """Where a source resumes: the position after the last one stored (G1)."""
        stored = self.process_recorder.max_tracking_id(tracking_name)
        return 0 if stored is None else stored

    def forget_cached(self) -> None:
        """Drop cached aggregates: after a failed batch, or when partitions move (G3)."""
        self._accounts.clear()
        self._catalog_book = None
        self._intakes.clear()
        self._snapshot_versions.clear()

    def _remember(self, account: Account, snapshot_version: int) -> None:
        assert account.id not in self._accounts
        self._accounts[account.id] = account
        self._snapshot_versions[account.id] = snapshot_version

    def trim_cache(self) -> None:
        """Forget the least recently used accounts beyond the limit. Only between batches:
        an account a batch has moved and then forgotten would be read back from the store
        without the batch's events, and the batch would store two events of one version."""
        accounts = self._accounts
        while len(accounts) > self.max_cached_accounts:
            _, forgotten = accounts.popitem(last=False)
            del self._snapshot_versions[forgotten.id]

    def begin(self, source: str) -> "Batch":
        return Batch(self, source)


def _fact_event_id(event: object) -> str | None:
    """The id of the fact an account's stored event holds (its opening, an applied fact)."""
    event_id: str | None = getattr(event, "fact", {}).get("event_id")
    return event_id


def _replayed_after(latest: Snapshot | None) -> int:
    """The version after which a stream's events are replayed onto its latest snapshot."""
    return 0 if latest is None or _unreadable(latest) else latest.originator_version


def _unreadable(snapshot: object) -> bool:
    """An account snapshot in a layout this code does not read (`SNAPSHOT_FORMAT`)."""
    return isinstance(snapshot, AccountSnapshot) and not snapshot.readable


def _comparable(aggregate: object) -> object:
    """An aggregate's state to compare: an account's as its snapshot writes it, so a balance
    of 1.0 is told from 1.00."""
    return aggregate.snapshot_document() if isinstance(aggregate, Account) else vars(aggregate)


def snapshot_finding(snapshot: Snapshot, replayed: Any) -> str | None:
    """What is wrong with a stream's latest snapshot against its events replayed to the
    snapshot's version (`replayed`: their aggregate, None when there are none), without the
    stream's name; None when they are equal."""
    version = snapshot.originator_version
    try:
        restored = snapshot.mutate(None)
    except Exception as error:  # a tampered snapshot may read back and not restore
        return unreadable_finding(error)
    if replayed is None or replayed.version != version:
        return f"the snapshot at version {version} is past its events"
    if _comparable(restored) != _comparable(replayed):
        return f"the snapshot at version {version} differs from its events replayed to that version"
    return None


def unreadable_finding(error: Exception) -> str:
    """A snapshot, or its stream's events, that the audit could not read back or replay."""
    return f"its snapshot cannot be checked ({error!r})"


EventKey = tuple[str, str]  # an event as a batch knows it: its account's id and its own


class Batch:
    """One source batch applied as one transaction. Use once: apply/dead_letter, then commit."""

    def __init__(self, app: LedgerApp, source: str) -> None:
        self.app = app
        self.source = source
        self.counts = BatchCounts()
        self._events: list[Any] = []
        # Accounts this batch has moved, or is about to, by account id. The batch's own keys
        # are strings: a str caches its hash, where a UUID's is a Python call each time.
        self._held: dict[str, Account] = {}
        self._snapshots: list[Snapshot] = []  # of accounts and the intake, as stored
        # The ids of the events `look_up` was given, those of them applied before this
        # batch or in it, and those this batch applied, stored with its events (G1).
        self._looked_up: set[EventKey] = set()
        self._absent: set[UUID] = set()  # accounts `look_up` read and found not to exist
        self._applied_before: set[EventKey] = set()
        self._applied_ids: list[AppliedAt] = []
        self._first_position: int | None = None
        self._last_position = -1

    def _consume(self, position: int) -> None:
        if self.counts.consumed >= MAX_BATCH_RECORDS:
            raise OverflowError(f"a batch holds at most {MAX_BATCH_RECORDS} records")
        if self._first_position is None:
            self._first_position = position
        self._last_position = position
        self.counts.consumed += 1

    def dead_letter(self, position: int, value: bytes, reason: str) -> None:
        self._consume(position)
        self.counts.dead_letters.append(DeadLetter(position, value, reason))

    def look_up(self, events: Sequence[IncomingEvent]) -> None:
        """Read, in one query, which of the events this batch is about to apply were applied
        before: `apply` takes only events looked up."""
        applying = [event for event in events if event.type != "catalog.published"]
        keys = [(event.account_id, event.event_id) for event in applying]
        new = set(keys) - self._looked_up
        # The store knows events by their stream's id: asked once for each new key.
        asked = {
            (account_stream_id(account_id), event_id): (account_id, event_id)
            for account_id, event_id in new
        }
        found = self.app.applied_index.applied_among(asked.keys())
        self._applied_before.update(asked[applied_id] for applied_id in found)
        self._looked_up |= new
        # The accounts of the events not applied before, read in two queries, not two each.
        self._absent |= self.app.load_accounts(
            event.account_id
            for event, key in zip(applying, keys, strict=True)
            if key not in self._applied_before
        )

    def apply(self, position: int, event: IncomingEvent) -> Applied:
        """Apply one valid event, looked up first. RejectedEvent / InvalidCatalog: nothing
        moved, dead-letter it."""
        try:
            result = self._apply(event)
        except LedgerError:
            raise  # refused before anything moved: the caller dead-letters it
        except Exception:
            # A defect, not bad input: the batch is abandoned and memory may be half-moved.
            self.app.forget_cached()
            raise
        self._consume(position)
        if result == "duplicate":
            self.counts.duplicates += 1
        else:
            self.counts.applied += 1
        return result

    def _apply(self, event: IncomingEvent) -> Applied:
        fact = event.document()
        if event.type == "catalog.published":
            book = self.app.catalog_book()
            if book is not None and book.has_seen(event.event_id):
                return "duplicate"
            if book is None:
                book = CatalogBook.start(CATALOG_STREAM_ID)
                book.publish(fact)
                self.app._catalog_book = book
            else:
                book.publish(fact)
            self._collect(book)
            return "applied"

        key = (event.account_id, event.event_id)
        assert key in self._looked_up, f"event {event.event_id} was not looked up"
        if key in self._applied_before:
            return "duplicate"  # known without loading the account: a re-sent file costs little
        account = self._held.get(event.account_id)
        held = account is not None
        if not held:
            account = self.app.account(event.account_id, self._absent)
        if event.type == "account.opened":
            if account is not None:
                raise RejectedEvent(f"account {event.account_id} is already open")
            currency = event.fields["currency"]
            if currency not in self.app.catalogs().currencies():
                raise RejectedEvent(
                    f"no catalog is published in {currency}, the currency of account "
                    f"{event.account_id} (M1)"
                )
            account = Account.open(account_stream_id(event.account_id), fact)
            self.app._remember(account, snapshot_version=0)
            self._collect(account)
            self._applied(key, account)
            return "applied"

        if account is None:
            raise RejectedEvent(f"unknown account {event.account_id}")
        if not held:  # still as stored
            self._snapshot_if_due(account)
            self._held[event.account_id] = account
        evidence = None
        if event.type == "refund.requested":
            evidence = self.app.dispute_evidence(
                account, event.fields["charge_id"], pending=self._events
            )
        outcome = decide(account, event, self.app.catalogs(), evidence)
        account.record(fact, outcome)
        self._collect(account)
        self._applied(key, account)
        return "applied"

    def _snapshot_if_due(self, aggregate: Account | Intake) -> None:
        snapshot = self.app.due_snapshot(aggregate)
        if snapshot is not None:
            self._snapshots.append(snapshot)

    def _applied(self, key: EventKey, account: Account) -> None:
        """The event `key` applied to the account, by the account's latest event."""
        self._applied_before.add(key)
        self._applied_ids.append((account.id, key[1], account.version))

    def _collect(self, aggregate: Aggregate) -> None:
        # Collected straight away so the stored order is the source's order (T2).
        self._events.extend(aggregate.collect_events())

    def commit(
        self, tracking: Tracking | None = None, alongside: WrittenAlongside | None = None
    ) -> BatchCounts:
        """Store the batch's events, its Intake record and the tracking in one transaction,
        with what is written alongside (PostgreSQL only)."""
        if self.counts.consumed == 0 and tracking is None:
            return self.counts
        try:
            if self.counts.consumed:
                intake = self.app.intake(self.source)
                if intake is None:
                    intake = Intake.start(intake_stream_id(self.source), self.source)
                    self.app._remember_intake(self.source, intake, snapshot_version=0)
                else:
                    self._snapshot_if_due(intake)
                assert self._first_position is not None
                intake.take(
                    first_position=self._first_position,
                    last_position=self._last_position,
                    consumed=self.counts.consumed,
                    applied=self.counts.applied,
                    duplicates=self.counts.duplicates,
                    dead_letters=[d.document() for d in self.counts.dead_letters],
                )
                self._events.extend(intake.collect_events())
            if self._snapshots:  # in one transaction of their own, before the events
                assert self.app.snapshots is not None
                self.app.snapshots.put(self._snapshots)
                self._snapshots = []
            if alongside is None:
                self.app._stored(
                    self.app.events.put(
                        self._events, tracking=tracking, applied_ids=self._applied_ids
                    )
                )
            else:
                assert self.app.store.kind == "postgresql", "only PostgreSQL writes alongside"
                written = alongside.prepare(self._events)
                self.app.events.store(
                    self._events,
                    tracking=tracking,
                    alongside=written,
                    applied_ids=self._applied_ids,
                )
        except Exception:
            self.app.forget_cached()
            if alongside is not None:
                alongside.abandoned()
            raise
        if alongside is not None:
            alongside.committed()
        self._events = []
        self.app.trim_cache()
        return self.counts
