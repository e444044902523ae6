"""`ledger consume` and `ledger audit` under faults (issue 6): exactly once, end to end.

- G1: a real `ledger consume` process stopped by SIGTERM or SIGINT in the middle of a stream
  exits 0 with its summary, and a second run to idle leaves the views equal to one clean
  `ledger ingest` of the same events: nothing lost, nothing applied twice.
- The progress line on stderr (events/s and lag), and none with --quiet.
- Poison records (a defect in a rule) are dead-lettered with the error named while the rest of
  their batch applies once; store errors are never poison: they propagate, nothing is stored.
- G2: garbage, truncated JSON and oversized records are dead-lettered with a precise reason and
  their original bytes (file and Kafka), and the consumer goes on.
- R3: `ledger audit` adds up after file ingest and consume, and finds tampering in the store.
"""

import base64
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from eventsourcing import persistence
from kafka import TopicPartition

from consumers.files import MAX_LINE_BYTES
from consumers.kafka import IdleClock, publish
from consumers.kafka_settings import KafkaSettings
from consumers.pipeline import RawRecord, process_batch
from ledger.application import DeadLetter
from ledger.audit import audit_intake
from ledger.contract import MAX_RECORD_BYTES, IncomingEvent
from ledger.ids import account_stream_id, intake_stream_id
from ledger.rules import RULES
from ledger.store import parse_store_url
from projections.runner import view_documents
from projections.store import open_view_store
from tests.cli_helpers import balances, kafka_args, read_topic, run, run_json
from tests.factories import catalog_published, event, jsonl, mixed_month, opened
from tests.harness import Ledger

ROOT = Path(__file__).resolve().parent.parent
# TIME consume: N read, A applied, D duplicates, X dead-lettered (R events/s, lag L)
PROGRESS = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
    r"consume: (\d+) read, (\d+) applied, (\d+) duplicates, (\d+) dead-lettered "
    r"\(([\d,]+) events/s, lag (\d+)\)"
)
SUMMARY = re.compile(
    r"consumed (\d+) events: (\d+) applied, (\d+) duplicates, (\d+) dead-lettered; "
    r"(\d+) catalog versions"
)


# ---------------------------------------------------------------------------------------------
# Helpers


def workload(accounts: int = 40, rounds: int = 24) -> list[dict[str, Any]]:
    """A month of calls, data and recharges (surcharges on postpaid), accounts interleaved.

    40 accounts x (open + number + 24 x 3 usage records) = 2,960 events.
    """
    streams: list[list[dict[str, Any]]] = []
    for a in range(accounts):
        account = f"ACC-{a:03d}"
        msisdn = f"+1415555{a:04d}"
        prepaid = a % 4 != 0
        stream = [
            opened(account, "prepaid" if prepaid else "postpaid"),
            event("number.added", account, msisdn=msisdn),
        ]
        for r in range(rounds):
            at = f"2026-11-{2 + r:02d}T{a % 24:02d}:15:00Z"
            stream.append(
                event(
                    "call.completed",
                    account,
                    at,
                    msisdn=msisdn,
                    destination="+12125550100",
                    duration_seconds=20 + 7 * r + a,
                    call_id=f"call-{a}-{r}",
                )
            )
            stream.append(
                event(
                    "data.used", account, at, msisdn=msisdn, bytes=90_000 * (r + 1), roaming=False
                )
            )
            if prepaid:
                stream.append(event("balance.recharged", account, at, amount=f"{1 + r % 5}.25"))
            else:
                stream.append(
                    event(
                        "surcharge.applied",
                        account,
                        at,
                        amount="0.35",
                        kind="carrier",
                        description="Carrier cost recovery",
                    )
                )
        streams.append(stream)
    return [s[i] for i in range(max(map(len, streams))) for s in streams if i < len(s)]


def settings_for(bootstrap: str, names: dict[str, str]) -> KafkaSettings:
    return KafkaSettings(
        bootstrap=bootstrap,
        topic=names["topic"],
        catalog_topic=names["catalog_topic"],
        dead_letter_topic=names["dead_letter_topic"],
        group=names["group"],
    )


