"""Throwaway PostgreSQL databases and Kafka topics, for benchmark runs and tests."""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from kafka import KafkaAdminClient

# The role the benchmarks make their throwaway databases with: scripts/postgres.sh's server.
ADMIN_URL = "postgresql://ledger:ledger@127.0.0.1:55432/ledger"
DROP_ATTEMPTS = 20


@contextmanager
def scratch_database(admin_url: str, prefix: str = "scratch", options: str = "") -> Iterator[str]:
    """A fresh, empty database (its URL) on the server, dropped afterwards; `options` are
    CREATE DATABASE's (an encoding, say)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" {options}'.rstrip())
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


@contextmanager
def scratch_topics(bootstrap: str, prefix: str = "scratch") -> Iterator[dict[str, str]]:
    """Names of fresh events, catalog and dead-letter topics and a consumer group; the topics
    are deleted afterwards. Left behind, every run's partitions would be loaded again at each
    broker start (a broker with 1,600 of them took more than two minutes to start)."""
    run = f"{prefix}{uuid.uuid4().hex[:10]}"
    try:
        yield {
            "topic": f"{run}.events",
            "catalog_topic": f"{run}.catalog",
            "dead_letter_topic": f"{run}.deadletter",
            "group": f"{run}.group",
        }
    finally:
        _delete_topics(bootstrap, f"{run}.")


def _delete_topics(bootstrap: str, prefix: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ledger-scratch")
    try:
        ours = [name for name in admin.list_topics() if name.startswith(prefix)]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()
