"""A projection turns stored domain events into view documents. Pure: no I/O of its own."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import Any, ClassVar

from ledger.account import Account
from ledger.money import ZERO_TEXT
from projections.store import Doc, DocKey, ViewStore

MAX_KNOWN_ACCOUNTS = 20_000
# Every document of a kept account is kept, and an account gains documents for as long as it
# lives (an invoice and a minutes document per period, at least): 2.5 KB each in memory on
# the bench log, 32 KB per account in its first month. So the documents are bounded too, at
# about 250 MB, not the accounts alone (20,000 of them held 640 MB in their first month).
MAX_KNOWN_DOCUMENTS = 100_000
# The views whose documents a projection may settle: closed invoices, their filed chunks of
# charges, past minutes. A key of another view missing from an account's current documents is
# absent, not settled.
SETTLING_VIEWS = frozenset({"invoices", "invoice_charges", "minutes"})


class KnownDocuments:
    """Every document of some accounts, as the store holds them: kept by a consuming process
    between steps, so the accounts it already knows are not read again. Catch-up keeps them
    while the views stay at `position` (nobody else moved them on); views written alongside
    the events keep them while the process owns the accounts (position None)."""

    def __init__(
        self, max_accounts: int = MAX_KNOWN_ACCOUNTS, max_documents: int = MAX_KNOWN_DOCUMENTS
    ) -> None:
        self.max_accounts = max_accounts
        self.max_documents = max_documents
        self.position: int | None = None
        self.docs: dict[DocKey, Doc] = {}
        self.accounts: set[str] = set()

    def at(self, position: int) -> "KnownDocuments":
        """These documents, if they are the store's at that position; otherwise none."""
        if position != self.position:
            self.forget()
            self.position = position
        return self

    def committed(
        self,
        changes: dict[DocKey, Doc | None],
        position: int | None,
        settled: Collection[DocKey] = (),
    ) -> None:
        for key, doc in changes.items():
            if doc is None or key in settled:  # a settled document is read again if ever needed
                self.docs.pop(key, None)
            else:
                self.docs[key] = doc
        self.position = position
        if len(self.accounts) > self.max_accounts or len(self.docs) > self.max_documents:
            self.forget()

    def forget(self) -> None:
        self.position = None
        self.docs = {}
        self.accounts = set()


class ViewChanges:
    """The documents one catch-up step changed, read through to the store on first use.

    The documents an account's later events change are its current ones; the rest, a closed
    invoice or past minutes, are put `settled`. An account's current documents are read at
    once (`prefetch`), so what an account reads and what a process keeps of it stay flat as
    its periods pile up; a settled one is read alone, on the rare event that wants it (a
    late call on past minutes, a port moving them)."""

    def __init__(self, store: ViewStore, known: KnownDocuments | None = None) -> None:
        self._store = store
        self.changed: dict[DocKey, Doc | None] = {}  # None: deleted
        self.settled: set[DocKey] = set()
        known = KnownDocuments() if known is None else known
        self._read = known.docs
        self._read_accounts = known.accounts

    def prefetch(self, account_ids: set[str]) -> None:
        """Read every document of these accounts at once, where the store can (one round trip
        per page of events instead of one per document)."""
        wanted = account_ids - self._read_accounts
        if not wanted:
            return
        docs = self._store.documents_of(wanted)
        if docs is not None:
            self._read.update(docs)
            self._read_accounts |= wanted

    def get(self, view: str, key: str) -> Doc | None:
        changed = self.changed.get((view, key))
        if changed is not None or (view, key) in self.changed:  # None there: deleted
            return changed
        if key.split("|", 1)[0] in self._read_accounts:
            doc = self._read.get((view, key))
            if doc is not None or view not in SETTLING_VIEWS:
                return doc
            # Absent, or settled: only current documents were read.
        return self._store.get(view, key)

    def put(self, view: str, key: str, doc: Doc, settled: bool = False) -> None:
        self.changed[(view, key)] = doc
        if settled:
            assert view in SETTLING_VIEWS, f"{view} documents are never settled"
            self.settled.add((view, key))
        elif self.settled:  # usually empty: nothing to discard
            self.settled.discard((view, key))

    def put_if_changed(self, view: str, key: str, doc: Doc) -> None:
        """Put a document built anew unless the store holds an equal one, as read: a batch
        then writes no row that would not change. One changed in this step, or not read
        (a replay's views, an account not prefetched), is put."""
        if (
            self._read_accounts
            and (view, key) not in self.changed
            and key.split("|", 1)[0] in self._read_accounts
            and self._read.get((view, key)) == doc
        ):
            return
        self.put(view, key, doc)

    def keys(self, view: str, key_prefix: str) -> list[str]:
        """Keys of a view starting with the prefix, as the store will hold them after this step."""
        keys = {key for key, _ in self._store.scan(view, key_prefix)}
        for (changed_view, key), doc in self.changed.items():
            if changed_view == view and key.startswith(key_prefix):
                if doc is None:
                    keys.discard(key)
                else:
                    keys.add(key)
        return sorted(keys)

    def delete(self, view: str, key: str) -> None:
        self.changed[(view, key)] = None
        self.settled.discard((view, key))

    def move(
        self, view: str, key: str, new_key: str, settled: bool = False, **updates: object
    ) -> None:
        """Re-key a document (a number that changed, P1), updating some of its fields."""
        doc = self.get(view, key)
        if doc is not None:
            self.delete(view, key)
            self.put(view, new_key, {**doc, **updates}, settled)


