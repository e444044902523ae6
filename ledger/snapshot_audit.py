"""R3 for the state a process starts from, checked during the audit's one read of the log.

A process loads an account or a source's intake from its latest snapshot and the events after
it, so the audit proves that each latest snapshot equals its stream's events replayed to the
snapshot's version. It did so after reading the log, by reading each snapshotted stream's
events again up to its snapshot: on a ledger that has run for a month nearly every account has
one, so nearly the whole log was read twice. Here each stream's latest snapshot is looked up
soon after the stream is first seen (with other streams', a query's worth, or by the stream's
`LOOK_UP_AT_VERSION`), its events are replayed as the read passes them, and the two are
compared when they reach the snapshot's version.

A stream's events are kept until its snapshot is looked up, and replayed only if it has one.
A stream this cannot check is checked after the read as before (`LedgerApp.snapshot_findings`),
its events read again: one the read stops before its snapshot's version (an audit through a
log position, or a snapshot past its events), one whose events do not replay or whose
snapshot does not read back (there the error is named), and streams beyond
`MAX_STREAMS_REPLAYED` held at once.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Snapshot

from ledger.application import (
    ACCOUNT_SNAPSHOT_INTERVAL,
    INTAKE_SNAPSHOT_INTERVAL,
    SNAPSHOTS_CHECKED_AT_ONCE,
    snapshot_finding,
)

if TYPE_CHECKING:
    from ledger.application import LedgerApp

# An explicit limit on the streams replayed at once, each an aggregate in memory (an account
# holds about 6 KiB, docs/PERFORMANCE.md round 9): streams first seen beyond it are checked
# after the read. The audit's replay of the views holds more than this for each account.
MAX_STREAMS_REPLAYED = 100_000
# A stream waits for others to look its snapshot up with, a query's worth, at most until its
# events reach this version: below any snapshot's, taken every so many of a stream's events.
LOOK_UP_AT_VERSION = min(ACCOUNT_SNAPSHOT_INTERVAL, INTAKE_SNAPSHOT_INTERVAL) // 2


class _Replaying:
    """A stream being replayed: its latest snapshot once looked up, its events kept until then,
    and its aggregate so far."""

    __slots__ = ("aggregate", "kept", "snapshot", "stream_id")

    def __init__(self, stream_id: UUID) -> None:
        self.stream_id = stream_id
        self.snapshot: Snapshot | None = None
        self.kept: list[Any] = []
        self.aggregate: Any = None


class SnapshotAudit:
    """Each stream's latest snapshot against its events, from the events of a read of the log
    given in log order (`see`); `result` names what is wrong."""

    def __init__(self, app: "LedgerApp") -> None:
        self._app = app
        # By the stream id's integer (hashed in C, where a UUID hashes in Python): None once
        # the stream is settled here (checked, without a snapshot, or left to after the read).
        self._streams: dict[int, _Replaying | None] = {}
        self._replaying = 0  # streams in `_streams` that are not settled
        # Streams whose snapshots are not looked up yet, each with its events kept: at most
        # SNAPSHOTS_CHECKED_AT_ONCE streams of LOOK_UP_AT_VERSION events. A stream without a
        # snapshot, nearly every one on a young ledger, is then never replayed.
        self._waiting: list[_Replaying] = []
        self._checked: dict[UUID, str | None] = {}  # checked here: the finding, or None
        self._left: set[UUID] = set()  # to check after the read

    def see(self, event: Any) -> None:
        key = event.originator_id.int
        replaying = self._streams.get(key, _UNSEEN)
        if replaying is None:
            return
        if replaying is _UNSEEN:
            replaying = self._start(event)
            if replaying is None:
                return
        if replaying.snapshot is not None:
            self._replay(replaying, replaying.snapshot, event)
            return
        replaying.kept.append(event)
        if (
            len(self._waiting) >= SNAPSHOTS_CHECKED_AT_ONCE
            or event.originator_version >= LOOK_UP_AT_VERSION
        ):
            self._look_up()

    def result(self, streams: Mapping[UUID, str]) -> tuple[int, list[str]]:
        """The snapshots checked and the findings, of these streams (id -> name): those checked
        during the read, and the rest checked now, their events read again."""
        if self._waiting:
            self._look_up()
        for replaying in self._streams.values():
            if replaying is not None:  # its events did not reach its snapshot's version
                self._left.add(replaying.stream_id)
        checked, findings = self._app.snapshot_findings(
            {stream_id: name for stream_id, name in streams.items() if stream_id in self._left}
        )
        for stream_id, name in streams.items():
            if stream_id in self._checked:
                checked += 1
                finding = self._checked[stream_id]
                if finding is not None:
                    findings.append(f"{name}: {finding}")
        return checked, findings

    def _start(self, event: Any) -> _Replaying | None:
        stream_id: UUID = event.originator_id
        if event.originator_version != 1 or self._replaying >= MAX_STREAMS_REPLAYED:
            self._streams[stream_id.int] = None
            self._left.add(stream_id)
            return None
        replaying = self._streams[stream_id.int] = _Replaying(stream_id)
        self._replaying += 1
        self._waiting.append(replaying)
        return replaying

    def _look_up(self) -> None:
        waiting, self._waiting = self._waiting, []
        latest = self._app.latest_snapshots([replaying.stream_id for replaying in waiting])
        for replaying in waiting:
            kept, replaying.kept = replaying.kept, []
            snapshot = latest.get(replaying.stream_id)
            if snapshot is None:  # none, or in a layout passed over: nothing to check
                self._settle(replaying)
            elif isinstance(snapshot, Exception):
                self._leave(replaying)  # named after the read, as it reads back again
            else:
                replaying.snapshot = snapshot
                for event in kept:
                    if not self._replay(replaying, snapshot, event):
                        break

    def _replay(self, replaying: _Replaying, snapshot: Snapshot, event: Any) -> bool:
        """The stream moved by one more of its events, and compared with its snapshot at the
        snapshot's version; False once it is settled."""
        try:
            replaying.aggregate = event.mutate(replaying.aggregate)
        except Exception:  # a tampered stream: the check after the read names the error
            self._leave(replaying)
            return False
        if event.originator_version != snapshot.originator_version:
            return True
        self._checked[replaying.stream_id] = snapshot_finding(snapshot, replaying.aggregate)
        self._settle(replaying)
        return False

    def _leave(self, replaying: _Replaying) -> None:
        self._left.add(replaying.stream_id)
        self._settle(replaying)

    def _settle(self, replaying: _Replaying) -> None:
        self._streams[replaying.stream_id.int] = None
        self._replaying -= 1


_UNSEEN: Any = object()
