"""A projection turns stored domain events into view documents. Pure: no I/O of its own."""

from abc import ABC, abstractmethod

from projections.store import Doc, DocKey, ViewStore


class ViewChanges:
    """The documents one catch-up step changed, read through to the store on first use."""

    def __init__(self, store: ViewStore) -> None:
        self._store = store
        self.changed: dict[DocKey, Doc] = {}

    def get(self, view: str, key: str) -> Doc | None:
        doc = self.changed.get((view, key))
        if doc is None:
            doc = self._store.get(view, key)
        return doc

    def put(self, view: str, key: str, doc: Doc) -> None:
        self.changed[(view, key)] = doc


class Projection(ABC):
    @abstractmethod
    def apply(self, event: object, changes: ViewChanges) -> None:
        """Fold one stored domain event into the view documents it concerns."""