class ConsumeProcess:
    """A real `ledger consume` process; stderr is read line by line while it runs."""

    def __init__(self, store: str, bootstrap: str, names: dict[str, str], *options: str) -> None:
        global_options = ["--json"] if "--json" in options else []
        command_options = [o for o in options if o != "--json"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                *global_options,
                "--store",
                store,
                "consume",
                *kafka_args(bootstrap, names, "consume"),
                "--group",
                names["group"],
                *command_options,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.stderr: list[str] = []
        self.progressed = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))
            match = PROGRESS.fullmatch(line.rstrip("\n"))
            if match and int(match.group(2)) > 0:
                self.progressed.set()

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for the exit; the exit code and stdout."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        return code, self.proc.stdout.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def views_of(store: str) -> dict[str, dict[str, Any]]:
    with open_view_store(parse_store_url(store)) as views:
        return view_documents(views)


def chunks(items: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def records_of(docs: Sequence[dict[str, Any]]) -> list[RawRecord]:
    return [RawRecord(i + 1, json.dumps(d).encode()) for i, d in enumerate(docs)]


def stored_rows(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return list(connection.execute(sql, params))


def tamper(db: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(db) as connection:
        changed = connection.execute(sql, params).rowcount
    assert changed == 1, (sql, params, changed)


# ---------------------------------------------------------------------------------------------
# G1: stopping a real consumer with SIGTERM / SIGINT loses nothing and applies nothing twice


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("signum", "as_json"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGTERM", "SIGINT"],
)
def test_G1_consume_stopped_by_a_signal_finishes_its_batch_and_a_restart_resumes_exactly(
    signum: signal.Signals,
    as_json: bool,
    tmp_path: Path,
    postgres_url: str,
    kafka_server: str,
    kafka_names: dict[str, str],
) -> None:
    """G1: a signal mid-stream stops the consumer after the batch in hand (exit 0, summary);
    the next run reads from the stored positions, so the two runs together consume every
    event once, and the views equal a clean file ingest of the same events."""
    events = workload()
    catalog = catalog_published()
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(catalog, *events), encoding="utf-8")
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    ingested = run_json("--store", reference, "ingest", "--quiet", str(path))
    assert ingested["totals"] == {
        "consumed": len(events) + 1,
        "applied": len(events) + 1,
        "duplicates": 0,
        "dead_lettered": 0,
    }

    settings = settings_for(kafka_server, kafka_names)
    head, tail = events[:600], events[600:]
    assert publish(records_of([catalog, *head]), settings).events == len(head)
    stopped = threading.Event()
    published_all = threading.Event()

    def trickle() -> None:
        # The rest arrives while the consumer runs; the last part only once it has stopped,
        # so the first run cannot have seen every event. (Published right after the signal,
        # it could reach a consumer waiting in a poll, which takes what arrives.)
        *early, last = list(chunks(tail, 200))
        for part in early:
            publish(records_of(part), settings)
        stopped.wait(timeout=120)
        publish(records_of(last), settings)
        published_all.set()

    publisher = threading.Thread(target=trickle, daemon=True)
    first = ConsumeProcess(
        postgres_url, kafka_server, kafka_names, *(["--json"] if as_json else [])
    )
    try:
        publisher.start()
        assert first.progressed.wait(timeout=60), first.stderr
        first.proc.send_signal(signum)
        code, out = first.finish()
    finally:
        stopped.set()
        first.kill()
    publisher.join(timeout=120)
    assert published_all.is_set()
    assert code == 0, (out, first.stderr)

    # Its final summary, on stdout.
    if as_json:
        summary = json.loads(out)
        counts = summary["events"]
        assert summary["catalog"] == {
            "consumed": 1,
            "applied": 1,
            "duplicates": 0,
            "dead_lettered": 0,
        }
        assert (summary["retries"], summary["last_error"]) == (0, None)  # no outage here
    else:
        match = SUMMARY.fullmatch(out.strip())
        assert match is not None, out
        read, applied, duplicates, dead, catalogs = map(int, match.groups())
        counts = {
            "consumed": read,
            "applied": applied,
            "duplicates": duplicates,
            "dead_lettered": dead,
        }
        assert catalogs == 1
    seen = counts["consumed"]
    assert 0 < seen < len(events), counts
    assert counts == {"consumed": seen, "applied": seen, "duplicates": 0, "dead_lettered": 0}

    # The progress lines came while consuming (the first at once, then at most one every
    # 10 s): counts that only grow, rate and lag.
    progress = [m for m in map(PROGRESS.fullmatch, first.stderr) if m]
    assert progress, first.stderr
    reads = [int(m.group(1)) for m in progress]
    assert reads == sorted(reads) and 0 < reads[-1] <= seen
    # The rate is of the events since the line before: busy lines show one, and a line due
    # when the consumer caught up right after the one before (none read since) shows 0/s.
    rates = [int(m.group(5).replace(",", "")) for m in progress]
    assert any(rate > 0 for rate in rates), progress
    for (before, _), (read, rate) in pairwise(zip(reads, rates, strict=True)):
        assert read > before or rate == 0, progress

    # A restart in the same group resumes at the stored positions; --quiet: no progress.
    second = ConsumeProcess(
        postgres_url, kafka_server, kafka_names, "--json", "--quiet", "--until-idle", "4"
    )
    try:
        code, out = second.finish(timeout=90)
    finally:
        second.kill()
    assert code == 0, (out, second.stderr)
    rest = len(events) - seen
    assert json.loads(out) == {
        "events": {"consumed": rest, "applied": rest, "duplicates": 0, "dead_lettered": 0},
        "catalog": {"consumed": 0, "applied": 0, "duplicates": 0, "dead_lettered": 0},
        "retries": 0,
        "last_error": None,
    }
    assert not [line for line in second.stderr if line.startswith("consume:")], second.stderr

    # The audit adds up: every offset of every partition consumed once.
    audit = run_json("--store", postgres_url, "audit")
    assert audit["adds_up"] is True and audit["findings"] == []
    assert audit["intake"]["applied"] == audit["intake"]["ledger_events"] == len(events) + 1
    sources = {s["source"]: s for s in audit["intake"]["sources"]}
    event_sources = [
        s for name, s in sources.items() if name.startswith(f"kafka:{settings.topic}:")
    ]
    assert len(event_sources) == 3
    assert sum(s["consumed"] for s in event_sources) == len(events)
    assert sum(s["applied"] for s in event_sources) == len(events)
    for source in event_sources:
        assert source["first_position"] == 0
        assert source["resumes_at"] == source["last_position"] + 1
    assert sources[f"kafka:{settings.catalog_topic}:0"]["applied"] == 1

    # Nothing lost, nothing twice: the same views as one clean file ingest.
    consumed_views = views_of(postgres_url)
    assert sum(1 for key in consumed_views if key.startswith("balance/")) == 40
    assert consumed_views == views_of(reference)


# ---------------------------------------------------------------------------------------------
# Poison records and store errors (in memory)


def test_poison_record_is_dead_lettered_with_its_error_and_the_rest_of_its_batch_applies_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rule that raises an unexpected error for one record: that record is dead-lettered
    with the error named, the batch is re-run without it, and every other record of the same
    batch (catalog and account opening included) is applied exactly once."""
    rule = RULES["surcharge.applied"]

    def broken(account: Any, incoming: IncomingEvent, catalogs: Any) -> Any:
        if incoming.event_id == "sur-poison":
            raise RuntimeError("division by zero in the surcharge table")
        return rule(account, incoming, catalogs)

    monkeypatch.setitem(RULES, "surcharge.applied", broken)
    ledger = Ledger()
    msisdn = "+14155550123"
    recharge = event("balance.recharged", "ACC-P", amount="10.00", event_id="rch-1")
    surcharge = {"amount": "0.35", "kind": "carrier", "description": "Carrier fee"}
    fed = [
        catalog_published(),
        opened("ACC-P"),
        event("number.added", "ACC-P", msisdn=msisdn),
        recharge,
        event(
            "call.completed",
            "ACC-P",
            msisdn=msisdn,
            destination="+12125550100",
            duration_seconds=60,
            call_id="call-p",
        ),
        event("surcharge.applied", "ACC-P", event_id="sur-1", **surcharge),
        event("surcharge.applied", "ACC-P", event_id="sur-poison", **surcharge),  # position 7
        event("balance.recharged", "ACC-P", amount="5.00", event_id="rch-2"),
        event("surcharge.applied", "ACC-P", event_id="sur-2", **surcharge),
        recharge,  # the same event_id again: a duplicate
    ]
    counts = ledger.feed(*fed)
    assert (counts.consumed, counts.applied, counts.duplicates) == (10, 8, 1)
    assert [(d.position, d.reason) for d in counts.dead_letters] == [
        (
            7,
            "internal error while applying this record: RuntimeError: "
            "division by zero in the surcharge table",
        )
    ]
    # The sink got it once (not once per run of the batch), with its original bytes.
    assert len(ledger.dead_letters) == 1
    assert json.loads(ledger.dead_letters[0].value)["event_id"] == "sur-poison"

    # 10.00 + 5.00 recharged - 1 started minute to +1 (US) x 0.0150 = 14.9850; the prepaid
    # surcharges go to the payment method, not the balance (S1).
    assert ledger.balance("ACC-P") == "14.9850"
    # Each account record once, in the source's order; the poisoned one not at all.
    history = [entry["event_id"] for entry in ledger.history("ACC-P")]
    assert history == [d["event_id"] for d in fed[1:9] if d["event_id"] != "sur-poison"]
    surcharges = [
        c["charge_id"] for c in ledger.charges("ACC-P") if c["kind"].endswith("surcharge")
    ]
    assert surcharges == ["sur-1:surcharge", "sur-2:surcharge"]

    intake = ledger.app.intake("test")
    assert intake is not None
    assert (intake.consumed, intake.applied, intake.duplicates, intake.dead_lettered) == (
        10,
        8,
        1,
        1,
    )
    audit = audit_intake(ledger.app.stored_events(), ledger.app.process_recorder.max_tracking_id)
    assert audit.adds_up and audit.ledger_events == 8


def test_store_error_in_a_rule_is_not_poison_it_propagates_and_nothing_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store error is the store's fault, not the record's: process_batch re-raises it, no
    dead letter, nothing of the batch stored; the same batch applies once when retried."""
    ledger = Ledger()
    ledger.feed(
        catalog_published(),
        opened("ACC-S"),
        event("balance.recharged", "ACC-S", amount="3.00"),
    )
    stored_before = len(list(ledger.app.stored_events()))
    rule = RULES["surcharge.applied"]

    def store_away(account: Any, incoming: IncomingEvent, catalogs: Any) -> Any:
        if incoming.event_id == "sur-store":
            raise persistence.OperationalError("server closed the connection unexpectedly")
        return rule(account, incoming, catalogs)

    monkeypatch.setitem(RULES, "surcharge.applied", store_away)
    batch = [
        RawRecord(10, json.dumps(event("balance.recharged", "ACC-S", amount="2.00")).encode()),
        RawRecord(11, b"not JSON at all"),
        RawRecord(
            12,
            json.dumps(
                event(
                    "surcharge.applied",
                    "ACC-S",
                    event_id="sur-store",
                    amount="0.35",
                    kind="carrier",
                    description="Carrier fee",
                )
            ).encode(),
        ),
        RawRecord(13, json.dumps(event("balance.recharged", "ACC-S", amount="4.00")).encode()),
    ]
    letters: list[DeadLetter] = []
    with pytest.raises(persistence.OperationalError, match="server closed the connection"):
        process_batch(ledger.app, "test", batch, letters.extend)
    assert letters == []  # not even the record that is really bad: the batch never finished
    assert len(list(ledger.app.stored_events())) == stored_before
    account = ledger.app.account("ACC-S")
    assert account is not None and account.version == 2  # opened + one recharge
    intake = ledger.app.intake("test")
    assert intake is not None and intake.consumed == 3

    # The store is back: the same batch is retried and applies once.
    monkeypatch.setitem(RULES, "surcharge.applied", rule)
    counts = process_batch(ledger.app, "test", batch, letters.extend)
    assert (counts.consumed, counts.applied, counts.duplicates) == (4, 3, 0)
    assert [(d.position, d.reason[:9]) for d in letters] == [(11, "not JSON:")]
    ledger.feed()  # views catch up
    assert ledger.balance("ACC-S") == "9.0000"  # 3.00 + 2.00 + 4.00


# ---------------------------------------------------------------------------------------------
# G2: garbage, truncated and oversized records


def test_G2_file_ingest_dead_letters_garbage_truncated_and_oversized_lines_and_goes_on(
    tmp_path: Path, sqlite_url: str
) -> None:
    """G2: each bad line is dead-lettered with a precise reason and its original bytes; the
    lines after it still apply. A record over 2 MiB is refused whole (the contract limit)."""
    garbage = b"\xff\xfe\x00garbage\x01"
    valid = json.dumps(event("balance.recharged", "ACC-F", amount="1.00"))
    truncated = valid[: valid.index('"balance.recharged"') + 9]  # cut inside the type string
    quote = truncated.rindex('"')
    oversized = json.dumps(
        {**event("balance.recharged", "ACC-F", amount="50.00"), "padding": "x" * MAX_RECORD_BYTES}
    )
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                json.dumps(catalog_published()).encode(),
                json.dumps(opened("ACC-F")).encode(),
                garbage,  # line 3
                json.dumps(event("balance.recharged", "ACC-F", amount="1.10")).encode(),
                truncated.encode(),  # line 5
                json.dumps(event("balance.recharged", "ACC-F", amount="2.20")).encode(),
                oversized.encode(),  # line 7
                json.dumps(event("balance.recharged", "ACC-F", amount="3.30")).encode(),
            ]
        )
        + b"\n"
    )
    report = run_json("--store", sqlite_url, "ingest", "--quiet", str(path))
    assert report["totals"] == {"consumed": 8, "applied": 5, "duplicates": 0, "dead_lettered": 3}
    assert balances(sqlite_url, "ACC-F") == {"ACC-F": "6.6000"}  # 1.10 + 2.20 + 3.30

    letters_path = Path(f"{path}.deadletter.jsonl")
    letters = [json.loads(line) for line in letters_path.read_text(encoding="utf-8").splitlines()]
    assert [(d["source"], d["line"]) for d in letters] == [(f"file:{path}", n) for n in (3, 5, 7)]
    assert letters[0]["reason"] == ("not UTF-8 text (invalid start byte: byte 0xff at offset 0)")
    assert base64.b64decode(letters[0]["original_base64"]) == garbage
    assert letters[1]["reason"] == (
        f"not JSON: Unterminated string starting at: line 1 column {quote + 1} (char {quote})"
    )
    assert letters[1]["original"] == truncated
    size = len(oversized.encode())
    assert size > MAX_RECORD_BYTES
    assert letters[2]["reason"] == f"record is {size} bytes, over the 2097152-byte limit"
    assert letters[2]["original"] == oversized

    audit = run_json("--store", sqlite_url, "audit")
    assert audit["adds_up"] is True
    assert [
        (s["consumed"], s["applied"], s["dead_lettered"]) for s in audit["intake"]["sources"]
    ] == [(8, 5, 3)]


