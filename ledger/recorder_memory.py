"""The in-memory recorder the ledger uses for throwaway stores: the library's, keeping the ids
of the events each account applied (ledger.applied_ids) under the same lock as the events."""

from collections.abc import Collection, Sequence
from itertools import islice
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.popo import POPOProcessRecorder

from ledger.applied_ids import AppliedAt, AppliedId, AppliedIdsIn, AppliedIdSummary, summary_of
from ledger.recorder import MAX_VERSIONS_FOUND


class LedgerMemoryRecorder(POPOProcessRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._applied: dict[AppliedId, int] = {}  # -> the version that applied it

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        applied_ids: Sequence[AppliedAt] = kwargs.get("applied_ids", ())
        ids = {(stream_id, event_id) for stream_id, event_id, _ in applied_ids}
        if len(ids) != len(applied_ids) or not self._applied.keys().isdisjoint(ids):
            raise IntegrityError("an event id is already applied to its account")

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        applied_ids: Sequence[AppliedAt] = kwargs.get("applied_ids", ())
        self._applied.update(
            ((stream, event_id), version) for stream, event_id, version in applied_ids
        )
        return notification_ids

    def applied_among(self, ids: Collection[AppliedId]) -> set[AppliedId]:
        with self._database_lock:
            return {applied_id for applied_id in ids if applied_id in self._applied}

    def versions_applying(self, stream_id: UUID, event_ids: Collection[str]) -> dict[str, int]:
        with self._database_lock:
            found = ((event_id, self._applied.get((stream_id, event_id))) for event_id in event_ids)
            return {event_id: version for event_id, version in found if version is not None}

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
