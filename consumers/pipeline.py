"""The one pipeline every source uses: decode, validate, dedup, apply, dead-letter, commit.

A source hands over a batch of raw records; the pipeline returns what happened to each, after
the dead-letter sink has taken the bad ones and the batch has been committed (G1, G2).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eventsourcing.persistence import Tracking

from ledger.application import BatchCounts, DeadLetter, LedgerApp
from ledger.contract import parse_event
from ledger.errors import LedgerError


@dataclass(frozen=True)
class RawRecord:
    """One record as the source delivered it: its position (line or offset) and its bytes."""

    position: int
    value: bytes


DeadLetterSink = Callable[[Sequence[DeadLetter]], None]


def process_batch(
    app: LedgerApp,
    source: str,
    records: Sequence[RawRecord],
    dead_letter_sink: DeadLetterSink,
    tracking: Tracking | None = None,
) -> BatchCounts:
    """Apply a batch as one transaction; bad records go to the sink before the commit."""
    batch = app.begin(source)
    for record in records:
        try:
            batch.apply(record.position, parse_event(record.value))
        except LedgerError as error:
            batch.dead_letter(record.position, record.value, error.reason)
    if batch.counts.dead_letters:
        # The sink first: a crash between the two repeats a dead letter, never loses one.
        dead_letter_sink(batch.counts.dead_letters)
    return batch.commit(tracking)