def test_G2_a_line_over_the_read_limit_is_refused_with_its_whole_size(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A file's line is read up to MAX_LINE_BYTES (4 MiB), never held whole. Support is told
    the line's real size, and the line after it still applies; `publish` says the same."""
    huge = json.dumps(
        {**event("balance.recharged", "ACC-H", amount="9.00"), "padding": "x" * MAX_LINE_BYTES}
    )
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        jsonl(catalog_published(), opened("ACC-H")).encode()
        + huge.encode()
        + b"\r\n"  # line 3
        + jsonl(event("balance.recharged", "ACC-H", amount="1.00")).encode()
    )
    size = len(huge)
    reason = (
        f"record is {size} bytes, over the {MAX_RECORD_BYTES}-byte limit "
        f"(its first {MAX_LINE_BYTES} bytes read)"
    )
    report = run_json("--store", sqlite_url, "ingest", "--quiet", str(path))
    assert report["totals"] == {"consumed": 4, "applied": 3, "duplicates": 0, "dead_lettered": 1}
    assert balances(sqlite_url, "ACC-H") == {"ACC-H": "1.0000"}
    text = Path(f"{path}.deadletter.jsonl").read_text(encoding="utf-8")
    (letter,) = [json.loads(line) for line in text.splitlines()]
    assert (letter["line"], letter["reason"]) == (3, reason)
    assert letter["original"] == huge[:MAX_LINE_BYTES]  # what was read of it, kept

    refused = run("publish", "--bootstrap", "127.0.0.1:1", str(path), expect=1).stderr
    assert refused.splitlines()[0] == f"{path}:3: {reason}"


