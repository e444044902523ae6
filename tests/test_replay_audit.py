"""`ledger replay` and `ledger audit` as finance runs them (SPEC 10: R1, R2, R3; SPEC 3: C4).

R1/R2 are proven on a long history: two accounts (one prepaid in America/New_York, one
postpaid in UTC) over three periods (2026-11, 2026-12, 2027-01), interleaved in the log, with
calls, data, plans, packages, cycle starts, late usage, surcharges, adjustments, recharges and
ports. It is fed into a real SQLite store one event per batch, and the live views of each
account are captured right after each of its events: `replay --position N` must give exactly
those views, for every N.

C4 figures are computed by hand from the default catalog (version 2026-01-a) and a correction
2026-01-b that changes three prices:

  PAYG voice +44 (GB landline)  0.0200/min -> 0.0100/min (60 s increments)
  home PAYG data                0.0500/MB  -> 0.0400/MB  (1 MB = 1,000,000 B)
  roaming GB                    1.2000/MB  -> 1.3000/MB

R3 tampering is done the way an attacker with database access would do it: by editing the
SQLite tables (`stored_events` state JSON, `ledger_views` documents) directly.
"""

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import EventStore

from consumers.pipeline import RawRecord, process_batch
from ledger.application import DeadLetter, LedgerApp
from ledger.catalog import default_catalog_path
from ledger.ids import account_stream_id
from ledger.instants import instant_text
from ledger.store import parse_store_url
from projections import invoices
from projections.runner import catch_up, shown_views, view_documents
from projections.store import open_view_store
from tests.cli_helpers import assert_one_line_error, ingest_events, run, run_json
from tests.factories import catalog_published, event, opened

PREPAID = "ACC-LONG-S"
POSTPAID = "ACC-LONG-P"
NY = "America/New_York"

# Prepaid numbers.
S1 = "+14155550101"
S2 = "+14155550102"
S_NEW = "+14155550177"  # the temporary number of a port-in that completes
S_PORTED = "+13125550199"  # the number ported in
# Postpaid numbers.
P1 = "+14155550201"
P2 = "+14155550202"
P_NEW = "+14155550277"  # the temporary number of a port-in that fails
P_PORTED = "+13125550299"

US = "+12125550100"  # +1 US 0.0150/min, 60 s
CA = "+14165550100"  # +1416 CA 0.0200/min, 60 s
GB_LANDLINE = "+442071234567"  # +44 GB 0.0200/min, 60 s
GB_MOBILE = "+447700900123"  # +447 GB 0.0800/min, 60 s
FR_LANDLINE = "+33142685300"  # +33 FR 0.0250/min, 60 s
MX = "+525512345678"  # +52 MX 0.0300/min, 30 s
JM = "+18765550100"  # +1876 JM 0.1500/min, 60 s
DESTINATIONS = (US, GB_LANDLINE, CA, FR_LANDLINE, MX, GB_MOBILE, JM)
ROAMING = ("GB", "FR", "CA", "MX", "DE")
MB = 1_000_000

PERIODS = ("2026-11", "2026-12", "2027-01")


# ---------------------------------------------------------------------------------------------
# The long history


class Stream:
    """Builds one account's events with readable, stable event ids."""

    def __init__(self, account: str, prefix: str) -> None:
        self.account = account
        self.prefix = prefix
        self.events: list[dict[str, Any]] = []
        self._n = 0

    def add(self, type_: str, at: str, **fields: Any) -> None:
        self._n += 1
        self.events.append(
            event(type_, self.account, at, event_id=f"{self.prefix}-{self._n:03d}", **fields)
        )

    def calls(self, period: str, numbers: tuple[str, ...], count: int, seed: int) -> None:
        for i in range(count):
            k = i + seed
            self.add(
                "call.completed",
                at(period, 2 + k % 26, 12 + k % 9, k % 60),
                msisdn=numbers[k % len(numbers)],
                destination=DESTINATIONS[k % len(DESTINATIONS)],
                duration_seconds=(k * 37) % 400 + 1,
                call_id=f"{self.prefix}-call-{period}-{i}",
            )

    def data(self, period: str, numbers: tuple[str, ...], count: int, seed: int) -> None:
        for i in range(count):
            k = i + seed
            roaming = k % 3 == 0
            fields: dict[str, Any] = {"country": ROAMING[k % len(ROAMING)]} if roaming else {}
            self.add(
                "data.used",
                at(period, 2 + (k * 7) % 26, 13 + k % 8, (k * 11) % 60),
                msisdn=numbers[k % len(numbers)],
                bytes=(k % 5 + 1) * 250_000 if roaming else (k % 7 + 1) * 3 * MB,
                roaming=roaming,
                **fields,
            )


