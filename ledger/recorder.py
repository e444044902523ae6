"""What the ledger's recorders share with their callers, whichever the store: rows written
alongside the events, parts of the log read side by side, a stream searched without its
events decoded, the events table lock's use, and a row of the log as it is read.
PostgreSQL's recorder is in `ledger.recorder_postgres`, apart, so that a command on an
embedded store does not load PostgreSQL's driver.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True)
class Alongside:
    """Rows written in the events' transaction: before the table lock, and under it."""

    unlocked: Callable[[Any], None]
    locked: Callable[[Any, int, Sequence[int]], None]


# An explicit limit on how many parts a log is read in (`LogPart`): a part is chosen by one
# byte of the stream id, and a process per part is as many as any machine here would use.
MAX_LOG_PARTS = 64


@dataclass(frozen=True)
class LogPart:
    """Part `index` of a log split into `count` parts by stream: each stream's events all fall
    in one part, in log order. Several processes read the parts of one log side by side (an
    audit); the streams' ids, from UUID v5 hashes, spread them evenly."""

    index: int
    count: int

    def __post_init__(self) -> None:
        assert 0 <= self.index < self.count <= MAX_LOG_PARTS, self


WHOLE_LOG = LogPart(0, 1)


# An explicit limit on the versions one search of a stream answers with (`StreamSearch`).
MAX_VERSIONS_FOUND = 100


class StreamSearch(Protocol):
    """What each of the ledger's recorders finds in a stream without its events decoded."""

    def versions_holding(self, stream_id: UUID, data: bytes, before: int) -> list[int]:
        """The versions below `before` of the stream's stored events whose stored state holds
        these bytes, the latest first, at most MAX_VERSIONS_FOUND. The database looks (a
        store in memory, in Python), where decoding each event took 15-20 times as long."""


@dataclass
class LockUse:
    """How long this process held the events table lock, and for how many events.

    Every writer of the log waits while one holds it, so events / seconds is the most the log
    can take from all its writers together, however many cores they run on (bench.run).
    """

    seconds: float = 0.0
    events: int = 0

    def held(self, seconds: float, events: int) -> None:
        self.seconds += seconds
        self.events += events

    def events_per_s(self) -> float | None:
        return self.events / self.seconds if self.seconds > 0 else None


# A row of the log as it is read: notification id, stream id, version, topic, state. Replays
# and audits map rows to domain events directly (`LedgerMapper.event_of`): building the
# library's `Notification` first cost about 6,000 instructions an event, an eighth of reading
# one (docs/PERFORMANCE.md, round 19).
LogRow = tuple[int, UUID, int, str, bytes]