@pytest.mark.kafka
def test_G2_bad_records_through_kafka_reach_the_dead_letter_topic_and_audit_finds_tampering(
    tmp_path: Path, sqlite_url: str, kafka_server: str, kafka_names: dict[str, str]
) -> None:
    """G2 through Kafka: garbage, truncated JSON and a ~900 KB record (under the broker limit,
    a field far over its own) each go to the dead-letter topic with the original bytes and the
    reason, source topic, partition and offset in headers; the consumer goes on. Then R3: the
    audit adds up, and finds a deleted last batch of a partition (stored position disagrees)."""
    garbage = b"\xff\xfe\x00garbage\x01"
    valid = json.dumps(event("balance.recharged", "ACC-K", amount="1.00"))
    truncated = valid[: valid.index('"balance.recharged"') + 9].encode()
    big = json.dumps(
        event("balance.recharged", "ACC-K", amount="50.00", source="s" * 900_000)
    ).encode()
    assert 900_000 < len(big) < 1_000_000
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                json.dumps(catalog_published()).encode(),
                json.dumps(opened("ACC-K")).encode(),
                garbage,
                json.dumps(event("balance.recharged", "ACC-K", amount="1.10")).encode(),
                truncated,
                json.dumps(event("balance.recharged", "ACC-K", amount="2.20")).encode(),
                big,
                json.dumps(event("balance.recharged", "ACC-K", amount="3.30")).encode(),
            ]
        )
        + b"\n"
    )
    published = run_json(
        "publish", str(path), "--no-validate", *kafka_args(kafka_server, kafka_names, "publish")
    )
    assert published == {"events": 7, "catalog_versions": 1}

    consumer = ConsumeProcess(
        sqlite_url, kafka_server, kafka_names, "--json", "--quiet", "--until-idle", "3"
    )
    try:
        code, out = consumer.finish(timeout=90)
    finally:
        consumer.kill()
    assert code == 0, (out, consumer.stderr)
    assert json.loads(out) == {
        "events": {"consumed": 7, "applied": 4, "duplicates": 0, "dead_lettered": 3},
        "catalog": {"consumed": 1, "applied": 1, "duplicates": 0, "dead_lettered": 0},
        "retries": 0,
        "last_error": None,
    }
    assert balances(sqlite_url, "ACC-K") == {"ACC-K": "6.6000"}  # the consumer went on

    records = read_topic(kafka_server, kafka_names["topic"])
    sources = {(r.partition, r.offset): r.value for r in records}
    source_keys = {(r.partition, r.offset): r.key for r in records}
    letters = read_topic(kafka_server, kafka_names["dead_letter_topic"])
    by_value = {letter.value: dict(letter.headers) for letter in letters}
    assert set(by_value) == {garbage, truncated, big}  # the original bytes, each once
    for letter in letters:
        headers = by_value[letter.value]
        assert headers["source-topic"] == kafka_names["topic"].encode()
        origin = (int(headers["source-partition"]), int(headers["source-offset"]))
        assert sources[origin] == letter.value  # the headers point at the very record
        # ... and it keeps the record's key: republished as it is, it goes to its account's
        # partition, in order with the account's other records (G3).
        assert letter.key == source_keys[origin]
    assert {letter.value: letter.key for letter in letters}[big] == b"ACC-K"
    assert by_value[garbage]["reason"] == (
        b"not UTF-8 text (invalid start byte: byte 0xff at offset 0)"
    )
    assert by_value[truncated]["reason"].startswith(b"not JSON: Unterminated string starting at")
    assert by_value[big]["reason"] == (
        b"balance.recharged: source must be 1 to 128 characters, got 900000"
    )

    # R3: what was fed adds up, partition by partition.
    audit = run_json("--store", sqlite_url, "audit")
    assert audit["adds_up"] is True
    assert (
        audit["intake"]["applied"] == audit["intake"]["ledger_events"] == 5
    )  # catalog, opening, 3 recharges
    events_sources = [
        s
        for s in audit["intake"]["sources"]
        if s["source"].startswith(f"kafka:{kafka_names['topic']}:")
    ]
    assert sum(s["consumed"] for s in events_sources) == 7
    assert sum(s["dead_lettered"] for s in events_sources) == 3

    # Tampering: the last batch of ACC-K's partition deleted from the store.
    partition = next(p for (p, _), v in sources.items() if b'"ACC-K"' in v)
    source = f"kafka:{kafka_names['topic']}:{partition}"
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    intake_id = intake_stream_id(source).hex
    (version,) = stored_rows(
        db,
        "SELECT MAX(originator_version) FROM stored_events WHERE originator_id = ?",
        intake_id,
    )[0]
    tamper(
        db,
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ? "
        "AND topic LIKE '%Intake.BatchTaken'",
        intake_id,
        version,
    )
    result = run("--store", sqlite_url, "audit", expect=1)
    assert "DOES NOT ADD UP" in result.stdout
    assert re.search(
        rf"^  {re.escape(source)}: stored position \d+ but the last batch ends at offset",
        result.stdout,
        re.MULTILINE,
    ), result.stdout