Fact = dict[str, Any]
Applied = Callable[[Fact, dict[str, Any], ViewChanges], None]
MAX_FACT_TYPES = 1_000  # the contract's types number tens; more is a defect, not traffic


class Projection(ABC):
    """Folds the events of accounts into some views: an account opened, and the facts
    applied to it. Facts the rules did not apply (rejected, not yet rated) change no view."""

    # The fact types `applied` folds; None: every type. Facts of other types skip the
    # projection without a call (a replay folds each event into every view).
    FACT_TYPES: ClassVar[frozenset[str] | None] = None

    @abstractmethod
    def opened(self, fact: Fact, changes: ViewChanges) -> None:
        """Fold an account's opening (`Account.Opened`)."""

    @abstractmethod
    def applied(self, fact: Fact, outcome: dict[str, Any], changes: ViewChanges) -> None:
        """Fold a fact the rules applied to an account, with their outcome."""


class Projections:
    """Each event to the projections that fold it, in their order: the event's class and its
    outcome's status asked once, not once a projection, and a fact only to the projections
    of its type."""

    def __init__(self, projections: Sequence[Projection]) -> None:
        self.projections = tuple(projections)
        self._opened = tuple(projection.opened for projection in self.projections)
        self._applied_by_type: dict[str, tuple[Applied, ...]] = {}

    def apply(self, event: object, changes: ViewChanges) -> None:
        """Fold one stored event into the view documents it concerns."""
        # FactApplied first: nearly every event is one, and an `isinstance` that misses an
        # event class goes the slow way, through the library's metaclass.
        if isinstance(event, Account.FactApplied):
            outcome = event.outcome
            if outcome["status"] != "applied":
                # Only an applied fact moves money (ledger.outcome): nothing here to fold.
                assert outcome["balance_delta"] == ZERO_TEXT, outcome
                return
            fact = event.fact
            folds = self._applied_by_type.get(fact["type"])
            if folds is None:
                folds = self._folds_of(fact["type"])
            for applied in folds:
                applied(fact, outcome, changes)
        elif isinstance(event, Account.Opened):
            for opened in self._opened:
                opened(event.fact, changes)

    def _folds_of(self, fact_type: str) -> tuple[Applied, ...]:
        assert len(self._applied_by_type) < MAX_FACT_TYPES, "more fact types than the contract has"
        folds = self._applied_by_type[fact_type] = tuple(
            projection.applied
            for projection in self.projections
            if projection.FACT_TYPES is None or fact_type in projection.FACT_TYPES
        )
        return folds
