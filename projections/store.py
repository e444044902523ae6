"""Where views live: JSON documents keyed by (view, key), plus the log position they reflect.

Documents and position are written in one transaction with a compare-and-set on the
position, so each stored event changes the views exactly once even with several writers.
One interface, three backends: SQLite (the embedded default), memory (throwaway replays)
and PostgreSQL (`projections.store_postgres`, loaded only for a PostgreSQL store).
"""

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Self

import orjson

from ledger.store import StoreConfig

Doc = dict[str, Any]
DocKey = tuple[str, str]

VIEW_TABLE = "ledger_views"
POSITION_TABLE = "ledger_view_position"


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


def encoded(doc: Doc) -> bytes:
    """A document's JSON: UTF-8, keys sorted, so one document is always one text."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _encode(doc: Doc) -> str:
    return encoded(doc).decode("utf-8")


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


def prefix_range(key_prefix: str, mark: str) -> tuple[str, tuple[str, ...]]:
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
        in_range, bounds = prefix_range(key_prefix, "?")
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
    from projections.store_postgres import PostgresViewStore  # loads PostgreSQL's driver

    return PostgresViewStore(store.postgres.conninfo())