# ---------------------------------------------------------------------------------------------
# R3: ledger audit after file ingest, and tampering in the store


def ingest_mixed_month(tmp_path: Path, sqlite_url: str) -> tuple[Path, Path]:
    """mixed_month() in batches of 3 lines: 1-3, 4-6, 7-9, 10-12, 13-15."""
    path = tmp_path / "month.jsonl"
    path.write_text(mixed_month(), encoding="utf-8")
    run("--store", sqlite_url, "ingest", "--quiet", "--batch-size", "3", str(path))
    return path, Path(sqlite_url.removeprefix("sqlite:///"))


def batch_rows(db: Path, source: str) -> list[tuple[int, dict[str, Any]]]:
    rows = stored_rows(
        db,
        "SELECT originator_version, state FROM stored_events WHERE originator_id = ? "
        "AND topic LIKE '%Intake.BatchTaken' ORDER BY originator_version",
        intake_stream_id(source).hex,
    )
    return [(version, json.loads(state)) for version, state in rows]


def test_R3_audit_adds_up_after_file_ingest(tmp_path: Path, sqlite_url: str) -> None:
    """R3: per source, consumed = applied + duplicates + dead-lettered; applied = ledger events
    stored; exit 0 with the counts of what was fed (mixed_month: 15 lines)."""
    path, _ = ingest_mixed_month(tmp_path, sqlite_url)
    audit = run_json("--store", sqlite_url, "audit")
    assert audit["adds_up"] is True and audit["findings"] == []
    assert audit["intake"] == {
        "adds_up": True,
        "applied": 10,
        "ledger_events": 10,
        "findings": [],
        "sources": [
            {
                "source": f"file:{path}",
                "batches": 5,
                "consumed": 15,
                "applied": 10,
                "duplicates": 1,
                "dead_lettered": 4,
                "first_position": 1,
                "last_position": 15,
                "resumes_at": None,
                "adds_up": True,
                "findings": [],
            }
        ],
    }
    text = run("--store", sqlite_url, "audit").stdout
    assert "intake: 10 applied, 10 ledger events stored" in text.splitlines()
    assert text.strip().endswith("adds up")


