"""Properties of invoices and statements over random streams (I1, I2, I3, B3, M2, G1, R1).

Each example is a prepaid and a postpaid account (each in UTC, America/Los_Angeles or
Asia/Tokyo) with two numbers, and a random stream per account mixing everything that moves
money or numbers: plan purchases, changes and autorenew switches; calls to covered and
uncovered destinations; package subscriptions, changes and removals; home and roaming data;
recharges; surcharges and TCR fees; adjustments (debits and credits, to 4 places); port-ins
requested, completed and failed; port-outs requested and completed; blocks and unblocks;
calls recorded twice and disputes of the account's charges (credited or denied, F1);
quiet spells; period starts (`cycle.started`: increasing periods, sometimes one skipped,
sometimes logged after records of later periods, sometimes repeated); events delivered twice;
and late records (calls, data, plan and package purchases, fees, adjustments, recharges,
port-out requests) whose `occurred_at` lies in a period an earlier `cycle.started` has
already closed, some from before the account was opened. The two streams are interleaved at
random, each keeping its own order (T2); in some examples both number their events alike
(`event_id` is unique per account only).

The streams are built with a small model of each account's numbers (which exist, which have a
port-in pending) and its stream rated so far, so every record names a number the account
holds, every dispute a charge it holds, and nothing is dead-lettered; rules may still reject
some records (a second plan, a package the balance cannot buy, a port-in that is not
pending), which must move no money.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.account import MAX_PORTED_IN_KEPT, Account
from ledger.ids import account_stream_id
from ledger.instants import instant_text, next_period, parse_instant, period_of, period_start
from projections.invoices import read_invoices
from projections.projection import Projection, Projections, ViewChanges
from projections.runner import default_projections, project, rebuild
from projections.store import MemoryViewStore
from tests.factories import catalog_published
from tests.harness import Ledger

PREPAID, POSTPAID = "ACC-BPRE", "ACC-BPOST"
OPENED_AT = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
TIMEZONES = ("UTC", "America/Los_Angeles", "Asia/Tokyo")
NUMBERS = ("+14155550101", "+14155550102")

DESTINATIONS = (
    "+12125550100",  # US 0.0150/60 s   (na-500, na-500-yearly, na-unlimited, world-300)
    "+14165550100",  # CA 0.0200/60 s   (na-500, na-500-yearly, na-unlimited, world-300)
    "+18765550100",  # JM 0.1500/60 s   (no plan)
    "+447700900123",  # GB 0.0800/60 s  (europe-500, world-300)
    "+525512345678",  # MX 0.0300/30 s  (mexico-500, world-300)
    "+919812345678",  # IN 0.0150/1 s   (india-300, world-300)
    "+639171234567",  # PH 0.1800/60 s  (philippines-100)
)
PLANS = (
    "na-500",
    "na-500-yearly",
    "na-unlimited",
    "mexico-500",
    "europe-500",
    "world-300",
    "philippines-100",
)
PACKAGES = ("data-1gb", "data-5gb", "data-10gb", "data-unlimited")
COUNTRIES = ("FR", "GB", "CA", "JP")  # JP is not listed: the default roaming rate

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MONEY_4 = re.compile(r"^-?\d+\.\d{4}$")
MONEY_2 = re.compile(r"^-?\d+\.\d{2}$")

# ---------------------------------------------------------------------------------------------
# Streams

number_index = st.integers(0, 5)  # taken modulo the numbers the account holds at the time
pause = st.integers(1, 3 * 24 * 60)  # minutes since the previous event
duration = st.one_of(st.integers(0, 4000), st.integers(1000, 4000))
size = st.one_of(
    st.integers(0, 3_000_000_000),
    st.integers(0, 20_000_000),
    st.sampled_from((0, 1, 999_999, 1_000_000, 1_000_000_000)),
)
# Amounts in ten-thousandths, so lines have sums whose third and fourth places matter (M2).
small_amount = st.one_of(st.integers(1, 20_000), st.sampled_from((1, 49, 50, 51, 5_000, 4_999)))

# Records that may arrive on time or late (B3): usage, purchases, fees, money.
RECORDS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "call": st.tuples(st.just("call"), number_index, st.sampled_from(DESTINATIONS), duration),
    "data": st.tuples(st.just("data"), number_index, size, st.none()),
    "roam": st.tuples(st.just("data"), number_index, size, st.sampled_from(COUNTRIES)),
    "purchase": st.tuples(st.just("purchase"), number_index, st.sampled_from(PLANS), st.booleans()),
    "subscribe": st.tuples(st.just("subscribe"), number_index, st.sampled_from(PACKAGES)),
    "surcharge": st.tuples(
        st.just("surcharge"),
        st.sampled_from(("carrier", "tcr_registration")),
        small_amount,
        st.one_of(st.none(), number_index),
    ),
    "adjustment": st.tuples(
        st.just("adjustment"), small_amount, st.sampled_from((1, -1)), st.integers(0, 2)
    ),
    "recharge": st.tuples(st.just("recharge"), st.integers(1, 500_000)),
    "port_out_request": st.tuples(st.just("port_out_request"), number_index),
    # Plan and package instructions (V7, V8, D6): late ones correct what the bill runs since
    # did (T2).
    "plan_change": st.tuples(st.just("plan_change"), number_index, st.sampled_from(PLANS)),
    "plan_autorenew": st.tuples(st.just("plan_autorenew"), number_index, st.booleans()),
    "package_switch": st.tuples(st.just("package_switch"), number_index, st.sampled_from(PACKAGES)),
}
OPERATIONS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    # A record of the present, some minutes after the previous one.
    **{kind: st.tuples(st.just("now"), record, pause) for kind, record in RECORDS.items()},
    # A record of a period already closed, arriving now (B3).
    "late": st.tuples(
        st.just("late"),
        st.sampled_from(tuple(RECORDS)).flatmap(RECORDS.__getitem__),
        st.integers(1, 40 * 86_400),  # seconds before the current period's start
    ),
    "change": st.tuples(st.just("change"), number_index, st.sampled_from(PLANS)),
    "autorenew": st.tuples(st.just("autorenew"), number_index, st.booleans()),
    "package_change": st.tuples(st.just("package_change"), number_index, st.sampled_from(PACKAGES)),
    "unsubscribe": st.tuples(st.just("unsubscribe"), number_index),
    "port_in_request": st.tuples(st.just("port_in_request")),
    # Mostly a port-in that is pending; sometimes one that is not (rejected, P1).
    "port_in_complete": st.tuples(
        st.just("port_in_complete"), number_index, st.sampled_from((True, True, True, False))
    ),
    "port_in_fail": st.tuples(st.just("port_in_fail"), number_index),
    "port_out_complete": st.tuples(st.just("port_out_complete"), number_index),
    "block": st.tuples(st.just("block"), st.booleans()),
    "wait": st.tuples(st.just("wait"), st.integers(1, 20 * 24 * 60)),
    # One period on (mostly), two (the bill run of a period skipped), or the same period again
    # (a repeated bill run: rejected, nothing moves).
    # Sometimes the bill run is logged late, after records of later periods (the clock is
    # past its period): it still starts the period it names, unless `catch_up` says it starts
    # the clock's period instead.
    "cycle": st.tuples(
        st.just("cycle"),
        st.sampled_from((1, 1, 1, 1, 2, 0)),
        st.sampled_from((True, True, True, False)),  # catch_up
    ),
    # An earlier event of the account delivered again: a duplicate (G1), nothing moves.
    "resend": st.tuples(st.just("resend"), st.integers(0, 200)),
    # A call the network recorded twice: a second event of the same call, charged again, and
    # often disputed at once (credited in full when it was charged, F1).
    "double_call": st.tuples(st.just("double_call"), st.integers(0, 200), st.booleans()),
    # A dispute of a charge the account holds: credited (a double-recorded call) or denied,
    # once; the same charge disputed again is denied (F1).
    "refund": st.tuples(st.just("refund"), st.integers(0, 200)),
}
# Drawn by kind: usage, fees and period starts most often.
KINDS: tuple[str, ...] = ("call",) * 4 + ("data",) * 3 + ("roam", "surcharge", "adjustment")
KINDS += ("recharge", "recharge", "purchase", "purchase", "change", "autorenew")
KINDS += ("subscribe", "subscribe", "package_change", "unsubscribe")
KINDS += ("port_in_request", "port_in_request", "port_in_complete", "port_in_fail")
KINDS += ("port_out_request", "port_out_complete", "block", "wait", "resend")
KINDS += ("cycle", "cycle", "cycle", "late", "late", "late")
KINDS += ("double_call", "double_call", "double_call", "refund", "refund")
operation = st.sampled_from(KINDS).flatmap(OPERATIONS.__getitem__)


@dataclass(frozen=True)
class Scenario:
    prepaid_timezone: str
    postpaid_timezone: str
    opening_balance: int  # cents
    prepaid_ops: tuple[tuple[Any, ...], ...]
    postpaid_ops: tuple[tuple[Any, ...], ...]
    interleaving: tuple[int, ...]  # 0: next prepaid event, 1: next postpaid event
    shared_ids: bool  # both accounts number their events ev-0, ev-1, ... (G1: per account)


scenarios = st.builds(
    Scenario,
    st.sampled_from(TIMEZONES),
    st.sampled_from(TIMEZONES),
    st.one_of(st.just(0), st.integers(0, 10_000)),
    st.lists(operation, min_size=10, max_size=50).map(tuple),
    st.lists(operation, min_size=10, max_size=50).map(tuple),
    st.lists(st.integers(0, 1), max_size=120).map(tuple),
    st.booleans(),
)


def money(units: int) -> str:
    """Ten-thousandths as a decimal string with 4 places."""
    return f"{Decimal(units) / 10_000:.4f}"


@dataclass
class StreamBuilder:
    """One account's stream, with just enough of a model to name only numbers it holds."""

    account_id: str
    mode: str
    timezone: str
    id_prefix: str
    events: list[dict[str, Any]] = field(default_factory=list)
    now: datetime = OPENED_AT
    started: str = ""  # the latest started period (the opening period at first)
    numbers: list[str] = field(default_factory=list)
    pending_in: dict[str, str] = field(default_factory=dict)  # new number -> ported number
    # New numbers port-ins completed on -> (the ported number, the completion), oldest first.
    replaced: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    fresh: int = 0
    # The account's stream rated so far: refunds name only charges it holds (an unknown one
    # would be dead-lettered). Fed the new events at each refund; later events never change
    # the charges of earlier ones.
    oracle: Ledger | None = None
    rated: int = 0

    def __post_init__(self) -> None:
        self.started = period_of(OPENED_AT, self.timezone)

    def add(self, type_: str, at: datetime | None = None, **fields: Any) -> None:
        self.events.append(
            {
                "event_id": f"{self.id_prefix}-{len(self.events)}",
                "type": type_,
                "account_id": self.account_id,
                "occurred_at": instant_text(self.now if at is None else at),
                "schema_version": 1,
                **fields,
            }
        )

    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    def number(self, index: int) -> str | None:
        return self.numbers[index % len(self.numbers)] if self.numbers else None

    def usage_number(self, index: int, at: datetime | None) -> str | None:
        """The number a usage record names: one the account holds, or for a late record, also
        a port-in's new number replaced after its date (P1: rated on the ported number)."""
        if at is None:
            return self.number(index)
        named = self.numbers + [new for new in self.replaced if self.still_rated(new, at)]
        return named[index % len(named)] if named else None

    def still_rated(self, msisdn: str, at: datetime) -> bool:
        """Whether a usage record of the number dated `at` is rated now, not dead-lettered."""
        if msisdn in self.numbers:
            return True
        kept = dict(list(self.replaced.items())[-MAX_PORTED_IN_KEPT:])
        ported, done = kept.get(msisdn, ("", at))
        return at < done and ported in self.numbers

    def new_number(self, prefix: str) -> str:
        self.fresh += 1
        return f"{prefix}{self.fresh:04d}"

    def charge_ids(self) -> list[str]:
        """Every charge the account holds so far, in the order they were made."""
        if self.oracle is None:
            self.oracle = Ledger()
            self.oracle.feed(catalog_published())
        counts = self.oracle.feed(*self.events[self.rated :])
        assert not counts.dead_letters, self.oracle.reasons()
        self.rated = len(self.events)
        return [charge["charge_id"] for charge in self.oracle.charges(self.account_id)]

    def record(self, op: tuple[Any, ...], at: datetime | None = None) -> None:
        """A record that may also arrive late: usage, purchases, fees, money."""
        kind = op[0]
        if kind == "call":
            _, index, destination, seconds = op
            msisdn = self.usage_number(index, at)
            if msisdn is not None:
                self.add(
                    "call.completed",
                    at,
                    msisdn=msisdn,
                    destination=destination,
                    duration_seconds=seconds,
                    call_id=f"{self.account_id}-call-{len(self.events)}",
                )
        elif kind == "data":
            _, index, nbytes, country = op
            msisdn = self.usage_number(index, at)
            if msisdn is not None:
                roaming = {"roaming": True, "country": country} if country else {"roaming": False}
                self.add("data.used", at, msisdn=msisdn, bytes=nbytes, **roaming)
        elif kind == "purchase":
            _, index, plan_id, renew = op
            msisdn = self.number(index)
            if msisdn is not None:
                self.add(
                    "plan.purchased",
                    at,
                    msisdn=msisdn,
                    plan_id=plan_id,
                    channel="portal",
                    autorenew=renew,
                )
        elif kind == "subscribe":
            _, index, package_id = op
            msisdn = self.number(index)
            if msisdn is not None:
                self.add("package.subscribed", at, msisdn=msisdn, package_id=package_id)
        elif kind == "plan_change":
            _, index, plan_id = op
            msisdn = self.number(index)
            if msisdn is not None:
                self.add("plan.changed", at, msisdn=msisdn, plan_id=plan_id)
        elif kind == "package_switch":
            _, index, package_id = op
            msisdn = self.number(index)
            if msisdn is not None:
                self.add("package.changed", at, msisdn=msisdn, package_id=package_id)
        elif kind == "plan_autorenew":
            _, index, enabled = op
            msisdn = self.number(index)
            if msisdn is not None:
                self.add("plan.autorenew_changed", at, msisdn=msisdn, enabled=enabled)
        elif kind == "surcharge":
            _, surcharge_kind, units, index = op
            msisdn = None if index is None else self.number(index)
            self.add(
                "surcharge.applied",
                at,
                amount=money(units),
                kind=surcharge_kind,
                description=f"{surcharge_kind} surcharge {len(self.events)}",
                **({"msisdn": msisdn} if msisdn else {}),
            )
        elif kind == "adjustment":
            _, units, sign, reason = op
            self.add(
                "adjustment.posted",
                at,
                amount=money(sign * units),
                reason=("goodwill", "billing error", "late fee")[reason],
                approved_by="finance-lead",
            )
        elif kind == "recharge":
            self.add("balance.recharged", at, amount=f"{Decimal(op[1]) / 100:.2f}")
        else:  # "port_out_request"
            msisdn = self.number(op[1])
            if msisdn is not None:
                self.add("port_out.requested", at, msisdn=msisdn)

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "now":
            _, inner, minutes = op
            self.advance(minutes)
            self.record(inner)
        elif kind == "change":
            _, index, plan_id = op
            self.advance(7)
            msisdn = self.number(index)
            if msisdn is not None:
                self.add("plan.changed", msisdn=msisdn, plan_id=plan_id)
        elif kind == "package_change":
            _, index, package_id = op
            self.advance(7)
            msisdn = self.number(index)
            if msisdn is not None:
                self.add("package.changed", msisdn=msisdn, package_id=package_id)
        elif kind == "autorenew":
            self.advance(3)
            msisdn = self.number(op[1])
            if msisdn is not None:
                self.add("plan.autorenew_changed", msisdn=msisdn, enabled=op[2])
        elif kind == "unsubscribe":
            self.advance(11)
            msisdn = self.number(op[1])
            if msisdn is not None:
                self.add("package.unsubscribed", msisdn=msisdn)
        elif kind == "port_in_request":
            self.advance(13)
            new, ported = self.new_number("+1415556"), self.new_number("+1212557")
            self.add("port_in.requested", msisdn=new, ported_msisdn=ported)
            self.numbers.append(new)
            self.pending_in[new] = ported
        elif kind in ("port_in_complete", "port_in_fail"):
            self.advance(19)
            pending = sorted(self.pending_in)
            if pending and (kind == "port_in_fail" or op[2]):
                new = pending[op[1] % len(pending)]
                ported = self.pending_in.pop(new)
                completed = kind == "port_in_complete"
                self.add(
                    f"port_in.{'completed' if completed else 'failed'}",
                    msisdn=new,
                    ported_msisdn=ported,
                )
                if completed:
                    self.numbers[self.numbers.index(new)] = ported
                    self.replaced[new] = (ported, self.now)
            elif self.numbers:
                # No such port-in pending: recorded as rejected, nothing moves (P1).
                msisdn = self.number(op[1])
                self.add(
                    f"port_in.{'completed' if kind == 'port_in_complete' else 'failed'}",
                    msisdn=msisdn,
                    ported_msisdn="+12125559999",
                )
        elif kind == "port_out_complete":
            self.advance(23)
            msisdn = self.number(op[1])
            if msisdn is not None:
                self.add("port_out.completed", msisdn=msisdn)
                self.numbers.remove(msisdn)
                self.pending_in.pop(msisdn, None)
        elif kind == "block":
            self.advance(2)
            self.add(
                "account.blocked" if op[1] else "account.unblocked",
                reason="acceptable-use review",
            )
        elif kind == "wait":
            self.advance(op[1])
        elif kind == "double_call":
            self.advance(1)
            calls = [
                event
                for event in self.events
                if event["type"] == "call.completed"
                and self.still_rated(event["msisdn"], parse_instant(event["occurred_at"], "at"))
            ]
            if calls:
                original = calls[op[1] % len(calls)]
                again = f"{self.id_prefix}-{len(self.events)}"
                self.events.append({**original, "event_id": again})
                disputed = (
                    [c for c in self.charge_ids() if c.startswith(f"{again}:")] if op[2] else []
                )
                for charge_id in disputed:
                    self.advance(5)
                    self.add("refund.requested", charge_id=charge_id, reason="charged twice")
        elif kind == "refund":
            self.advance(5)
            charges = self.charge_ids()
            if charges:
                charge_id = charges[op[1] % len(charges)]
                self.add("refund.requested", charge_id=charge_id, reason="disputed by customer")
        elif kind == "resend":
            self.advance(1)
            self.events.append(dict(self.events[op[1] % len(self.events)]))
        elif kind == "cycle" and op[1] == 0:
            self.add("cycle.started", period=self.started)  # a repeated bill run: rejected
        elif kind == "cycle":
            period = self.started
            for _ in range(op[1]):
                period = next_period(period)
            if op[2]:
                # The clock is past the start of a later period: that period starts.
                period = max(period, period_of(self.now, self.timezone))
            self.now = max(self.now, period_start(period, self.timezone))
            self.add("cycle.started", period=period)
            self.started = period
        else:  # "late": a record of a closed period arrives now (B3)
            _, inner, back = op
            if self.started == period_of(OPENED_AT, self.timezone):
                return  # nothing is closed yet
            at = period_start(self.started, self.timezone) - timedelta(seconds=back)
            self.advance(1)
            self.record(inner, at)  # possibly from before the account was opened


