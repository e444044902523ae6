"""Properties of voice rating over random streams (V3-V7, V9, T2, R1).

Each example is one or two accounts (prepaid or postpaid, UTC or America/New_York) with two
numbers, and a random stream of calls (0 to 4,000 s, to covered and uncovered destinations with
60, 30, 6 and 1 s increments, some arriving late from the period before), recharges, plan
purchases and changes, autorenew switches and period starts. The streams of the two accounts
are interleaved at random, keeping each account's own order (T2). The catalog is the default
one plus a 10-minute plan (`na-10`), so minutes run out within a few calls.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.account import Account
from ledger.catalog import parse_catalog
from ledger.ids import account_stream_id
from ledger.instants import instant_text, next_period, period_end, period_of, period_start
from ledger.money import rated
from projections.runner import rebuild
from tests.factories import catalog_published
from tests.harness import Ledger

# The default catalog plus a small plan, so minutes run out within a few calls (V4).
SMALL_PLAN = {
    "id": "na-10",
    "name": "North America 10",
    "fee": "1.00",
    "term": "monthly",
    "minutes": 10,
    "countries": ["CA", "US"],
    "increment_seconds": 60,
}


def catalog_event() -> dict[str, Any]:
    doc = catalog_published(event_id="catalog-properties")
    doc["catalog"] = {
        **doc["catalog"],
        "version": "2026-01-p",
        "plans": [*doc["catalog"]["plans"], SMALL_PLAN],
    }
    return doc


CATALOG = parse_catalog(catalog_event()["catalog"])

NUMBERS = ("+14155550101", "+14155550102")
DESTINATIONS = (
    "+12125550100",  # US 0.0150/60 s   (na-500, na-500-yearly, world-300)
    "+14165550100",  # CA 0.0200/60 s   (na-500, na-500-yearly, world-300)
    "+18765550100",  # JM 0.1500/60 s   (no plan)
    "+442071234567",  # GB 0.0200/60 s  (europe-500, world-300)
    "+447700900123",  # GB 0.0800/60 s  (europe-500, world-300)
    "+525512345678",  # MX 0.0300/30 s  (mexico-500, world-300)
    "+919812345678",  # IN 0.0150/1 s   (world-300)
    "+8613812345678",  # CN 0.0200/6 s  (world-300)
    "+639171234567",  # PH 0.1800/60 s  (philippines-100: 6,000 s, soon used up)
)
# Destinations drawn for calls: the North American and Philippine ones more often, so plans
# are used up (philippines-100 after about three calls) and calls split between plan and PAYG.
CALLED = (*DESTINATIONS, *DESTINATIONS[:2] * 3, DESTINATIONS[-1], DESTINATIONS[-1])
PLANS = (
    "na-10",
    "na-10",
    "na-10",
    "na-500",
    "na-500-yearly",
    "mexico-500",
    "europe-500",
    "world-300",
    "philippines-100",
)

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------------------
# Streams

number_index = st.integers(0, len(NUMBERS) - 1)
# Hypothesis favours small integers; half the calls are drawn long so minutes do run out.
duration = st.one_of(st.integers(0, 4000), st.integers(1000, 4000))
call_op = st.tuples(
    st.just("call"),
    number_index,
    st.sampled_from(CALLED),
    duration,
    st.integers(1, 3 * 24 * 60),  # minutes since the previous event
    st.integers(1, 8),  # how many such calls in a row
)
late_call_op = st.tuples(
    st.just("late_call"),
    number_index,
    st.sampled_from(CALLED),
    duration,
    st.integers(1, 86_400),  # seconds before the current period started
)
operation = st.one_of(
    call_op,
    call_op,
    call_op,
    late_call_op,
    late_call_op,
    st.tuples(st.just("recharge"), st.integers(1, 2_000)),  # cents
    st.tuples(st.just("purchase"), number_index, st.sampled_from(PLANS), st.booleans()),
    st.tuples(st.just("change"), number_index, st.sampled_from(PLANS)),
    st.tuples(st.just("autorenew"), number_index, st.booleans()),
    st.tuples(st.just("autorenew"), number_index, st.just(False)),  # cancel more often (V7)
    # A period start, then call records of the period before that arrive late (T2).
    st.tuples(st.just("cycle"), st.lists(late_call_op, max_size=3)),
)


@dataclass(frozen=True)
class AccountSpec:
    account_id: str
    mode: str
    timezone: str
    initial_plans: tuple[str | None, ...]  # bought on each number right after opening
    operations: tuple[tuple[Any, ...], ...]


def account_spec(account_id: str) -> st.SearchStrategy[AccountSpec]:
    return st.builds(
        AccountSpec,
        st.just(account_id),
        st.sampled_from(("prepaid", "postpaid")),
        st.sampled_from(("UTC", "America/New_York")),
        st.tuples(*(st.sampled_from((None, *PLANS)) for _ in NUMBERS)),
        st.lists(operation, min_size=3, max_size=40).map(tuple),
    )


def base_event(
    spec: AccountSpec, n: int | str, at: datetime, type_: str, **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": f"{spec.account_id}-{n}",
        "type": type_,
        "account_id": spec.account_id,
        "occurred_at": instant_text(at),
        "schema_version": 1,
        **fields,
    }


def account_events(spec: AccountSpec) -> list[dict[str, Any]]:
    """One account's stream, in its own (log) order; usage in the period it happened."""
    tz = spec.timezone
    opened_at = datetime.fromisoformat("2026-11-01T09:00:00+00:00")
    events = [
        base_event(
            spec,
            0,
            opened_at,
            "account.opened",
            billing_mode=spec.mode,
            currency="USD",
            timezone=tz,
        )
    ]
    clock = opened_at + timedelta(minutes=30)
    period = "2026-11"
    for n, number in enumerate(NUMBERS, start=1):
        events.append(base_event(spec, n, clock, "number.added", msisdn=number))
    for n, (number, plan_id) in enumerate(zip(NUMBERS, spec.initial_plans, strict=True), start=5):
        if plan_id is not None:
            events.append(
                base_event(
                    spec,
                    n,
                    clock,
                    "plan.purchased",
                    msisdn=number,
                    plan_id=plan_id,
                    channel="portal",
                )
            )
    for n, op in enumerate(spec.operations, start=10):
        kind = op[0]
        if kind == "call":
            _, index, destination, seconds, advance, repeat = op
            # Stay inside the current period: the next period starts with its cycle.started.
            last = period_end(period, tz) - timedelta(seconds=1)
            for r in range(repeat):
                clock = min(clock + timedelta(minutes=advance), last)
                events.append(call_event(spec, f"{n}.{r}", clock, index, destination, seconds))
        elif kind == "late_call":
            if period == "2026-11":
                continue  # nothing before the account's first period
            _, index, destination, seconds, back = op
            at = period_start(period, tz) - timedelta(seconds=back)
            events.append(call_event(spec, n, at, index, destination, seconds))
        elif kind == "recharge":
            amount = Decimal(op[1]) / 100
            events.append(base_event(spec, n, clock, "balance.recharged", amount=f"{amount:.2f}"))
        elif kind == "purchase":
            _, index, plan_id, renew = op
            events.append(
                base_event(
                    spec,
                    n,
                    clock,
                    "plan.purchased",
                    msisdn=NUMBERS[index],
                    plan_id=plan_id,
                    channel="portal",
                    autorenew=renew,
                )
            )
        elif kind == "change":
            _, index, plan_id = op
            events.append(
                base_event(spec, n, clock, "plan.changed", msisdn=NUMBERS[index], plan_id=plan_id)
            )
        elif kind == "autorenew":
            _, index, enabled = op
            events.append(
                base_event(
                    spec, n, clock, "plan.autorenew_changed", msisdn=NUMBERS[index], enabled=enabled
                )
            )
        else:
            period = next_period(period)
            clock = period_start(period, tz)
            events.append(base_event(spec, n, clock, "cycle.started", period=period))
            for r, (_, index, destination, seconds, back) in enumerate(op[1]):
                at = clock - timedelta(seconds=back)
                events.append(call_event(spec, f"{n}.{r}", at, index, destination, seconds))
    return events


