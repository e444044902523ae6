"""Keeps views current: reads the ledger's notification log from the views' position onward.

Polling the log works on both backends (SQLite has no subscription), and each page of
events is written with the new position in one transaction (exactly once).
"""

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ledger.account import Account
from ledger.application import LedgerApp
from ledger.recorder import Alongside
from projections import invoices
from projections.balance import BalanceProjection
from projections.data import DataProjection
from projections.minutes import MinutesProjection
from projections.projection import KnownDocuments, Projections, ViewChanges
from projections.store import Doc, MemoryViewStore, StaleViewPosition, ViewStore

if TYPE_CHECKING:  # a consumer on PostgreSQL only: not loaded for an embedded store
    from projections.store_postgres import PostgresViewStore

PAGE_SIZE = 1000  # explicit limit on the events held in one catch-up step
ACCOUNT_EVENTS = (Account.Opened, Account.FactApplied)

# Told every so many events: (events done by this process, log position reached).
Progress = Callable[[int, int], None]


def default_projections() -> Projections:
    return Projections(
        [BalanceProjection(), MinutesProjection(), DataProjection(), invoices.InvoiceProjection()]
    )


def project(events: Sequence[object], changes: ViewChanges, projections: Projections) -> None:
    """Fold events into the documents they concern, reading their accounts' documents at once."""
    changes.prefetch({e.fact["account_id"] for e in events if isinstance(e, ACCOUNT_EVENTS)})
    apply = projections.apply
    for event in events:
        apply(event, changes)


def catch_up(
    app: LedgerApp,
    views: ViewStore,
    projections: Projections | None = None,
    progress: Progress | None = None,
    known: KnownDocuments | None = None,
) -> int:
    """Apply every stored event the views have not seen yet; return how many were applied.

    Events this process just stored are taken from memory, and `known` (kept by a consuming
    process across calls) spares reading documents again while no other process writes."""
    projections = default_projections() if projections is None else projections
    known = KnownDocuments() if known is None else known
    applied = 0
    while True:
        position = views.position()
        page = app.recently_stored(position, PAGE_SIZE) or app.stored_page(position, PAGE_SIZE)
        if not page:
            return applied
        last = page[-1][0]
        changes = ViewChanges(views, known.at(position))
        try:
            project([event for _, event in page], changes, projections)
        except Exception:
            # Documents are read one by one: if another process moved the views on meanwhile,
            # this step mixed two states and may trip an invariant. Stale, not a defect.
            known.forget()
            if views.position() != position:
                continue
            raise
        try:
            views.write(changes.changed, expected=position, position=last, settled=changes.settled)
        except StaleViewPosition:
            known.forget()
            continue  # another process moved the views on; read from where it left them
        except BaseException:
            known.forget()
            raise
        known.committed(changes.changed, last, changes.settled)
        applied += len(page)
        if progress is not None:
            progress(applied, last)


