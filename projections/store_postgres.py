"""The view documents in PostgreSQL: the production store of the views, written in the
events' transaction by a consumer (`projections.runner.ViewsAlongside`). Apart from
`projections.store` so that a command on an embedded store does not load PostgreSQL's driver.
"""

from collections.abc import Collection, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

import orjson
import psycopg

from ledger.pg_arrays import BooleanColumn, TextColumn, Utf8TextColumn
from ledger.store import SCHEMA_LOCK_ID
from projections.store import (
    POSITION_TABLE,
    VIEW_TABLE,
    Doc,
    DocKey,
    StaleViewPosition,
    ViewStore,
    encoded,
    prefix_range,
)

# Every batch rewrites the documents of its accounts. Room left on each page lets PostgreSQL
# put a document's new version beside the old one without touching the indexes (a HOT
# update): about half its CPU per document written (docs/PERFORMANCE.md, round 6).
VIEW_FILLFACTOR = 70


class PostgresViewStore(ViewStore):
    def __init__(
        self, conninfo: str, table: str = VIEW_TABLE, position_table: str = POSITION_TABLE
    ) -> None:
        """The views in these tables, made if missing: the live ones by default, or a rebuild's
        staged ones (`projections.log_rebuild`)."""
        self.table = table
        self.position_table = position_table
        self._conninfo = conninfo
        self._db = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        with self._db.transaction():
            # Several processes may start at once: serialise the creation of the tables.
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
            # Keys in byte order ("C"), whatever the database's locale: a prefix scan is then
            # a range of the primary key's index.
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (view TEXT NOT NULL, "
                'key TEXT COLLATE "C" NOT NULL, doc TEXT NOT NULL, '
                "settled BOOLEAN NOT NULL DEFAULT false, PRIMARY KEY (view, key)) "
                f"WITH (fillfactor = {VIEW_FILLFACTOR})"
            )
            if not self._has_settled_column():
                self._settle_older_documents()
            if self.key_collation() != "C":  # a table made before keys were in byte order
                self._db.execute(f'ALTER TABLE {self.table} ALTER COLUMN key TYPE TEXT COLLATE "C"')
            if self.fillfactor() != VIEW_FILLFACTOR:  # a table made before: pages it fills next
                self._db.execute(f"ALTER TABLE {self.table} SET (fillfactor = {VIEW_FILLFACTOR})")
            self._compress_documents_with_lz4()
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.position_table} "
                "(id INTEGER PRIMARY KEY CHECK (id = 1), position BIGINT NOT NULL)"
            )
            self._db.execute(
                f"INSERT INTO {self.position_table} VALUES (1, 0) ON CONFLICT (id) DO NOTHING"
            )
            # Catch-up reads every current document of a page's accounts at once
            # (documents_of): the index holds those alone, so it does not grow with the
            # accounts' past periods.
            self._db.execute(f"DROP INDEX IF EXISTS {self.table}_account")
            self._db.execute(
                f"CREATE INDEX IF NOT EXISTS {self.table}_current_account "
                f"ON {self.table} (split_part(key, '|', 1)) WHERE NOT settled"
            )

    def _has_settled_column(self) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'settled' "
            "AND NOT attisdropped",
            (self.table,),
        ).fetchone()
        return row is not None

    def _settle_older_documents(self) -> None:
        """A table made before documents were settled: add the column, and settle what the
        projections would have settled (`InvoiceProjection`, `MinutesProjection`): closed
        invoices, filed chunks of charges, and minutes of a period before their number's
        plan's latest one. A test compares the result with a rebuild's."""
        self._db.execute(
            f"ALTER TABLE {self.table} ADD COLUMN settled BOOLEAN NOT NULL DEFAULT false"
        )
        self._db.execute(
            f"UPDATE {self.table} SET settled = true "
            "WHERE (view = 'invoices' AND doc::jsonb ->> 'status' = 'closed') "
            "OR view = 'invoice_charges'"
        )
        self._db.execute(
            f"UPDATE {self.table} AS minutes SET settled = true FROM {self.table} AS plans "
            "WHERE minutes.view = 'minutes' AND plans.view = 'plans' "
            "AND plans.key = split_part(minutes.key, '|', 1) || '|' "
            "|| split_part(minutes.key, '|', 2) "
            "AND split_part(minutes.key, '|', 3) < plans.doc::jsonb ->> 'period'"
        )

    def _compress_documents_with_lz4(self) -> None:
        """Documents over 2 kB (an invoice late in the month) are compressed as they are
        stored. lz4 costs PostgreSQL about 35 µs per invoice written where its default, pglz,
        costs about 58 (docs/PERFORMANCE.md, round 6). A server without lz4 (built without
        it, or older than 14) keeps its default."""
        try:
            with self._db.transaction():  # a savepoint: the failure must not end the outer one
                if self.document_compression() != "lz4":
                    self._db.execute(
                        f"ALTER TABLE {self.table} ALTER COLUMN doc SET COMPRESSION lz4"
                    )
        except (psycopg.errors.FeatureNotSupported, psycopg.errors.SyntaxError):
            pass  # built without lz4, or older than 14 (no SET COMPRESSION)

    def fillfactor(self) -> int:
        """How full PostgreSQL fills the views' pages, in percent (100 unless set)."""
        row = self._db.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (self.table,)
        ).fetchone()
        assert row is not None, f"{self.table} exists"
        for option in row[0] or ():
            name, _, value = option.partition("=")
            if name == "fillfactor":
                return int(value)
        return 100

    def document_compression(self) -> str:
        """How large documents are compressed: "lz4", "pglz", or "default" (the server's
        default_toast_compression, pglz unless set)."""
        compression, _ = self._column_settings("doc")
        return {"l": "lz4", "p": "pglz"}.get(compression, "default")

    def key_collation(self) -> str:
        _, collation = self._column_settings("key")
        return collation

    def _column_settings(self, column: str) -> tuple[str, str]:
        """A column of the view table: its compression code and its collation's name."""
        # Through to_jsonb: attcompression exists from PostgreSQL 14, and an older server
        # must still open the views (its compression reads as "").
        row = self._db.execute(
            "SELECT coalesce(to_jsonb(a) ->> 'attcompression', ''), coalesce(c.collname, '') "
            "FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation "
            "WHERE a.attrelid = %s::regclass AND a.attname = %s",
            (self.table, column),
        ).fetchone()
        assert row is not None, f"{self.table} has a {column} column"
        return str(row[0]), str(row[1])

    def position(self) -> int:
        row = self._connection().execute(f"SELECT position FROM {self.position_table}").fetchone()
        assert row is not None
        return int(row[0])

    def get(self, view: str, key: str) -> Doc | None:
        row = (
            self._connection()
            .execute(f"SELECT doc FROM {self.table} WHERE view = %s AND key = %s", (view, key))
            .fetchone()
        )
        return None if row is None else dict(orjson.loads(row[0]))

    def scan(self, view: str, key_prefix: str = "") -> Iterator[tuple[str, Doc]]:
        in_range, bounds = prefix_range(key_prefix, "%s")
        rows = (
            self._connection()
            .execute(
                f"SELECT key, doc FROM {self.table} WHERE view = %s AND {in_range} ORDER BY key",
                (view, *bounds),
            )
            .fetchall()
        )
        for key, doc in rows:
            yield key, dict(orjson.loads(doc))

    def documents_of(self, account_ids: Collection[str]) -> dict[DocKey, Doc] | None:
        rows = (
            self._connection()
            .execute(
                f"SELECT view, key, doc FROM {self.table} "
                "WHERE split_part(key, '|', 1) = ANY(%b::text[]) AND NOT settled",
                (TextColumn(account_ids),),
            )
            .fetchall()
        )
        return {(view, key): dict(orjson.loads(doc)) for view, key, doc in rows}

    def write(
        self,
        changes: Mapping[DocKey, Doc | None],
        expected: int,
        position: int,
        settled: Collection[DocKey] = (),
    ) -> None:
        with self._connection().transaction(), self._connection().cursor() as cur:
            self.write_documents(cur, changes, settled)
            self.move_position(cur, expected, position)

    def write_documents(
        self,
        cur: "psycopg.Cursor[Any]",
        changes: Mapping[DocKey, Doc | None],
        settled: Collection[DocKey] = (),
    ) -> None:
        """The changed documents, inside a transaction someone else holds: the ledger's own,
        so the views commit with the events they reflect (ViewsAlongside). Every writer of
        the views writes the upserts, then the deletes, each in key order, and the position
        last, so two transactions that write the same documents lock them in one order."""
        # By key alone: keys differ, and comparing the items compared each key twice over.
        ordered = sorted(changes.items(), key=itemgetter(0))
        # One statement each, the rows as binary arrays: no per-row round trip or escaping.
        upserts = [
            (v, k, encoded(doc), (v, k) in settled) for (v, k), doc in ordered if doc is not None
        ]
        if upserts:
            views, keys, docs, settles = zip(*upserts, strict=True)
            cur.execute(
                f"INSERT INTO {self.table} (view, key, doc, settled) "
                "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::boolean[]) "
                "ON CONFLICT (view, key) DO UPDATE "
                "SET doc = EXCLUDED.doc, settled = EXCLUDED.settled",
                (TextColumn(views), TextColumn(keys), Utf8TextColumn(docs), BooleanColumn(settles)),
            )
        deletes = [key for key, doc in ordered if doc is None]
        if deletes:
            views, keys = zip(*deletes, strict=True)
            cur.execute(
                f"DELETE FROM {self.table} WHERE (view, key) IN "
                "(SELECT * FROM unnest(%b::text[], %b::text[]))",
                (TextColumn(views), TextColumn(keys)),
            )

    def move_position(self, cur: "psycopg.Cursor[Any]", expected: int, position: int) -> None:
        """The views' position, from `expected` to `position`, inside that same transaction.
        Written after the documents: the row it updates is the one every writer shares."""
        cur.execute(
            f"UPDATE {self.position_table} SET position = %s WHERE position = %s",
            (position, expected),
        )
        if cur.rowcount != 1:
            raise StaleViewPosition(f"views are no longer at position {expected}")

    def reset(self) -> None:
        with self._connection().transaction():
            self._connection().execute(f"DELETE FROM {self.table}")
            self._connection().execute(f"UPDATE {self.position_table} SET position = 0")

    def replace_with(self, staged_tables: Sequence[str], position: int) -> None:
        """Every document of these staged tables in place of these views' own, at that
        position, in one transaction: a reader sees the views before or after, never a part of
        them. The documents first and the position last, in the order every writer takes them
        (`write_documents`), so a consumer's batch in flight waits, then finds the position
        moved and catches up from it."""
        db = self._connection()
        with db.transaction():
            db.execute(f"DELETE FROM {self.table}")
            for staged in staged_tables:
                db.execute(
                    f"INSERT INTO {self.table} (view, key, doc, settled) "
                    f"SELECT view, key, doc, settled FROM {staged}"
                )
            db.execute(f"UPDATE {self.position_table} SET position = %s", (position,))

    @property
    def conninfo(self) -> str:
        return self._conninfo

    def close(self) -> None:
        self._db.close()

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, opened again after the server went away (a restart, G1)."""
        if self._db.broken:
            self._db.close()
            self._db = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
        return self._db
