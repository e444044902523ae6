"""The throwaway databases and topics of tests and benchmark runs leave nothing behind on the
servers: a broker loads every partition it holds before it serves, so left-over topics slow
every later start (1,600 of them kept a CI broker from starting within two minutes)."""

import psycopg
import pytest

from bench.scratch import scratch_database, scratch_topics
from consumers.kafka import ensure_topics
from consumers.kafka_settings import KafkaSettings
from tests.cli_helpers import topics


def databases(admin_url: str) -> set[str]:
    with psycopg.connect(admin_url) as connection:
        return {row[0] for row in connection.execute("SELECT datname FROM pg_database")}


def test_scratch_topics_are_deleted_afterwards_even_when_the_run_fails(kafka_server: str) -> None:
    with pytest.raises(RuntimeError), scratch_topics(kafka_server, prefix="scratchtest") as names:
        ensure_topics(KafkaSettings(bootstrap=kafka_server, **names), partitions=2)
        created = {names["topic"], names["catalog_topic"], names["dead_letter_topic"]}
        assert created <= topics(kafka_server)
        raise RuntimeError("the run failed")
    assert not created & topics(kafka_server)


def test_a_scratch_database_is_dropped_afterwards(postgres_server: str) -> None:
    with scratch_database(postgres_server, prefix="scratchtest") as url:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url) as connection:
            connection.execute("CREATE TABLE kept (n INTEGER)")
        assert name in databases(postgres_server)
    assert name not in databases(postgres_server)
