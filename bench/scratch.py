"""Throwaway PostgreSQL databases, for benchmark runs and tests."""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

DROP_ATTEMPTS = 20


@contextmanager
def scratch_database(admin_url: str, prefix: str = "scratch") -> Iterator[str]:
    """A fresh, empty database (its URL) on the server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _drop(admin_url, name)


def _drop(admin_url: str, name: str) -> None:
    # FORCE ends our own sessions but may not end a server process of another role still in
    # the database (an autovacuum worker after a large insert): wait for it to finish.
    for attempt in range(DROP_ATTEMPTS):
        try:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == DROP_ATTEMPTS - 1:
                raise
            time.sleep(0.5)
