"""Running the `ledger` command in-process, as a user would type it; reading its topics."""

import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from cli.main import main


def run(*args: str, input: str | bytes | None = None, expect: int = 0) -> Result:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
    return result


def assert_one_line_error(store: str, *args: str, says: str) -> None:
    """The command fails as a user's mistake should: exit 1, one line naming it, no traceback."""
    result = run("--store", store, *args, expect=1)
    assert result.stdout == ""
    assert result.stderr.startswith("ledger: error:"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert says in result.stderr, result.stderr


def new_store(store: str) -> None:
    """Make an empty ledger store, as ingesting nothing does (read-only commands refuse a store
    that is not there)."""
    run("--store", store, "ingest", "--quiet", "-", input="")


def run_json(*args: str, **kwargs: Any) -> dict[str, Any]:
    result = run("--json", *args, **kwargs)
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def balances(store: str, *accounts: str) -> dict[str, str]:
    return {a: run_json("--store", store, "balance", a)["balance"] for a in accounts}


def ingest_events(tmp_path: Path, store: str, *events: dict[str, Any]) -> None:
    """Write the events as a JSON Lines file and ingest it; none may be dead-lettered."""
    from tests.factories import jsonl

    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(*events), encoding="utf-8")
    report = run_json("--store", store, "ingest", "--quiet", str(path))
    assert report["totals"]["dead_lettered"] == 0, report


_TOPIC_OPTIONS_OF = {
    "consume": ("topic", "catalog_topic", "dead_letter_topic"),
    "publish": ("topic", "catalog_topic"),
    "catalog publish": ("catalog_topic",),
}


def kafka_args(
    bootstrap: str, names: dict[str, str], command: str, group: bool = False
) -> list[str]:
    """The Kafka options of `ledger COMMAND` for one test's topics (and group): each command
    takes only the topic options it uses."""
    args = ["--bootstrap", bootstrap]
    for name in _TOPIC_OPTIONS_OF[command]:
        args += ["--" + name.replace("_", "-"), names[name]]
    return [*args, "--group", names["group"]] if group else args


def topics(bootstrap: str) -> set[str]:
    """The names of the broker's topics."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of a topic, from its start to its current end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, max_poll_records=5000
    )
    try:
        numbers = sorted(consumer.partitions_for_topic(topic))
        partitions = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()
