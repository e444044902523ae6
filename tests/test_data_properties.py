"""Properties of data rating over random streams (D1-D9, I3, R1).

Each example is a prepaid and a postpaid account (each in UTC or America/Los_Angeles) with two
numbers, and a random stream per account of home and roaming data records (0 to 3,000,000,000
bytes), subscriptions, changes and removals of random packages, recharges, quiet spells and
period starts. `cycle.started` is logged at the local start of each period, before anything
of that period, so every record arrives in its own period.

The properties are checked against the outcomes stored in each account's stream and against
a small model written from the SPEC (not from the rules): which package a number holds, until
when, and how much home usage its fair-use window has seen.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.account import Account
from ledger.catalog import default_catalog_path, load_catalog_file
from ledger.ids import account_stream_id
from ledger.instants import (
    instant_text,
    next_period,
    parse_instant,
    period_end,
    period_of,
    period_start,
)
from ledger.money import rated
from projections.runner import rebuild
from tests.factories import catalog_published, event
from tests.harness import Ledger

CATALOG = load_catalog_file(default_catalog_path())
NUMBERS = ("+14155550101", "+14155550102")
PACKAGES = ("data-1gb", "data-5gb", "data-10gb", "data-unlimited", "data-unlimited")
COUNTRIES = ("FR", "GB", "CA", "JP")  # JP is not listed: the default roaming rate
FUP = 2_200_000_000
PREPAID, POSTPAID = "ACC-PRE", "ACC-POST"
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PREPAID_VALIDITY = timedelta(days=30)

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------------------
# Streams

number_index = st.integers(0, len(NUMBERS) - 1)
# Hypothesis favours small numbers: some sizes are drawn near the threshold and near 0 too.
size = st.one_of(
    st.integers(0, 3_000_000_000),
    st.integers(300_000_000, 3_000_000_000),
    st.integers(0, 20_000_000),
    st.sampled_from((0, 1, FUP - 1, FUP, FUP + 1, 1_000_000_000)),
)
pause = st.integers(1, 3 * 24 * 60)  # minutes since the previous event
OPERATIONS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "use": st.tuples(st.just("use"), number_index, size, pause),
    "roam": st.tuples(st.just("roam"), number_index, size, st.sampled_from(COUNTRIES), pause),
    "subscribe": st.tuples(st.just("subscribe"), number_index, st.sampled_from(PACKAGES)),
    "change": st.tuples(st.just("change"), number_index, st.sampled_from(PACKAGES)),
    "unsubscribe": st.tuples(st.just("unsubscribe"), number_index),
    "recharge": st.tuples(st.just("recharge"), st.integers(1, 5_000)),  # cents
    "wait": st.tuples(st.just("wait"), st.integers(1, 20 * 24 * 60)),  # minutes
    "cycle": st.tuples(st.just("cycle")),
}
# Drawn by kind, home usage most often, so packages are used up and thresholds crossed.
KINDS: tuple[str, ...] = ("use",) * 6 + ("roam", "subscribe", "subscribe", "change")
KINDS += ("unsubscribe", "recharge", "wait", "cycle")
operation = st.sampled_from(KINDS).flatmap(OPERATIONS.__getitem__)


@dataclass(frozen=True)
class Scenario:
    prepaid_timezone: str
    postpaid_timezone: str
    opening_balance: int  # cents
    initial_packages: tuple[str | None, ...]  # subscribed on each number right after opening
    prepaid_ops: tuple[tuple[Any, ...], ...]
    postpaid_ops: tuple[tuple[Any, ...], ...]


scenarios = st.builds(
    Scenario,
    st.sampled_from(("UTC", "America/Los_Angeles")),
    st.sampled_from(("UTC", "America/Los_Angeles")),
    st.one_of(st.integers(0, 3_000), st.integers(3_000, 30_000)),
    st.tuples(*(st.sampled_from((None, *PACKAGES)) for _ in NUMBERS)),
    st.lists(operation, min_size=3, max_size=40).map(tuple),
    st.lists(operation, min_size=3, max_size=40).map(tuple),
)


def account_events(account_id: str, mode: str, scenario: Scenario) -> list[dict[str, Any]]:
    """One account's stream, in time order, with a cycle.started at each local period start."""
    prepaid = mode == "prepaid"
    timezone = scenario.prepaid_timezone if prepaid else scenario.postpaid_timezone
    ops = scenario.prepaid_ops if prepaid else scenario.postpaid_ops
    events: list[dict[str, Any]] = []
    now = START
    period = period_of(now, timezone)
    ids = iter(range(1_000_000))

    def add(type_: str, **fields: Any) -> None:
        events.append(
            event(
                type_, account_id, instant_text(now), event_id=f"{account_id}-{next(ids)}", **fields
            )
        )

    def advance(minutes: int) -> None:
        nonlocal now, period
        now += timedelta(minutes=minutes)
        while period_of(now, timezone) != period:
            period = next_period(period)
            starts = instant_text(period_start(period, timezone))
            events.append(
                event(
                    "cycle.started",
                    account_id,
                    starts,
                    event_id=f"{account_id}-{next(ids)}",
                    period=period,
                )
            )

    add("account.opened", billing_mode=mode, currency="USD", timezone=timezone)
    for msisdn in NUMBERS:
        add("number.added", msisdn=msisdn)
    if scenario.opening_balance:
        add("balance.recharged", amount=str(Decimal(scenario.opening_balance) / 100))
    for msisdn, package_id in zip(NUMBERS, scenario.initial_packages, strict=True):
        if package_id is not None:
            advance(60)
            add("package.subscribed", msisdn=msisdn, package_id=package_id)
    for op in ops:
        kind = op[0]
        if kind == "use":
            advance(op[3])
            add("data.used", msisdn=NUMBERS[op[1]], bytes=op[2], roaming=False)
        elif kind == "roam":
            advance(op[4])
            add("data.used", msisdn=NUMBERS[op[1]], bytes=op[2], roaming=True, country=op[3])
        elif kind == "subscribe":
            advance(7)
            add("package.subscribed", msisdn=NUMBERS[op[1]], package_id=op[2])
        elif kind == "change":
            advance(11)
            add("package.changed", msisdn=NUMBERS[op[1]], package_id=op[2])
        elif kind == "unsubscribe":
            advance(13)
            add("package.unsubscribed", msisdn=NUMBERS[op[1]])
        elif kind == "recharge":
            advance(3)
            add("balance.recharged", amount=str(Decimal(op[1]) / 100))
        elif kind == "wait":
            advance(op[1])
        else:  # "cycle": on to the next period start
            gap = period_end(period, timezone) - now
            advance(int(gap.total_seconds() // 60) + 1)
    return events


def run(scenario: Scenario) -> Ledger:
    ledger = Ledger()
    prepaid = account_events(PREPAID, "prepaid", scenario)
    postpaid = account_events(POSTPAID, "postpaid", scenario)
    counts = ledger.feed(catalog_published())
    assert not counts.dead_letters, ledger.reasons()
    # Interleave the two accounts (each keeps its own order) in batches of a few events.
    merged = [e for pair in zip(prepaid, postpaid, strict=False) for e in pair]
    merged += prepaid[len(postpaid) :] + postpaid[len(prepaid) :]
    for start in range(0, len(merged), 9):
        counts = ledger.feed(*merged[start : start + 9])
        assert not counts.dead_letters, ledger.reasons()
    return ledger


def stored(ledger: Ledger, account_id: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(fact, outcome) of every event applied to the account after its opening, in order."""
    for stored_event in ledger.app.events.get(account_stream_id(account_id)):
        if isinstance(stored_event, Account.FactApplied):
            yield stored_event.fact, stored_event.outcome


def package_docs(fact: dict[str, Any], outcome: dict[str, Any]) -> list[dict[str, Any]]:
    effects = outcome["effects"]
    docs = [effects["package"]] if effects.get("package") else []
    if fact["type"] == "cycle.started":
        docs += [doc for doc in effects.get("packages", {}).values() if doc]
    return docs


# ---------------------------------------------------------------------------------------------
# A model of package lifetimes and fair-use windows, from the SPEC (D3-D9)


@dataclass
class Held:
    package_id: str
    unlimited: bool
    valid_until: datetime
    renews: bool
    fup_used: int = 0
    throttled: bool = False


@dataclass
class Model:
    mode: str
    timezone: str
    held: dict[str, Held] = field(default_factory=dict)

    def current(self, msisdn: str, at: datetime) -> Held | None:
        held = self.held.get(msisdn)
        if held is not None and at >= held.valid_until:
            del self.held[msisdn]  # validity over (D9) or period over (D5)
            return None
        return held

    def start(self, msisdn: str, package_id: str, at: datetime) -> Held:
        if self.mode == "prepaid":
            until = at + PREPAID_VALIDITY  # D7: 30 x 24 h from purchase
        else:
            until = period_end(period_of(at, self.timezone), self.timezone)
        held = Held(
            package_id, CATALOG.package(package_id).unlimited, until, self.mode == "postpaid"
        )
        self.held[msisdn] = held
        return held


# ---------------------------------------------------------------------------------------------
# Properties


@SETTINGS
@given(scenarios)
def test_D1_D4_D6_D7_remaining_bytes_are_never_negative(scenario: Scenario) -> None:
    ledger = run(scenario)
    for account_id in (PREPAID, POSTPAID):
        for fact, outcome in stored(ledger, account_id):
            for doc in package_docs(fact, outcome):
                assert doc["remaining_bytes"] >= 0, (fact, doc)
                assert doc["fup_used_bytes"] >= 0, (fact, doc)
        for number in ledger.account(account_id).numbers.values():
            assert number.package is None or number.package.remaining_bytes >= 0
    for key, doc in ledger.views.scan("data"):
        assert doc["remaining_bytes"] >= 0, (key, doc)


def package_left(doc: dict[str, Any] | None) -> int | None:
    """Package bytes a number has left: None for Data Unlimited, 0 with no package."""
    if doc is None:
        return 0
    return None if doc["unlimited"] else int(doc["remaining_bytes"])


@SETTINGS
@given(scenarios)
def test_D1_D2_D3_every_byte_of_a_record_is_accounted_for_once(scenario: Scenario) -> None:
    ledger = run(scenario)
    payg_per_mb = CATALOG.data.payg_per_mb
    for account_id in (PREPAID, POSTPAID):
        left: dict[str, int | None] = {}  # each number's package bytes after the last event
        for fact, outcome in stored(ledger, account_id):
            if outcome["status"] != "applied":
                continue
            effects = outcome["effects"]
            if fact["type"] != "data.used":
                if "package" in effects and "msisdn" in fact:
                    left[fact["msisdn"]] = package_left(effects["package"])
                for msisdn, doc in effects.get("packages", {}).items():
                    left[msisdn] = package_left(doc)
                continue
            nbytes, charges = fact["bytes"], outcome["charges"]
            package, payg, roaming = (
                effects["package_bytes"],
                effects["payg_bytes"],
                effects["roaming_bytes"],
            )
            # Conservation: every byte is package, PAYG or roaming, exactly once.
            assert min(package, payg, roaming) >= 0, (fact, effects)
            assert package + payg + roaming == nbytes, (fact, effects)
            if fact["roaming"]:
                # D2: all at the visited country's rate; the package is not touched.
                assert roaming == nbytes and "package" not in effects, (fact, effects)
                [charge] = charges
                per_mb = CATALOG.roaming_per_mb(fact["country"])
                assert charge["kind"] == "roaming_data"
                assert Decimal(charge["amount"]) == rated(Decimal(nbytes) * per_mb / 1_000_000)
                continue
            assert roaming == 0, (fact, effects)
            doc = effects.get("package", "unchanged")
            if isinstance(doc, dict) and doc["unlimited"]:
                # D3: Data Unlimited takes all home usage, with no excess charge.
                assert (package, payg, charges) == (nbytes, 0, []), (fact, outcome)
                continue
            if isinstance(doc, dict):
                # D1: the package gives what it has left, at most; the rest is PAYG.
                before = left.get(fact["msisdn"], 0)
                assert before is not None, (fact, effects)
                assert package == min(nbytes, before), (fact, effects, before)
                assert doc["remaining_bytes"] == before - package, (fact, doc, before)
                left[fact["msisdn"]] = doc["remaining_bytes"]
            else:
                # No package (or it ended, effects["package"] None): all PAYG.
                assert package == 0, (fact, effects)
                left[fact["msisdn"]] = 0
            if payg:
                [charge] = charges
                assert charge["kind"] == "payg_data"
                assert Decimal(charge["amount"]) == rated(Decimal(payg) * payg_per_mb / 1_000_000)
            else:
                assert charges == [], (fact, outcome)


@SETTINGS
@given(scenarios)
def test_D3_D8_throttled_exactly_at_the_record_that_crosses_the_threshold(
    scenario: Scenario,
) -> None:
    ledger = run(scenario)
    for account_id, mode, timezone in (
        (PREPAID, "prepaid", scenario.prepaid_timezone),
        (POSTPAID, "postpaid", scenario.postpaid_timezone),
    ):
        model = Model(mode, timezone)
        for fact, outcome in stored(ledger, account_id):
            at = parse_instant(fact["occurred_at"], "occurred_at")
            applied = outcome["status"] == "applied"
            effects = outcome["effects"]
            kind = fact["type"]
            if kind in {"package.subscribed", "package.changed"} and applied:
                held = model.start(fact["msisdn"], fact["package_id"], at)
                # The package's validity: 30 x 24 h (prepaid) or to the period end (postpaid).
                assert effects["package"]["valid_until"] == instant_text(held.valid_until)
                assert (effects["package"]["fup_used_bytes"], effects["package"]["throttled"]) == (
                    0,
                    False,
                )
            elif kind == "package.unsubscribed" and applied:
                held_now = model.current(fact["msisdn"], at)
                assert held_now is not None, fact
                if held_now.unlimited:
                    del model.held[fact["msisdn"]]  # D5, D9: stops at once
                else:
                    held_now.renews = False
            elif kind == "cycle.started" and applied and mode == "postpaid":
                for msisdn, held_then in list(model.held.items()):
                    if held_then.renews:
                        # D3: the next cycle lifts the throttle and counts from zero.
                        model.held[msisdn] = Held(
                            held_then.package_id,
                            held_then.unlimited,
                            period_end(fact["period"], timezone),
                            True,
                        )
                    else:
                        del model.held[msisdn]
            elif kind == "data.used":
                assert applied, (fact, outcome)
                crossed = effects.get("throttle_crossed", False)
                held_now = None if fact["roaming"] else model.current(fact["msisdn"], at)
                if held_now is None or not held_now.unlimited:
                    assert crossed is False, (fact, effects)
                    continue
                held_now.fup_used += fact["bytes"]
                expected = not held_now.throttled and held_now.fup_used >= FUP
                assert crossed is expected, (fact, effects, held_now)
                held_now.throttled = held_now.throttled or expected
                doc = effects["package"]
                assert (doc["fup_used_bytes"], doc["throttled"]) == (
                    held_now.fup_used,
                    held_now.throttled,
                ), (fact, doc, held_now)
                if expected:
                    assert doc["throttled_since"] == instant_text(at)
        # The throttle view agrees with the model wherever the package is still held.
        for msisdn, held_now in model.held.items():
            view = ledger.throttle(account_id, msisdn)
            assert view is not None
            if held_now.unlimited:
                assert (view["throttled"], view["fup_used_bytes"]) == (
                    held_now.throttled,
                    held_now.fup_used,
                ), (msisdn, view, held_now)


@SETTINGS
@given(scenarios)
def test_D7_I3_balance_moves_by_recharges_less_the_charges_the_balance_pays(
    scenario: Scenario,
) -> None:
    ledger = run(scenario)
    for account_id in (PREPAID, POSTPAID):
        running = Decimal(0)
        recharges = Decimal(0)
        paid = Decimal(0)
        for fact, outcome in stored(ledger, account_id):
            from_balance = sum(
                (Decimal(c["amount"]) for c in outcome["charges"] if c["payer"] == "balance"),
                start=Decimal(0),
            )
            recharge = Decimal(0)
            if fact["type"] == "balance.recharged":
                # Recharges apply to prepaid accounts only; postpaid ones settle on invoices.
                assert outcome["status"] == ("applied" if account_id == PREPAID else "rejected")
                if outcome["status"] == "applied":
                    recharge = Decimal(fact["amount"])
            if account_id == PREPAID and fact["type"] in {"package.subscribed", "package.changed"}:
                # D7: a purchase goes through exactly when the balance covers the full fee.
                fee = CATALOG.package(fact["package_id"]).fee
                assert (outcome["status"] == "applied") is (running >= fee), (fact, running)
            if account_id == POSTPAID:
                assert from_balance == 0, outcome  # I3: everything on the invoice
            assert Decimal(outcome["balance_delta"]) == recharge - from_balance, (fact, outcome)
            running += recharge - from_balance
            recharges += recharge
            paid += from_balance
        expected = recharges - paid
        assert Decimal(ledger.balance(account_id)) == expected
        assert ledger.account(account_id).balance == expected


@SETTINGS
@given(scenarios)
def test_R1_rebuilt_views_equal_the_live_views(scenario: Scenario) -> None:
    ledger = run(scenario)
    live = ledger.all_views()
    assert any(key.startswith("data/") for key in live)
    assert any(key.startswith("throttle/") for key in live)
    rebuild(ledger.app, ledger.views)
    assert ledger.all_views() == live
