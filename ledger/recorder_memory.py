"""The in-memory recorder the ledger uses for throwaway stores: the library's, keeping the ids
of the events each account applied (ledger.applied_ids) under the same lock as the events."""

from collections.abc import Collection, Sequence
from itertools import islice
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.popo import POPOProcessRecorder

from ledger.applied_ids import AppliedId, AppliedIdsIn, AppliedIdSummary, summary_of
from ledger.recorder import MAX_VERSIONS_FOUND


class LedgerMemoryRecorder(POPOProcessRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._applied: set[AppliedId] = set()

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        applied_ids: Sequence[AppliedId] = kwargs.get("applied_ids", ())
        if len(set(applied_ids)) != len(applied_ids) or not self._applied.isdisjoint(applied_ids):
            raise IntegrityError("an event id is already applied to its account")

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        self._applied.update(kwargs.get("applied_ids", ()))
        return notification_ids

    def applied_among(self, ids: Collection[AppliedId]) -> set[AppliedId]:
        with self._database_lock:
            return self._applied.intersection(ids)

    def applied_id_summary(self, stream_id: UUID | None = None) -> AppliedIdSummary:
        with self._database_lock:
            return summary_of(i for i in self._applied if stream_id in (None, i[0]))

    def create_applied_index(self, topics: Sequence[str], applied_in: AppliedIdsIn) -> int:
        return 0  # a store in memory starts empty, with its index

    def versions_holding(self, stream_id: UUID, data: bytes, before: int) -> list[int]:
        holding = (
            stored.originator_version
            for stored in self.select_events(stream_id, lte=before - 1, desc=True)
            if data in stored.state
        )
        return list(islice(holding, MAX_VERSIONS_FOUND))
