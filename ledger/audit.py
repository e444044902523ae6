"""Audit of what the sources delivered (G2, R3): every consumed position is accounted for.

Read from the stored events alone: each source's `Intake` batches must add up
(consumed = applied + duplicates + dead-lettered), follow each other without overlap, and, for
Kafka partitions, end where the stored tracking position says the consumer resumes. Across all
sources, the records applied must equal the ledger events stored, one for one.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any
from uuid import UUID

from ledger.account import Account
from ledger.applied_ids import AppliedIdTally
from ledger.catalog_book import CatalogBook
from ledger.chain import GENESIS, link
from ledger.ids import account_stream_id
from ledger.intake import Intake


@dataclass
class SourceAudit:
    """One source (a Kafka topic partition, a file, stdin) and what it delivered."""

    source: str
    batches: int = 0
    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    first_position: int | None = None
    last_position: int | None = None
    resumes_at: int | None = None  # Kafka: the stored next offset
    findings: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # each batch's positions
    version: int = 1  # the stream version of the last intake record seen

    def document(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "batches": self.batches,
            "consumed": self.consumed,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "resumes_at": self.resumes_at,
            "adds_up": not self.findings,
            "findings": self.findings,
        }


@dataclass
class IntakeAudit:
    sources: list[SourceAudit]
    ledger_events: int
    findings: list[str]

    @property
    def adds_up(self) -> bool:
        return not self.findings and all(not s.findings for s in self.sources)

    def document(self) -> dict[str, Any]:
        return {
            "adds_up": self.adds_up,
            "sources": [s.document() for s in self.sources],
            "ledger_events": self.ledger_events,
            "applied": sum(s.applied for s in self.sources),
            "findings": self.findings,
        }


def audit_intake(
    events: Iterable[object], stored_position: Callable[[str], int | None]
) -> IntakeAudit:
    """Check the intake records in the stored events (log order).

    `stored_position` gives a source's stored tracking position (the next Kafka offset), or
    None for sources without one (files are read from their start on every run).
    """
    tally = IntakeTally()
    for event in events:
        tally.see(event)
    return tally.result(stored_position)


class IntakeTally:
    """`audit_intake` one event at a time, so one read of the log can feed every audit."""

    def __init__(self) -> None:
        self.by_stream: dict[Any, SourceAudit] = {}
        self.ledger_events = 0

    def see(self, event: object) -> None:
        if isinstance(event, Intake.Started):
            self.by_stream[event.originator_id] = SourceAudit(event.source)
        elif isinstance(event, Intake.BatchTaken):
            source = self.by_stream.get(event.originator_id)
            if source is None:
                source = SourceAudit(f"intake {event.originator_id}", version=0)
                source.findings.append("the record that names this source is missing")
                self.by_stream[event.originator_id] = source
            if event.originator_version != source.version + 1:
                # A record of the stream is gone: its batch's positions are unaccounted for.
                source.findings.append(
                    f"intake records {source.version + 1}-{event.originator_version - 1} are "
                    f"missing: the batches after position {source.last_position} and before "
                    f"{event.first_position} are unaccounted for"
                )
            source.version = event.originator_version
            _check_batch(source, event)
        elif isinstance(event, (Account.Opened, Account.FactApplied, CatalogBook.VersionPublished)):
            self.ledger_events += 1

    def absorb(self, other: "IntakeTally") -> None:
        """Add what another tally saw of other streams (another part of the log)."""
        assert not self.by_stream.keys() & other.by_stream.keys(), "parts share a stream"
        self.by_stream.update(other.by_stream)
        self.ledger_events += other.ledger_events

    def result(self, stored_position: Callable[[str], int | None]) -> IntakeAudit:
        sources = sorted(self.by_stream.values(), key=lambda s: s.source)
        for source in sources:
            source.resumes_at = stored_position(source.source)
            if source.resumes_at is None:
                continue
            for (_, previous_last), (first, last) in pairwise(source.spans):
                if first <= previous_last:
                    source.findings.append(
                        f"batch at offsets {first}-{last} overlaps the one before, which ended "
                        f"at {previous_last}: records applied twice"
                    )
            expected = None if source.last_position is None else source.last_position + 1
            if source.resumes_at != expected:
                source.findings.append(
                    f"stored position {source.resumes_at} but the last batch ends at offset "
                    f"{source.last_position}"
                )
        findings = []
        applied = sum(s.applied for s in sources)
        if applied != self.ledger_events:
            findings.append(
                f"{applied} records applied by the sources but {self.ledger_events} ledger "
                "events stored"
            )
        return IntakeAudit(sources, self.ledger_events, findings)


def _check_batch(source: SourceAudit, batch: Intake.BatchTaken) -> None:
    dead = len(batch.dead_letters)
    where = f"batch at positions {batch.first_position}-{batch.last_position}"
    if batch.consumed != batch.applied + batch.duplicates + dead:
        source.findings.append(
            f"{where}: consumed {batch.consumed} != applied {batch.applied} + duplicates "
            f"{batch.duplicates} + dead-lettered {dead}"
        )
    source.spans.append((batch.first_position, batch.last_position))
    if source.first_position is None:
        source.first_position = batch.first_position
    source.last_position = batch.last_position
    source.batches += 1
    source.consumed += batch.consumed
    source.applied += batch.applied
    source.duplicates += batch.duplicates
    source.dead_lettered += dead


def audit_chains(events: Iterable[object]) -> tuple[int, list[str]]:
    """Check every account's and the catalog's hash chain and stream versions (R3), and tally
    the ids of the events the accounts applied (`ChainAudit.applied_ids`).

    A changed event breaks its own link, a removed one leaves a gap in the versions, swapped
    ones break both links, and an event moved into another stream names the wrong account.
    Returns the number of streams checked and the findings.
    """
    chains = ChainAudit()
    for event in events:
        chains.see(event)
    return chains.streams, chains.findings


class ChainAudit:
    """`audit_chains` one event at a time, so one read of the log can feed every audit."""

    def __init__(self) -> None:
        # Keyed by the stream id's integer: a UUID hashes and compares in Python, an int in C,
        # and an audit looks each stream up several times per event.
        self.heads: dict[int, tuple[int, str]] = {}  # stream -> (last version, chain head)
        self.names: dict[int, str] = {}
        self.findings: list[str] = []
        self.applied_ids = AppliedIdTally()  # of the account events seen, for the index (G1)

    @property
    def streams(self) -> int:
        return len(self.heads)

    def see(self, event: object) -> None:
        heads, names, findings = self.heads, self.names, self.findings
        if isinstance(event, (Account.Opened, Account.FactApplied)):
            fact = event.fact
            stream = event.originator_id.int
            name = names.get(stream)
            if name is None:
                name = names[stream] = f"account {fact['account_id']}"
            if account_stream_id(fact["account_id"]).int != stream:
                findings.append(
                    f"{name}: event {fact['event_id']} at version "
                    f"{event.originator_version} belongs to account {fact['account_id']}"
                )
            outcome = event.outcome if isinstance(event, Account.FactApplied) else None
            self.applied_ids.add(event.originator_id, fact["event_id"])
            _check_link(heads, stream, name, event, fact, outcome, findings)
        elif isinstance(event, CatalogBook.Started):
            names[event.originator_id.int] = "catalog book"
            heads[event.originator_id.int] = (event.originator_version, GENESIS)
        elif isinstance(event, CatalogBook.VersionPublished):
            stream = event.originator_id.int
            name = names.setdefault(stream, "catalog book")
            _check_link(heads, stream, name, event, event.fact, None, findings)


def streams_named(chains: ChainAudit, tally: IntakeTally) -> dict[UUID, str]:
    """Every stream these audits saw, by name: accounts, the catalog book, sources' intakes."""
    named = {UUID(int=stream): name for stream, name in chains.names.items()}
    named.update(
        {stream: f"intake of {source.source}" for stream, source in tally.by_stream.items()}
    )
    return named


def _check_link(
    heads: dict[int, tuple[int, str]],
    stream: int,
    name: str,
    event: Any,
    fact: dict[str, Any],
    outcome: dict[str, Any] | None,
    findings: list[str],
) -> None:
    version, previous = heads.get(stream, (0, GENESIS))
    if event.originator_version != version + 1:
        findings.append(
            f"{name}: versions {version + 1}-{event.originator_version - 1} are missing "
            f"(events removed before {fact['event_id']})"
        )
    expected = link(previous, fact, outcome)
    if event.chain != expected:
        findings.append(
            f"{name}: event {fact['event_id']} at version {event.originator_version} does not "
            "match the hash chain (changed, or moved out of order)"
        )
    heads[stream] = (event.originator_version, event.chain)
