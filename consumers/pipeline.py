"""The one pipeline every source uses: decode, validate, dedup, apply, dead-letter, commit.

A source hands over a batch of raw records; the pipeline returns what happened to each, after
the dead-letter sink has taken the bad ones and the batch has been committed (G1, G2).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eventsourcing import persistence
from eventsourcing.persistence import Tracking

from ledger.application import Batch, BatchCounts, DeadLetter, LedgerApp, WrittenAlongside
from ledger.contract import IncomingEvent, oversized_record, parse_event
from ledger.errors import LedgerError
from ledger.frozen import fields_at_once
from ledger.store import store_outages


def store_errors() -> tuple[type[Exception], ...]:
    """Failures of the store, not of a record: a server away or restarting, a lock timeout, or
    a conflict with another writer. Never a reason to dead-letter; the source retries."""
    return (*store_outages(), persistence.IntegrityError)


@fields_at_once  # built for every record: its fields set at once
@dataclass(frozen=True)
class RawRecord:
    """One record as the source delivered it: its position (line or offset) and its bytes.

    `whole_size`: the record's size where the source read only its first bytes, `value` (a
    file's line over consumers.files.MAX_LINE_BYTES); None where `value` is all of it."""

    position: int
    value: bytes
    whole_size: int | None = None


def parse_record(record: RawRecord) -> IncomingEvent:
    """The record's event under the contract. Raises InvalidEvent(reason)."""
    if record.whole_size is not None:
        raise oversized_record(record.whole_size, read=len(record.value))
    return parse_event(record.value)


DeadLetterSink = Callable[[Sequence[DeadLetter]], None]


def process_batch(
    app: LedgerApp,
    source: str,
    records: Sequence[RawRecord],
    dead_letter_sink: DeadLetterSink,
    tracking: Tracking | None = None,
    alongside: WrittenAlongside | None = None,
) -> BatchCounts:
    """Apply a batch as one transaction; bad records go to the sink before the commit.

    A record that makes the rules fail unexpectedly (a defect, not bad input) must not block
    its partition: the batch is started again with that record dead-lettered, its error named.
    """
    poisoned: dict[int, str] = {}
    while True:
        batch = app.begin(source)
        if _apply_records(app, batch, records, poisoned):
            break
        # A record was poisoned: the batch's memory was dropped and nothing was stored.
    if batch.counts.dead_letters:
        # The sink first: a crash between the two repeats a dead letter, never loses one.
        dead_letter_sink(batch.counts.dead_letters)
    return batch.commit(tracking, alongside)


def _apply_records(
    app: LedgerApp, batch: Batch, records: Sequence[RawRecord], poisoned: dict[int, str]
) -> bool:
    """Apply every record to the batch; False when one turned out poisoned (now in `poisoned`)."""
    parsed: list[tuple[RawRecord, IncomingEvent | str]] = []  # each valid event, or why not
    for record in records:
        reason = poisoned.get(record.position)
        if reason is None:
            try:
                parsed.append((record, parse_record(record)))
                continue
            except LedgerError as error:
                reason = error.reason
            except Exception as defect:
                reason = _internal_error(defect)
        parsed.append((record, reason))
    try:
        batch.look_up([event for _, event in parsed if not isinstance(event, str)])
    except store_errors():
        app.forget_cached()
        raise  # the store is away: the source retries
    for record, event in parsed:
        if isinstance(event, str):
            batch.dead_letter(record.position, record.value, event)
            continue
        try:
            batch.apply(record.position, event)
        except LedgerError as error:
            batch.dead_letter(record.position, record.value, error.reason)
        except store_errors():
            app.forget_cached()
            raise  # the store is away: not the record's fault, the source retries
        except Exception as defect:
            poisoned[record.position] = _internal_error(defect)
            app.forget_cached()  # earlier records of the batch moved cached state
            return False
    return True


def _internal_error(defect: Exception) -> str:
    return f"internal error while applying this record: {type(defect).__name__}: {defect}"
