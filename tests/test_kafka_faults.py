"""Ingestion guarantees under failure, against the real Kafka broker and PostgreSQL (G1, G2, G3).

One deterministic run of a few thousand mixed events (40 accounts, prepaid and postpaid, over
a month and its bill run, with duplicates and bad records) is published to a topic of four
partitions and consumed by real `ledger consume` processes while they are killed (kill -9),
joined and left by other members of their group, and while the broker or the database server
is restarted. After each, the views equal those of one clean `ledger ingest` of the same file
(the reference), and `ledger audit` adds up with the same applied, duplicate and dead-letter
counts: a crash at any instant loses nothing and applies nothing twice (G1), bad records reach
the dead-letter topic with their bytes, reason and origin (G2), and consumers of one group
share the partitions (G3).
"""

import base64
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer

from bench.scratch import scratch_database
from ledger.catalog import default_catalog_path, load_catalog_file
from ledger.instants import instant_text
from ledger.store import parse_store_url
from projections.runner import VIEWS
from projections.store import open_view_store
from tests.cli_helpers import kafka_args, read_topic

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 4

# ---------------------------------------------------------------------------------------------
# The run: a month of 40 accounts, its bill run, some December and late November records.

START = datetime(2026, 11, 1, tzinfo=UTC)
BILL_RUN = datetime(2026, 12, 1, 5, tzinfo=UTC)
DESTINATIONS = (
    "+12125550100",  # US
    "+14165550100",  # CA
    "+447700900123",  # GB mobile
    "+525512345678",  # MX
    "+919812345678",  # IN
    "+639171234567",  # PH
    "+18765550100",  # JM
)
PLANS = ("na-500", "na-500-yearly", "na-unlimited", "mexico-500", "europe-500", "world-300")
PACKAGES = ("data-1gb", "data-5gb", "data-10gb", "data-unlimited")
COUNTRIES = ("FR", "GB", "MX", "JP")
TIMEZONES = ("UTC", "America/New_York", "America/Los_Angeles", "Asia/Tokyo")


@dataclass(frozen=True)
class Run:
    lines: list[bytes]  # the file, one record a line (catalog first)
    bad: list[bytes]  # the records that must be dead-lettered (each once in the file)
    events: int  # lines for the events topic (everything but the catalog)