class ViewsAlongside:
    """Views written in the same PostgreSQL transaction as the events they reflect.

    A consumer on PostgreSQL projects each batch's events before storing them, and the
    recorder writes the changed documents in the events' transaction, then, under its table
    lock, moves the views' position from the last event committed before the batch to the
    batch's last. So the views are never behind, and several consumers each project only their
    own partitions' accounts (views are kept per account) instead of all catching up on the
    whole log. The documents of the accounts a consumer writes are kept between batches: while
    it owns their partitions, no one else changes them. (Another process that stores events for
    one of them, a file ingest say, also moves the account's stream version, so this consumer's
    next batch for it fails on the version, forgets everything and starts again from the
    store.) If the views were behind (events stored without them, by a file ingest say), the
    write fails with StaleViewPosition and the consumer catches up first.
    """

    def __init__(self, app: LedgerApp, views: "PostgresViewStore") -> None:
        self.app = app
        self.views = views
        self.projections = default_projections()
        self.known = KnownDocuments()
        self._changes: ViewChanges | None = None

    def prepare(self, events: Sequence[object]) -> Alongside:
        changes = ViewChanges(self.views, self.known)
        try:
            project(events, changes, self.projections)
        except Exception:
            self.forget()
            # Documents missing or older than the events expect: the views are behind.
            if self.views.position() != (self.app.recorder.max_notification_id() or 0):
                raise StaleViewPosition("views are behind the log") from None
            raise
        self._changes = changes

        def move_position(cursor: Any, previous: int, ids: Sequence[int]) -> None:
            self.views.move_position(cursor, expected=previous, position=ids[-1])

        # The documents need no notification id: they are written before the events table
        # is locked, which is then held for the events and the position only.
        return Alongside(
            unlocked=lambda cursor: self.views.write_documents(
                cursor, changes.changed, changes.settled
            ),
            locked=move_position,
        )

    def committed(self) -> None:
        assert self._changes is not None
        self.known.committed(self._changes.changed, None, self._changes.settled)
        self._changes = None

    def abandoned(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Drop the kept documents: partitions moved, or a batch failed."""
        self.known.forget()
        self._changes = None


def rebuild(app: LedgerApp, views: ViewStore, progress: Progress | None = None) -> int:
    """Forget the views and replay the whole log into them, in place: queries meanwhile see
    part of them. The embedded stores' way; PostgreSQL's views are staged and swapped in
    (`projections.log_rebuild`)."""
    views.reset()
    return catch_up(app, views, progress=progress)


# Every view the default projections keep; keys are the account id or start with "ACCOUNT|".
VIEWS = (
    "balance",
    "accounts",
    "minutes",
    "plans",
    "data",
    "throttle",
    "invoices",
    "invoice_charges",
    "invoice_index",
)


def fold(events: Iterable[object], views: ViewStore | None = None) -> ViewStore:
    """Views of exactly these stored events, in a throwaway store unless one is given (R1)."""
    replay = Fold(views)
    for event in events:
        replay.see(event)
    return replay.views()


class Fold:
    """`fold` one event at a time, so one read of the log can feed an audit's every check."""

    def __init__(self, views: ViewStore | None = None) -> None:
        self._views = MemoryViewStore() if views is None else views
        self._apply = default_projections().apply
        self._changes = ViewChanges(self._views)
        self._folded = 0

    def see(self, event: object) -> None:
        self._apply(event, self._changes)
        self._folded += 1

    def views(self) -> ViewStore:
        position = self._views.position()
        self._views.write(
            self._changes.changed,
            expected=position,
            position=position + self._folded,
            settled=self._changes.settled,
        )
        return self._views


def view_documents(views: ViewStore, account_id: str | None = None) -> dict[str, Doc]:
    """Every view document ("view/key" -> document), of one account or of all."""
    docs: dict[str, Doc] = {}
    for view in VIEWS:
        if account_id is None:
            found = list(views.scan(view))
        else:
            own = views.get(view, account_id)
            found = ([(account_id, own)] if own is not None else []) + list(
                views.scan(view, f"{account_id}|")
            )
        for key, doc in found:
            docs[f"{view}/{key}"] = doc
    return docs


def shown_views(views: ViewStore, account_id: str) -> dict[str, Doc]:
    """An account's view documents as its queries show them, not as stored: each invoice as
    `ledger --json invoice` shows it (its lines by name, each with its charge and event ids),
    which also puts its filed chunks of charges back on it; every other view as stored."""
    read = {
        f"{invoices.VIEW}/{invoices.invoice_key(account_id, doc['period'])}": doc
        for doc in invoices.read_invoices(views, account_id)
    }
    docs: dict[str, Doc] = {}
    for name, doc in view_documents(views, account_id).items():
        view = name.split("/", 1)[0]
        if view == invoices.VIEW:
            docs[name] = read.pop(name)
        elif view != invoices.CHARGES_VIEW:
            docs[name] = doc
    assert not read, f"invoices read but not stored: {sorted(read)}"
    return docs
