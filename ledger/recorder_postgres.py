"""The PostgreSQL recorder the ledger uses: the library's process recorder, inserting faster
and letting the caller write what must commit with the events (the views).

The library sends a batch of stored events as one array of composite values in text form,
which psycopg escapes value by value with regular expressions: about a fifth of the ledger's
time when it was profiled (docs/PERFORMANCE.md). This recorder sends the same rows as four
arrays of plain types in binary form, with nothing to escape. The table lock that keeps
notification ids in commit order, NOTIFY, and the tracking record in the same transaction are
the library's own.

`insert_events(..., alongside=Alongside(unlocked, locked))` writes the caller's rows in the same
transaction: `unlocked(cursor)` before the table lock, for rows that need no notification id
(the views' documents), and `locked(cursor, previous, ids)` after the insert, under the lock:
`previous` is the last notification id committed before these, `ids` the new ones. Whatever
they write commits or rolls back with the events. The lock serialises every writer of the
log, so the less is written under it, the more writers the log can take (docs/PERFORMANCE.md,
round 7).

It also keeps the ids of the events each account applied (ledger.applied_ids): `insert_events(
..., applied_ids=[...])` stores them before the lock, as they need no notification id.
"""

import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from ledger.applied_ids import (
    EVENTS_PAGE,
    IDS_PAGE,
    TABLE_NAME,
    AppliedAt,
    AppliedId,
    AppliedIdsIn,
    AppliedIdSummary,
    summary_of,
)
from ledger.frozen import built
from ledger.pg_arrays import BigintColumn, ByteaColumn, TextColumn, UuidColumn
from ledger.recorder import MAX_VERSIONS_FOUND, Alongside, LockUse, LogPart, LogRow


