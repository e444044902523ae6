"""Where the ledger keeps its events: a store URL turned into eventsourcing settings.

`sqlite:///ledger.db` (the embedded default, a file path after the three slashes) or
`postgresql://user:password@host:port/dbname` (production).
"""

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from eventsourcing import persistence

from ledger.errors import InvalidStoreURL, StoreUnusable
from ledger.recorder_sqlite import EVENTS_TABLE as SQLITE_EVENTS_TABLE
from ledger.recorder_sqlite import TOPIC as SQLITE_RECORDER_TOPIC

DEFAULT_STORE_URL = "sqlite:///ledger.db"
# The recorder the library builds for a PostgreSQL store, named so that it is loaded only then.
POSTGRES_RECORDER_TOPIC = "ledger.recorder_postgres:LedgerPostgresRecorder"


def store_outages() -> tuple[type[Exception], ...]:
    """The store's server away, restarting, full or timing out, or an SQLite file locked too
    long: in the library's words and each driver's. Not a fault of what is being stored.
    PostgreSQL's driver is loaded only for a PostgreSQL store (`ledger.recorder_postgres`),
    and none of its errors can be raised before it is."""
    outages: tuple[type[Exception], ...] = (
        persistence.OperationalError,
        persistence.InterfaceError,
        sqlite3.OperationalError,
    )
    driver = sys.modules.get("psycopg")
    if driver is not None:
        outages += (driver.OperationalError, driver.InterfaceError)
    return outages


@dataclass(frozen=True)
class PostgresParams:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    def conninfo(self) -> str:
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"password={self.password} dbname={self.dbname}"
        )


