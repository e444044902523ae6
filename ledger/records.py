"""The library's event store, building the records of the events it stores in fewer steps.

`StoredEvent`, `Notification` and `Recording` are frozen dataclasses, built with
`ledger.frozen.built`: a consumer builds three of them for each event it stores
(docs/PERFORMANCE.md, round 13). tests/test_fast_paths.py compares every field, the
equality, the hash and the text of each kind with the library's own.
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import EventStore, Notification, Recording, StoredEvent

from ledger.frozen import built


class LedgerEventStore(EventStore[UUID]):
    """The library's event store, its `put` building each event's records with `built`."""

    def store(self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any) -> None:
        """Store these events as `put` does, building no records of them: for a caller that
        keeps none (a batch whose views were written alongside), two objects an event fewer."""
        self._insert(domain_events, **kwargs)

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> list[Recording[UUID]]:
        stored_events, notification_ids = self._insert(domain_events, **kwargs)
        if not notification_ids:
            return []
        assert len(notification_ids) == len(stored_events)
        return [
            built(
                Recording,
                {
                    "domain_event": domain_event,
                    "notification": built(Notification, {**vars(stored), "id": notification_id}),
                },
            )
            for domain_event, stored, notification_id in zip(
                domain_events, stored_events, notification_ids, strict=True
            )
        ]

    def _insert(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> tuple[list[StoredEvent], Sequence[int] | None]:
        """The events' records as stored, and the notification ids the recorder gave them."""
        stored_events = list(map(self.mapper.to_stored_event, domain_events))
        return stored_events, self.recorder.insert_events(stored_events, **kwargs)