def make_run(seed: int = 20261101) -> Run:
    rng = random.Random(seed)
    serial = 0
    streams: list[list[bytes]] = []
    bad: list[bytes] = []

    def doc(type_: str, account: str, at: datetime, **fields: Any) -> dict[str, Any]:
        nonlocal serial
        serial += 1
        return {
            "event_id": f"f-{serial:06d}",
            "type": type_,
            "account_id": account,
            "occurred_at": instant_text(at),
            "schema_version": 1,
            **fields,
        }

    def money(low: int, high: int) -> str:
        cents = rng.randint(low, high)
        return f"{cents // 100}.{cents % 100:02d}"

    for n in range(40):
        account = f"ACC-{n:03d}"
        prepaid = n % 2 == 0
        numbers = [f"+1415555{n:02d}{k:02d}" for k in range(1 + n % 2)]
        at = START + timedelta(hours=1, minutes=n)
        stream: list[dict[str, Any] | bytes] = [
            doc(
                "account.opened",
                account,
                at,
                billing_mode="prepaid" if prepaid else "postpaid",
                currency="USD",
                timezone=TIMEZONES[n % len(TIMEZONES)],
            )
        ]
        stream += [doc("number.added", account, at, msisdn=m) for m in numbers]
        if prepaid:
            stream.append(doc("balance.recharged", account, at, amount=money(1000, 5000)))
        if rng.random() < 0.6:
            stream.append(
                doc(
                    "plan.purchased",
                    account,
                    at + timedelta(hours=1),
                    msisdn=numbers[0],
                    plan_id=rng.choice(PLANS),
                    channel="portal",
                    autorenew=rng.random() < 0.7,
                )
            )
        if rng.random() < 0.5:
            stream.append(
                doc(
                    "package.subscribed",
                    account,
                    at + timedelta(days=rng.randint(0, 10), hours=2),
                    msisdn=numbers[-1],
                    package_id=rng.choice(PACKAGES),
                )
            )
        clock = at + timedelta(days=1)
        for _ in range(rng.randint(55, 75)):
            clock += timedelta(minutes=rng.randint(10, 900))
            if clock >= BILL_RUN - timedelta(hours=6):
                break
            stream.append(_usage(rng, doc, account, numbers, clock, money))
        stream.append(doc("cycle.started", account, BILL_RUN, period="2026-12"))
        for _ in range(rng.randint(3, 8)):
            clock = BILL_RUN + timedelta(hours=rng.randint(1, 200))
            stream.append(_usage(rng, doc, account, numbers, clock, money))
        for _ in range(rng.randint(0, 2)):  # late November records after the bill run (B3)
            late = BILL_RUN - timedelta(hours=rng.randint(7, 300))
            stream.append(_usage(rng, doc, account, numbers, late, money))
        if n % 7 == 3:
            leaving = numbers[0]
            stream.append(doc("port_out.requested", account, clock, msisdn=leaving))
            stream.append(doc("port_out.completed", account, clock, msisdn=leaving))
            # Usage for a number that has left the account: an unknown number (P2, G2).
            gone = json.dumps(
                doc(
                    "call.completed",
                    account,
                    clock + timedelta(hours=1),
                    msisdn=leaving,
                    destination=DESTINATIONS[0],
                    duration_seconds=60,
                    call_id=f"gone-{n}",
                )
            ).encode()
            stream.append(gone)
            bad.append(gone)
        # Duplicates: some records sent again later in the account's stream (G1).
        encoded = [s if isinstance(s, bytes) else json.dumps(s).encode() for s in stream]
        for _ in range(rng.randint(0, 3)):
            original = rng.randrange(1, len(encoded))
            if encoded[original] in bad:
                continue
            encoded.insert(rng.randint(original + 1, len(encoded)), encoded[original])
        streams.append(encoded)

    # Interleave the accounts at random, each keeping its own order (T2).
    lines: list[bytes] = []
    cursors = [0] * len(streams)
    live = [i for i, s in enumerate(streams) if s]
    while live:
        i = rng.choice(live)
        lines.append(streams[i][cursors[i]])
        cursors[i] += 1
        if cursors[i] == len(streams[i]):
            live.remove(i)

    garbage: list[bytes] = [
        b"this is not JSON",
        b"\x00\x01\x02 binary garbage \xff\xfe",
        b"[1, 2, 3]",
        b'"just a string"',
        b"{}",
        b"x" * 500_000,  # oversized (~500 KB) and not JSON
        b'{"event_id": "big-1", "type": "balance.recharged", "account_id": "ACC-000", "pad": "'
        + b"y" * 500_000,  # oversized and truncated
    ]
    for k in range(6):  # truncated JSON
        full = json.dumps(
            doc("balance.recharged", f"ACC-{2 * k:03d}", START + timedelta(days=3), amount="5.00")
        )
        garbage.append(full[: rng.randint(10, len(full) - 2)].encode())
    for k in range(8):  # unknown accounts
        garbage.append(
            json.dumps(
                doc("balance.recharged", f"ACC-9{k:02d}", START + timedelta(days=k), amount="5.00")
            ).encode()
        )
    for k in range(4):  # schema: money as a number, timestamp without offset
        wrong = doc("balance.recharged", f"ACC-{2 * k:03d}", START + timedelta(days=4), amount=1.5)
        garbage.append(json.dumps(wrong).encode())
        naive = doc("balance.recharged", f"ACC-{2 * k:03d}", START, amount="1.00")
        naive["occurred_at"] = "2026-11-05T10:00:00"
        garbage.append(json.dumps(naive).encode())
    for record in garbage:
        lines.insert(rng.randint(0, len(lines)), record)
        bad.append(record)

    catalog = load_catalog_file(default_catalog_path())
    catalog_line = json.dumps(
        {
            "event_id": f"catalog-{catalog.version}",
            "type": "catalog.published",
            "account_id": "*",
            "occurred_at": instant_text(catalog.effective_from),
            "schema_version": 1,
            "catalog": catalog.to_document(),
        }
    ).encode()
    return Run([catalog_line, *lines], bad, len(lines))