def at(period: str, day: int, hour: int = 12, minute: int = 0) -> str:
    """An instant of the period, in UTC, well inside the month in New York too."""
    return f"{period}-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def prepaid_history() -> list[dict[str, Any]]:
    """ACC-LONG-S (prepaid, America/New_York), three periods."""
    s = Stream(PREPAID, "s")
    s.events.append(opened(PREPAID, "prepaid", timezone=NY, event_id="s-open"))
    nov, dec, jan = PERIODS
    # 2026-11
    s.add("number.added", at(nov, 1, 10), msisdn=S1)
    s.add("number.added", at(nov, 1, 11), msisdn=S2)
    s.add("balance.recharged", at(nov, 1, 12), amount="150.00")
    s.add("plan.purchased", at(nov, 2, 9), msisdn=S1, plan_id="na-500", channel="portal")
    s.add("package.subscribed", at(nov, 2, 10), msisdn=S1, package_id="data-1gb")
    s.add("port_in.requested", at(nov, 3, 9), msisdn=S_NEW, ported_msisdn=S_PORTED)
    s.calls(nov, (S1, S2, S_NEW), 24, seed=0)
    s.data(nov, (S1, S2), 8, seed=0)
    s.add("port_in.completed", at(nov, 15, 9), msisdn=S_NEW, ported_msisdn=S_PORTED)
    s.add(
        "surcharge.applied",
        at(nov, 16, 9),
        amount="0.75",
        kind="carrier",
        description="Carrier surcharge",
    )
    s.add(
        "adjustment.posted",
        at(nov, 17, 9),
        amount="-1.50",
        reason="goodwill",
        approved_by="finance-lead",
    )
    s.add("balance.recharged", at(nov, 18, 9), amount="40.00")
    s.calls(nov, (S1, S_PORTED), 12, seed=50)
    s.data(nov, (S1, S_PORTED), 6, seed=50)
    # 2026-12: the bill run at midnight New York time, then a late November call (B3).
    s.add("cycle.started", "2026-12-01T05:00:00Z", period=dec)
    s.add(
        "call.completed",
        at(nov, 28, 15),
        msisdn=S1,
        destination=GB_LANDLINE,
        duration_seconds=125,
        call_id="s-late-call",
    )
    s.add("plan.changed", at(dec, 2, 9), msisdn=S1, plan_id="na-unlimited")
    s.add("balance.recharged", at(dec, 2, 10), amount="60.00")
    s.add("package.changed", at(dec, 3, 9), msisdn=S1, package_id="data-5gb")
    s.add("port_out.requested", at(dec, 4, 9), msisdn=S2)
    s.calls(dec, (S1, S2, S_PORTED), 12, seed=100)
    s.data(dec, (S1, S2, S_PORTED), 8, seed=100)
    s.add("port_out.completed", at(dec, 20, 9), msisdn=S2)
    s.add(
        "surcharge.applied",
        at(dec, 20, 10),
        amount="4.00",
        kind="tcr_registration",
        description="TCR registration",
        msisdn=S1,
    )
    s.add(
        "adjustment.posted",
        at(dec, 21, 9),
        amount="0.50",
        reason="late fee",
        approved_by="finance-lead",
    )
    s.calls(dec, (S1, S_PORTED), 14, seed=150)
    s.data(dec, (S1, S_PORTED), 6, seed=160)
    # 2027-01
    s.add("cycle.started", "2027-01-01T05:00:00Z", period=jan)
    s.add(
        "data.used",
        at(dec, 30, 15),
        msisdn=S_PORTED,
        bytes=2 * MB,
        roaming=False,
    )  # late December data (B3)
    s.add("plan.autorenew_changed", at(jan, 2, 9), msisdn=S1, enabled=False)
    s.add("balance.recharged", at(jan, 2, 10), amount="25.00")
    s.add("package.unsubscribed", at(jan, 1, 12), msisdn=S1)  # data-5gb runs to 2 Jan (D7)
    s.calls(jan, (S1, S_PORTED), 14, seed=200)
    s.data(jan, (S1, S_PORTED), 8, seed=200)
    s.add(
        "plan.purchased", at(jan, 20, 9), msisdn=S_PORTED, plan_id="europe-500", channel="app_store"
    )
    s.calls(jan, (S_PORTED,), 10, seed=250)
    return s.events


def postpaid_history() -> list[dict[str, Any]]:
    """ACC-LONG-P (postpaid, UTC), three periods."""
    p = Stream(POSTPAID, "p")
    p.events.append(opened(POSTPAID, "postpaid", event_id="p-open"))
    nov, dec, jan = PERIODS
    # 2026-11
    p.add("number.added", at(nov, 1, 10), msisdn=P1)
    p.add("number.added", at(nov, 1, 11), msisdn=P2)
    p.add("plan.purchased", at(nov, 2, 9), msisdn=P1, plan_id="na-500", channel="portal")
    p.add("plan.purchased", at(nov, 2, 10), msisdn=P2, plan_id="europe-500", channel="portal")
    p.add("package.subscribed", at(nov, 2, 11), msisdn=P1, package_id="data-5gb")
    p.add("port_in.requested", at(nov, 3, 9), msisdn=P_NEW, ported_msisdn=P_PORTED)
    p.calls(nov, (P1, P2, P_NEW), 26, seed=7)
    p.data(nov, (P1, P2), 8, seed=7)
    p.add("port_in.failed", at(nov, 14, 9), msisdn=P_NEW, ported_msisdn=P_PORTED)
    p.add(
        "surcharge.applied",
        at(nov, 16, 9),
        amount="1.25",
        kind="carrier",
        description="Carrier surcharge",
    )
    p.add(
        "adjustment.posted",
        at(nov, 17, 9),
        amount="-2.00",
        reason="goodwill",
        approved_by="supervisor",
    )
    p.calls(nov, (P1, P_NEW), 10, seed=60)
    # 2026-12
    p.add("cycle.started", at(dec, 1, 0), period=dec)
    p.add(
        "call.completed",
        at(nov, 29, 18),
        msisdn=P2,
        destination=FR_LANDLINE,
        duration_seconds=61,
        call_id="p-late-call",
    )  # late November call (B3)
    p.add("package.changed", at(dec, 2, 9), msisdn=P1, package_id="data-unlimited")
    p.add("plan.changed", at(dec, 2, 10), msisdn=P2, plan_id="world-300")
    p.calls(dec, (P1, P2, P_NEW), 14, seed=120)
    p.data(dec, (P1, P2, P_NEW), 8, seed=120)
    p.add("port_out.completed", at(dec, 18, 9), msisdn=P_NEW)  # no request: fee at completion
    p.add(
        "surcharge.applied",
        at(dec, 19, 9),
        amount="4.00",
        kind="tcr_registration",
        description="TCR registration",
    )
    p.add(
        "adjustment.posted",
        at(dec, 21, 9),
        amount="3.00",
        reason="paper invoice",
        approved_by="supervisor",
    )
    p.calls(dec, (P1, P2), 14, seed=170)
    p.data(dec, (P1, P2), 6, seed=180)
    # 2027-01
    p.add("cycle.started", at(jan, 1, 0), period=jan)
    p.add("plan.autorenew_changed", at(jan, 2, 9), msisdn=P1, enabled=False)
    p.add("package.unsubscribed", at(jan, 2, 10), msisdn=P1)
    p.add("port_out.requested", at(jan, 3, 9), msisdn=P2)
    p.calls(jan, (P1, P2), 14, seed=220)
    p.data(jan, (P1, P2), 8, seed=220)
    p.add("port_out.completed", at(jan, 25, 9), msisdn=P2)
    p.calls(jan, (P1,), 10, seed=280)
    return p.events


def long_history() -> list[dict[str, Any]]:
    """The catalog, then both accounts' events interleaved (each account in its own order)."""
    prepaid, postpaid = prepaid_history(), postpaid_history()
    merged: list[dict[str, Any]] = [catalog_published()]
    for i in range(max(len(prepaid), len(postpaid))):
        merged += prepaid[i : i + 1] + postpaid[i : i + 1]
    return merged


@dataclass
class LongStore:
    url: str
    events: list[dict[str, Any]]
    # account -> the account's live views right after its 1st, 2nd, ... event
    checkpoints: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def long_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LongStore]:
    """The long history in a SQLite store, one event per batch, views caught up after each."""
    url = f"sqlite:///{tmp_path_factory.mktemp('long') / 'ledger.db'}"
    store = parse_store_url(url)
    app = LedgerApp(store)
    events = long_history()
    checkpoints: dict[str, list[dict[str, Any]]] = {PREPAID: [], POSTPAID: []}
    dead: list[DeadLetter] = []
    with open_view_store(store) as views:
        for position, doc in enumerate(events, start=1):
            record = RawRecord(position, json.dumps(doc).encode("utf-8"))
            counts = process_batch(app, "long-history", [record], dead.extend)
            assert counts.applied == 1, (doc, [d.reason for d in dead])
            catch_up(app, views)
            if doc["account_id"] in checkpoints:
                checkpoints[doc["account_id"]].append(shown_views(views, doc["account_id"]))
    app.close()
    yield LongStore(url, events, checkpoints)


