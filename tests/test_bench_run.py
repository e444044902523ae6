"""`bench.run`'s exactly-once floor stores every record once, with its partition's position."""

from collections import Counter

import psycopg
import pytest

from bench.run import exactly_once_floor
from bench.traffic import generate
from consumers.kafka import ensure_topics, publish
from consumers.kafka_settings import KafkaSettings
from consumers.pipeline import RawRecord

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_the_exactly_once_floor_stores_each_record_once_in_its_accounts_stream(
    kafka_server: str, kafka_names: dict[str, str], postgres_url: str
) -> None:
    lines = list(generate(5, 300))
    settings = KafkaSettings(bootstrap=kafka_server, **kafka_names)
    ensure_topics(settings, 2)
    records = [RawRecord(i + 1, line) for i, line in enumerate(lines)]
    published = publish(records, settings, validate=False, partitions=2).events
    # The catalog goes to its own topic; the floor reads the events topic.
    events = [line for line in lines if b'"catalog.published"' not in line]
    assert published == len(events) < len(lines)

    rate, budget = exactly_once_floor(postgres_url, settings, published)

    assert rate > 0
    assert budget is None or budget["total_us"] >= 0
    with psycopg.connect(postgres_url) as db:
        stored = db.execute("SELECT stream, version, state FROM floor_events").fetchall()
        positions = dict(db.execute("SELECT partition, next FROM floor_positions").fetchall())
    # Every record once, as it came, and each stream's versions 1, 2, ... without a gap.
    assert Counter(bytes(state) for _, _, state in stored) == Counter(events)
    versions: dict[object, list[int]] = {}
    for stream, version, _ in stored:
        versions.setdefault(stream, []).append(version)
    assert len(versions) >= 5  # the accounts' streams, and the bad records' own
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in versions.values())
    # Each partition's next offset, committed with its rows: where a restart would go on.
    assert sorted(positions) == [0, 1] and sum(positions.values()) == published