def _usage(
    rng: random.Random,
    doc: Callable[..., dict[str, Any]],
    account: str,
    numbers: list[str],
    at: datetime,
    money: Callable[[int, int], str],
) -> dict[str, Any]:
    kind = rng.choices(
        ("call", "data", "roam", "recharge", "surcharge", "adjustment"),
        weights=(10, 6, 1, 2, 1, 1),
    )[0]
    msisdn = rng.choice(numbers)
    if kind == "call":
        return doc(
            "call.completed",
            account,
            at,
            msisdn=msisdn,
            destination=rng.choice(DESTINATIONS),
            duration_seconds=rng.randint(1, 1800),
            call_id=f"call-{account}-{rng.getrandbits(40):x}",
        )
    if kind == "data":
        return doc(
            "data.used",
            account,
            at,
            msisdn=msisdn,
            bytes=rng.choice((rng.randint(1, 3_000_000), rng.randint(1_000_000, 400_000_000))),
            roaming=False,
        )
    if kind == "roam":
        return doc(
            "data.used",
            account,
            at,
            msisdn=msisdn,
            bytes=rng.randint(1, 5_000_000),
            roaming=True,
            country=rng.choice(COUNTRIES),
        )
    if kind == "recharge":
        return doc("balance.recharged", account, at, amount=money(100, 3000))
    if kind == "surcharge":
        return doc(
            "surcharge.applied",
            account,
            at,
            amount=money(1, 500),
            kind=rng.choice(("carrier", "tcr_registration")),
            description="Carrier regulatory recovery fee",
        )
    amount = money(1, 2000)
    return doc(
        "adjustment.posted",
        account,
        at,
        amount=amount if rng.random() < 0.5 else f"-{amount}",
        reason="goodwill",
        approved_by="finance-1",
    )