def call_event(
    spec: AccountSpec, n: int | str, at: datetime, index: int, destination: str, seconds: int
) -> dict[str, Any]:
    return base_event(
        spec,
        n,
        at,
        "call.completed",
        msisdn=NUMBERS[index],
        destination=destination,
        duration_seconds=seconds,
        call_id=f"{spec.account_id}-call-{n}",
    )


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[AccountSpec], list[dict[str, Any]]]:
    """One or two accounts, their streams interleaved at random (each keeps its order)."""
    specs = [draw(account_spec("ACC-P1"))]
    if draw(st.booleans()):
        specs.append(draw(account_spec("ACC-P2")))
    queues = [account_events(spec) for spec in specs]
    merged: list[dict[str, Any]] = [catalog_event()]
    picks = draw(st.lists(st.integers(0, len(queues) - 1), max_size=200))
    for pick in picks:
        if queues[pick]:
            merged.append(queues[pick].pop(0))
    for queue in queues:
        merged.extend(queue)
    return specs, merged


def ledger_of(events: list[dict[str, Any]]) -> Ledger:
    ledger = Ledger()
    counts = ledger.feed(*events)
    assert not counts.dead_letters, ledger.reasons()
    return ledger


def stored(ledger: Ledger, account_id: str) -> list[Account.FactApplied]:
    return [
        e
        for e in ledger.app.events.get(account_stream_id(account_id))
        if isinstance(e, Account.FactApplied)
    ]