def account_events(
    account_id: str,
    mode: str,
    timezone: str,
    ops: tuple[tuple[Any, ...], ...],
    balance: int,
    id_prefix: str,
) -> list[dict[str, Any]]:
    builder = StreamBuilder(account_id, mode, timezone, id_prefix)
    builder.add("account.opened", billing_mode=mode, currency="USD", timezone=timezone)
    builder.advance(30)
    for msisdn in NUMBERS:
        builder.add("number.added", msisdn=msisdn)
        builder.numbers.append(msisdn)
    if mode == "prepaid" and balance:
        builder.add("balance.recharged", amount=f"{Decimal(balance) / 100:.2f}")
    for op in ops:
        builder.apply(op)
    return builder.events


def stream_of(scenario: Scenario) -> list[dict[str, Any]]:
    queues = [
        account_events(
            PREPAID,
            "prepaid",
            scenario.prepaid_timezone,
            scenario.prepaid_ops,
            scenario.opening_balance,
            "ev" if scenario.shared_ids else PREPAID,
        ),
        account_events(
            POSTPAID,
            "postpaid",
            scenario.postpaid_timezone,
            scenario.postpaid_ops,
            0,
            "ev" if scenario.shared_ids else POSTPAID,
        ),
    ]
    merged: list[dict[str, Any]] = [catalog_published()]
    for pick in scenario.interleaving:
        if queues[pick]:
            merged.append(queues[pick].pop(0))
    for queue in queues:
        merged.extend(queue)
    return merged