def chunks(run: Run, parts: int) -> list[list[bytes]]:
    """The file cut into `parts` consecutive pieces, published one after another."""
    size = -(-len(run.lines) // parts)
    return [run.lines[i : i + size] for i in range(0, len(run.lines), size)]


# ---------------------------------------------------------------------------------------------
# The reference: one clean file ingest of the same records.


@dataclass(frozen=True)
class Reference:
    run: Run
    views: dict[str, dict[str, Any]]
    audit: dict[str, Any]
    reasons: dict[bytes, str]  # why the file ingest dead-lettered each bad record


def read_views(url: str) -> dict[str, dict[str, Any]]:
    store = open_view_store(parse_store_url(url))
    try:
        return {view: dict(store.scan(view)) for view in VIEWS}
    finally:
        store.close()


def audit(url: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "--json", "--store", url, "audit"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    run = make_run()
    assert len(set(run.bad)) == len(run.bad)
    folder = tmp_path_factory.mktemp("reference")
    path = folder / "events.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in run.lines))
    url = f"sqlite:///{folder / 'reference.db'}"
    subprocess.run(
        [sys.executable, "-m", "cli.main", "--store", url, "ingest", "--quiet", str(path)],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    code, doc = audit(url)
    assert code == 0 and doc["adds_up"], doc
    (source,) = doc["intake"]["sources"]
    # The run is what it says: every bad record dead-lettered, some duplicates, the rest applied.
    assert source["consumed"] == len(run.lines)
    assert source["dead_lettered"] == len(run.bad)
    assert source["duplicates"] > 40
    reasons = {}
    for text in (folder / "events.jsonl.deadletter.jsonl").read_text().splitlines():
        letter = json.loads(text)
        original = (
            letter["original"].encode()
            if "original" in letter
            else base64.b64decode(letter["original_base64"])
        )
        reasons[original] = letter["reason"]
    assert sorted(reasons) == sorted(run.bad)
    return Reference(run, read_views(url), doc, reasons)


# ---------------------------------------------------------------------------------------------
# Real services and processes.


class Consumer:
    """One `ledger consume` process (progress lines kept in a file for post-mortems)."""

    def __init__(self, name: str, command: list[str], folder: Path) -> None:
        self.name = name
        self.stdout = folder / f"{name}.out"
        self.stderr = folder / f"{name}.err"
        self.meant_to_run = True  # until the test kills or stops it
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no chance to finish the batch in hand or to leave the group."""
        assert self.alive(), f"{self.name} had died before it was to be killed: {self.describe()}"
        self.meant_to_run = False
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> dict[str, Any]:
        """SIGTERM: the consumer finishes its batch and exits 0 with its JSON report."""
        assert self.alive(), f"{self.name} exited by itself: {self.describe()}"
        self.meant_to_run = False
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        assert code == 0, f"{self.name} exited {code} on SIGTERM: {self.describe()}"
        report: dict[str, Any] = json.loads(self.stdout.read_text())
        return report

    def describe(self) -> str:
        err = self.stderr.read_text(errors="replace").strip().splitlines()
        return f"exit {self.process.poll()}; last stderr lines:\n" + "\n".join(err[-15:])


class Rig:
    """A fresh PostgreSQL database, fresh topics and the consumers a test starts."""

    def __init__(self, url: str, bootstrap: str, names: dict[str, str], folder: Path) -> None:
        self.url = url
        self.bootstrap = bootstrap
        self.names = names
        self.topic = names["topic"]
        self.folder = folder
        self.consumers: list[Consumer] = []

    def publish(self, lines: list[bytes]) -> None:
        """`ledger publish --no-validate` of these lines (a topic of PARTITIONS partitions)."""
        path = self.folder / f"chunk-{time.monotonic_ns()}.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        command = [sys.executable, "-m", "cli.main", "publish", str(path), "--no-validate"]
        command += [
            "--partitions",
            str(PARTITIONS),
            *kafka_args(self.bootstrap, self.names, "publish"),
        ]
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=120)

    def start(self, group: str | None = None) -> Consumer:
        """A `ledger consume` process in the test's group (or another one)."""
        command = [sys.executable, "-m", "cli.main", "--json", "--store", self.url, "consume"]
        command += [*kafka_args(self.bootstrap, self.names, "consume")]
        command += ["--group", group or self.names["group"]]
        consumer = Consumer(f"consumer-{len(self.consumers) + 1}", command, self.folder)
        self.consumers.append(consumer)
        return consumer

    def kill_all(self) -> None:
        """After the test: only the processes it started, each by its pid."""
        for consumer in self.consumers:
            if consumer.alive():
                consumer.process.send_signal(signal.SIGKILL)
                consumer.process.wait(timeout=30)

    def running(self) -> list[Consumer]:
        return [c for c in self.consumers if c.alive()]

    def stored(self) -> dict[int, int] | None:
        """Where each partition resumes, as stored with the ledger events (None: store away).

        Read with plain SQL from the eventsourcing tracking table of the application "Ledger",
        so that watching never creates the schema alongside the consumers.
        """
        from consumers.kafka import tracking_name

        try:
            with psycopg.connect(self.url, connect_timeout=5) as db:
                (table,) = db.execute("SELECT to_regclass('ledger_tracking')").fetchone() or (None,)
                rows = (
                    db.execute(
                        "SELECT application_name, notification_id FROM ledger_tracking "
                        "WHERE application_name LIKE %s",
                        (f"kafka:{self.topic}:%",),
                    ).fetchall()
                    if table is not None
                    else []
                )
        except psycopg.Error:
            return None
        positions: dict[str, int] = dict(rows)
        return {p: positions.get(tracking_name(self.topic, p), 0) for p in range(PARTITIONS)}

    def stored_total(self) -> int:
        positions = self.stored()
        return -1 if positions is None else sum(positions.values())

    def ends(self) -> dict[int, int]:
        """The end offset of each partition of the events topic."""
        from kafka import TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        try:
            ends = consumer.end_offsets([TopicPartition(self.topic, p) for p in range(PARTITIONS)])
            return {tp.partition: int(offset) for tp, offset in ends.items()}
        finally:
            consumer.close()

    def pending(self) -> int:
        """Records published to the events topic and not yet stored as consumed."""
        stored = self.stored()
        assert stored is not None, "the database is away"
        return sum(self.ends().values()) - sum(stored.values())

    def assert_none_died(self) -> None:
        """No consumer the test did not kill or stop has exited on its own."""
        for consumer in self.consumers:
            if consumer.meant_to_run:
                assert consumer.alive(), f"{consumer.name} died: {consumer.describe()}"

    def wait_until(self, condition: Any, timeout: float, what: str) -> None:
        """Poll until the condition holds; meanwhile no consumer may die on its own."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_none_died()
            if condition():
                return
            time.sleep(0.02)
        states = "\n".join(f"{c.name}: {c.describe()}" for c in self.running())
        pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}\n{states}")

    def wait_all_consumed(self, timeout: float) -> dict[int, int]:
        ends = self.ends()
        self.wait_until(
            lambda: self.stored() == ends,
            timeout,
            f"the stored positions reach the end offsets {ends}",
        )
        return ends

    def members(self) -> dict[str, set[int]] | None:
        """Each member's partitions once the group is stable (None while it rebalances)."""
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            doc = admin.describe_groups([self.names["group"]])[self.names["group"]]
        finally:
            admin.close()
        if doc["group_state"] != "Stable":
            return None
        members = {}
        for member in doc["members"]:
            assigned = member["member_assignment"]["assigned_partitions"]
            members[member["member_id"]] = {p for t in assigned for p in t["partitions"]}
        return members

    def wait_for_members(
        self, count: int, timeout: float, besides: dict[str, set[int]] | None = None
    ) -> dict[str, set[int]]:
        """Wait until `count` members share the partitions (other members than `besides`)."""
        seen: list[dict[str, set[int]]] = []

        def stable() -> bool:
            members = self.members()
            if members is None or not shared(members, count):
                return False
            if besides is not None and set(members) == set(besides):
                return False
            seen.append(members)
            return True

        self.wait_until(stable, timeout, f"{count} consumer(s) share the partitions")
        return seen[-1]


def shared(members: dict[str, set[int]] | None, count: int) -> bool:
    """G3: `count` members, each with partitions of its own, together all of them."""
    if members is None or len(members) != count:
        return False
    held = [p for partitions in members.values() for p in partitions]
    return all(members.values()) and sorted(held) == list(range(PARTITIONS))


@pytest.fixture
def rig(
    tmp_path: Path, postgres_url: str, kafka_server: str, kafka_names: dict[str, str]
) -> Iterator[Rig]:
    rig = Rig(postgres_url, kafka_server, kafka_names, tmp_path)
    yield rig
    rig.kill_all()


def service(name: str, action: str) -> None:
    """scripts/kafka.sh or scripts/postgres.sh start|stop: the real servers."""
    subprocess.run(["bash", str(ROOT / "scripts" / f"{name}.sh"), action], check=True, timeout=300)


# ---------------------------------------------------------------------------------------------
# What must hold after every fault.


def assert_like_reference(rig: Rig, reference: Reference, ends: dict[int, int]) -> None:
    run, url, bootstrap, names = reference.run, rig.url, rig.bootstrap, rig.names
    # Views: document for document what one clean file ingest gives.
    views = read_views(url)
    for view in VIEWS:
        got, want = views[view], reference.views[view]
        differing = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        assert not differing, (
            f"view {view}: {len(differing)} documents differ from the file ingest, e.g. "
            f"{differing[0]}: kafka {got.get(differing[0])} != file {want.get(differing[0])}"
        )

    # Audit (G2): every partition adds up and resumes right after its last batch.
    code, doc = audit(url)
    assert code == 0 and doc["adds_up"], doc
    intake = doc["intake"]
    by_source = {s["source"]: s for s in intake["sources"]}
    partitions = {f"kafka:{names['topic']}:{p}": p for p in range(PARTITIONS)}
    catalog = f"kafka:{names['catalog_topic']}:0"
    assert set(by_source) == {*partitions, catalog}
    for source, partition in partitions.items():
        # Every offset of the partition consumed exactly once, none skipped.
        assert by_source[source]["consumed"] == ends[partition], by_source[source]
        assert by_source[source]["resumes_at"] == ends[partition], by_source[source]
    assert by_source[catalog]["applied"] == 1
    (file_source,) = reference.audit["intake"]["sources"]

    def total(key: str) -> int:
        return sum(s[key] for s in intake["sources"])

    # The same records in, the same records applied, duplicated and dead-lettered: nothing
    # lost, nothing applied twice (a duplicate is always in the same partition as its first
    # delivery, because both carry the account as key, so the counts cannot differ).
    assert total("consumed") == file_source["consumed"] == len(run.lines)
    assert total("applied") == file_source["applied"]
    assert total("duplicates") == file_source["duplicates"]
    assert total("dead_lettered") == file_source["dead_lettered"] == len(run.bad)
    assert intake["ledger_events"] == reference.audit["intake"]["ledger_events"]

    # Dead-letter topic (G2): each bad record at least once (a crash between dead-lettering
    # and the commit may repeat one), with the original bytes and where it came from.
    events = {(r.partition, r.offset): r.value for r in read_topic(bootstrap, names["topic"])}
    letters = read_topic(bootstrap, names["dead_letter_topic"])
    origins = set()
    for letter in letters:
        headers = {key: value.decode() for key, value in letter.headers}
        assert set(headers) == {"reason", "source-topic", "source-partition", "source-offset"}
        assert headers["source-topic"] == names["topic"]
        origin = (int(headers["source-partition"]), int(headers["source-offset"]))
        assert events[origin] == letter.value, f"dead letter {origin} is not the record's bytes"
        assert headers["reason"] == reference.reasons[letter.value]
        origins.add(origin)
    assert sorted(events[o] for o in origins) == sorted(run.bad)


# ---------------------------------------------------------------------------------------------
# The faults.


def test_G1_kill_9_at_random_points_then_restart_loses_and_duplicates_nothing(
    rig: Rig, reference: Reference
) -> None:
    """G1: a consumer killed (kill -9) at three random points and started again each time
    resumes at the stored position: the views and counts are those of the file ingest.

    Each restart joins a group of its own, so nothing but the stored position can tell it where
    to start (its group has no committed offsets; earliest would apply everything again). A
    restart into the same group waits out the dead member's session (kafka-python's default
    45 s) before partitions are assigned again: that case is the next test's.
    """
    rng = random.Random(61)
    parts = chunks(reference.run, 6)
    for part in parts[:3]:
        rig.publish(part)
    parts = parts[3:]
    resumed_at = 0
    left_behind = []
    for kill in range(3):
        if rig.pending() < 1000:
            rig.publish(parts.pop(0))  # a backlog for the consumer to be killed in the middle of
        consumer = rig.start(group=f"{rig.names['group']}-{kill}")
        # Once this consumer has committed a batch of its own, it is killed a random moment
        # later: mid-batch, before or after the dead letters went out, while writing views.
        # Soon: a backlog of a few thousand records takes it well under a second.
        rig.wait_until(
            lambda: rig.stored_total() > resumed_at,  # noqa: B023
            60,
            f"consumer {kill + 1} commits a batch",
        )
        time.sleep(rng.uniform(0.0, 0.05))
        consumer.kill()
        resumed_at = rig.stored_total()
        left_behind.append(rig.pending())
    # The first kill came mid-run (and, with a backlog each time, most others do).
    assert left_behind[0] > 0, left_behind
    for part in parts:
        rig.publish(part)
    last = rig.start(group=f"{rig.names['group']}-last")
    ends = rig.wait_all_consumed(90)
    report = last.stop()
    assert 0 < report["events"]["consumed"] < sum(ends.values())
    assert_like_reference(rig, reference, ends)


def test_G3_consumers_of_one_group_share_partitions_while_one_dies_and_one_joins(
    rig: Rig, reference: Reference
) -> None:
    """G3: three consumers in one group share the four partitions; one is killed (kill -9)
    and another joins later. Its partitions go to the others at the stored positions (G1):
    the views and counts are those of the file ingest."""
    rng = random.Random(62)
    parts = chunks(reference.run, 4)
    rig.publish(parts[0])
    # A rolling start: each consumer joins the group before the next one starts. (Processes
    # that start at the very same moment race to create the schema: the next test.)
    three: list[Consumer] = []
    for count in (1, 2, 3):
        three.append(rig.start())
        first = rig.wait_for_members(count, 60)
    rig.publish(parts[1])
    time.sleep(rng.uniform(0.0, 1.0))
    victim = rng.choice(three)
    victim.kill()
    rig.publish(parts[2])  # some for the dead member's partitions: the others must take them
    time.sleep(rng.uniform(0.5, 2.0))
    joiner = rig.start()
    # The group rebalances once the dead member's session has expired (kafka-python's default
    # session timeout is 45 s): then two survivors and the newcomer share the partitions.
    rig.wait_for_members(3, 120, besides=first)
    rig.publish(parts[3])  # some for every member of the new assignment
    ends = rig.wait_all_consumed(60)
    reports = [consumer.stop() for consumer in [*three, joiner] if consumer is not victim]
    # Each of them consumed a share: the two survivors and the newcomer.
    assert all(report["events"]["consumed"] > 0 for report in reports), reports
    assert_like_reference(rig, reference, ends)


def test_G3_consumers_started_together_on_an_empty_database_all_come_up(
    rig: Rig, reference: Reference, postgres_server: str
) -> None:
    """G3: four `ledger consume` processes of one group, started at the same moment on an
    empty database (a first deployment), all come up, share the four partitions, and give
    the views and counts of the file ingest. Five rounds, each on a database of its own (the
    moment matters: in a round of four, one or more fail to start more often than not)."""
    rig.publish(reference.run.lines)
    for round_ in range(5):
        with scratch_database(postgres_server, prefix="ledger_test") as url:
            names = {**rig.names, "group": f"{rig.names['group']}-{round_}"}
            crew = Rig(url, rig.bootstrap, names, rig.folder / f"round-{round_}")
            crew.folder.mkdir()
            try:
                for _ in range(4):
                    crew.start()
                crew.wait_for_members(4, 60)
                ends = crew.wait_all_consumed(60)
                for consumer in crew.running():
                    consumer.stop()
                assert_like_reference(crew, reference, ends)
            finally:
                crew.kill_all()


def test_G1_kafka_broker_restart_mid_run_loses_and_duplicates_nothing(
    rig: Rig, reference: Reference
) -> None:
    """G1: the Kafka broker is stopped and started again while a consumer works through a
    backlog. The consumer rides the outage out (it retries with back-off), resumes at the
    stored position, and the views and counts are those of the file ingest."""
    rng = random.Random(63)
    parts = chunks(reference.run, 3)
    rig.publish(parts[0])
    rig.publish(parts[1])
    consumer = rig.start()
    rig.wait_until(lambda: rig.stored_total() > 0, 60, "the consumer commits a batch")
    time.sleep(rng.uniform(0.0, 0.25))
    try:
        service("kafka", "stop")
        time.sleep(2)
    finally:
        service("kafka", "start")
    rig.publish(parts[2])
    ends = rig.wait_all_consumed(120)
    assert consumer.alive(), f"the consumer died in the broker restart: {consumer.describe()}"
    report = consumer.stop()
    assert report["events"]["consumed"] > 0
    assert_like_reference(rig, reference, ends)


def test_G1_postgres_restart_mid_run_loses_and_duplicates_nothing(
    rig: Rig, reference: Reference
) -> None:
    """G1: the PostgreSQL server is stopped (fast: open transactions are cut) and started
    again while a consumer works through a backlog. The batch in hand rolls back; the consumer
    retries with back-off, reads again from the stored position, and the views and counts are
    those of the file ingest."""
    rng = random.Random(64)
    parts = chunks(reference.run, 3)
    rig.publish(parts[0])
    rig.publish(parts[1])
    consumer = rig.start()
    rig.wait_until(lambda: rig.stored_total() > 0, 60, "the consumer commits a batch")
    time.sleep(rng.uniform(0.0, 0.25))
    try:
        service("postgres", "stop")
        rig.publish(parts[2])  # records keep coming while the database is away
        time.sleep(2)
    finally:
        service("postgres", "start")
    ends = rig.wait_all_consumed(120)
    assert consumer.alive(), f"the consumer died in the database restart: {consumer.describe()}"
    report = consumer.stop()
    assert report["events"]["consumed"] > 0
    # It felt the outage: its report counts the retries and names the last error (a progress
    # line says so too when one falls due before the stop; that depends on timing).
    assert report["retries"] > 0 and report["last_error"], report
    assert_like_reference(rig, reference, ends)
