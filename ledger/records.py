"""The library's records of a stored event, built for the ledger in fewer steps.

`StoredEvent`, `Notification` and `Recording` are frozen dataclasses: their `__init__` sets
each field through `object.__setattr__`, 1.4-1.8 µs a record on the bench machines, where
setting the instance's fields at once takes 0.5-0.7. A consumer builds three of them for each
event it stores, and a replay one for each event it reads (docs/PERFORMANCE.md, round 13).
`built` makes exactly the instance the `__init__` would: tests/test_fast_paths.py compares
every field, the equality, the hash and the text of each kind with the library's own. The
ledger's mapper builds the domain events it reads back the same way.
"""

from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import EventStore, Notification, Recording

Record = TypeVar("Record")


def built(cls: type[Record], fields: dict[str, Any]) -> Record:
    """An instance of a frozen dataclass (without slots) with these fields, and only these."""
    instance: Record = object.__new__(cls)
    object.__setattr__(instance, "__dict__", fields)
    return instance


class LedgerEventStore(EventStore[UUID]):
    """The library's event store, its `put` building each event's records with `built`."""

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> list[Recording[UUID]]:
        stored_events = list(map(self.mapper.to_stored_event, domain_events))
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
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
