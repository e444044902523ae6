"""The ids of the events each account has applied (G1), kept in the store beside the log.

An account used to hold the id of every event it applied, so its memory and its snapshots grew
with its history for as long as the ledger ran. The store keeps them instead, in a table of
(account stream id, event id) written in the same transaction as the events that applied them:
a batch asks once which of its records are already applied, and the table's primary key refuses
an id applied twice. Every recorder the ledger uses (PostgreSQL, SQLite, memory) keeps it.

A store written before the table existed gets it filled from its log when a process first opens
it, in the transaction that creates it. The audit checks that the table and the log agree: the
same number of ids, and the same digest of them (`AppliedIdSummary`).

Each id is stored with the version of its stream's event that applied it, so `ledger explain`
reads the event of an old charge alone, however long the account's history. A version is a
pointer, checked when followed: the event read must be the one that applied the id. Ids stored
before the table had the column keep none, and their events are found by a search of the stream.
"""

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

# (account stream id, event id): one event an account applied.
AppliedId = tuple[UUID, str]
# An applied id as the index stores it: with the version of the stream's event that applied
# it, so that event is read alone when asked for (`versions_applying`).
AppliedAt = tuple[UUID, str, int]

TABLE_NAME = "ledger_applied_ids"

# Explicit limits on what is held at once: the stored events a new table is filled from, and
# the ids a summary reads, are read this many at a time.
EVENTS_PAGE = 1_000
IDS_PAGE = 10_000
MAX_STREAMS_HASHED = 20_000  # streams whose hash an audit keeps started (under 10 MB)

# From a page of stored events, the ids they applied (decoding is the application's job).
AppliedIdsIn = Callable[[Sequence[StoredEvent]], Iterable[AppliedAt]]

_DIGEST_MODULUS = 1 << 64


@dataclass(frozen=True)
class AppliedIdSummary:
    """How many ids, and a digest of them that does not depend on their order: the sum of a
    64-bit hash of each. An id counted twice, missing or changed changes one or both.

    The hash is BLAKE2b with a 64-bit digest, so a summary means the same in every process:
    an audit split across processes adds up the summaries of its parts (`plus`). It guards
    against mistakes in the store, not against someone who can rewrite the log (the hash
    chain answers for that); it costs about a microsecond an id (`AppliedIdTally`), 2% of
    auditing one. Python's own hash was a tenth of that, but salted per process."""

    count: int = 0
    digest: int = 0

    def plus(self, other: "AppliedIdSummary") -> "AppliedIdSummary":
        """The summary of both sets of ids together (they share none)."""
        return AppliedIdSummary(
            self.count + other.count, (self.digest + other.digest) % _DIGEST_MODULUS
        )


class AppliedIdTally:
    """An `AppliedIdSummary` built one id at a time, as the audit reads the log."""

    def __init__(self, max_streams: int = MAX_STREAMS_HASHED) -> None:
        self.count = 0
        self.digest = 0
        self.max_streams = max_streams
        # Each stream's hash with its id's bytes taken in: an event id's hash goes on from a
        # copy of it, the same BLAKE2b as of both at once, without making the stream id's
        # bytes and the hash's parameters again (about 1 µs an id, of 2).
        self._streams: dict[UUID, blake2b] = {}

    def add(self, stream_id: UUID, event_id: str) -> None:
        self.count += 1
        started = self._streams.get(stream_id)
        if started is None:
            if len(self._streams) >= self.max_streams:
                self._streams.clear()
            started = self._streams[stream_id] = blake2b(stream_id.bytes, digest_size=8)
        hashed = started.copy()
        hashed.update(event_id.encode())
        self.digest += int.from_bytes(hashed.digest(), "big")

    def summary(self) -> AppliedIdSummary:
        return AppliedIdSummary(self.count, self.digest % _DIGEST_MODULUS)


def summary_of(ids: Iterable[AppliedId]) -> AppliedIdSummary:
    tally = AppliedIdTally()
    for stream_id, event_id in ids:
        tally.add(stream_id, event_id)
    return tally.summary()


class AppliedIdIndex(Protocol):
    """What each of the ledger's recorders keeps besides the library's tables. `insert_events`
    takes `applied_ids=[AppliedAt, ...]` and stores them in the events' transaction."""

    def applied_among(self, ids: Collection[AppliedId]) -> set[AppliedId]:
        """Those of these ids the store holds: events already applied."""

    def versions_applying(self, stream_id: UUID, event_ids: Collection[str]) -> dict[str, int]:
        """The versions of the stream's events that applied these ids, for those the index
        holds with a version: an id applied before the index kept versions has none (its
        event is found by a search of the stream, `StreamSearch`)."""

    def applied_id_summary(self, stream_id: UUID | None = None) -> AppliedIdSummary:
        """The count and digest of the ids stored for one account's stream, or for all."""

    def create_applied_index(self, topics: Sequence[str], applied_in: AppliedIdsIn) -> int:
        """Create the table if the store has none, filled from its stored events of these
        topics, in one transaction; add the versions' column to a table made before it had
        one. Returns how many ids it filled in (0: it existed)."""
