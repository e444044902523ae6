"""Where views live: JSON documents keyed by (view, key), plus the log position they reflect.

Documents and position are written in one transaction with a compare-and-set on the
position, so each stored event changes the views exactly once even with several writers.
Two backends, one interface: SQLite (the embedded default) and PostgreSQL.
"""

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Self

import orjson
import psycopg

from ledger.pg_arrays import BooleanColumn, TextColumn, Utf8TextColumn
from ledger.store import SCHEMA_LOCK_ID, StoreConfig

Doc = dict[str, Any]
DocKey = tuple[str, str]

VIEW_TABLE = "ledger_views"
POSITION_TABLE = "ledger_view_position"
# Every batch rewrites the documents of its accounts. Room left on each page lets PostgreSQL
# put a document's new version beside the old one without touching the indexes (a HOT
# update): about half its CPU per document written (docs/PERFORMANCE.md, round 6).
VIEW_FILLFACTOR = 70


class StaleViewPosition(Exception):
    """Another writer moved the views on since we read the position: read again."""


class ViewStore(ABC):
    @abstractmethod
    def position(self) -> int:
        """The id of the last notification the views reflect (0: none)."""

    @abstractmethod
    def get(self, view: str, key: str) -> Doc | None: ...

    @abstractmethod
    def scan(self, view: str, key_prefix: str = "") -> Iterator[tuple[str, Doc]]:
        """Every document of a view whose key starts with the prefix, in key order."""

    @abstractmethod
    def write(
        self,
        changes: Mapping[DocKey, Doc | None],
        expected: int,
        position: int,
        settled: Collection[DocKey] = (),
    ) -> None:
        """Store changed documents (None deletes one) and move the position from `expected`
        to `position`. `settled`: those of them no later event is expected to change (a closed
        invoice, past minutes), which `documents_of` leaves out."""

    def documents_of(self, account_ids: Collection[str]) -> dict[DocKey, Doc] | None:
        """Every current (not settled) document of these accounts in one read, or None when a
        backend reads documents one by one cheaply (in-process stores, which may then ignore
        `settled`). Keys are the account id or start "ACCOUNT|"."""
        return None

    @abstractmethod
    def reset(self) -> None:
        """Forget every document; position back to 0 (before a rebuild)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _encoded(doc: Doc) -> bytes:
    """A document's JSON: UTF-8, keys sorted, so one document is always one text."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _encode(doc: Doc) -> str:
    return _encoded(doc).decode("utf-8")


LAST_CODE_POINT = chr(0x10FFFF)
SURROGATES = range(0xD800, 0xE000)


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, in code-point order,
    or None when there is none. A prefix scan is then the range [prefix, bound): an index
    walk over one account's documents, not a filter over the whole view."""
    kept = prefix.rstrip(LAST_CODE_POINT)
    if not kept:
        return None  # "" or only last code points: every string >= prefix starts with it
    after = ord(kept[-1]) + 1
    if after in SURROGATES:  # not characters: no stored key holds one
        after = SURROGATES.stop
    return kept[:-1] + chr(after)


def _prefix_range(key_prefix: str, mark: str) -> tuple[str, tuple[str, ...]]:
    """The SQL condition, with its parameters (`mark` is the driver's placeholder), for the keys
    that start with `key_prefix`, as a range in byte order."""
    bound = prefix_upper_bound(key_prefix)
    if bound is None:
        return f"key >= {mark}", (key_prefix,)
    return f"key >= {mark} AND key < {mark}", (key_prefix, bound)


class SqliteViewStore(ViewStore):
    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {VIEW_TABLE} "
            "(view TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (view, key))"
        )
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL)"
        )
        self._db.execute(f"INSERT OR IGNORE INTO {POSITION_TABLE} VALUES (1, 0)")

    def position(self) -> int:
        row = self._db.execute(f"SELECT position FROM {POSITION_TABLE}").fetchone()
        return int(row[0])

    def get(self, view: str, key: str) -> Doc | None:
        row = self._db.execute(
            f"SELECT doc FROM {VIEW_TABLE} WHERE view = ? AND key = ?", (view, key)
        ).fetchone()
        return None if row is None else dict(orjson.loads(row[0]))

    def scan(self, view: str, key_prefix: str = "") -> Iterator[tuple[str, Doc]]:
        # SQLite compares text as UTF-8 bytes: code-point order, the range prefix_upper_bound
        # is made for.
        in_range, bounds = _prefix_range(key_prefix, "?")
        rows = self._db.execute(
            f"SELECT key, doc FROM {VIEW_TABLE} WHERE view = ? AND {in_range} ORDER BY key",
            (view, *bounds),
        ).fetchall()
        for key, doc in rows:
            yield key, dict(orjson.loads(doc))

    def write(
        self,
        changes: Mapping[DocKey, Doc | None],
        expected: int,
        position: int,
        settled: Collection[DocKey] = (),
    ) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            moved = db.execute(
                f"UPDATE {POSITION_TABLE} SET position = ? WHERE position = ?",
                (position, expected),
            ).rowcount
            if moved != 1:
                raise StaleViewPosition(f"views are no longer at position {expected}")
            db.executemany(
                f"INSERT OR REPLACE INTO {VIEW_TABLE} (view, key, doc) VALUES (?, ?, ?)",
                [
                    (view, key, _encode(doc))
                    for (view, key), doc in changes.items()
                    if doc is not None
                ],
            )
            db.executemany(
                f"DELETE FROM {VIEW_TABLE} WHERE view = ? AND key = ?",
                [key for key, doc in changes.items() if doc is None],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def reset(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(f"DELETE FROM {VIEW_TABLE}")
        self._db.execute(f"UPDATE {POSITION_TABLE} SET position = 0")
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


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
        in_range, bounds = _prefix_range(key_prefix, "%s")
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
            (v, k, _encoded(doc), (v, k) in settled) for (v, k), doc in ordered if doc is not None
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


class MemoryViewStore(ViewStore):
    """Views in a dict: for tests and throwaway replays. Same semantics as the databases."""

    def __init__(self) -> None:
        self._docs: dict[DocKey, str] = {}
        self._position = 0

    def position(self) -> int:
        return self._position

    def get(self, view: str, key: str) -> Doc | None:
        text = self._docs.get((view, key))
        return None if text is None else dict(orjson.loads(text))

    def scan(self, view: str, key_prefix: str = "") -> Iterator[tuple[str, Doc]]:
        keys = sorted(k for v, k in self._docs if v == view and k.startswith(key_prefix))
        for key in keys:
            yield key, dict(orjson.loads(self._docs[(view, key)]))

    def write(
        self,
        changes: Mapping[DocKey, Doc | None],
        expected: int,
        position: int,
        settled: Collection[DocKey] = (),
    ) -> None:
        if self._position != expected:
            raise StaleViewPosition(f"views are no longer at position {expected}")
        for key, doc in changes.items():
            if doc is None:
                self._docs.pop(key, None)
            else:
                self._docs[key] = _encode(doc)
        self._position = position

    def reset(self) -> None:
        self._docs.clear()
        self._position = 0

    def close(self) -> None:
        pass


def open_view_store(store: StoreConfig) -> ViewStore:
    if store.kind == "memory":
        return MemoryViewStore()
    if store.kind == "sqlite":
        assert store.sqlite_path is not None
        return SqliteViewStore(store.sqlite_path)
    assert store.postgres is not None
    return PostgresViewStore(store.postgres.conninfo())