class LedgerPostgresRecorder(PostgresProcessRecorder):
    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(
            datastore,
            events_table_name=events_table_name,
            tracking_table_name=tracking_table_name,
        )
        self.lock_use = LockUse()
        table = Identifier(datastore.schema, events_table_name)
        self.insert_columns_statement = SQL(
            "INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(table=table)
        page = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {table} WHERE notification_id > %s{topics} ORDER BY notification_id LIMIT %s"
        )
        self.select_page_statement = page.format(table=table, topics=SQL(""))
        self.select_topics_page_statement = page.format(
            table=table, topics=SQL(" AND topic = ANY(%b::text[])")
        )
        # The last byte of a stream id chooses its part, read by the server in C. A window of
        # ids and no LIMIT: with one, the planner guessed the filter keeps few rows and sent
        # two parallel workers after each page, 14 ms a page instead of 2.
        self.select_part_statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {table} WHERE notification_id > %s AND notification_id <= %s "
            "AND get_byte(uuid_send(originator_id), 15) %% %s = %s ORDER BY notification_id"
        ).format(table=table)
        self.select_ranges_statement = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%b::uuid[], %b::bigint[], %b::bigint[]) AS q(stream_id, after, through), "
            "LATERAL (SELECT originator_id, originator_version, topic, state FROM {table} "
            "WHERE originator_id = q.stream_id AND originator_version > q.after "
            "AND originator_version <= q.through) AS e "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(table=table)
        self.versions_holding_statement = SQL(
            "SELECT originator_version FROM {table} WHERE originator_id = %s "
            "AND originator_version < %s AND position(%s::bytea in state) > 0 "
            "ORDER BY originator_version DESC LIMIT %s"
        ).format(table=table)
        self.previous_id_statement = SQL(
            "SELECT coalesce(max(notification_id), 0) AS previous FROM {table} "
            "WHERE notification_id < %s"
        ).format(table=table)
        applied = Identifier(datastore.schema, TABLE_NAME)
        self.applied_table_name = f"{datastore.schema}.{TABLE_NAME}"
        self.create_applied_statement = SQL(
            "CREATE TABLE {applied} (stream_id uuid, event_id text, version bigint, "
            "PRIMARY KEY (stream_id, event_id))"
        ).format(applied=applied)
        self.add_versions_statement = SQL("ALTER TABLE {applied} ADD COLUMN version bigint").format(
            applied=applied
        )
        self.insert_applied_statement = SQL(
            "INSERT INTO {applied} (stream_id, event_id, version) "
            "SELECT * FROM unnest(%b::uuid[], %b::text[], %b::bigint[])"
        ).format(applied=applied)
        self.versions_applying_statement = SQL(
            "SELECT event_id, version FROM {applied} "
            "WHERE stream_id = %s AND event_id = ANY(%s) AND version IS NOT NULL"
        ).format(applied=applied)
        # One probe of the primary key per id, whatever the table's size. A join, or a lateral
        # subquery the planner can flatten into one, hashed the whole table instead: 46,000
        # rows read to look up 500 ids, 17-27 ms where the probes take 3.
        self.select_applied_statement = SQL(
            "SELECT a.stream_id, a.event_id "
            "FROM unnest(%b::uuid[], %b::text[]) AS q(stream_id, event_id), "
            "LATERAL (SELECT stream_id, event_id FROM {applied} "
            "WHERE stream_id = q.stream_id AND event_id = q.event_id LIMIT 1) AS a"
        ).format(applied=applied)
        self.all_applied_statement = SQL("SELECT stream_id, event_id FROM {applied}").format(
            applied=applied
        )
        self.stream_applied_statement = SQL(
            "SELECT stream_id, event_id FROM {applied} WHERE stream_id = %s"
        ).format(applied=applied)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def applied_among(self, ids: Collection[AppliedId]) -> set[AppliedId]:
        if not ids:
            return set()
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            curs.execute(self.select_applied_statement, _id_columns(ids), prepare=True)
            return {(stream_id, event_id) for stream_id, event_id in curs.fetchall()}

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def versions_applying(self, stream_id: UUID, event_ids: Collection[str]) -> dict[str, int]:
        if not event_ids:
            return {}
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(self.versions_applying_statement, (stream_id, list(event_ids)))
            return {event_id: int(version) for event_id, version in curs.fetchall()}

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def applied_id_summary(self, stream_id: UUID | None = None) -> AppliedIdSummary:
        # A server-side cursor read in pages: any number of ids in bounded memory.
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor("applied_ids", row_factory=tuple_row, binary=True) as curs,
        ):
            curs.itersize = IDS_PAGE
            if stream_id is None:
                curs.execute(self.all_applied_statement)
            else:
                curs.execute(self.stream_applied_statement, (stream_id,))
            return summary_of(curs)

    def create_applied_index(self, topics: Sequence[str], applied_in: AppliedIdsIn) -> int:
        filled = 0
        with self.datastore.transaction(commit=True) as curs:
            # Whether the table is there, and with the versions' column: one round trip at
            # every start, the table locked to add the column only where it lacks it.
            curs.execute(
                "SELECT to_regclass(%(table)s) IS NOT NULL AS found, EXISTS (SELECT FROM "
                "pg_attribute WHERE attrelid = to_regclass(%(table)s) AND attname = 'version' "
                "AND NOT attisdropped) AS versioned",
                {"table": self.applied_table_name},
            )
            found = curs.fetchone()
            assert found is not None
            if found["found"]:
                if not found["versioned"]:  # made before it had one: its ids keep none
                    curs.execute(self.add_versions_statement)
                return 0
            curs.execute(self.create_applied_statement)
            # The log is read on a connection of its own: it holds only committed events.
            after = 0
            while page := self.select_notifications(
                start=after, limit=EVENTS_PAGE, topics=topics, inclusive_of_start=False
            ):
                after = page[-1].id
                ids = list(applied_in(page))
                self._insert_applied(curs, ids)
                filled += len(ids)
            return filled

    def _insert_applied(self, curs: Any, ids: Sequence[AppliedAt]) -> None:
        if ids:
            streams, event_ids, versions = zip(*ids, strict=True)
            curs.execute(
                self.insert_applied_statement,
                (UuidColumn(streams), TextColumn(event_ids), BigintColumn(versions)),
                prepare=True,
            )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's query for a page of the log, read as binary tuples: the rows of a
        replay, an audit or the filling of the applied ids' index arrive without text decoding
        of the bytes or a dict per row."""
        if stop is not None:
            page: Sequence[Notification] = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
            return page
        after = 0 if start is None else start - 1 if inclusive_of_start else start
        if topics:
            rows = self._log_rows(
                self.select_topics_page_statement, (after, TextColumn(topics), limit)
            )
        else:
            rows = self._log_rows(self.select_page_statement, (after, limit))
        return [_notification(*row) for row in rows]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def select_log_page(self, after: int, limit: int) -> list[LogRow]:
        """Up to `limit` rows of the log after that notification id, in log order."""
        return self._log_rows(self.select_page_statement, (after, limit))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def select_part(self, after: int, through: int, part: LogPart) -> list[LogRow]:
        """The rows of one part of the log (`LogPart`) after one notification id and up to
        another, in log order: a window of ids, not a page of rows."""
        return self._log_rows(self.select_part_statement, (after, through, part.count, part.index))

    def _log_rows(self, statement: Composed, params: tuple[Any, ...]) -> list[LogRow]:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            curs.execute(statement, params, prepare=True)
            rows: list[LogRow] = curs.fetchall()  # one call, not one per row
            return rows

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def versions_holding(self, stream_id: UUID, data: bytes, before: int) -> list[int]:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(
                self.versions_holding_statement, (stream_id, before, data, MAX_VERSIONS_FOUND)
            )
            return [int(row[0]) for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def select_latest(self, table_name: str, stream_ids: Collection[UUID]) -> list[StoredEvent]:
        """The row of the highest version of each of these streams in a table shaped like the
        events table (the snapshots'), in one query: one probe of its primary key each."""
        if not stream_ids:
            return []
        statement = SQL(
            "SELECT s.originator_id, s.originator_version, s.topic, s.state "
            "FROM unnest(%b::uuid[]) AS q(stream_id), "
            "LATERAL (SELECT originator_id, originator_version, topic, state FROM {table} "
            "WHERE originator_id = q.stream_id ORDER BY originator_version DESC LIMIT 1) AS s"
        ).format(table=Identifier(self.datastore.schema, table_name))
        return self._stored_rows(statement, (list(stream_ids),))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def select_ranges(self, ranges: Mapping[UUID, tuple[int, int]]) -> list[StoredEvent]:
        """The events of each of these streams from just after the first version of its range
        through the second, in one query, in stream and version order."""
        if not ranges:
            return []
        afters, throughs = zip(*ranges.values(), strict=True)
        return self._stored_rows(
            self.select_ranges_statement,
            (UuidColumn(ranges), BigintColumn(afters), BigintColumn(throughs)),
        )

    def _stored_rows(self, statement: Composed, params: tuple[Any, ...]) -> list[StoredEvent]:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            curs.execute(statement, params, prepare=True)
            return [
                built(
                    StoredEvent,
                    {
                        "originator_id": originator_id,
                        "originator_version": originator_version,
                        "topic": topic,
                        "state": state,
                    },
                )
                for originator_id, originator_version, topic, state in curs.fetchall()
            ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tracking: Tracking | None = kwargs.get("tracking")
        alongside: Alongside | None = kwargs.get("alongside")
        applied_ids: Sequence[AppliedAt] = kwargs.get("applied_ids", ())
        if not stored_events:
            columns = None
        else:  # built before the lock, as everything that need not wait for it
            columns = (
                # The ledger's streams are named by UUIDs (the library allows strings too).
                UuidColumn(cast(list[UUID], [event.originator_id for event in stored_events])),
                BigintColumn([event.originator_version for event in stored_events]),
                TextColumn([event.topic for event in stored_events]),
                ByteaColumn([event.state for event in stored_events]),
            )
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor() as curs,
        ):
            if tracking is not None:
                self._insert_tracking(curs, tracking=tracking)
            if columns is None:
                return []
            self._insert_applied(curs, applied_ids)
            if alongside is not None:
                alongside.unlocked(curs)
            self._lock_table(curs)
            locked_at = time.perf_counter()
            self._notify_channel(curs)
            # The ids as tuples: psycopg builds them in C, where a dict row is a Python call.
            with connection.cursor(row_factory=tuple_row) as rows:
                rows.execute(self.insert_columns_statement, columns, prepare=True)
                ids = [notification_id for (notification_id,) in rows.fetchall()]
                assert len(ids) == len(stored_events), "one notification id per stored event"
                if alongside is not None:
                    rows.execute(self.previous_id_statement, (ids[0],), prepare=True)
                    row = rows.fetchone()
                    assert row is not None
                    alongside.locked(curs, int(row[0]), ids)
        # Committed: the lock is released.
        self.lock_use.held(time.perf_counter() - locked_at, len(ids))
        return ids


def _notification(
    notification_id: int, originator_id: UUID, originator_version: int, topic: str, state: bytes
) -> Notification:
    """A row of the log as the library's `Notification` (ledger.records)."""
    return built(
        Notification,
        {
            "originator_id": originator_id,
            "originator_version": originator_version,
            "topic": topic,
            "state": state,
            "id": notification_id,
        },
    )


def _id_columns(ids: Collection[AppliedId]) -> tuple[UuidColumn, TextColumn]:
    """Ids as the two arrays the statements unnest: stream ids, event ids."""
    return (
        UuidColumn([stream_id for stream_id, _ in ids]),
        TextColumn([event_id for _, event_id in ids]),
    )
