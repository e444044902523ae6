"""The CatalogBook aggregate: the one global stream of published catalog versions (C1)."""

from typing import Any

from eventsourcing.domain import Aggregate

from ledger.catalog import CatalogHistory, parse_catalog
from ledger.chain import GENESIS, link


class CatalogBook(Aggregate):
    class Started(Aggregate.Created):
        pass

    class VersionPublished(Aggregate.Event):
        fact: dict[str, Any]
        chain: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, CatalogBook)
            aggregate.history.add(parse_catalog(self.fact["catalog"]))
            aggregate.seen_event_ids.add(self.fact["event_id"])
            aggregate.chain_head = self.chain

    def __init__(self) -> None:
        self.history = CatalogHistory()
        self.seen_event_ids: set[str] = set()
        self.chain_head = GENESIS

    @classmethod
    def start(cls, stream_id: Any) -> "CatalogBook":
        book: CatalogBook = cls._create(cls.Started, id=stream_id)
        return book

    def has_seen(self, event_id: str) -> bool:
        return event_id in self.seen_event_ids

    def publish(self, fact: dict[str, Any]) -> None:
        """Record a published version; InvalidCatalog (nothing recorded) when it does not fit."""
        # Validate against the history first, on a copy, so a refused version moves nothing.
        probe = CatalogHistory(self.history.versions())
        probe.add(parse_catalog(fact["catalog"]))
        self.trigger_event(
            self.VersionPublished, fact=fact, chain=link(self.chain_head, fact, None)
        )