ACCOUNTS = ((PREPAID, "prepaid"), (POSTPAID, "postpaid"))


def fed_at_once(events: list[dict[str, Any]]) -> Ledger:
    ledger = Ledger()
    counts = ledger.feed(*events)
    assert not counts.dead_letters, ledger.reasons()
    return ledger


def stored(ledger: Ledger, account_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(fact, outcome) of every event recorded on the account after its opening, in order."""
    return [
        (e.fact, e.outcome)
        for e in ledger.app.events.get(account_stream_id(account_id))
        if isinstance(e, Account.FactApplied)
    ]


def invoice_docs(ledger: Ledger, account_id: str) -> dict[str, dict[str, Any]]:
    """The account's invoices or statements by period."""
    return {doc["period"]: doc for doc in read_invoices(ledger.views, account_id)}


# Which line a charge of each kind goes on (I1), written from the SPEC's list of lines.
LINE_OF_KIND = {
    "plan_fee": "plan_fees",
    "package_fee": "package_fees",
    "payg_call": "payg_calls",
    "payg_data": "payg_data",
    "roaming_data": "roaming",
    "port_out_fee": "one_time_fees",
    "carrier_surcharge": "surcharges",
    "tcr_registration_fee": "surcharges",
    "adjustment": "adjustments",
}
USAGE_KINDS = {"payg_call", "payg_data", "roaming_data"}


def expected_line_kind(charge: dict[str, Any]) -> str:
    if charge["kind"] in USAGE_KINDS and charge["billed_period"] != charge["period"]:
        return "late_usage"  # B3
    if Decimal(charge["amount"]) < 0:
        return "credits"
    return LINE_OF_KIND[charge["kind"]]


@dataclass(frozen=True)
class Billed:
    """One charge as the rules decided it, with the event behind it."""

    event_id: str
    charge: dict[str, Any]


# Facts whose charges may fall on bill runs' periods after their own (docs/DECISIONS.md, "A
# fact dated before a bill run but logged after it").
BILL_RUNS_CAUGHT_UP = frozenset(
    {
        "plan.purchased",
        "package.subscribed",
        "plan.autorenew_changed",
        "plan.changed",
        "package.changed",
        "package.unsubscribed",
        "port_out.completed",
    }
)


def billed_charges(ledger: Ledger, account_id: str) -> list[Billed]:
    """Every charge of the account, checked against B3 on the way: billed to its own period,
    or to the account's open period when its own is already closed."""
    opened = next(iter(ledger.app.events.get(account_stream_id(account_id))))
    assert isinstance(opened, Account.Opened)
    tz = opened.fact.get("timezone", "UTC")
    open_period = period_of(parse_instant(opened.fact["occurred_at"], "occurred_at"), tz)
    result = []
    for fact, outcome in stored(ledger, account_id):
        if outcome["status"] != "applied":
            assert outcome["charges"] == [] and Decimal(outcome["balance_delta"]) == 0, outcome
            continue
        own = period_of(parse_instant(fact["occurred_at"], "occurred_at"), tz)
        for charge in outcome["charges"]:
            if fact["type"] == "cycle.started":
                # Fees in advance belong to the period being started.
                assert charge["period"] == fact["period"], (fact, charge)
            elif fact["type"] in BILL_RUNS_CAUGHT_UP and charge["period"] != own:
                # A fact dated before bill runs but logged after them renews (T2, c4) or
                # reverses (c6) what they charged: on their periods, started since its own.
                assert own < charge["period"] <= open_period, (fact, charge, open_period)
            else:
                assert charge["period"] == own, (fact, charge)
            assert charge["billed_period"] == max(charge["period"], open_period), (
                fact,
                charge,
                open_period,
            )
            result.append(Billed(fact["event_id"], charge))
        assert outcome["billed_period"] == max(own, open_period), (fact, outcome)
        if fact["type"] == "cycle.started":
            # A later period, or the opening period's own bill run (nothing started yet).
            assert fact["period"] >= open_period, fact
            open_period = fact["period"]
    return result


def assert_line_arithmetic(doc: dict[str, Any], amounts: dict[str, Decimal]) -> None:
    """M2: each line's exact sum is its charges' sum, shown HALF_UP to 2 places; the total
    is the sum of the shown lines."""
    for line in doc["lines"]:
        exact = sum((amounts[cid] for cid in line["charge_ids"]), start=Decimal(0))
        assert line["charge_ids"], line
        assert MONEY_4.match(line["exact_amount"]) and MONEY_2.match(line["amount"]), line
        assert Decimal(line["exact_amount"]) == exact, line
        assert Decimal(line["amount"]) == exact.quantize(Decimal("0.01"), ROUND_HALF_UP), line
    assert MONEY_2.match(doc["total"]), doc["total"]
    shown_sum = sum((Decimal(line["amount"]) for line in doc["lines"]), start=Decimal(0))
    assert Decimal(doc["total"]) == shown_sum, doc


# ---------------------------------------------------------------------------------------------
# Properties


# Found by hypothesis: a purchase dated 30 November logged after December's bill run renews
# the plan for December (c4), a charge of a period after its fact's own.
LATE_PURCHASE_AFTER_A_BILL_RUN = Scenario(
    "UTC",
    "UTC",
    0,
    (),
    (
        *((("now", ("call", 0, "+12125550100", 0), 1),) * 9),
        ("cycle", 1, True),
        ("now", ("call", 0, "+12125550100", 0), 1),
        ("late", ("purchase", 0, "na-500", True), 1),
    ),
    (),
    False,
)

# Records of a port-in's new number dated before the completion, logged after it and after
# the bill run, rated on the ported number (P1): a late call and data record, and a call of
# the new number recorded twice and disputed (credited as a duplicate, F1).
LATE_USAGE_OF_A_REPLACED_NUMBER = Scenario(
    "UTC",
    "UTC",
    0,
    (),
    (
        ("port_in_request",),
        ("now", ("purchase", 2, "na-500", True), 1),
        ("now", ("subscribe", 2, "data-1gb"), 1),
        ("now", ("call", 2, "+18765550100", 100), 1),  # JM: PAYG, disputed below
        ("wait", 20 * 24 * 60),
        ("port_in_complete", 0, True),
        ("cycle", 1, True),
        ("late", ("call", 3, "+12125550100", 300), 15 * 86_400),  # the new number's index
        ("late", ("data", 3, 5_000_000, None), 15 * 86_400),
        ("double_call", 0, True),
    ),
    (),
    False,
)


@SETTINGS
@given(scenarios)
@example(LATE_PURCHASE_AFTER_A_BILL_RUN)
@example(LATE_USAGE_OF_A_REPLACED_NUMBER)
def test_I1_I2_B3_every_charge_is_on_exactly_one_line_of_its_billed_periods_invoice(
    scenario: Scenario,
) -> None:
    """I1, I2: the charge ids on an account's invoices or statements are, as a multiset,
    exactly its charges; each is on one line, of its kind, number, payer and own period,
    referencing its event. B3: it is billed to its own period while that is open, else to
    the account's open period, and a late usage charge goes on a late-usage line."""
    ledger = fed_at_once(stream_of(scenario))
    for account_id, mode in ACCOUNTS:
        billed = billed_charges(ledger, account_id)
        docs = invoice_docs(ledger, account_id)
        on_invoices = Counter(
            cid for doc in docs.values() for line in doc["lines"] for cid in line["charge_ids"]
        )
        # As a multiset: every charge once, and nothing else.
        assert on_invoices == Counter(c["charge_id"] for c in ledger.charges(account_id))
        assert on_invoices == Counter(b.charge["charge_id"] for b in billed)
        where = {
            cid: (period, line)
            for period, doc in docs.items()
            for line in doc["lines"]
            for cid in line["charge_ids"]
        }
        for b in billed:
            charge = b.charge
            period, line = where[charge["charge_id"]]
            assert period == charge["billed_period"], (charge, period)
            # The line is the charge's kind, number, payer and own period (B3 names it).
            assert line["kind"] == expected_line_kind(charge), (charge, line)
            assert (line["msisdn"], line["payer"], line["period"]) == (
                charge["msisdn"],
                charge["payer"],
                charge["period"],
            ), (charge, line)
            assert b.event_id in line["event_ids"], (charge, line)
            if charge["billed_period"] != charge["period"]:
                # A late charge's line says which period it is from (B3).
                assert f"from {charge['period']}" in line["description"], (charge, line)
        charge_events = {b.charge["charge_id"]: b.event_id for b in billed}
        for doc in docs.values():
            assert doc["document"] == ("statement" if mode == "prepaid" else "invoice")
            for line in doc["lines"]:
                # Each line references exactly the events behind its charges, each once.
                expected_events = list(dict.fromkeys(charge_events[c] for c in line["charge_ids"]))
                assert line["event_ids"] == expected_events, line
            if mode == "postpaid":
                assert {line["payer"] for line in doc["lines"]} <= {"invoice"}, doc


@SETTINGS
@given(scenarios)
def test_M2_lines_round_their_exact_sums_and_totals_add_the_shown_lines(
    scenario: Scenario,
) -> None:
    """M2: a line's exact amount is the sum of its charges (4 places), its amount that sum
    rounded HALF_UP to 2 places, and the total the sum of the lines' amounts."""
    ledger = fed_at_once(stream_of(scenario))
    for account_id, _ in ACCOUNTS:
        amounts = {c["charge_id"]: Decimal(c["amount"]) for c in ledger.charges(account_id)}
        for doc in invoice_docs(ledger, account_id).values():
            assert_line_arithmetic(doc, amounts)


@settings(SETTINGS, max_examples=40)
@given(scenarios)
def test_I1_a_closed_invoice_never_changes_and_only_started_periods_are_open(
    scenario: Scenario,
) -> None:
    """Fed one event per batch, the invoices after every event: a closed one is never written
    again; only a `cycle.started` of a later period closes one (and names itself); the open
    ones are those of the latest started period or later, which always has one."""
    events = stream_of(scenario)
    ledger = Ledger()
    started: dict[str, str] = {}
    cycled: set[str] = set()  # accounts with a bill run applied
    seen: set[str] = set()
    before: dict[str, dict[str, Any]] = {}
    for fed in events:
        counts = ledger.feed(fed)
        assert not counts.dead_letters, ledger.reasons()
        account_id = fed["account_id"]
        duplicate = f"{account_id}/{fed['event_id']}" in seen
        seen.add(f"{account_id}/{fed['event_id']}")
        assert counts.duplicates == int(duplicate), (fed, counts)
        if duplicate:
            pass  # G1: nothing moves (checked below: no document changes)
        elif fed["type"] == "account.opened":
            started[account_id] = period_of(OPENED_AT, fed["timezone"])
        elif fed["type"] == "cycle.started":
            status = ledger.last_outcome(account_id)["status"]
            # Increasing periods start (the opening period too, by the first bill run); the
            # same period again is a rejected repeat.
            current = started[account_id]
            starts = fed["period"] > current or (
                fed["period"] == current and account_id not in cycled
            )
            assert status == ("applied" if starts else "rejected"), fed
            if starts:
                started[account_id] = fed["period"]
                cycled.add(account_id)
        after = {f"{d['account_id']}|{d['period']}": d for d in read_invoices(ledger.views)}
        if duplicate:
            assert after == before, fed
        for key, doc in before.items():
            now = after.get(key)
            assert now is not None, f"{key} disappeared at {fed['event_id']}"
            if doc["status"] == "closed":
                assert now == doc, f"closed {key} changed at {fed['event_id']}"
            elif now["status"] == "closed":
                # Closed by the bill run of a later period, which it names (I1).
                assert fed["type"] == "cycle.started" and fed["account_id"] == doc["account_id"]
                assert doc["period"] < fed["period"], (key, fed)
                assert (now["closed_by"], now["closed_at"]) == (
                    fed["event_id"],
                    fed["occurred_at"],
                ), now
                assert {**now, "status": "open", "closed_by": None, "closed_at": None} == doc
        for key, doc in after.items():
            if key not in before:
                assert doc["status"] == "open", (key, doc)
            current = started[doc["account_id"]]
            if doc["status"] == "open":
                assert doc["period"] >= current, (key, current, fed["event_id"])
                assert (doc["closed_by"], doc["closed_at"]) == (None, None), doc
            else:
                assert doc["period"] < current, (key, current)
        for account_id, current in started.items():
            open_doc = ledger.invoice(account_id, current)
            assert open_doc is not None and open_doc["status"] == "open", (account_id, current)
            # The account's index of invoices agrees with the invoices themselves.
            index = ledger.views.get("invoice_index", account_id)
            assert index is not None
            assert index["periods"] == {
                doc["period"]: doc["status"]
                for doc in after.values()
                if doc["account_id"] == account_id
            }
        before = after


@SETTINGS
@given(scenarios)
def test_I2_I3_the_latest_statement_ends_at_the_balance_and_postpaid_has_none(
    scenario: Scenario,
) -> None:
    """I2: statements chain their balances and the latest ends at the PAYG balance; each
    recharge is on the statement it is billed to. I3: a postpaid balance never moves."""
    events = stream_of(scenario)
    ledger = fed_at_once(events)
    by_id = {e["event_id"]: e for e in events if e["account_id"] == PREPAID}

    # Prepaid: statements chain start to end, each moving by its recharges less what the
    # balance paid on it; the latest ends at the balance the balance view shows.
    statements = read_invoices(ledger.views, PREPAID)
    assert statements and [s["period"] for s in statements] == sorted(invoice_docs(ledger, PREPAID))
    assert statements[0]["balance_start"] == "0.0000"
    for earlier, later in pairwise(statements):
        assert later["balance_start"] == earlier["balance_end"]
    recharged_on: dict[str, str] = {}
    for statement in statements:
        recharges = sum((Decimal(r["amount"]) for r in statement["recharges"]), start=Decimal(0))
        paid = sum(
            (
                Decimal(line["exact_amount"])
                for line in statement["lines"]
                if line["payer"] == "balance"
            ),
            start=Decimal(0),
        )
        assert Decimal(statement["balance_change"]) == recharges - paid, statement
        assert Decimal(statement["balance_end"]) == (
            Decimal(statement["balance_start"]) + recharges - paid
        )
        for recharge in statement["recharges"]:
            assert recharge["amount"] == f"{Decimal(by_id[recharge['event_id']]['amount']):.4f}"
            recharged_on[recharge["event_id"]] = statement["period"]
    assert statements[-1]["balance_end"] == ledger.balance(PREPAID)
    # Every applied recharge is on exactly the statement its outcome is billed to (B3).
    applied_recharges = {
        fact["event_id"]: outcome["billed_period"]
        for fact, outcome in stored(ledger, PREPAID)
        if fact["type"] == "balance.recharged" and outcome["status"] == "applied"
    }
    assert recharged_on == applied_recharges

    # Postpaid: no balance ever moves; everything is on the invoices.
    assert ledger.balance(POSTPAID) == "0.0000"
    for invoice in read_invoices(ledger.views, POSTPAID):
        assert "balance_end" not in invoice and "recharges" not in invoice, invoice
        assert {line["payer"] for line in invoice["lines"]} <= {"invoice"}, invoice


@settings(SETTINGS, max_examples=40)
@given(scenarios)
@example(LATE_USAGE_OF_A_REPLACED_NUMBER)
def test_R1_replay_gives_exactly_the_live_views_fed_per_event_or_at_once(
    scenario: Scenario,
) -> None:
    """R1: one batch per event or all in one batch, and a rebuild from the event store of
    either, give the same view documents (invoices included) and the same histories."""
    events = stream_of(scenario)
    at_once = fed_at_once(events)
    live = at_once.all_views()
    assert any(key.startswith("invoices/") for key in live)
    trickled = Ledger()
    trickled.feed_each(events)
    assert not trickled.dead_letters, trickled.reasons()
    assert trickled.all_views() == live
    for account_id, _ in ACCOUNTS:
        assert trickled.history(account_id) == at_once.history(account_id)
    rebuild(trickled.app, trickled.views)
    assert trickled.all_views() == live
    rebuild(at_once.app, at_once.views)
    assert at_once.all_views() == live


def _every_fact_to(projection: Projection) -> Projection:
    """The projection as it would be if it declared no fact types: given every fact."""
    every = type(f"Every{type(projection).__name__}", (type(projection),), {"FACT_TYPES": None})
    instance: Projection = every()
    return instance


@settings(SETTINGS, max_examples=40)
@given(scenarios)
def test_R1_a_projection_declares_every_fact_type_it_folds(scenario: Scenario) -> None:
    """R1: folding each fact only into the projections that declare its type gives the views
    that folding every fact into every projection gives."""
    ledger = fed_at_once(stream_of(scenario))
    events = list(ledger.app.stored_events())
    declared = default_projections()
    assert any(p.FACT_TYPES is not None for p in declared.projections)
    views = []
    for projections in (declared, Projections([_every_fact_to(p) for p in declared.projections])):
        changes = ViewChanges(MemoryViewStore())
        project(events, changes, projections)
        views.append((changes.changed, changes.settled))
    assert views[0] == views[1]