@dataclass(frozen=True)
class StoreConfig:
    """A parsed store URL: which backend, and how to reach it."""

    url: str
    kind: Literal["sqlite", "postgresql", "memory"]
    sqlite_path: str | None = None
    postgres: PostgresParams | None = None

    @property
    def shown(self) -> str:
        """The URL as an error shows it: without its password."""
        return _without_password(self.url)

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment the eventsourcing library reads to build its recorders."""
        env = {"ORIGINATOR_ID_TYPE": "uuid"}
        if self.kind == "memory":
            env.update(PERSISTENCE_MODULE="eventsourcing.popo")
        elif self.kind == "sqlite":
            assert self.sqlite_path is not None
            env.update(
                PERSISTENCE_MODULE="eventsourcing.sqlite",
                SQLITE_DBNAME=self.sqlite_path,
                SQLITE_LOCK_TIMEOUT="30",
                PROCESS_RECORDER_TOPIC=SQLITE_RECORDER_TOPIC,
            )
        else:
            pg = self.postgres
            assert pg is not None
            env.update(
                PERSISTENCE_MODULE="eventsourcing.postgres",
                POSTGRES_DBNAME=pg.dbname,
                POSTGRES_HOST=pg.host,
                POSTGRES_PORT=str(pg.port),
                POSTGRES_USER=pg.user,
                POSTGRES_PASSWORD=pg.password,
                POSTGRES_CONNECT_TIMEOUT="10",
                POSTGRES_LOCK_TIMEOUT="30",
                POSTGRES_POOL_SIZE="2",
                POSTGRES_MAX_OVERFLOW="2",
                # Check a pooled connection before use, so a restarted server costs one retry.
                POSTGRES_PRE_PING="y",
                PROCESS_RECORDER_TOPIC=POSTGRES_RECORDER_TOPIC,
            )
        return env


def memory_store() -> StoreConfig:
    """A store that lives only in this process: for fast domain tests and throwaway replays."""
    return StoreConfig(url="memory:", kind="memory")


def _without_password(url: str) -> str:
    """The URL to show in an error: its password would end up in logs and terminals."""
    scheme, separator, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    return f"{scheme}{separator}{user}:***@{location}" if at and colon else url


def parse_store_url(url: str) -> StoreConfig:
    """Parse a --store URL; InvalidStoreURL says what is wrong with it."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise InvalidStoreURL(f"store URL {url!r} names no file (e.g. sqlite:///ledger.db)")
        if path == ":memory:" or "mode=memory" in path:
            raise InvalidStoreURL(
                "an in-memory SQLite store would lose everything at exit; name a file"
            )
        return StoreConfig(url=url, kind="sqlite", sqlite_path=path)
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        shown = _without_password(url)
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not dbname:
            raise InvalidStoreURL(
                f"store URL {shown!r} needs a host and a database, "
                "e.g. postgresql://ledger:ledger@127.0.0.1:55432/ledger"
            )
        try:
            port = parts.port or 5432
        except ValueError:
            raise InvalidStoreURL(f"store URL {shown!r} has an invalid port") from None
        return StoreConfig(
            url=url,
            kind="postgresql",
            postgres=PostgresParams(
                host=parts.hostname,
                port=port,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                dbname=dbname,
            ),
        )
    raise InvalidStoreURL(
        f"unsupported store URL {_without_password(url)!r}: "
        "use sqlite:///FILE or postgresql://USER:PASS@HOST:PORT/DB"
    )


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_store(path: str, creates: bool) -> None:
    """Refuse, naming the path, an SQLite store a command cannot use, before SQLite makes a
    file or tables there: a directory, a file that is not an SQLite database or holds someone
    else's tables, and (unless the command `creates` the store: ingest, consume) a file that
    is not there, so that a mistyped path is not answered "unknown account" from a new, empty
    store. StoreUnusable says which."""
    file = Path(path)
    if file.is_dir():
        raise StoreUnusable(f"store {path} is a directory, not an SQLite file")
    if not file.exists() or file.stat().st_size == 0:
        if not creates:
            raise StoreUnusable(
                f"no ledger store at {path}: ingest or consume events into it first"
            )
        if not file.parent.is_dir():
            raise StoreUnusable(f"cannot create the store {path}: no directory {file.parent}")
        if not os.access(file.parent, os.W_OK):
            raise StoreUnusable(
                f"cannot create the store {path}: this user may not write to {file.parent}"
            )
        return
    # SQLite writes beside a store in WAL mode even to read it (its -wal and -shm files), and
    # a query brings the views up to date: what it said instead was "attempt to write a
    # readonly database".
    for needed in (file, file.parent):
        if not os.access(needed, os.W_OK):
            raise StoreUnusable(
                f"cannot use the store {path}: this user may not write to {needed}, and an "
                "SQLite store is written to even to be read; run as its owner"
            )
    with file.open("rb") as opened:
        if opened.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
            raise StoreUnusable(f"{path} is not an SQLite database")
    read_only = f"file:{quote(str(file.resolve()))}?mode=ro"
    try:
        with closing(sqlite3.connect(read_only, uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as error:
        raise StoreUnusable(f"{path} is not a readable SQLite database ({error})") from None
    if SQLITE_EVENTS_TABLE not in tables and (tables or not creates):
        raise StoreUnusable(f"{path} is an SQLite database, but not a ledger store")


# LedgerApp.name's events table, as the library names it ("Ledger" -> ledger_events).
POSTGRES_EVENTS_TABLE = "ledger_events"


def check_postgres_store(params: PostgresParams, creates: bool) -> None:
    """Refuse, naming the database, a PostgreSQL database that holds no ledger, unless the
    command `creates` the store (ingest, consume): a read-only command pointed at an empty or
    mistyped database would make the ledger's tables there and answer "unknown account", and
    `audit` "adds up". StoreUnusable says which."""
    if creates:
        return
    import psycopg

    with psycopg.connect(params.conninfo(), autocommit=True, connect_timeout=10) as db:
        row = db.execute("SELECT to_regclass(%s)", (POSTGRES_EVENTS_TABLE,)).fetchone()
    if row is None or row[0] is None:
        raise StoreUnusable(
            f"no ledger store in database {params.dbname} at {params.host}:{params.port}: "
            "ingest or consume events into it first"
        )


# The advisory lock every process holds while it creates tables (events and views).
SCHEMA_LOCK_ID = 727001


@contextmanager
def schema_lock(store: StoreConfig) -> Iterator[None]:
    """Serialise creating the tables across processes starting at once (PostgreSQL only).

    CREATE ... IF NOT EXISTS is not safe when two sessions run it together; a session-level
    advisory lock around the setup is.
    """
    if store.kind != "postgresql":
        yield
        return
    assert store.postgres is not None
    import psycopg

    with psycopg.connect(store.postgres.conninfo(), autocommit=True, connect_timeout=10) as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_ID,))
        try:
            yield
        finally:
            lock.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_ID,))