def replay_json(store: str, account: str, *args: str) -> dict[str, Any]:
    return run_json("--store", store, "replay", account, *args)


# ---------------------------------------------------------------------------------------------
# R2 / R1: replay at every position equals the live views at that moment


def test_long_history_is_long_and_every_kind_of_event_is_in_it(long_store: LongStore) -> None:
    """The premise of the replay tests: a few hundred events, every kind of event issue 7 names, and
    views that really move (a replay that ignored positions could not pass)."""
    types = {doc["type"] for doc in long_store.events}
    assert {
        "call.completed",
        "data.used",
        "package.subscribed",
        "package.changed",
        "package.unsubscribed",
        "plan.purchased",
        "plan.changed",
        "plan.autorenew_changed",
        "cycle.started",
        "surcharge.applied",
        "adjustment.posted",
        "balance.recharged",
        "port_in.requested",
        "port_in.completed",
        "port_in.failed",
        "port_out.requested",
        "port_out.completed",
    } <= types
    assert len(long_store.events) >= 280
    for account in (PREPAID, POSTPAID):
        checkpoints = long_store.checkpoints[account]
        assert len(checkpoints) >= 120
        distinct = {json.dumps(c, sort_keys=True) for c in checkpoints}
        assert len(distinct) > len(checkpoints) // 2
        final = checkpoints[-1]
        # Three periods, the first two closed by the bill runs.
        assert final[f"invoices/{account}|2026-11"]["status"] == "closed"
        assert final[f"invoices/{account}|2026-12"]["status"] == "closed"
        assert final[f"invoices/{account}|2027-01"]["status"] == "open"


@pytest.mark.parametrize("account", [PREPAID, POSTPAID])
def test_R2_R1_replay_at_every_position_equals_the_live_views_after_that_event(
    long_store: LongStore, account: str
) -> None:
    """R2, R1: `replay ACCOUNT --position N` rebuilds exactly the views the live ledger had
    right after the account's N-th event (its opening is position 1), for every N."""
    checkpoints = long_store.checkpoints[account]
    for n, live in enumerate(checkpoints, start=1):
        doc = replay_json(long_store.url, account, "--position", str(n))
        assert (doc["account_id"], doc["position"], doc["as_of"]) == (account, n, None)
        assert doc["views"] == live, f"{account} position {n}"


def test_R2_replay_without_a_position_is_the_whole_account_and_beyond_the_end_too(
    long_store: LongStore,
) -> None:
    """R2: no --position replays every stored event; a position past the end is the end."""
    final = long_store.checkpoints[PREPAID][-1]
    count = len(long_store.checkpoints[PREPAID])
    whole = replay_json(long_store.url, PREPAID)
    assert (whole["position"], whole["views"]) == (count, final)
    beyond = replay_json(long_store.url, PREPAID, "--position", str(count + 50))
    assert (beyond["position"], beyond["views"]) == (count, final)