def test_R3_audit_finds_an_intake_count_edited_in_the_store(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R3: a batch whose stored consumed count no longer adds up is named with its source."""
    path, db = ingest_mixed_month(tmp_path, sqlite_url)
    source = f"file:{path}"
    version, state = batch_rows(db, source)[1]  # lines 4-6
    assert (state["first_position"], state["last_position"], state["consumed"]) == (4, 6, 3)
    state["consumed"] = 4
    tamper(
        db,
        "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
        json.dumps(state).encode(),
        intake_stream_id(source).hex,
        version,
    )
    result = run("--store", sqlite_url, "audit", expect=1)
    dead = len(state["dead_letters"])
    assert (
        f"  {source}: batch at positions 4-6: consumed 4 != applied {state['applied']} + "
        f"duplicates {state['duplicates']} + dead-lettered {dead}"
    ) in result.stdout.splitlines()
    doc = run_json("--store", sqlite_url, "audit", expect=1)
    assert doc["adds_up"] is False
    assert (
        doc["intake"]["sources"][0]["source"] == source
        and doc["intake"]["sources"][0]["adds_up"] is False
    )


def test_R3_audit_finds_a_deleted_intake_batch_and_names_its_source(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R3: every consumed position is accounted for. Deleting the stored record of a batch
    (here lines 7-9: a duplicate and two dead letters, nothing applied) leaves those
    positions unaccounted for; the Intake stream skips a version, so the audit must say so
    and name the source."""
    path, db = ingest_mixed_month(tmp_path, sqlite_url)
    source = f"file:{path}"
    version, state = batch_rows(db, source)[2]
    assert (state["first_position"], state["last_position"], state["applied"]) == (7, 9, 0)
    tamper(
        db,
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
        intake_stream_id(source).hex,
        version,
    )
    result = run("--store", sqlite_url, "audit", expect=1)
    assert "DOES NOT ADD UP" in result.stdout
    assert any(line.startswith(f"  {source}: ") for line in result.stdout.splitlines()), (
        result.stdout
    )


def test_R3_audit_finds_a_ledger_event_deleted_from_the_store(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R3: applied records must equal ledger events stored, one for one: an account's
    FactApplied removed from the store is caught."""
    _, db = ingest_mixed_month(tmp_path, sqlite_url)
    account = account_stream_id("ACC-1").hex
    (version,) = stored_rows(
        db,
        "SELECT MAX(originator_version) FROM stored_events WHERE originator_id = ? "
        "AND topic LIKE '%Account.FactApplied'",
        account,
    )[0]
    tamper(
        db,
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
        account,
        version,
    )
    result = run("--store", sqlite_url, "audit", expect=1)
    assert "  10 records applied by the sources but 9 ledger events stored" in (
        result.stdout.splitlines()
    )
    doc = run_json("--store", sqlite_url, "audit", expect=1)
    assert (
        doc["adds_up"] is False
        and doc["intake"]["applied"] == 10
        and doc["intake"]["ledger_events"] == 9
    )
    assert doc["intake"]["findings"] == [
        "10 records applied by the sources but 9 ledger events stored"
    ]
    assert "10 records applied by the sources but 9 ledger events stored" in doc["findings"]


# `--until-idle`: idleness counts while the consumer holds partitions (the clock in memory).
P0, P1 = TopicPartition("events", 0), TopicPartition("events", 1)


def test_until_idle_does_not_count_the_time_spent_joining_the_group() -> None:
    """A join slower than the limit (a busy broker) did end a consumer before its first
    record: the clock starts when partitions are assigned."""
    clock = IdleClock(3.0, started_at=0.0)
    assert not clock.is_over(2.0, set())
    assert not clock.is_over(4.5, set())  # still joining, past the limit
    assert not clock.is_over(5.0, {P0, P1})  # assigned: the clock starts now
    assert not clock.is_over(7.9, {P0, P1})
    assert clock.is_over(8.0, {P0, P1})


def test_until_idle_starts_again_after_a_record_or_a_rebalance() -> None:
    clock = IdleClock(3.0, started_at=0.0)
    assert not clock.is_over(1.0, {P0, P1})
    clock.record_seen(2.0)
    assert not clock.is_over(4.9, {P0, P1})
    assert not clock.is_over(5.0, {P0})  # a rebalance took P1 away: counts from here
    assert not clock.is_over(7.9, {P0})
    assert clock.is_over(8.0, {P0})


def test_until_idle_ends_a_member_that_never_gets_partitions_after_the_join_wait() -> None:
    """More members than partitions: one of them holds none, and must still stop."""
    clock = IdleClock(3.0, started_at=0.0, join_wait=60.0)
    assert not clock.is_over(59.0, set())
    assert not clock.is_over(61.0, set())
    assert clock.is_over(62.0, set())  # 3 s past the join wait


def test_without_until_idle_a_consumer_never_stops_on_its_own() -> None:
    clock = IdleClock(None, started_at=0.0)
    assert not clock.is_over(1e9, {P0})


# The progress line of a long-running consumer (the printer alone, on a clock of our own).


def test_consume_progress_is_one_line_per_interval_with_the_rate_and_retries_since_the_last(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 100 records/s in one-record batches a line per batch flooded the log; a rate
    averaged since the start hid a slow-down; a retry long past showed on every line."""
    import cli.main
    from consumers.kafka import ConsumeReport
    from ledger.application import BatchCounts

    now = [1000.0]
    monkeypatch.setattr(cli.main.time, "monotonic", lambda: now[0])
    show = cli.main._consume_progress(every_seconds=10.0)
    report = ConsumeReport(lag=5)

    def batch(at: float, consumed: int, waiting: bool = False) -> None:
        now[0] = at
        report.totals = BatchCounts(consumed=consumed, applied=consumed)
        report.waiting = waiting
        show(report)

    batch(1001.0, 100)  # the first batch: shown at once
    for second in range(1002, 1011):  # a batch a second: nothing more for 10 s
        batch(float(second), 100 * (second - 1000))
    report.retries, report.last_error = 1, "OperationalError: server closed the connection"
    batch(1011.0, 1100)  # 10 s after the first line
    batch(1012.0, 1110)
    report.lag = 0
    batch(1013.5, 1110, waiting=True)  # caught up: said at once
    batch(1030.0, 1200)
    lines = capsys.readouterr().err.splitlines()
    assert [PROGRESS.fullmatch(line) is not None for line in lines] == [True, False, True, True]
    assert [line.split(" ", 1)[1] for line in lines] == [
        "consume: 100 read, 100 applied, 0 duplicates, 0 dead-lettered (100 events/s, lag 5)",
        "consume: 1100 read, 1100 applied, 0 duplicates, 0 dead-lettered (100 events/s, lag 5, "
        "1 retries, last after OperationalError: server closed the connection)",
        "consume: 1110 read, 1110 applied, 0 duplicates, 0 dead-lettered (4 events/s, lag 0)",
        "consume: 1200 read, 1200 applied, 0 duplicates, 0 dead-lettered (5 events/s, lag 0)",
    ]