_BILLED = re.compile(r"-> (\d+) s billed")


def payg_billed_seconds(charges: list[dict[str, Any]]) -> int:
    billed = 0
    for charge in charges:
        if charge["kind"] == "payg_call":
            match = _BILLED.search(charge["arithmetic"])
            assert match, charge
            billed += int(match.group(1))
    return billed


# ---------------------------------------------------------------------------------------------
# Properties


@SETTINGS
@given(streams())
def test_V4_V6_plan_minutes_never_negative_and_used_plus_remaining_is_granted(
    stream: tuple[list[AccountSpec], list[dict[str, Any]]],
) -> None:
    specs, events = stream
    ledger = ledger_of(events)
    used_by_batch: dict[str, int] = {}
    for spec in specs:
        for stored_event in stored(ledger, spec.account_id):
            effects = stored_event.outcome["effects"]
            if stored_event.fact["type"] == "call.completed" and effects.get("plan_seconds"):
                key = f"{spec.account_id}|{stored_event.fact['msisdn']}|{effects['period']}"
                used_by_batch[key] = used_by_batch.get(key, 0) + effects["plan_seconds"]
    docs = dict(ledger.views.scan("minutes"))
    for key, doc in docs.items():
        assert doc["used_seconds"] >= 0 and doc["remaining_seconds"] >= 0, doc
        assert doc["used_seconds"] + doc["remaining_seconds"] == doc["granted_seconds"], doc
        assert doc["granted_seconds"] == doc["plan"]["minutes"] * 60, doc
        assert doc["used"] + doc["remaining"] == doc["granted"], doc
        assert doc["remaining"] >= 0, doc
        # The view's usage is exactly the plan seconds the calls of that batch took.
        assert doc["used_seconds"] == used_by_batch.get(key, 0), (key, doc)
    # Every batch calls took minutes from is in the view.
    assert set(used_by_batch) <= set(docs)


@SETTINGS
@given(streams())
def test_V5_V9_balance_is_recharges_minus_charges_paid_by_the_balance(
    stream: tuple[list[AccountSpec], list[dict[str, Any]]],
) -> None:
    specs, events = stream
    ledger = ledger_of(events)
    by_id = {e["event_id"]: e for e in events}
    for spec in specs:
        history = ledger.history(spec.account_id)
        recharges = sum(
            (
                Decimal(by_id[entry["event_id"]]["amount"])
                for entry in history
                if entry["type"] == "balance.recharged" and entry["status"] == "applied"
            ),
            start=Decimal(0),
        )
        charges = ledger.charges(spec.account_id)
        from_balance = sum(
            (Decimal(c["amount"]) for c in charges if c["payer"] == "balance"), start=Decimal(0)
        )
        assert Decimal(ledger.balance(spec.account_id)) == recharges - from_balance
        assert all(Decimal(c["amount"]) >= 0 for c in charges)  # no refunds (V7)
        if spec.mode == "postpaid":
            assert recharges == 0 and from_balance == 0
            assert {c["payer"] for c in charges} <= {"invoice"}
        else:
            # Plan fees never touch the balance (V2); PAYG calls always do (V5).
            assert all(c["payer"] == "payment_method" for c in charges if c["kind"] == "plan_fee")
            assert all(c["payer"] == "balance" for c in charges if c["kind"] == "payg_call")
        for entry in history:
            if entry["type"] != "balance.recharged":
                paid = sum(
                    (Decimal(c["amount"]) for c in entry["charges"] if c["payer"] == "balance"),
                    start=Decimal(0),
                )
                assert Decimal(entry["balance_delta"]) == -paid, entry


@settings(SETTINGS, max_examples=60)
@given(streams())
def test_R1_replay_and_batching_give_exactly_the_live_views(
    stream: tuple[list[AccountSpec], list[dict[str, Any]]],
) -> None:
    specs, events = stream
    live = ledger_of(events)
    views = live.all_views()
    assert any(key.startswith("balance/") for key in views)
    # A fresh replay of the stored events into emptied views.
    rebuild(live.app, live.views)
    assert live.all_views() == views
    # The same events, one batch each, into a second ledger.
    trickled = Ledger()
    trickled.feed_each(events)
    assert not trickled.dead_letters, trickled.reasons()
    assert trickled.all_views() == views
    for spec in specs:
        assert trickled.history(spec.account_id) == live.history(spec.account_id)


