"""The ledger's audit (G2, R3): one read of the log feeds every check, in parts side by side.

Every check but two concerns one stream at a time: its hash chain, the ids its account
applied, its views replayed, its latest snapshot, its intake's batches. So the log is split
by stream into parts (`LogPart`), and each part is audited by a process of its own, reading
only its part. The parts' results then add up in the calling process, which makes the two
checks that span streams: the views against the live ones, and the intake against the
ledger events stored.

Starting a process costs about half a second of CPU (importing the ledger), what one process
audits 7,000-10,000 events in. So a log is read in parts only on PostgreSQL (the embedded
stores are one process's) and from PARALLEL_FROM_EVENTS events on, one part per core, unless
the caller says how many. Findings come out the same however many parts there are: a chain's
in log order, a snapshot's in the order of their text.
"""

import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

from ledger.application import LedgerApp
from ledger.applied_ids import AppliedIdSummary
from ledger.audit import ChainAudit, IntakeTally, streams_named
from ledger.recorder import MAX_LOG_PARTS, LogPart
from ledger.runtime import tune_for_long_runs
from ledger.snapshot_audit import SnapshotAudit
from ledger.store import StoreConfig
from projections.runner import Fold, Progress, view_documents
from projections.store import Doc

PARALLEL_FROM_EVENTS = 50_000
PROGRESS_EVENTS = 20_000  # an audit's progress line every so many events (1-2 s)
# An explicit limit on the processes an audit starts by itself; more can be asked for.
DEFAULT_MAX_PARTS = 8


@dataclass
class PartAudit:
    """What one part of the log holds and how its checks came out."""

    events: int
    streams: int
    chain_findings: list[tuple[int, str]]  # (log position, finding)
    applied_ids: AppliedIdSummary
    replayed: dict[str, Doc]  # "view/key" -> document; empty when the replay failed
    replay_error: tuple[int, str] | None  # (log position, what went wrong)
    snapshots: int
    snapshot_findings: list[str]
    intake: IntakeTally


@dataclass
class LogAudit:
    """The parts' results added up: the whole log's (or one account's) checks."""

    parts: int
    events: int
    streams: int
    chain_findings: list[str]
    applied_ids: AppliedIdSummary
    replayed: dict[str, Doc] | None  # None: the stored events cannot be replayed
    replay_error: str | None
    snapshots: int
    snapshot_findings: list[str]
    intake: IntakeTally

    @classmethod
    def of(cls, parts: list[PartAudit]) -> "LogAudit":
        intake = IntakeTally()
        applied_ids = AppliedIdSummary()
        replayed: dict[str, Doc] = {}
        for part in parts:
            intake.absorb(part.intake)
            applied_ids = applied_ids.plus(part.applied_ids)
            replayed.update(part.replayed)
        errors = sorted(part.replay_error for part in parts if part.replay_error is not None)
        return cls(
            parts=len(parts),
            events=sum(part.events for part in parts),
            streams=sum(part.streams for part in parts),
            # A stable sort: a part's findings at one position keep their order.
            chain_findings=[
                finding
                for _, finding in sorted(
                    (found for part in parts for found in part.chain_findings),
                    key=lambda found: found[0],
                )
            ],
            applied_ids=applied_ids,
            replayed=None if errors else replayed,
            replay_error=errors[0][1] if errors else None,  # the first the log runs into
            snapshots=sum(part.snapshots for part in parts),
            snapshot_findings=sorted(f for part in parts for f in part.snapshot_findings),
            intake=intake,
        )


def audit_events(
    app: LedgerApp,
    events: Iterable[tuple[int, object]],
    account: str | None = None,
    progress: Progress | None = None,
) -> PartAudit:
    """Every check of these stored events, (log position, event) in log order, that needs no
    other part of the log. `account`: they are that account's, and only its views count.
    `progress` is told every PROGRESS_EVENTS events."""
    chains, tally, replay = ChainAudit(), IntakeTally(), Fold()
    snapshots = SnapshotAudit(app)
    chain_findings: list[tuple[int, str]] = []
    replay_error: tuple[int, str] | None = None
    count = 0
    for position, event in events:
        count += 1
        if progress is not None and count % PROGRESS_EVENTS == 0:
            progress(count, position)
        found = len(chains.findings)
        chains.see(event)
        if len(chains.findings) > found:
            chain_findings += [(position, finding) for finding in chains.findings[found:]]
        tally.see(event)
        if replay_error is None:
            try:
                replay.see(event)
            except Exception as error:  # a tampered log can break the views' invariants
                replay_error = (position, f"{type(error).__name__}: {error}")
        snapshots.see(event)
    checked_snapshots, snapshot_findings = snapshots.result(streams_named(chains, tally))
    return PartAudit(
        events=count,
        streams=chains.streams,
        chain_findings=chain_findings,
        applied_ids=chains.applied_ids.summary(),
        replayed={} if replay_error else view_documents(replay.views(), account),
        replay_error=replay_error,
        snapshots=checked_snapshots,
        snapshot_findings=snapshot_findings,
        intake=tally,
    )


def audit_account(app: LedgerApp, account: str) -> LogAudit:
    """The checks of one account's stream: its chain, applied ids, views and snapshot."""
    return LogAudit.of([audit_events(app, enumerate(app.account_events(account), 1), account)])


def audit_log(
    app: LedgerApp, through: int, parts: int | None = None, progress: Progress | None = None
) -> LogAudit:
    """The checks of every stream, of the log up to that position, read in `parts` parts by
    as many processes (this one and parts - 1 it starts); None: as many as suits the log.
    `progress` is told of this process's part."""
    count = parts_for(app.store, through) if parts is None else parts
    if count == 1:
        return LogAudit.of([audit_events(app, app.logged_events(through), progress=progress)])
    if app.store.kind != "postgresql":
        raise ValueError("only a PostgreSQL store can be audited in parts")
    assert 1 < count <= MAX_LOG_PARTS, count
    # Spawned, not forked: the calling process holds a connection pool and its threads.
    with ProcessPoolExecutor(count - 1, mp_context=get_context("spawn")) as pool:
        others = [
            pool.submit(_audit_part, app.store, through, LogPart(index, count))
            for index in range(1, count)
        ]
        first = audit_events(app, app.logged_events(through, LogPart(0, count)), progress=progress)
        return LogAudit.of([first] + [other.result() for other in others])


def parts_for(store: StoreConfig, through: int) -> int:
    """How many parts an audit reads a log of that length in, by default."""
    if store.kind != "postgresql" or through < PARALLEL_FROM_EVENTS:
        return 1
    return max(1, min(os.cpu_count() or 1, DEFAULT_MAX_PARTS))


def _audit_part(store: StoreConfig, through: int, part: LogPart) -> PartAudit:
    """One part's audit, in a process of its own."""
    tune_for_long_runs()
    app = LedgerApp(store)
    try:
        return audit_events(app, app.logged_events(through, part))
    finally:
        app.close()