def test_R2_replay_to_a_position_reads_the_account_s_stream_only_that_far(
    long_store: LongStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R2: `replay ACCOUNT --position N` reads the account's first N stored events and no
    more: an early position of a busy account is not its whole stream read back."""
    read: list[int] = []  # how many of the account's events each read of its stream gave
    stream = account_stream_id(PREPAID)
    get = EventStore.get

    def counted(store: EventStore[Any], originator_id: Any, **bounds: Any) -> Iterator[Any]:
        events = list(get(store, originator_id, **bounds))
        if originator_id == stream:
            read.append(len(events))
        return iter(events)

    monkeypatch.setattr(EventStore, "get", counted)
    doc = replay_json(long_store.url, PREPAID, "--position", "3")
    assert (doc["position"], doc["views"]) == (3, long_store.checkpoints[PREPAID][2])
    assert read == [3]


def test_R2_replay_shows_the_balance_and_invoices_readably(long_store: LongStore) -> None:
    """R2: without --json, replay says the position and balance, and lists the documents."""
    final = long_store.checkpoints[PREPAID][-1]
    out = run("--store", long_store.url, "replay", PREPAID, "--position", "4").stdout
    # Opening, two numbers, recharge 150.00: the balance is the recharge.
    assert f"{PREPAID} replayed to position 4: balance 150.0000 USD" in out
    out = run("--store", long_store.url, "replay", PREPAID).stdout
    balance = final[f"balance/{PREPAID}"]["balance"]
    assert f"balance {balance} USD" in out
    assert "2026-11: closed" in out and "2027-01: open" in out


@pytest.mark.parametrize("account", [PREPAID, POSTPAID])
def test_R2_replay_json_shows_each_invoice_as_ledger_invoice_does(
    long_store: LongStore, account: str
) -> None:
    """R2: a replayed invoice reads as `ledger --json invoice` reads the live one: its lines
    by name, each with the ids of its charges, filed or latest. It showed the stored layout:
    lines as bare lists, and the charge ids in separate chunk documents by line number."""
    views = replay_json(long_store.url, account)["views"]
    assert not [key for key in views if key.startswith("invoice_charges/")]
    periods = ("2026-11", "2026-12", "2027-01")
    for period in periods:
        live = run_json("--store", long_store.url, "invoice", account, "--period", period)
        assert views[f"invoices/{account}|{period}"] == live, period
    lines = [line for period in periods for line in views[f"invoices/{account}|{period}"]["lines"]]
    assert all(isinstance(line, dict) and line["description"] for line in lines)
    # Every charge the account was charged is on one line of one invoice.
    charged = run_json("--store", long_store.url, "export", "charges", "--account", account)
    on_lines = [charge_id for line in lines for charge_id in line["charge_ids"]]
    assert sorted(on_lines) == sorted(c["charge_id"] for c in charged["charges"])
    busiest = max(
        len({c for ln in views[f"invoices/{account}|{p}"]["lines"] for c in ln["charge_ids"]})
        for p in periods
    )
    assert busiest > invoices.CHARGES_PER_CHUNK  # some of them were filed in chunks


# ---------------------------------------------------------------------------------------------
# R2: --as-of is the recorded time


def recorded_instants(url: str, account: str) -> list[Any]:
    app = LedgerApp(parse_store_url(url))
    try:
        return [stored.timestamp for stored in app.account_events(account)]  # type: ignore[attr-defined]
    finally:
        app.close()


def test_R2_as_of_a_recorded_instant_replays_the_events_recorded_by_then(
    long_store: LongStore,
) -> None:
    """R2: `--as-of INSTANT` replays the account's events the ledger had recorded by that
    instant: exactly the prefix up to the last event recorded at or before it."""
    checkpoints = long_store.checkpoints[PREPAID]
    recorded = recorded_instants(long_store.url, PREPAID)
    assert recorded == sorted(recorded) and len(set(recorded)) == len(recorded)
    for n in (1, 2, 5, 40, 77, len(recorded) - 1, len(recorded)):
        instant = instant_text(recorded[n - 1])
        doc = replay_json(long_store.url, PREPAID, "--as-of", instant)
        assert (doc["position"], doc["as_of"]) == (n, instant)
        assert doc["views"] == checkpoints[n - 1]
        # One microsecond earlier, the N-th event was not recorded yet.
        before = instant_text(recorded[n - 1] - timedelta(microseconds=1))
        earlier = replay_json(long_store.url, PREPAID, "--as-of", before)
        assert earlier["position"] == n - 1
        if n > 1:
            assert earlier["views"] == checkpoints[n - 2]


def test_R2_as_of_is_recorded_time_not_occurred_time(long_store: LongStore) -> None:
    """R2: the late November call (occurred 2026-11-28, recorded after the 2026-12 bill run)
    is not in a replay as of the bill run's recording, although it occurred before it."""
    events = [doc for doc in long_store.events if doc["account_id"] == PREPAID]
    cycle = next(i for i, doc in enumerate(events) if doc["type"] == "cycle.started")
    assert events[cycle + 1]["call_id"] == "s-late-call"
    recorded = recorded_instants(long_store.url, PREPAID)
    instant = instant_text(recorded[cycle])  # the bill run's recording (position cycle + 1)
    doc = replay_json(long_store.url, PREPAID, "--as-of", instant)
    assert doc["position"] == cycle + 1
    late_charge = f"{events[cycle + 1]['event_id']}:payg"
    assert late_charge not in invoiced_charges(doc["views"])
    later = replay_json(long_store.url, PREPAID, "--position", str(cycle + 2))
    assert late_charge in invoiced_charges(later["views"])


def test_R2_as_of_replays_a_prefix_even_when_a_recorded_time_was_moved(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The recorded time is not under the hash chain: one moved into 2030 in the store used to
    take that event out of the middle of an --as-of replay (a history that never existed).
    The replay now stops before it: every event after it is left out too."""
    ingest_events(tmp_path, sqlite_url, *c4_events())
    db = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    with closing(db):
        rows = db.execute(
            "select rowid, state from stored_events where topic like '%FactApplied%'"
        ).fetchall()
        moved = [(rowid, state) for rowid, state in rows if b'"event_id":"c4-gb-95"' in state]
        assert len(moved) == 1
        rowid, state = moved[0]
        tampered = re.sub(
            rb'"_data_":"[^"]+"', b'"_data_":"2030-01-01T00:00:00+00:00"', state, count=1
        )
        assert tampered != state
        db.execute("update stored_events set state = ? where rowid = ?", (tampered, rowid))
        db.commit()
    all_of_it = replay_json(sqlite_url, C4_ACC)["position"]
    doc = replay_json(sqlite_url, C4_ACC, "--as-of", "2029-01-01T00:00:00Z")
    events = [e["event_id"] for e in c4_events() if e["account_id"] == C4_ACC]
    # Its stream holds the account's events in this order: the replay stops before c4-gb-95
    # (it used to leave out that one alone, at position all_of_it - 1).
    assert doc["position"] == events.index("c4-gb-95") < all_of_it - 1


def invoiced_charges(views: dict[str, Any]) -> set[str]:
    """The ids of the charges on the replayed invoices' lines."""
    return {
        charge_id
        for key, doc in views.items()
        if key.startswith("invoices/")
        for line in doc["lines"]
        for charge_id in line["charge_ids"]
    }


def test_R2_position_and_as_of_together_is_an_error(long_store: LongStore) -> None:
    """R2, SPEC 12: --position and --as-of name two different points: one line, exit 1."""
    assert_one_line_error(
        long_store.url,
        "replay",
        PREPAID,
        "--position",
        "3",
        "--as-of",
        "2030-01-01T00:00:00Z",
        says="--position or --as-of",
    )


def test_R2_replay_of_an_unknown_account_is_an_error(long_store: LongStore) -> None:
    """R2, SPEC 12: an account with no stored events: one line naming it, exit 1."""
    assert_one_line_error(long_store.url, "replay", "ACC-NOBODY", says="unknown account ACC-NOBODY")


def test_R2_as_of_without_an_offset_is_an_error_naming_the_option(long_store: LongStore) -> None:
    """R2, T1, SPEC 12: an instant without a UTC offset is invalid input: one line, exit 1,
    naming the option the user typed (--as-of)."""
    for bad in ("2030-01-01T00:00:00", "yesterday"):
        assert_one_line_error(long_store.url, "replay", PREPAID, "--as-of", bad, says="--as-of")


def test_R2_as_of_before_the_account_existed_replays_nothing(long_store: LongStore) -> None:
    """R2: as of an instant before anything was recorded the account had no events yet."""
    doc = replay_json(long_store.url, PREPAID, "--as-of", "2000-01-01T00:00:00Z")
    assert (doc["position"], doc["views"]) == (0, {})
    text = run("--store", long_store.url, "replay", PREPAID, "--as-of", "2000-01-01T00:00:00Z")
    assert text.stdout.startswith(
        f"{PREPAID}: nothing was recorded by 2000-01-01T00:00:00Z (position 0, no views)"
    )


# ---------------------------------------------------------------------------------------------
# R1: byte-identical output, every run, on either backend


@pytest.mark.postgres
def test_R1_replay_json_is_byte_identical_across_runs_and_sqlite_and_postgres(
    long_store: LongStore, tmp_path: Path, postgres_url: str
) -> None:
    """R1: the same log gives byte-identical canonical JSON: run after run on SQLite (fed one
    event per batch) and on PostgreSQL (fed the same events as one file)."""
    ingest_events(tmp_path, postgres_url, *long_store.events)
    corrected = write_corrected_catalog(tmp_path)
    for account in (PREPAID, POSTPAID):
        count = len(long_store.checkpoints[account])
        for args in (
            (),
            ("--position", "1"),
            ("--position", str(count // 2)),
            ("--position", str(count - 1)),
            ("--catalog", str(corrected)),
        ):
            on_sqlite = run("--json", "--store", long_store.url, "replay", account, *args).stdout
            again = run("--json", "--store", long_store.url, "replay", account, *args).stdout
            on_postgres = run("--json", "--store", postgres_url, "replay", account, *args).stdout
            assert on_sqlite == again, (account, args)
            assert on_postgres == on_sqlite, (account, args)
        whole = json.loads(run("--json", "--store", postgres_url, "replay", account).stdout)
        assert whole["views"] == long_store.checkpoints[account][-1]
        # The what-if compared above is not trivially empty: +44 calls and home data change.
        what_if = replay_json(postgres_url, account, "--catalog", str(corrected))
        assert len(what_if["differences"]) >= 5


def test_R1_replay_json_is_canonical(long_store: LongStore) -> None:
    """R1: canonical JSON: keys sorted, no insignificant whitespace, money as strings."""
    out = run("--json", "--store", long_store.url, "replay", POSTPAID).stdout
    doc = json.loads(out)
    assert out.strip() == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert isinstance(doc["views"][f"invoices/{POSTPAID}|2026-11"]["total"], str)


# ---------------------------------------------------------------------------------------------
# R2 / C4: replay with a correcting catalog

C4_ACC = "ACC-C4"
C4_NUM = "+14155550301"


def write_corrected_catalog(tmp_path: Path) -> Path:
    """The default catalog corrected (C4): version 2026-01-b corrects 2026-01-a, with +44 at
    0.0100/min (was 0.0200), home data at 0.0400/MB (was 0.0500), roaming GB 1.3000/MB (was
    1.2000)."""
    text = default_catalog_path().read_text(encoding="utf-8")
    edits = [
        ('version = "2026-01-a"', 'version = "2026-01-b"\ncorrects = "2026-01-a"'),
        ('payg_per_mb = "0.0500"', 'payg_per_mb = "0.0400"'),
        ('GB = "1.2000"', 'GB = "1.3000"'),
    ]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    gb_landline = re.compile(
        r'(prefix = "\+44"[^\n]*\ncountry = "GB"\nper_minute = )"0\.0200"', re.MULTILINE
    )
    text, replaced = gb_landline.subn(r'\1"0.0100"', text)
    assert replaced == 1
    path = tmp_path / "corrected.toml"
    path.write_text(text, encoding="utf-8")
    return path


def c4_events() -> list[dict[str, Any]]:
    def call(event_id: str, at_: str, seconds: int, to: str) -> dict[str, Any]:
        return event(
            "call.completed",
            C4_ACC,
            at_,
            msisdn=C4_NUM,
            destination=to,
            duration_seconds=seconds,
            call_id=f"call-{event_id}",
            event_id=event_id,
        )

    return [
        catalog_published(),
        opened(C4_ACC, "prepaid", event_id="c4-open"),
        event("number.added", C4_ACC, "2026-11-01T09:30:00Z", msisdn=C4_NUM, event_id="c4-num"),
        event("balance.recharged", C4_ACC, "2026-11-01T10:00:00Z", amount="50.00", event_id="c4-r"),
        event(
            "plan.purchased",
            C4_ACC,
            "2026-11-02T09:00:00Z",
            msisdn=C4_NUM,
            plan_id="na-500",
            channel="portal",
            event_id="c4-plan",
        ),
        call("c4-gb-95", "2026-11-03T10:00:00Z", 95, GB_LANDLINE),
        call("c4-gb-30", "2026-11-04T10:00:00Z", 30, GB_LANDLINE),
        call("c4-us-61", "2026-11-05T10:00:00Z", 61, US),
        call("c4-fr-61", "2026-11-06T10:00:00Z", 61, FR_LANDLINE),
        event(
            "data.used",
            C4_ACC,
            "2026-11-07T10:00:00Z",
            msisdn=C4_NUM,
            bytes=2 * MB,
            roaming=False,
            event_id="c4-data",
        ),
        event(
            "data.used",
            C4_ACC,
            "2026-11-08T10:00:00Z",
            msisdn=C4_NUM,
            bytes=1 * MB,
            roaming=True,
            country="GB",
            event_id="c4-roam-gb",
        ),
        event(
            "data.used",
            C4_ACC,
            "2026-11-09T10:00:00Z",
            msisdn=C4_NUM,
            bytes=1 * MB,
            roaming=True,
            country="FR",
            event_id="c4-roam-fr",
        ),
        event(
            "surcharge.applied",
            C4_ACC,
            "2026-11-10T10:00:00Z",
            amount="0.75",
            kind="carrier",
            description="Carrier surcharge",
            event_id="c4-sur",
        ),
    ]


# The charges that change under 2026-01-b, worked out by hand (charged -> re-rated):
C4_DIFFERENCES = {
    # 95 s to +44 -> 2 started minutes: 2 x 0.0200 = 0.0400 -> 2 x 0.0100 = 0.0200
    "c4-gb-95:payg": ("payg_call", "0.0400", "0.0200", "-0.0200"),
    # 30 s to +44 -> 1 started minute: 0.0200 -> 0.0100
    "c4-gb-30:payg": ("payg_call", "0.0200", "0.0100", "-0.0100"),
    # 2,000,000 B home, no package: 2 MB x 0.0500 = 0.1000 -> 2 MB x 0.0400 = 0.0800
    "c4-data:payg": ("payg_data", "0.1000", "0.0800", "-0.0200"),
    # 1,000,000 B roaming in GB: 1 MB x 1.2000 = 1.2000 -> 1 MB x 1.3000 = 1.3000
    "c4-roam-gb:roaming": ("roaming_data", "1.2000", "1.3000", "0.1000"),
}
# Unchanged, so not listed: the plan fee 9.99, the US call (plan minutes, no charge), 61 s to
# +33 (2 x 0.0250 = 0.0500), roaming in FR (1.5000) and the surcharge 0.75.
# total difference = -0.0200 - 0.0100 - 0.0200 + 0.1000 = 0.0500
C4_TOTAL = "0.0500"


def test_R2_C4_replay_with_a_correcting_catalog_lists_exactly_the_changed_charges(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R2, C4: `replay --catalog corrected.toml` re-rates every fact under the correction and
    lists exactly the charges whose amounts change, with charged, re-rated, difference and
    both catalog versions, and the total difference."""
    ingest_events(tmp_path, sqlite_url, *c4_events())
    corrected = write_corrected_catalog(tmp_path)
    doc = replay_json(sqlite_url, C4_ACC, "--catalog", str(corrected))
    assert (doc["account_id"], doc["catalog"], doc["unrated"]) == (C4_ACC, "2026-01-b", [])
    got = {
        d["charge_id"]: (d["kind"], d["charged"], d["rerated"], d["difference"])
        for d in doc["differences"]
    }
    assert got == C4_DIFFERENCES
    for d in doc["differences"]:
        assert (d["charged_under"], d["rerated_under"]) == ("2026-01-a", "2026-01-b")
        assert d["event_id"] == d["charge_id"].split(":")[0]
        assert d["rerated_arithmetic"]
    assert doc["total_difference"] == C4_TOTAL
    # Nothing was credited yet: a dispute would credit each overcharge, never the roaming
    # undercharge: 0.0200 + 0.0100 + 0.0200 = 0.0500.
    assert [(d["credited"], d["still_owed"]) for d in doc["differences"]] == [
        ("0.0000", "0.0200"),
        ("0.0000", "0.0100"),
        ("0.0000", "0.0200"),
        ("0.0000", "0.0000"),
    ]
    assert doc["total_still_owed"] == "0.0500"
    assert sum((Decimal(d["difference"]) for d in doc["differences"]), Decimal(0)) == Decimal(
        C4_TOTAL
    )


def test_R2_C4_replay_with_a_catalog_is_byte_identical_and_readable(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R1, R2: the what-if output is the same bytes on every run; the text lists each charge."""
    ingest_events(tmp_path, sqlite_url, *c4_events())
    corrected = write_corrected_catalog(tmp_path)
    args = ("--json", "--store", sqlite_url, "replay", C4_ACC, "--catalog", str(corrected))
    first = run(*args).stdout
    assert run(*args).stdout == first
    text = run("--store", sqlite_url, "replay", C4_ACC, "--catalog", str(corrected)).stdout
    for charge_id in C4_DIFFERENCES:
        assert charge_id in text
    assert "c4-fr-61" not in text
    assert "2026-01-a -> 2026-01-b" in text
    for row in text.splitlines()[1 : 1 + len(C4_DIFFERENCES)]:  # M2: amounts to 4 places
        amounts = row.split()[2:5]
        assert all(a == "-" or re.fullmatch(r"-?\d+\.\d{4}", a) for a in amounts), row
    assert f"total difference {C4_TOTAL}; still owed back 0.0500" in text


@pytest.mark.parametrize(
    ("edits", "why"),
    [
        (
            [
                ('version = "2026-01-a"', 'version = "eur-1"'),
                ('currency = "USD"', 'currency = "EUR"'),
            ],
            "it prices EUR and the account is billed in USD",
        ),
        (
            [
                ('version = "2026-01-a"', 'version = "2030-a"'),
                (
                    'effective_from = "2026-01-01T00:00:00Z"',
                    'effective_from = "2030-01-01T00:00:00Z"',
                ),
            ],
            "it takes effect at 2030-01-01T00:00:00Z, after the account's last fact "
            "(2026-11-10T10:00:00Z)",
        ),
    ],
    ids=["other-currency", "after-every-fact"],
)
def test_R2_replay_with_a_catalog_that_cannot_apply_says_why_nothing_changes(
    tmp_path: Path, sqlite_url: str, edits: list[tuple[str, str]], why: str
) -> None:
    """A finance user who picked the wrong file reads why, not a bare "no change"."""
    ingest_events(tmp_path, sqlite_url, *c4_events())
    text = default_catalog_path().read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    other = tmp_path / "other.toml"
    other.write_text(text, encoding="utf-8")
    shown = run("--store", sqlite_url, "replay", C4_ACC, "--catalog", str(other)).stdout
    version = "eur-1" if "EUR" in why else "2030-a"
    assert shown.splitlines()[0] == f"no charge of {C4_ACC} changes under {version}: {why}"


def test_R2_C4_replay_with_a_catalog_stores_nothing(tmp_path: Path, sqlite_url: str) -> None:
    """R2, C4: the re-rating is a what-if: the original charges stay as they were (C4); the
    balance, history, invoice and stored events are unchanged and the audit still adds up."""
    ingest_events(tmp_path, sqlite_url, *c4_events())
    corrected = write_corrected_catalog(tmp_path)

    def snapshot() -> tuple[Any, ...]:
        return (
            run("--json", "--store", sqlite_url, "balance", C4_ACC).stdout,
            run("--json", "--store", sqlite_url, "history", C4_ACC).stdout,
            run("--json", "--store", sqlite_url, "invoice", C4_ACC).stdout,
            run("--json", "--store", sqlite_url, "replay", C4_ACC).stdout,
            stored_rows(sqlite_url),
        )

    before = snapshot()
    # 50.00 - 0.0400 - 0.0200 - 0.0500 - 0.1000 - 1.2000 - 1.5000 (the plan fee and surcharge
    # are paid through the payment method, I3) = 47.0900
    assert json.loads(before[0])["balance"] == "47.0900"
    replay_json(sqlite_url, C4_ACC, "--catalog", str(corrected))
    replay_json(sqlite_url, C4_ACC, "--catalog", str(corrected), "--position", "7")
    assert snapshot() == before
    audit = run_json("--store", sqlite_url, "audit")
    assert (audit["adds_up"], audit["findings"]) == (True, [])


def test_R2_C4_replay_with_a_catalog_up_to_a_position_rerates_only_that_prefix(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R2: --position with --catalog re-rates the first N events only: through the 95 s
    call to +44 (position 5: opening, number, recharge, plan, call) one charge differs."""
    ingest_events(tmp_path, sqlite_url, *c4_events())
    corrected = write_corrected_catalog(tmp_path)
    doc = replay_json(sqlite_url, C4_ACC, "--catalog", str(corrected), "--position", "5")
    assert doc["position"] == 5
    assert [d["charge_id"] for d in doc["differences"]] == ["c4-gb-95:payg"]
    assert doc["total_difference"] == "-0.0200"


# ---------------------------------------------------------------------------------------------
# R3: audit


def test_R3_audit_of_an_untouched_long_store_adds_up(long_store: LongStore) -> None:
    """R3, G2: on the untouched store the whole-ledger audit and each account's audit exit 0:
    chains intact, every view equals a replay, intake adds up."""
    doc = run_json("--store", long_store.url, "audit")
    assert (doc["scope"], doc["adds_up"], doc["findings"]) == ("all", True, [])
    assert doc["chains"] == {"streams": 3, "findings": []}  # two accounts and the catalog
    assert doc["views"]["findings"] == []
    assert doc["intake"]["adds_up"] is True
    assert doc["intake"]["ledger_events"] == len(long_store.events)
    for account in (PREPAID, POSTPAID):
        own = run_json("--store", long_store.url, "audit", account)
        assert (own["scope"], own["adds_up"], own["findings"]) == (account, True, [])
        assert own["chains"] == {"streams": 1, "findings": []}
        with open_view_store(parse_store_url(long_store.url)) as views:
            assert own["views"]["documents"] == len(view_documents(views, account))
        assert "intake" not in own
        own_text = run("--store", long_store.url, "audit", account).stdout.splitlines()
        assert own_text[0] == "chains: 1 stream, intact"
    text = run("--store", long_store.url, "audit").stdout
    assert "adds up" in text and "DOES NOT ADD UP" not in text
    assert text.splitlines()[0] == "chains: 3 streams, intact"


def test_R3_audit_of_an_unknown_account_is_an_error(long_store: LongStore) -> None:
    """R3, SPEC 12: auditing an account the ledger does not know: one line, exit 1."""
    assert_one_line_error(long_store.url, "audit", "ACC-NOBODY", says="ACC-NOBODY")


# Tampering: a small store with the tampered account and a bystander.
TAMPERED = "ACC-T"
BYSTANDER = "ACC-U"
T_NUM = "+14155550401"
U_NUM = "+14155550402"


def tamper_events() -> list[dict[str, Any]]:
    """ACC-T (prepaid): opening (1), number (2), recharge 20.00 (3), recharge 5.00 (4),
    call 95 s to +44 = 2 x 0.0200 = 0.0400 (5), call 61 s to +33 = 2 x 0.0250 = 0.0500 (6),
    recharge 1.00 (7): balance 25.9100. ACC-U: a bystander with a recharge."""

    def call(event_id: str, at_: str, seconds: int, to: str) -> dict[str, Any]:
        return event(
            "call.completed",
            TAMPERED,
            at_,
            msisdn=T_NUM,
            destination=to,
            duration_seconds=seconds,
            call_id=f"call-{event_id}",
            event_id=event_id,
        )

    return [
        catalog_published(),
        opened(TAMPERED, "prepaid", event_id="t-open"),
        opened(BYSTANDER, "prepaid", event_id="u-open"),
        event("number.added", TAMPERED, "2026-11-01T09:30:00Z", msisdn=T_NUM, event_id="t-num"),
        event("number.added", BYSTANDER, "2026-11-01T09:30:00Z", msisdn=U_NUM, event_id="u-num"),
        event(
            "balance.recharged", TAMPERED, "2026-11-01T10:00:00Z", amount="20.00", event_id="t-r1"
        ),
        event(
            "balance.recharged", TAMPERED, "2026-11-01T11:00:00Z", amount="5.00", event_id="t-r2"
        ),
        event(
            "balance.recharged", BYSTANDER, "2026-11-01T10:00:00Z", amount="9.00", event_id="u-r1"
        ),
        call("t-call-gb", "2026-11-03T10:00:00Z", 95, GB_LANDLINE),
        call("t-call-fr", "2026-11-04T10:00:00Z", 61, FR_LANDLINE),
        event(
            "balance.recharged", TAMPERED, "2026-11-05T10:00:00Z", amount="1.00", event_id="t-r3"
        ),
    ]


def tamper_store(tmp_path: Path, url: str) -> sqlite3.Connection:
    ingest_events(tmp_path, url, *tamper_events())
    assert run_json("--store", url, "balance", TAMPERED)["balance"] == "25.9100"
    assert run_json("--store", url, "audit")["adds_up"] is True
    return sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)


def stored_rows(url: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(url[len("sqlite:///") :]) as db:
        return db.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "ORDER BY rowid"
        ).fetchall()


def stream(account: str) -> str:
    return account_stream_id(account).hex


def state_of(db: sqlite3.Connection, account: str, version: int) -> dict[str, Any]:
    row = db.execute(
        "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
        (stream(account), version),
    ).fetchone()
    assert row is not None, (account, version)
    state: dict[str, Any] = json.loads(row[0])
    return state


def write_state(db: sqlite3.Connection, account: str, version: int, state: dict[str, Any]) -> None:
    changed = db.execute(
        "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
        (json.dumps(state, separators=(",", ":")).encode("utf-8"), stream(account), version),
    ).rowcount
    assert changed == 1


def audit_fails(url: str, *scope: str) -> dict[str, Any]:
    """Run the audit, which must exit 1: the JSON findings, and the text naming them too."""
    doc = run_json("--store", url, "audit", *scope, expect=1)
    assert doc["adds_up"] is False
    assert doc["findings"], doc
    text = run("--store", url, "audit", *scope, expect=1).stdout
    assert "DOES NOT ADD UP" in text
    for finding in doc["findings"]:
        assert finding in text
    return doc


def test_R3_changed_amount_in_a_stored_event_is_caught_by_the_chain_and_the_views(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R3: the +44 call's charge changed in the store from 0.0400 to 0.0100 (and its balance
    delta with it): its link of the hash chain no longer matches, and the views (built from
    what was applied) differ from a replay of the tampered log; both findings name ACC-T."""
    db = tamper_store(tmp_path, sqlite_url)
    state = state_of(db, TAMPERED, 5)
    assert state["fact"]["event_id"] == "t-call-gb"
    outcome = state["outcome"]
    assert (outcome["charges"][0]["amount"], outcome["balance_delta"]) == ("0.0400", "-0.0400")
    outcome["charges"][0]["amount"] = "0.0100"
    outcome["balance_delta"] = "-0.0100"
    write_state(db, TAMPERED, 5, state)
    db.close()

    for scope in ((), (TAMPERED,)):
        doc = audit_fails(sqlite_url, *scope)
        chain = doc["chains"]["findings"]
        assert len(chain) == 1, chain
        assert f"account {TAMPERED}" in chain[0]
        assert "t-call-gb" in chain[0] and "version 5" in chain[0]
        assert "hash chain" in chain[0]
        views = doc["views"]["findings"]
        assert f"view balance/{TAMPERED} differs from a replay in balance" in views
        assert all(TAMPERED in finding for finding in doc["findings"])
    # The bystander's own audit is clean.
    assert run_json("--store", sqlite_url, "audit", BYSTANDER)["adds_up"] is True


def test_R3_changed_fact_in_a_stored_event_is_caught_by_the_chain(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R3: a recharge's amount changed inside its stored fact (20.00 -> 200.00) breaks the
    chain at that event even though its outcome was left alone."""
    db = tamper_store(tmp_path, sqlite_url)
    state = state_of(db, TAMPERED, 3)
    assert (state["fact"]["event_id"], state["fact"]["amount"]) == ("t-r1", "20.00")
    state["fact"]["amount"] = "200.00"
    write_state(db, TAMPERED, 3, state)
    db.close()
    doc = audit_fails(sqlite_url, TAMPERED)
    assert len(doc["chains"]["findings"]) == 1
    assert "t-r1" in doc["chains"]["findings"][0]
    assert f"account {TAMPERED}" in doc["chains"]["findings"][0]


def test_R3_deleted_event_is_caught_and_named(tmp_path: Path, sqlite_url: str) -> None:
    """R3: the 5.00 recharge (version 4) deleted from the middle of ACC-T's stream: the audit
    finds versions 4-4 missing before the next event, and the views no longer equal a
    replay (the balance lost 5.00); the whole-ledger audit also finds the intake short."""
    db = tamper_store(tmp_path, sqlite_url)
    assert state_of(db, TAMPERED, 4)["fact"]["event_id"] == "t-r2"
    deleted = db.execute(
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 4",
        (stream(TAMPERED),),
    ).rowcount
    assert deleted == 1
    db.close()

    own = audit_fails(sqlite_url, TAMPERED)
    chain = own["chains"]["findings"]
    assert any(
        f"account {TAMPERED}" in f and "versions 4-4" in f and "missing" in f and "t-call-gb" in f
        for f in chain
    ), chain
    assert f"view balance/{TAMPERED} differs from a replay in balance" in own["views"]["findings"]
    whole = audit_fails(sqlite_url)
    assert any("versions 4-4" in f and TAMPERED in f for f in whole["findings"])
    assert whole["intake"]["adds_up"] is False
    assert run_json("--store", sqlite_url, "audit", BYSTANDER)["adds_up"] is True


def test_R3_swapped_events_break_the_chain(tmp_path: Path, sqlite_url: str) -> None:
    """R3: the states of two consecutive events of ACC-T swapped in the store (the two
    recharges, versions 3 and 4): the balance is the same either way, but the chain breaks at
    both and the audit names the account and both events."""
    db = tamper_store(tmp_path, sqlite_url)
    third, fourth = state_of(db, TAMPERED, 3), state_of(db, TAMPERED, 4)
    assert (third["fact"]["event_id"], fourth["fact"]["event_id"]) == ("t-r1", "t-r2")
    write_state(db, TAMPERED, 3, fourth)
    write_state(db, TAMPERED, 4, third)
    db.close()

    for scope in ((), (TAMPERED,)):
        doc = audit_fails(sqlite_url, *scope)
        chain = doc["chains"]["findings"]
        assert any("t-r2" in f and "version 3" in f for f in chain), chain
        assert any("t-r1" in f and "version 4" in f for f in chain), chain
        assert all(f"account {TAMPERED}" in f and "hash chain" in f for f in chain), chain
    assert run_json("--store", sqlite_url, "balance", TAMPERED)["balance"] == "25.9100"


def test_R3_swapped_calls_break_the_chain(tmp_path: Path, sqlite_url: str) -> None:
    """R3: two consecutive calls (versions 5 and 6) swapped: caught the same way."""
    db = tamper_store(tmp_path, sqlite_url)
    fifth, sixth = state_of(db, TAMPERED, 5), state_of(db, TAMPERED, 6)
    write_state(db, TAMPERED, 5, sixth)
    write_state(db, TAMPERED, 6, fifth)
    db.close()
    doc = audit_fails(sqlite_url, TAMPERED)
    chain = doc["chains"]["findings"]
    assert "t-call-fr" in chain[0] and "version 5" in chain[0], chain
    assert "t-call-gb" in chain[1] and "version 6" in chain[1], chain
    assert all(f"account {TAMPERED}" in f and "hash chain" in f for f in chain), chain


def test_R3_edited_view_document_differs_from_a_replay(tmp_path: Path, sqlite_url: str) -> None:
    """R3: the balance view of ACC-T edited in the ledger_views table (25.9100 -> 999.0000):
    the chains are intact, but the view differs from a fresh replay, named in the finding."""
    db = tamper_store(tmp_path, sqlite_url)
    row = db.execute(
        "SELECT doc FROM ledger_views WHERE view = 'balance' AND key = ?", (TAMPERED,)
    ).fetchone()
    doc_ = json.loads(row[0])
    assert doc_["balance"] == "25.9100"
    doc_["balance"] = "999.0000"
    db.execute(
        "UPDATE ledger_views SET doc = ? WHERE view = 'balance' AND key = ?",
        (json.dumps(doc_), TAMPERED),
    )
    db.close()

    for scope in ((), (TAMPERED,)):
        doc = audit_fails(sqlite_url, *scope)
        assert doc["chains"]["findings"] == []
        assert doc["views"]["findings"] == [
            f"view balance/{TAMPERED} differs from a replay in balance"
        ]
    assert run_json("--store", sqlite_url, "audit", BYSTANDER)["adds_up"] is True


def test_R3_deleted_view_document_is_found_missing(tmp_path: Path, sqlite_url: str) -> None:
    """R3: a view document removed from ledger_views is named as missing."""
    db = tamper_store(tmp_path, sqlite_url)
    deleted = db.execute(
        "DELETE FROM ledger_views WHERE view = 'invoices' AND key = ?", (f"{TAMPERED}|2026-11",)
    ).rowcount
    assert deleted == 1
    db.close()
    doc = audit_fails(sqlite_url, TAMPERED)
    assert doc["views"]["findings"] == [
        f"view invoices/{TAMPERED}|2026-11 is missing (a replay of the log has it)"
    ]


def test_R3_deleted_newest_event_is_caught_by_the_views(tmp_path: Path, sqlite_url: str) -> None:
    """R3: deleting the newest event (the 1.00 recharge, version 7) leaves no gap in the
    versions, but the views still hold it, so they differ from a replay; the whole-ledger
    audit also counts one applied record more than the ledger events stored (G2)."""
    db = tamper_store(tmp_path, sqlite_url)
    assert state_of(db, TAMPERED, 7)["fact"]["event_id"] == "t-r3"
    db.execute(
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 7",
        (stream(TAMPERED),),
    )
    db.close()
    own = audit_fails(sqlite_url, TAMPERED)
    assert f"view balance/{TAMPERED} differs from a replay in balance" in own["views"]["findings"]
    whole = audit_fails(sqlite_url)
    assert "11 records applied by the sources but 10 ledger events stored" in whole["findings"]


def test_R3_event_moved_to_another_account_is_named(tmp_path: Path, sqlite_url: str) -> None:
    """R3: ACC-T's newest event (t-r3) moved into ACC-U's stream (as its version 4): the
    audit names the stream it sits in and the account it belongs to."""
    db = tamper_store(tmp_path, sqlite_url)
    db.execute(
        "UPDATE stored_events SET originator_id = ?, originator_version = 4 "
        "WHERE originator_id = ? AND originator_version = 7",
        (stream(BYSTANDER), stream(TAMPERED)),
    )
    db.close()
    doc = audit_fails(sqlite_url)
    assert (
        f"account {BYSTANDER}: event t-r3 at version 4 belongs to account {TAMPERED}"
        in doc["chains"]["findings"]
    )
    assert audit_fails(sqlite_url, BYSTANDER)["chains"]["findings"]


def test_R3_changed_opening_is_caught_and_named(tmp_path: Path, sqlite_url: str) -> None:
    """R3: the account's opening changed in the store (billing mode prepaid -> postpaid):
    the audit must report it as a finding, naming the account and the event, and exit 1,
    not fail with a traceback while rebuilding views from the tampered log."""
    db = tamper_store(tmp_path, sqlite_url)
    state = state_of(db, TAMPERED, 1)
    assert state["fact"]["billing_mode"] == "prepaid"
    state["fact"]["billing_mode"] = "postpaid"
    write_state(db, TAMPERED, 1, state)
    db.close()
    for scope in ((), (TAMPERED,)):
        doc = audit_fails(sqlite_url, *scope)
        assert any(
            f"account {TAMPERED}" in f and "t-open" in f and "version 1" in f
            for f in doc["chains"]["findings"]
        ), doc["findings"]
