"""Fixtures for stores and the real services.

Tests that need PostgreSQL or Kafka talk to the real servers started by scripts/postgres.sh
and scripts/kafka.sh. They are skipped only when switched off explicitly
(LEDGER_TEST_POSTGRES=off, LEDGER_TEST_KAFKA=off); an unreachable server is a failure.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.scratch import scratch_database, scratch_topics

PG_ADMIN_URL = os.environ.get(
    "LEDGER_TEST_PG_URL", "postgresql://ledger:ledger@127.0.0.1:55432/ledger"
)
KAFKA_BOOTSTRAP = os.environ.get("LEDGER_KAFKA", "127.0.0.1:19092")


def _switched_off(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"off", "0", "no", "false"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    if _switched_off("LEDGER_TEST_POSTGRES"):
        pytest.skip("PostgreSQL tests switched off (LEDGER_TEST_POSTGRES=off)")
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {error}. Start it with "
            "`bash scripts/postgres.sh start`, or switch these tests off with "
            "LEDGER_TEST_POSTGRES=off.",
            pytrace=False,
        )
    return PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the real server, dropped after the test."""
    with scratch_database(postgres_server, prefix="ledger_test") as url:
        yield url


@pytest.fixture(scope="session")
def kafka_server() -> str:
    if _switched_off("LEDGER_TEST_KAFKA"):
        pytest.skip("Kafka tests switched off (LEDGER_TEST_KAFKA=off)")
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        KafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=10000).close()
    except KafkaError as error:
        pytest.fail(
            f"Kafka is not reachable at {KAFKA_BOOTSTRAP}: {error!r}. Start it with "
            "`bash scripts/kafka.sh start`, or switch these tests off with LEDGER_TEST_KAFKA=off.",
            pytrace=False,
        )
    return KAFKA_BOOTSTRAP


@pytest.fixture
def kafka_names(kafka_server: str) -> Iterator[dict[str, str]]:
    """Topic and group names of one test, so tests never see each other's records; the topics
    are deleted after the test."""
    with scratch_topics(kafka_server, prefix="t") as names:
        yield names