@SETTINGS
@given(streams())
def test_V4_plan_seconds_and_billed_payg_seconds_cover_every_call(
    stream: tuple[list[AccountSpec], list[dict[str, Any]]],
) -> None:
    specs, events = stream
    ledger = ledger_of(events)
    for spec in specs:
        for stored_event in stored(ledger, spec.account_id):
            fact, outcome = stored_event.fact, stored_event.outcome
            if fact["type"] != "call.completed":
                continue
            assert outcome["status"] == "applied", outcome
            duration = fact["duration_seconds"]
            rate = CATALOG.rate_for(fact["destination"])
            assert rate is not None
            plan_seconds = outcome["effects"].get("plan_seconds", 0)
            billed = payg_billed_seconds(outcome["charges"])
            assert plan_seconds >= 0 and billed >= 0
            assert plan_seconds + billed >= duration, (fact, outcome)
            # Plan seconds are whole plan increments (60 s), never more than the call rounded up.
            assert plan_seconds % 60 == 0
            assert plan_seconds <= -(-duration // 60) * 60
            if billed:
                payg_seconds = duration - plan_seconds
                assert payg_seconds > 0
                # PAYG is the rest of the call rounded up to the rate's increment (V4) ...
                assert billed == -(-payg_seconds // rate.increment_seconds) * rate.increment_seconds
                # ... at the destination's rate, to 4 places (M2).
                [charge] = outcome["charges"]
                expected = rated(Decimal(billed) * rate.per_minute / 60)
                assert Decimal(charge["amount"]) == expected, charge
                assert charge["catalog_version"] == CATALOG.version
            if duration == 0:
                assert plan_seconds == 0 and billed == 0


@dataclass
class ModelBatch:
    countries: frozenset[str]
    increment: int
    granted: int
    used: int = 0


def model_batch(plan: dict[str, Any]) -> ModelBatch:
    return ModelBatch(frozenset(plan["countries"]), plan["increment_seconds"], plan["minutes"] * 60)


@SETTINGS
@given(streams())
def test_V3_V4_T2_each_call_takes_exactly_the_minutes_its_own_periods_plan_allows(
    stream: tuple[list[AccountSpec], list[dict[str, Any]]],
) -> None:
    """A reference model of the minute batches, fed the plan history the ledger decided.

    Which plan a number holds in each period (purchases, renewals, changes, ends) is read from
    the ledger's own outcomes, so this property checks only V3/V4/T2: a call takes minutes from
    the batch of the period it happened in (even when it arrives after that period ended), if
    that batch's plan covers the destination's country, rounded up to the plan's increment and
    never past what is left.
    """
    specs, events = stream
    ledger = ledger_of(events)
    for spec in specs:
        batches: dict[tuple[str, str], ModelBatch] = {}
        latest: dict[str, dict[str, Any]] = {}  # the plan document each number last held
        for stored_event in stored(ledger, spec.account_id):
            fact, outcome = stored_event.fact, stored_event.outcome
            effects = outcome["effects"]
            if outcome["status"] != "applied":
                continue
            if fact["type"] == "plan.purchased":
                latest[fact["msisdn"]] = effects["plan"]
                batches[fact["msisdn"], effects["period"]] = model_batch(effects["plan"])
            elif fact["type"] == "cycle.started":
                for msisdn, change in effects["plans"].items():
                    if change["action"] in ("changed", "renewed"):
                        plan = change.get("plan", latest.get(msisdn))
                        assert plan is not None
                        latest[msisdn] = plan
                        batches[msisdn, effects["period"]] = model_batch(plan)
            elif fact["type"] == "call.completed":
                at = datetime.fromisoformat(fact["occurred_at"].replace("Z", "+00:00"))
                period = period_of(at, spec.timezone)
                rate = CATALOG.rate_for(fact["destination"])
                assert rate is not None
                batch = batches.get((fact["msisdn"], period))
                duration = fact["duration_seconds"]
                expected = 0
                if batch is not None and rate.country in batch.countries and duration > 0:
                    wanted = -(-duration // batch.increment) * batch.increment
                    expected = min(wanted, batch.granted - batch.used)
                assert effects.get("plan_seconds", 0) == expected, (
                    f"{fact['event_id']}: {duration} s to {rate.country} in {period}, "
                    f"batch before the call {batch}: expected {expected} plan seconds",
                    outcome,
                )
                if batch is not None:
                    batch.used += expected
