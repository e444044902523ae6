"""Kafka ingestion against the real broker (issue 2): publish, consume, exactly once."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import balances, kafka_args, read_topic, run, run_json, topics
from tests.factories import MIXED_MONTH_BALANCES, mixed_month

pytestmark = pytest.mark.kafka


def consume(store: str, bootstrap: str, names: dict[str, str], idle: str = "3") -> dict[str, Any]:
    """Run `ledger consume` until the topics have been idle for `idle` seconds."""
    return run_json(
        "--store",
        store,
        "consume",
        "--quiet",
        "--until-idle",
        idle,
        *kafka_args(bootstrap, names, "consume", group=True),
    )


def test_publish_then_consume_gives_the_same_balances_as_file_ingest(
    tmp_path: Path, sqlite_url: str, kafka_server: str, kafka_names: dict[str, str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(mixed_month(), encoding="utf-8")
    from_file = tmp_path / "file.db"
    run("--store", f"sqlite:///{from_file}", "ingest", "--quiet", str(path))

    published = run_json(
        "publish", str(path), "--no-validate", *kafka_args(kafka_server, kafka_names, "publish")
    )
    assert published == {"events": 14, "catalog_versions": 1}
    consumed = consume(sqlite_url, kafka_server, kafka_names, idle="3")
    assert consumed["events"] == {"consumed": 14, "applied": 9, "duplicates": 1, "dead_lettered": 4}
    assert consumed["catalog"]["applied"] == 1
    assert (
        balances(sqlite_url, "ACC-1", "ACC-2")
        == balances(f"sqlite:///{from_file}", "ACC-1", "ACC-2")
        == MIXED_MONTH_BALANCES
    )

    # G1: the stored Kafka position makes a second consume apply nothing, even in a new group.
    names = {**kafka_names, "group": kafka_names["group"] + "-again"}
    again = consume(sqlite_url, kafka_server, names, idle="3")
    assert again["events"]["consumed"] == 0 and again["catalog"]["consumed"] == 0
    assert balances(sqlite_url, "ACC-1", "ACC-2") == MIXED_MONTH_BALANCES
    # Its Kafka offsets say where the store is, though it read nothing: lag monitoring with
    # kafka-consumer-groups.sh shows no lag a crashed owner's offsets left behind.
    committed, ends = kafka_offsets(kafka_server, names["group"], names["topic"])
    assert committed == ends


def kafka_offsets(bootstrap: str, group: str, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """The group's committed offsets on the topic and the topic's end offsets, per partition,
    as Kafka holds them (read, not joined)."""
    from confluent_kafka import Consumer, TopicPartition

    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = sorted(reader.list_topics(topic, timeout=10).topics[topic].partitions)
        asked = [TopicPartition(topic, p) for p in partitions]
        committed = {tp.partition: tp.offset for tp in reader.committed(asked, timeout=10)}
        ends = {tp.partition: reader.get_watermark_offsets(tp, timeout=10)[1] for tp in asked}
        return committed, ends
    finally:
        reader.close()


def test_G2_dead_letter_topic_keeps_original_bytes_and_reason(
    tmp_path: Path, sqlite_url: str, kafka_server: str, kafka_names: dict[str, str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(mixed_month(), encoding="utf-8")
    run("publish", str(path), "--no-validate", *kafka_args(kafka_server, kafka_names, "publish"))
    consume(sqlite_url, kafka_server, kafka_names, idle="3")
    letters = read_topic(kafka_server, kafka_names["dead_letter_topic"])
    assert len(letters) == 4
    by_value = {letter.value: dict(letter.headers) for letter in letters}  # type: ignore[attr-defined]
    headers = by_value[b"this is not JSON"]
    assert headers["reason"].startswith(b"not JSON")
    assert headers["source-topic"] == kafka_names["topic"].encode()
    assert int(headers["source-offset"]) >= 0
    reasons = sorted(h["reason"].decode() for h in by_value.values())
    assert "unknown account ACC-404" in reasons
    assert any("occurred_at has no UTC offset" in r for r in reasons)


def test_publish_refuses_a_file_with_invalid_lines_and_sends_nothing(
    tmp_path: Path, sqlite_url: str, kafka_server: str, kafka_names: dict[str, str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(mixed_month(), encoding="utf-8")
    result = run("publish", str(path), *kafka_args(kafka_server, kafka_names, "publish"), expect=1)
    assert "events.jsonl:8: not JSON" in result.stderr
    # Three lines break the contract; the unknown account is valid input for the consumer.
    assert result.stderr.strip().endswith(f"3 invalid line(s) in {path}; nothing was published")
    consumed = consume(sqlite_url, kafka_server, kafka_names, idle="2")
    assert consumed["events"]["consumed"] == 0 and consumed["catalog"]["consumed"] == 0


def test_catalog_publish_then_consume_rates_with_it(
    tmp_path: Path, sqlite_url: str, kafka_server: str, kafka_names: dict[str, str]
) -> None:
    from ledger.catalog import default_catalog_path
    from tests.factories import event, jsonl, opened

    run(
        "catalog",
        "publish",
        str(default_catalog_path()),
        *kafka_args(kafka_server, kafka_names, "catalog publish"),
    )
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(opened("ACC-K"), event("balance.recharged", "ACC-K", amount="4.20")))
    run("publish", str(path), *kafka_args(kafka_server, kafka_names, "publish"))
    consumed = consume(sqlite_url, kafka_server, kafka_names, idle="3")
    assert consumed["catalog"]["applied"] == 1
    assert consumed["events"]["applied"] == 2
    assert balances(sqlite_url, "ACC-K") == {"ACC-K": "4.2000"}


def test_publish_says_when_partitions_asked_for_do_not_apply_to_an_existing_topic(
    tmp_path: Path, kafka_server: str, kafka_names: dict[str, str]
) -> None:
    """The first publish (or a consumer) creates the events topic, with 3 partitions unless
    asked: a later `publish --partitions 5` cannot give it 5, and says so rather than keep
    quiet."""
    from tests.factories import jsonl, opened

    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(opened("ACC-K")))
    args = ("publish", str(path), *kafka_args(kafka_server, kafka_names, "publish"))
    assert run(*args).stderr == ""
    result = run(*args, "--partitions", "5")
    assert result.stderr == (
        f"ledger: note: topic {kafka_names['topic']} already has 3 partitions; --partitions 5 "
        "applies only to a topic publish creates\n"
    )
    assert result.stdout.startswith("published 1 events")
    assert run(*args, "--partitions", "3").stderr == ""  # what it has: nothing to say


def test_publish_creates_only_the_topics_it_writes_to(
    kafka_server: str, kafka_names: dict[str, str]
) -> None:
    """A catalog publish left an events topic of the default name (`ledger.events`, 3
    partitions) beside the one an operator's consumers read, and a dead-letter topic: publish
    makes only the topics its records go to; a consumer makes the ones it reads and writes."""
    from consumers.kafka import publish
    from consumers.kafka_settings import KafkaSettings
    from consumers.pipeline import RawRecord
    from ledger.catalog import default_catalog_path
    from tests.factories import event, opened

    settings = KafkaSettings(bootstrap=kafka_server, **kafka_names)
    catalog = run("catalog", "event", str(default_catalog_path())).stdout.strip()
    publish([RawRecord(1, catalog.encode())], settings)
    made = topics(kafka_server) & {
        kafka_names[name] for name in ("topic", "catalog_topic", "dead_letter_topic")
    }
    assert made == {kafka_names["catalog_topic"]}

    records = [opened("ACC-T"), event("balance.recharged", "ACC-T", amount="1.00")]
    publish([RawRecord(n, json.dumps(r).encode()) for n, r in enumerate(records, 1)], settings)
    made = topics(kafka_server) & {kafka_names["topic"], kafka_names["dead_letter_topic"]}
    assert made == {kafka_names["topic"]}
