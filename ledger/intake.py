"""The Intake aggregate: what each source (a Kafka partition, a file) delivered, batch by batch.

Stored in the same transaction as the ledger events a batch produced, so its counts prove
that consumed = applied + duplicates + dead-lettered at every position (G2, R3).
"""

from typing import Any

from eventsourcing.domain import Aggregate


class Intake(Aggregate):
    class Started(Aggregate.Created):
        source: str

    class BatchTaken(Aggregate.Event):
        first_position: int
        last_position: int
        consumed: int
        applied: int
        duplicates: int
        dead_letters: list[dict[str, Any]]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Intake)
            dead = len(self.dead_letters)
            # Every record of the batch is accounted for, exactly once (G2). Positions may
            # have gaps (Kafka transaction markers), so the count is carried explicitly.
            assert self.consumed == self.applied + self.duplicates + dead, self
            aggregate.consumed += self.consumed
            aggregate.applied += self.applied
            aggregate.duplicates += self.duplicates
            aggregate.dead_lettered += dead
            aggregate.last_position = self.last_position

    def __init__(self, source: str) -> None:
        self.source = source
        self.consumed = 0
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.last_position = -1

    @classmethod
    def start(cls, stream_id: Any, source: str) -> "Intake":
        intake: Intake = cls._create(cls.Started, id=stream_id, source=source)
        return intake

    def take(
        self,
        first_position: int,
        last_position: int,
        consumed: int,
        applied: int,
        duplicates: int,
        dead_letters: list[dict[str, Any]],
    ) -> None:
        self.trigger_event(
            self.BatchTaken,
            first_position=first_position,
            last_position=last_position,
            consumed=consumed,
            applied=applied,
            duplicates=duplicates,
            dead_letters=dead_letters,
        )
