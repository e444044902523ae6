"""Voice plans and PAYG calls (SPEC 4: V1-V9, with C2/C3 and G2 as they apply to voice).

Every figure is computed by hand from the default catalog (version 2026-01-a,
ledger/catalogs/default.toml); the arithmetic is in the comment next to each assertion.
Figures used throughout:

- na-500: 9.99 monthly, 500 min (30,000 s) to US and CA, 60 s increments.
- na-500-yearly: 99.00 yearly, 500 min a month; na-unlimited: 19.99, 5,000 min.
- mexico-500: 9.99, 500 min to MX; europe-500: 12.99, 500 min to GB FR DE ES IT NL IE.
- PAYG: +1 US 0.0150/min 60 s; +1416 (Toronto) CA 0.0200/min 60 s; +1876 JM 0.1500/min 60 s;
  +44 GB landline 0.0200/min 60 s; +447 GB mobile 0.0800/min 60 s; +52 MX 0.0300/min 30 s;
  +91 IN 0.0150/min 1 s.
"""

import copy
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import RejectedEvent
from ledger.instants import instant_text, next_period, parse_instant, period_start
from ledger.rules.voice import Authorization, authorize
from tests.cli_helpers import assert_one_line_error, ingest_events, run, run_json
from tests.factories import catalog_published, event, opened
from tests.harness import Ledger

ACC = "ACC-V"
NUM1 = "+14155550101"
NUM2 = "+14155550102"
US = "+12125550100"  # +1 -> US, 0.0150/min, 60 s
CA = "+14165550100"  # +1416 (Toronto) -> CA, 0.0200/min, 60 s
JM = "+18765550100"  # +1876 -> JM, 0.1500/min, 60 s (a +1 number outside US/CA)
GB_LANDLINE = "+442071234567"  # +44 -> GB, 0.0200/min, 60 s
GB_MOBILE = "+447700900123"  # +447 -> GB, 0.0800/min, 60 s
MX = "+525512345678"  # +52 -> MX, 0.0300/min, 30 s
IN = "+919812345678"  # +91 -> IN, 0.0150/min, 1 s
NO_RATE = "+74951234567"  # +7: no prefix in the default catalog

CATALOG = "2026-01-a"


# ---------------------------------------------------------------------------------------------
# Builders


def setup(
    mode: str = "prepaid",
    *,
    numbers: tuple[str, ...] = (NUM1,),
    recharge: str | None = None,
    timezone: str | None = None,
) -> Ledger:
    """A ledger with the default catalog, one open account (2026-11) and its numbers."""
    ledger = Ledger()
    extra = {"timezone": timezone} if timezone else {}
    events = [catalog_published(), opened(ACC, mode, **extra)]
    events += [event("number.added", ACC, "2026-11-01T09:30:00Z", msisdn=n) for n in numbers]
    if recharge is not None:
        events.append(event("balance.recharged", ACC, "2026-11-01T09:45:00Z", amount=recharge))
    counts = ledger.feed(*events)
    assert not counts.dead_letters, ledger.reasons()
    return ledger


def call(at: str, seconds: int, to: str = US, msisdn: str = NUM1, **fields: Any) -> dict[str, Any]:
    return event(
        "call.completed",
        ACC,
        at,
        msisdn=msisdn,
        destination=to,
        duration_seconds=seconds,
        call_id=fields.pop("call_id", f"call-{at}-{seconds}-{to}"),
        **fields,
    )


def purchase(
    at: str = "2026-11-05T12:00:00Z", plan_id: str = "na-500", msisdn: str = NUM1, **fields: Any
) -> dict[str, Any]:
    return event(
        "plan.purchased",
        ACC,
        at,
        msisdn=msisdn,
        plan_id=plan_id,
        channel=fields.pop("channel", "portal"),
        **fields,
    )


def cycle(period: str, at: str | None = None) -> dict[str, Any]:
    return event("cycle.started", ACC, at or f"{period}-01T00:00:00Z", period=period)


def recharged(amount: str, at: str = "2026-11-10T12:00:00Z") -> dict[str, Any]:
    return event("balance.recharged", ACC, at, amount=amount)


def autorenew(enabled: bool, at: str = "2026-11-20T12:00:00Z", msisdn: str = NUM1) -> Any:
    return event("plan.autorenew_changed", ACC, at, msisdn=msisdn, enabled=enabled)


def feed_ok(ledger: Ledger, *events: dict[str, Any]) -> None:
    counts = ledger.feed(*events)
    assert not counts.dead_letters, ledger.reasons()


def minutes_of(ledger: Ledger, period: str, msisdn: str = NUM1) -> dict[str, Any]:
    doc = ledger.minutes(ACC, msisdn, period)
    assert doc is not None, f"no minutes for {msisdn} in {period}"
    return doc


def mgu(doc: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(granted, used, remaining) in minutes."""
    return doc["granted"], doc["used"], doc["remaining"]


def fees(ledger: Ledger) -> list[dict[str, Any]]:
    return [c for c in ledger.charges(ACC) if c["kind"] == "plan_fee"]


def payg(ledger: Ledger) -> list[dict[str, Any]]:
    return [c for c in ledger.charges(ACC) if c["kind"] == "payg_call"]


def last_charge(ledger: Ledger) -> dict[str, Any]:
    charges: list[dict[str, Any]] = ledger.last_outcome(ACC)["charges"]
    assert len(charges) == 1, charges
    return charges[0]


def ask(ledger: Ledger, to: str, at: str, msisdn: str = NUM1) -> Authorization:
    return authorize(
        ledger.account(ACC), msisdn, to, parse_instant(at, "at"), ledger.app.catalogs()
    )


def second_catalog(
    version: str, effective_from: str, *, us_per_minute: str | None = None, **plan_changes: Any
) -> dict[str, Any]:
    """A new catalog version built from the default one (C2)."""
    doc = catalog_published(event_id=f"catalog-{version}")
    catalog = copy.deepcopy(doc["catalog"])
    catalog["version"] = version
    catalog["effective_from"] = effective_from
    if us_per_minute is not None:
        for rate in catalog["rates"]:
            if rate["prefix"] == "+1":
                rate["per_minute"] = us_per_minute
    for plan in catalog["plans"]:
        if plan["id"] == "na-500":
            plan.update(plan_changes)
    doc["catalog"] = catalog
    doc["occurred_at"] = "2026-11-15T00:00:00Z"  # published before it takes effect
    return doc


# ---------------------------------------------------------------------------------------------
# V1: a plan belongs to one number


def test_V1_plan_covers_only_its_number_a_second_number_calls_payg() -> None:
    ledger = setup(numbers=(NUM1, NUM2), recharge="10.00")
    feed_ok(
        ledger,
        purchase(),
        call("2026-11-06T10:00:00Z", 95, msisdn=NUM1),
        call("2026-11-06T11:00:00Z", 95, msisdn=NUM2),
    )
    # NUM1: 95 s -> 120 s (two started minutes) from its own plan, no charge.
    assert mgu(minutes_of(ledger, "2026-11", NUM1)) == (500, 2, 498)
    # NUM2 has no plan: 95 s -> 120 s billed = 2 min x 0.0150 = 0.0300 from the balance.
    assert ledger.minutes(ACC, NUM2, "2026-11") is None
    [charge] = payg(ledger)
    assert (charge["msisdn"], charge["amount"], charge["payer"]) == (NUM2, "0.0300", "balance")
    # 10.00 - 0.0300 = 9.9700 (the plan fee went to the payment method, V2).
    assert ledger.balance(ACC) == "9.9700"


def test_V1_second_plan_purchased_on_the_same_number_is_rejected_and_nothing_moves() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(ledger, purchase(), call("2026-11-06T10:00:00Z", 60))
    before_views = ledger.all_views()
    feed_ok(ledger, purchase("2026-11-07T10:00:00Z", "na-unlimited"))
    last = ledger.last_outcome(ACC)
    assert last["type"] == "plan.purchased"
    assert last["status"] == "rejected"
    assert last["rule"] == "V1"
    assert "already has plan na-500" in last["reason"]
    assert last["charges"] == [] and last["balance_delta"] == "0.0000"
    # Only the first purchase's fee 9.99; views, minutes and balance did not move.
    assert [c["amount"] for c in fees(ledger)] == ["9.9900"]
    assert ledger.all_views() == before_views
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 1, 499)
    assert ledger.balance(ACC) == "10.0000"
    plan = ledger.account(ACC).numbers[NUM1].plan
    assert plan is not None and plan.plan_id == "na-500"


def test_V1_a_second_number_may_buy_its_own_plan() -> None:
    ledger = setup(numbers=(NUM1, NUM2))
    feed_ok(ledger, purchase(msisdn=NUM1), purchase(plan_id="europe-500", msisdn=NUM2))
    # Two numbers, two plans, two full fees: 9.99 (na-500) and 12.99 (europe-500).
    assert sorted((c["msisdn"], c["amount"]) for c in fees(ledger)) == [
        (NUM1, "9.9900"),
        (NUM2, "12.9900"),
    ]
    assert minutes_of(ledger, "2026-11", NUM1)["plan_id"] == "na-500"
    assert minutes_of(ledger, "2026-11", NUM2)["plan_id"] == "europe-500"


# ---------------------------------------------------------------------------------------------
# V2: purchase


def test_V2_mid_month_purchase_full_fee_and_full_minutes_to_the_period_end() -> None:
    ledger = setup(timezone="America/New_York")
    feed_ok(ledger, purchase("2026-11-20T15:00:00Z"))
    doc = minutes_of(ledger, "2026-11")
    # Bought on 20 November: still the full 500 minutes and the full 9.99, no proration.
    assert mgu(doc) == (500, 0, 500)
    assert (doc["granted_seconds"], doc["used_seconds"], doc["remaining_seconds"]) == (
        30000,
        0,
        30000,
    )
    assert doc["plan_id"] == "na-500"
    # Valid to the end of November in New York: midnight 1 Dec EST (UTC-5) = 05:00 UTC.
    assert doc["expires_at"] == "2026-12-01T05:00:00Z"
    [fee] = fees(ledger)
    assert fee["amount"] == "9.9900"
    assert fee["period"] == "2026-11"
    assert fee["catalog_version"] == CATALOG
    assert "no proration" in fee["arithmetic"]


def test_V2_T1_purchase_on_the_last_local_evening_belongs_to_that_local_month() -> None:
    ledger = setup(timezone="America/New_York", recharge="1.00")
    # 2026-12-01T03:00Z is 30 November 22:00 in New York: a November purchase.
    feed_ok(
        ledger,
        purchase("2026-12-01T03:00:00Z"),
        # 04:59:59Z is still 30 November 23:59:59 local: November's minutes, 1 min.
        call("2026-12-01T04:59:59Z", 60),
    )
    assert fees(ledger)[0]["period"] == "2026-11"
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 1, 499)
    assert ledger.minutes(ACC, NUM1, "2026-12") is None
    # The December cycle starts at local midnight (05:00Z): renewal, then December minutes.
    feed_ok(ledger, cycle("2026-12", "2026-12-01T05:00:00Z"), call("2026-12-01T05:00:00Z", 60))
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 1, 499)
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 1, 499)
    assert minutes_of(ledger, "2026-12")["expires_at"] == "2027-01-01T05:00:00Z"


def test_V2_T1_expiry_follows_daylight_saving_time_in_the_account_zone() -> None:
    ledger = setup(timezone="America/New_York")
    feed_ok(ledger, cycle("2027-07", "2027-07-01T04:00:00Z"), purchase("2027-07-10T10:00:00Z"))
    # July ends at local midnight 1 August, EDT (UTC-4) = 04:00 UTC.
    assert minutes_of(ledger, "2027-07")["expires_at"] == "2027-08-01T04:00:00Z"


def test_V2_prepaid_plan_fee_is_paid_by_payment_method_not_the_balance() -> None:
    ledger = setup(recharge="5.00")
    feed_ok(ledger, purchase())
    [fee] = fees(ledger)
    assert fee["payer"] == "payment_method"
    assert fee["rule"] == "V2"
    assert fee["msisdn"] == NUM1
    # The balance stays 5.00: the 9.99 fee is not taken from it (I3).
    assert ledger.balance(ACC) == "5.0000"
    assert ledger.last_outcome(ACC)["balance_delta"] == "0.0000"


def test_V2_prepaid_purchase_with_zero_balance_still_goes_through() -> None:
    ledger = setup()
    feed_ok(ledger, purchase())
    assert ledger.last_outcome(ACC)["status"] == "applied"
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 0, 500)
    assert ledger.balance(ACC) == "0.0000"


def test_V2_postpaid_plan_fee_goes_on_the_invoice() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, purchase())
    [fee] = fees(ledger)
    assert (fee["amount"], fee["payer"]) == ("9.9900", "invoice")
    assert ledger.balance(ACC) == "0.0000"


def test_V2_yearly_plan_fee_at_purchase_and_every_12th_renewal_minutes_every_month() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(ledger, purchase("2026-11-05T12:00:00Z", "na-500-yearly"))
    # Purchase (2026-11): 99.00 for the year.
    assert [(c["period"], c["amount"]) for c in fees(ledger)] == [("2026-11", "99.0000")]
    periods = ["2026-12"] + [f"2027-{m:02d}" for m in range(1, 13)]
    for months, period in enumerate(periods, start=1):
        feed_ok(ledger, cycle(period), call(f"{period}-02T10:00:00Z", 60))
        assert ledger.last_outcome(ACC)["status"] == "applied"
        # Every month a fresh 500 minutes; the 60 s call takes 1 of them.
        assert mgu(minutes_of(ledger, period)) == (500, 1, 499), period
        assert minutes_of(ledger, period)["plan_id"] == "na-500-yearly"
        expected_fees = 2 if months >= 12 else 1
        assert len(fees(ledger)) == expected_fees, (months, period)
    # Renewals 1..11 (2026-12..2027-10) charge nothing; the 12th (2027-11) charges 99.00
    # again; the 13th (2027-12) nothing. 2 x 99.00 = 198.00 in plan fees over 14 months.
    assert [(c["period"], c["amount"]) for c in fees(ledger)] == [
        ("2026-11", "99.0000"),
        ("2027-11", "99.0000"),
    ]
    assert sum(Decimal(c["amount"]) for c in fees(ledger)) == Decimal("198.00")
    assert all(c["payer"] == "payment_method" for c in fees(ledger))
    # The 12th renewal starts the plan's second year (not "month 12" of the first).
    assert (
        "renewal for 2027-11, the start of year 2 of the yearly plan"
        in fees(ledger)[1]["arithmetic"]
    )
    assert payg(ledger) == []  # every call fit in the month's minutes
    assert ledger.balance(ACC) == "1.0000"


# ---------------------------------------------------------------------------------------------
# V3: covered destinations


def test_V3_covered_countries_mobiles_and_landlines_alike_use_plan_minutes() -> None:
    ledger = setup(numbers=(NUM1, NUM2), recharge="10.00")
    feed_ok(
        ledger,
        purchase(msisdn=NUM1),  # na-500: US, CA
        purchase(plan_id="europe-500", msisdn=NUM2),  # GB FR DE ES IT NL IE
        call("2026-11-06T10:00:00Z", 60, US, NUM1),
        call("2026-11-06T10:05:00Z", 60, CA, NUM1),
        call("2026-11-06T10:10:00Z", 60, GB_LANDLINE, NUM2),
        call("2026-11-06T10:15:00Z", 60, GB_MOBILE, NUM2),
    )
    # 1 min each; US and Canada on na-500, a UK landline and a UK mobile on europe-500.
    assert mgu(minutes_of(ledger, "2026-11", NUM1)) == (500, 2, 498)
    assert mgu(minutes_of(ledger, "2026-11", NUM2)) == (500, 2, 498)
    assert payg(ledger) == []
    assert ledger.balance(ACC) == "10.0000"
    rules = [e["rule"] for e in ledger.history(ACC) if e["type"] == "call.completed"]
    assert rules == ["V3"] * 4


def test_V3_call_to_an_uncovered_country_from_a_plan_number_is_payg() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(
        ledger,
        purchase(),
        call("2026-11-06T10:00:00Z", 61, GB_LANDLINE),
        call("2026-11-06T10:05:00Z", 30, GB_MOBILE),
        call("2026-11-06T10:10:00Z", 60, JM),
    )
    # GB landline: 61 s -> 120 s = 2 min x 0.0200 = 0.0400
    # GB mobile:   30 s ->  60 s = 1 min x 0.0800 = 0.0800
    # Jamaica (+1876, JM, not US): 60 s = 1 min x 0.1500 = 0.1500
    assert [(c["amount"], c["rule"]) for c in payg(ledger)] == [
        ("0.0400", "V5"),
        ("0.0800", "V5"),
        ("0.1500", "V5"),
    ]
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 0, 500)
    # 10.00 - 0.04 - 0.08 - 0.15 = 9.7300
    assert ledger.balance(ACC) == "9.7300"


# ---------------------------------------------------------------------------------------------
# V4: rounding and running out


def test_V4_duration_is_rounded_up_to_the_plan_increment() -> None:
    ledger = setup()
    feed_ok(
        ledger,
        purchase(),
        call("2026-11-06T10:00:00Z", 61),  # 61 s -> 120 s
        call("2026-11-06T10:05:00Z", 60),  # 60 s -> 60 s
        call("2026-11-06T10:10:00Z", 1),  # 1 s -> 60 s
    )
    doc = minutes_of(ledger, "2026-11")
    # 120 + 60 + 60 = 240 s = 4 min used; 30,000 - 240 = 29,760 s = 496 min left.
    assert doc["used_seconds"] == 240
    assert doc["remaining_seconds"] == 29760
    assert mgu(doc) == (500, 4, 496)
    assert ledger.charges(ACC) == fees(ledger)  # no PAYG at all


def test_V4_a_zero_second_call_uses_no_minutes_and_costs_nothing() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(
        ledger,
        purchase(),
        call("2026-11-06T10:00:00Z", 0),
        call("2026-11-06T11:00:00Z", 0, GB_MOBILE),
    )
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 0, 500)
    assert payg(ledger) == []
    assert ledger.balance(ACC) == "1.0000"


def test_V4_minutes_run_out_mid_call_rest_is_payg() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(
        ledger,
        purchase(),
        call("2026-11-06T10:00:00Z", 29940),  # 499 min exactly: 1 min (60 s) left
    )
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 499, 1)
    # 150 s to Toronto (CA, covered): the plan takes the last 60 s; the other 90 s are PAYG at
    # the CA rate, rounded up to 60 s increments: 120 s = 2 min x 0.0200 = 0.0400.
    feed_ok(ledger, call("2026-11-07T10:00:00Z", 150, CA))
    charge = last_charge(ledger)
    assert charge["amount"] == "0.0400"
    assert charge["rule"] == "V4"
    assert charge["payer"] == "balance"
    assert "0.0200/min" in charge["rate"] and "+1416 (CA)" in charge["rate"]
    assert "90 s PAYG" in charge["arithmetic"] and "120 s billed" in charge["arithmetic"]
    assert ledger.last_outcome(ACC)["rule"] == "V4"
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 500, 0)
    # 10.00 - 0.0400 = 9.9600
    assert ledger.balance(ACC) == "9.9600"
    # No minutes left: the next covered call is PAYG in full, minutes stay at 0 (never < 0).
    # 30 s to US -> 60 s = 1 min x 0.0150 = 0.0150; 9.9600 - 0.0150 = 9.9450.
    feed_ok(ledger, call("2026-11-08T10:00:00Z", 30))
    assert last_charge(ledger)["amount"] == "0.0150"
    doc = minutes_of(ledger, "2026-11")
    assert (doc["used_seconds"], doc["remaining_seconds"]) == (30000, 0)
    assert ledger.balance(ACC) == "9.9450"


def test_V4_one_call_longer_than_all_the_minutes_never_drives_them_negative() -> None:
    ledger = setup("postpaid")
    # 31,000 s to US on a fresh na-500: 30,000 s from the plan, 1,000 s PAYG -> 1,020 s billed
    # (17 started minutes) x 0.0150 = 0.2550, on the invoice.
    feed_ok(ledger, purchase(), call("2026-11-06T10:00:00Z", 31000))
    doc = minutes_of(ledger, "2026-11")
    assert (doc["used_seconds"], doc["remaining_seconds"]) == (30000, 0)
    charge = last_charge(ledger)
    assert (charge["amount"], charge["payer"], charge["rule"]) == ("0.2550", "invoice", "V4")
    assert "1000 s PAYG" in charge["arithmetic"] and "1020 s billed" in charge["arithmetic"]
    assert ledger.balance(ACC) == "0.0000"


def test_V4_payg_rest_is_rounded_to_the_rates_own_increment() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(
        ledger,
        purchase(plan_id="mexico-500"),
        call("2026-11-06T10:00:00Z", 29940, MX),  # 499 min: 60 s left
        # 75 s to Mexico: 60 s from the plan, 15 s PAYG rounded up to the MX rate's 30 s
        # increment: 30 s = 0.5 min x 0.0300 = 0.0150 (a 60 s increment would give 0.0300).
        call("2026-11-07T10:00:00Z", 75, MX),
    )
    charge = last_charge(ledger)
    assert charge["amount"] == "0.0150"
    assert "15 s PAYG" in charge["arithmetic"] and "30 s billed" in charge["arithmetic"]
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 500, 0)
    assert ledger.balance(ACC) == "9.9850"  # 10.00 - 0.0150


# ---------------------------------------------------------------------------------------------
# V5: PAYG


def test_V5_payg_on_prepaid_debits_the_balance_by_the_charge() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(ledger, call("2026-11-06T10:00:00Z", 95))
    entry = ledger.last_outcome(ACC)
    charge = last_charge(ledger)
    # 95 s -> 120 s billed = 2 min x 0.0150 = 0.0300
    assert charge["kind"] == "payg_call"
    assert charge["amount"] == "0.0300"
    assert charge["payer"] == "balance"
    assert charge["rule"] == "V5"
    assert charge["catalog_version"] == CATALOG
    assert charge["rate"] == "0.0150/min, 60 s increments, prefix +1 (US)"
    assert charge["arithmetic"] == (
        "95 s PAYG (no plan minutes for US in 2026-11) -> 120 s billed"
        " = 120/60 min x 0.0150 = 0.0300"
    )
    assert charge["period"] == "2026-11" and charge["msisdn"] == NUM1
    assert entry["balance_delta"] == "-0.0300"
    assert ledger.balance(ACC) == "9.9700"  # 10.00 - 0.0300


def test_V5_M2_per_second_rate_rounds_half_up_to_four_places() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(ledger, call("2026-11-06T10:00:00Z", 95, IN))
    # India bills per second: 95 s x 0.0150 / 60 = 0.02375 -> 0.0238 (HALF_UP, 4 places).
    assert last_charge(ledger)["amount"] == "0.0238"
    assert ledger.balance(ACC) == "0.9762"  # 1.00 - 0.0238


def test_V5_payg_on_postpaid_goes_on_the_invoice_and_the_balance_does_not_move() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, call("2026-11-06T10:00:00Z", 95), call("2026-11-06T11:00:00Z", 61, GB_MOBILE))
    # 2 min x 0.0150 = 0.0300; 2 min x 0.0800 = 0.1600; both on the invoice.
    assert [(c["amount"], c["payer"]) for c in payg(ledger)] == [
        ("0.0300", "invoice"),
        ("0.1600", "invoice"),
    ]
    assert all(e["balance_delta"] == "0.0000" for e in ledger.history(ACC))
    assert ledger.balance(ACC) == "0.0000"


# ---------------------------------------------------------------------------------------------
# V6: period start


def test_V6_autorenew_on_renews_with_fee_and_a_fresh_batch_unused_minutes_do_not_carry_over() -> (
    None
):
    ledger = setup(recharge="2.00")
    feed_ok(ledger, purchase(), call("2026-11-06T10:00:00Z", 6000))  # 100 min used in Nov
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 100, 400)
    feed_ok(ledger, cycle("2026-12"))
    entry = ledger.last_outcome(ACC)
    assert (entry["status"], entry["rule"]) == ("applied", "V6")
    # Renewal fee 9.99 for December through the payment method; the balance stays 2.00.
    [renewal] = entry["charges"]
    assert (renewal["kind"], renewal["amount"], renewal["period"]) == (
        "plan_fee",
        "9.9900",
        "2026-12",
    )
    assert renewal["payer"] == "payment_method"
    # December: a new 500, not 500 + the 400 left in November.
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 0, 500)
    assert minutes_of(ledger, "2026-12")["expires_at"] == "2027-01-01T00:00:00Z"
    # A December call takes December's minutes; November's batch is untouched.
    feed_ok(ledger, call("2026-12-02T10:00:00Z", 120))
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 2, 498)
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 100, 400)
    assert ledger.balance(ACC) == "2.0000"


def test_V6_postpaid_renewal_fee_goes_on_the_invoice() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, purchase(), cycle("2026-12"))
    assert [(c["period"], c["amount"], c["payer"]) for c in fees(ledger)] == [
        ("2026-11", "9.9900", "invoice"),
        ("2026-12", "9.9900", "invoice"),
    ]


def test_V6_autorenew_off_the_plan_ends_at_the_next_period_and_calls_are_payg() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(ledger, purchase(), autorenew(False), cycle("2026-12"))
    entry = ledger.last_outcome(ACC)
    assert entry["status"] == "applied" and entry["charges"] == []  # no fee
    assert ledger.minutes(ACC, NUM1, "2026-12") is None
    assert ledger.account(ACC).numbers[NUM1].plan is None
    # A December call to US is PAYG: 60 s = 1 min x 0.0150 = 0.0150; 1.00 - 0.0150 = 0.9850.
    feed_ok(ledger, call("2026-12-02T10:00:00Z", 60))
    assert last_charge(ledger)["amount"] == "0.0150"
    assert ledger.balance(ACC) == "0.9850"
    assert [c["period"] for c in fees(ledger)] == ["2026-11"]


def test_V6_a_repeated_cycle_started_for_the_same_period_is_rejected() -> None:
    ledger = setup()
    feed_ok(ledger, purchase(), cycle("2026-12"), call("2026-12-02T10:00:00Z", 120))
    views = ledger.all_views()
    feed_ok(ledger, cycle("2026-12", "2026-12-03T00:00:00Z"))
    entry = ledger.last_outcome(ACC)
    assert (entry["status"], entry["rule"]) == ("rejected", "V6")
    assert "2026-12" in entry["reason"] and "already started" in entry["reason"]
    assert entry["charges"] == []
    # No second fee and no fresh batch: December still shows the 2 minutes used.
    assert len(fees(ledger)) == 2
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 2, 498)
    assert ledger.all_views() == views
    # An earlier period is refused as well.
    feed_ok(ledger, cycle("2026-11", "2026-12-04T00:00:00Z"))
    assert ledger.last_outcome(ACC)["status"] == "rejected"
    assert len(fees(ledger)) == 2


def test_V6_T2_late_call_after_a_renewal_takes_the_minutes_of_its_own_period() -> None:
    ledger = setup()
    feed_ok(
        ledger,
        purchase(),
        cycle("2026-12"),
        call("2026-11-29T10:00:00Z", 120, call_id="late"),  # made in November, logged later
    )
    # 120 s = 2 min from November's batch; December's stays whole.
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 2, 498)
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 0, 500)
    assert payg(ledger) == []


def test_V7_T2_late_call_after_the_cancelled_plan_ended_still_uses_its_periods_minutes() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(
        ledger,
        purchase(),
        autorenew(False),
        cycle("2026-12"),  # the cancelled plan ends here
        call("2026-11-29T10:00:00Z", 60, call_id="late"),  # made on 29 November
    )
    # On 29 November the plan was active with 500 minutes left (V7); a late record belongs to
    # its own period (T2): 1 min from November's minutes, no PAYG, balance untouched.
    assert payg(ledger) == []
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 1, 499)
    assert ledger.balance(ACC) == "1.0000"


def test_V8_T2_late_call_after_a_plan_change_uses_the_old_plan_of_its_period() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(
        ledger,
        purchase(),
        event("plan.changed", ACC, "2026-11-10T10:00:00Z", msisdn=NUM1, plan_id="mexico-500"),
        cycle("2026-12"),  # na-500 -> mexico-500
        call("2026-11-29T10:00:00Z", 60, US, call_id="late"),  # made in November
    )
    # In November the number was on na-500, which covers US: 1 min from November's minutes.
    assert payg(ledger) == []
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 1, 499)
    assert minutes_of(ledger, "2026-12")["plan_id"] == "mexico-500"
    assert ledger.balance(ACC) == "1.0000"


def test_V7_V8_cancelling_after_a_plan_change_request_ends_the_plan() -> None:
    ledger = setup()
    feed_ok(
        ledger,
        purchase(),
        event("plan.changed", ACC, "2026-11-10T10:00:00Z", msisdn=NUM1, plan_id="mexico-500"),
        autorenew(False, "2026-11-20T10:00:00Z"),  # then the customer cancels (V7)
        cycle("2026-12"),
    )
    # Autorenew is off at the period start: the plan ends (V6), no new plan, no fee.
    assert [c["period"] for c in fees(ledger)] == ["2026-11"]
    assert ledger.account(ACC).numbers[NUM1].plan is None
    assert ledger.minutes(ACC, NUM1, "2026-12") is None


def test_V2_V6_T2_a_purchase_logged_after_the_bill_run_is_renewed_into_the_started_period() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        cycle("2026-12"),
        purchase("2026-11-28T12:00:00Z"),  # dated in November, logged after December's bill run
        call("2026-12-02T10:00:00Z", 120),
    )
    # November's fee (V2) and the renewal December's bill run would have made (V6), both on
    # December's invoice (November's is closed); December's call takes December's minutes.
    assert [(c["period"], c["billed_period"], c["rule"]) for c in fees(ledger)] == [
        ("2026-11", "2026-12", "V2"),
        ("2026-12", "2026-12", "V6"),
    ]
    assert payg(ledger) == []
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 0, 500)
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 2, 498)
    # January renews it as usual, once.
    feed_ok(ledger, cycle("2027-01"))
    assert [c["period"] for c in fees(ledger)] == ["2026-11", "2026-12", "2027-01"]
    ledger.assert_replay_matches()


def test_V2_T2_a_late_purchase_with_autorenew_off_is_not_renewed() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, cycle("2026-12"), purchase("2026-11-28T12:00:00Z", autorenew=False))
    assert [c["period"] for c in fees(ledger)] == ["2026-11"]
    assert ledger.minutes(ACC, NUM1, "2026-12") is None
    assert ledger.account(ACC).numbers[NUM1].plan is None


def test_V2_T2_a_purchase_dated_more_than_twelve_periods_back_is_rejected() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        *(
            cycle(f"{year}-{month:02d}")
            for year, month in [(2026, 12)] + [(2027, m) for m in range(1, 13)]
        ),
    )
    feed_ok(ledger, purchase("2026-11-28T12:00:00Z"))
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("rejected", "V2")
    assert "13 periods before the open one (2027-12)" in outcome["reason"]
    assert fees(ledger) == []


def test_V6_V2_plan_bought_in_a_period_is_not_charged_again_when_that_period_starts() -> None:
    ledger = setup()
    # The purchase at 00:05 on 1 December is logged before December's cycle.started.
    feed_ok(ledger, purchase("2026-12-01T00:05:00Z"), cycle("2026-12", "2026-12-01T00:10:00Z"))
    assert [(c["period"], c["amount"]) for c in fees(ledger)] == [("2026-12", "9.9900")]
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 0, 500)


def test_V6_T2_a_call_ahead_of_its_periods_bill_run_renews_the_plan_and_uses_its_minutes() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase(),
        call("2026-12-01T00:02:00Z", 600, call_id="early"),  # logged before December's bill run
    )
    # The call renews na-500 for December as the bill run would: 9.99 (V6) on December's
    # invoice, and its 10 min come from December's 500, not PAYG.
    assert [(c["period"], c["amount"], c["rule"]) for c in fees(ledger)] == [
        ("2026-11", "9.9900", "V2"),
        ("2026-12", "9.9900", "V6"),
    ]
    assert payg(ledger) == []
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 10, 490)
    # The bill run finds the plan renewed: no second fee, no fresh batch over the used one.
    feed_ok(ledger, cycle("2026-12", "2026-12-01T00:10:00Z"), call("2026-12-02T10:00:00Z", 60))
    assert len(fees(ledger)) == 2
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 11, 489)
    assert ledger.invoice(ACC, "2026-11")["status"] == "closed"
    assert ledger.invoice(ACC, "2026-12")["total"] == "9.99"
    # Replayed from the log, state and views are what the live run left.
    ledger.assert_replay_matches()


def test_V6_T2_the_same_call_before_or_after_the_bill_run_costs_the_same() -> None:
    def december_charges(order: str) -> list[tuple[str, str]]:
        ledger = setup(recharge="5.00")
        early = call("2026-12-01T00:02:00Z", 600, call_id="c")
        bill_run = cycle("2026-12", "2026-12-01T00:10:00Z")
        feed_ok(ledger, purchase(), *((early, bill_run) if order == "early" else (bill_run, early)))
        assert mgu(minutes_of(ledger, "2026-12")) == (500, 10, 490)
        assert ledger.balance(ACC) == "5.0000"
        return sorted(
            (c["kind"], c["amount"]) for c in ledger.charges(ACC) if c["period"] == "2026-12"
        )

    assert december_charges("early") == december_charges("late") == [("plan_fee", "9.9900")]


def test_V6_T2_a_call_ahead_of_the_bill_run_leaves_a_cancelled_plan_to_end() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(ledger, purchase(), autorenew(False), call("2026-12-01T00:02:00Z", 60, call_id="e"))
    # Autorenew is off: the plan ends at December's start (V6), so the call is PAYG, 0.0150.
    assert [c["period"] for c in fees(ledger)] == ["2026-11"]
    assert [c["amount"] for c in payg(ledger)] == ["0.0150"]
    assert ledger.minutes(ACC, NUM1, "2026-12") is None
    feed_ok(ledger, cycle("2026-12", "2026-12-01T00:10:00Z"))
    assert ledger.account(ACC).numbers[NUM1].plan is None


def test_V8_T2_a_call_ahead_of_the_bill_run_takes_a_pending_change_into_effect() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(
        ledger,
        purchase(),
        event("plan.changed", ACC, "2026-11-10T10:00:00Z", msisdn=NUM1, plan_id="mexico-500"),
        call("2026-12-01T00:02:00Z", 60, MX, call_id="e"),  # before December's bill run
        cycle("2026-12", "2026-12-01T00:10:00Z"),
    )
    # December's plan is mexico-500 (V8, 9.99), charged once; the MX call used its minutes.
    assert [(c["period"], c["rule"]) for c in fees(ledger)] == [
        ("2026-11", "V2"),
        ("2026-12", "V8"),
    ]
    assert payg(ledger) == []
    doc = minutes_of(ledger, "2026-12")
    assert (doc["plan_id"], doc["used_seconds"]) == ("mexico-500", 60)


# ---------------------------------------------------------------------------------------------
# V7: cancelling


def test_V7_autorenew_off_keeps_the_plan_and_its_minutes_to_the_period_end_no_refund() -> None:
    ledger = setup(recharge="3.00")
    feed_ok(ledger, purchase(), call("2026-11-06T10:00:00Z", 60), autorenew(False))
    entry = ledger.last_outcome(ACC)
    assert (entry["status"], entry["rule"]) == ("applied", "V7")
    # Still November: the plan is active and its minutes usable (1 + 2 = 3 min used).
    feed_ok(ledger, call("2026-11-29T23:00:00Z", 120))
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 3, 497)
    assert payg(ledger) == []
    plan = ledger.account(ACC).numbers[NUM1].plan
    assert plan is not None and plan.autorenew is False
    # No refund: the only charge is the one 9.99 fee, nothing negative, balance untouched.
    assert [c["amount"] for c in ledger.charges(ACC)] == ["9.9900"]
    assert all(Decimal(c["amount"]) >= 0 for c in ledger.charges(ACC))
    assert ledger.balance(ACC) == "3.0000"


def test_V7_T2_a_cancel_logged_after_the_bill_run_reverses_the_unused_renewal() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase(),
        cycle("2026-12"),  # renews: 9.99 for December
        autorenew(False, "2026-11-28T12:00:00Z"),  # dated in November, logged after it
    )
    # The cancel came before December: the renewal is reversed (9.99 credited, V7), December's
    # minutes are withdrawn and the plan has ended, as if the cancel had arrived in time.
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("applied", "V7")
    assert [(c["kind"], c["amount"], c["period"]) for c in outcome["charges"]] == [
        ("plan_fee", "-9.9900", "2026-12")
    ]
    assert ledger.account(ACC).numbers[NUM1].plan is None
    assert ledger.minutes(ACC, NUM1, "2026-12") is None
    assert ledger.invoice(ACC, "2026-12")["total"] == "0.00"
    # November's minutes stay for late November calls; December's calls are PAYG.
    feed_ok(ledger, call("2026-11-29T10:00:00Z", 60, call_id="n"), call("2026-12-02T10:00:00Z", 60))
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 1, 499)
    assert [c["amount"] for c in payg(ledger)] == ["0.0150"]
    # No renewal in January.
    feed_ok(ledger, cycle("2027-01"))
    assert [c["period"] for c in fees(ledger) if not c["amount"].startswith("-")] == [
        "2026-11",
        "2026-12",
    ]
    ledger.assert_replay_matches()


def test_V7_T2_a_cancel_logged_after_the_renewed_minutes_were_used_ends_the_plan_next_period() -> (
    None
):
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase(),
        cycle("2026-12"),
        call("2026-12-02T10:00:00Z", 60),  # the customer used December's minutes
        autorenew(False, "2026-11-28T12:00:00Z"),
        cycle("2027-01"),
    )
    # The renewal stands (service taken, V7: no refund); the plan ends at January's start.
    assert all(not c["amount"].startswith("-") for c in ledger.charges(ACC))
    assert [c["period"] for c in fees(ledger)] == ["2026-11", "2026-12"]
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 1, 499)
    assert ledger.account(ACC).numbers[NUM1].plan is None


def cancelled_then_ended() -> list[dict[str, Any]]:
    """na-500 bought in November, cancelled (V7), and ended by December's bill run."""
    return [purchase(), autorenew(False, "2026-11-10T10:00:00Z"), cycle("2026-12")]


def test_V7_T2_a_switch_back_on_logged_after_the_bill_run_that_ended_the_plan_renews_it() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        *cancelled_then_ended(),
        call("2026-12-02T10:00:00Z", 60, call_id="meanwhile"),  # PAYG: no plan then
        autorenew(True, "2026-11-20T10:00:00Z"),  # dated in November, logged after its end
    )
    # The latest instruction was to continue: December's renewal, as the bill run would have
    # made it (V6, on December's invoice), and December's minutes for the calls to come.
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("applied", "V7")
    assert [(c["period"], c["amount"], c["rule"]) for c in outcome["charges"]] == [
        ("2026-12", "9.9900", "V6")
    ]
    plan = ledger.account(ACC).numbers[NUM1].plan
    assert plan is not None and plan.autorenew and plan.current_period == "2026-12"
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 0, 500)
    # The call rated while the plan stood ended stays as rated; the next takes the minutes.
    assert [c["amount"] for c in payg(ledger)] == ["0.0150"]
    feed_ok(ledger, call("2026-12-03T10:00:00Z", 120))
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 2, 498)
    assert ledger.invoice(ACC, "2026-12")["total"] == "10.01"
    # It renews in January as any plan with autorenew on, once.
    feed_ok(ledger, cycle("2027-01"))
    assert [c["period"] for c in fees(ledger)] == ["2026-11", "2026-12", "2027-01"]
    ledger.assert_replay_matches()


def test_V7_T2_a_switch_back_on_renews_through_every_bill_run_since_with_its_catalog() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        *cancelled_then_ended(),
        second_catalog("2027-01-a", "2027-01-01T00:00:00Z", fee="12.99"),
        cycle("2027-01"),
        autorenew(True, "2026-11-20T10:00:00Z"),
    )
    # Each renewal with the catalog in force at its period's start (C2).
    assert [(c["period"], c["billed_period"], c["amount"]) for c in fees(ledger)] == [
        ("2026-11", "2026-11", "9.9900"),
        ("2026-12", "2027-01", "9.9900"),  # December's invoice is closed
        ("2027-01", "2027-01", "12.9900"),
    ]
    assert mgu(minutes_of(ledger, "2027-01")) == (500, 0, 500)
    ledger.assert_replay_matches()


def test_V7_T2_a_switch_on_dated_after_the_plan_ended_does_not_bring_it_back() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        *cancelled_then_ended(),
        autorenew(True, "2026-12-02T10:00:00Z"),  # too late: the plan ended on 1 December
    )
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("rejected", "V7")
    assert "no active plan" in outcome["reason"]
    assert [c["period"] for c in fees(ledger)] == ["2026-11"]


def test_V7_T2_a_late_switch_on_leaves_a_plan_bought_since_and_one_the_catalog_dropped() -> None:
    # Bought again after the end: the number holds the new plan; the old one stays ended.
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        *cancelled_then_ended(),
        purchase("2026-12-02T10:00:00Z", plan_id="na-unlimited"),
        autorenew(True, "2026-11-20T10:00:00Z"),
    )
    plan = ledger.account(ACC).numbers[NUM1].plan
    assert plan is not None and plan.plan_id == "na-unlimited"
    assert [(c["period"], c["amount"]) for c in fees(ledger)] == [
        ("2026-11", "9.9900"),  # na-500
        ("2026-12", "19.9900"),  # na-unlimited, bought on 2 December
    ]
    # Ended because December's catalog dropped it, not for autorenew: nothing to renew.
    dropped = second_catalog("2026-12-a", "2026-12-01T00:00:00Z")
    dropped["catalog"]["plans"] = [
        plan for plan in dropped["catalog"]["plans"] if plan["id"] != "na-500"
    ]
    ledger = setup("postpaid")
    feed_ok(ledger, purchase(), dropped, cycle("2026-12"))
    assert ledger.account(ACC).numbers[NUM1].plan is None
    feed_ok(ledger, autorenew(True, "2026-11-20T10:00:00Z"))
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("rejected", "V7")
    assert [c["period"] for c in fees(ledger)] == ["2026-11"]


def months_from(first: str, count: int) -> list[str]:
    periods = [first]
    while len(periods) < count:
        periods.append(next_period(periods[-1]))
    return periods


def test_V7_a_cancelled_yearly_plan_runs_to_its_years_end_then_ends() -> None:
    """V7, seed 001: a cancel takes effect at the end of the billing cycle, which for a yearly
    plan is its year: the months paid for keep their minutes; nothing renews after."""
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase(plan_id="na-500-yearly"),  # 99.00 for November 2026 to October 2027
        cycle("2026-12"),
        autorenew(False, "2026-12-10T12:00:00Z"),
    )
    for period in months_from("2027-01", 10):  # to 2027-10, the year's last month
        feed_ok(ledger, cycle(period), call(f"{period}-02T10:00:00Z", 60))
        assert mgu(minutes_of(ledger, period)) == (500, 1, 499), period
    assert ledger.account(ACC).numbers[NUM1].plan is not None
    # The start of year 2: no fee, the plan has ended, calls are PAYG.
    feed_ok(ledger, cycle("2027-11"), call("2027-11-02T10:00:00Z", 60))
    assert ledger.account(ACC).numbers[NUM1].plan is None
    assert ledger.minutes(ACC, NUM1, "2027-11") is None
    assert [(c["period"], c["amount"]) for c in fees(ledger)] == [("2026-11", "99.0000")]
    assert [(c["period"], c["amount"]) for c in payg(ledger)] == [("2027-11", "0.0150")]
    ledger.assert_replay_matches()


def test_V7_T2_a_late_cancel_of_a_yearly_plan_reverses_only_the_next_years_renewal() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, purchase(plan_id="na-500-yearly"))
    feed_ok(ledger, *(cycle(period) for period in months_from("2026-12", 11)))  # to 2027-10
    # Dated in May, logged after June's bill run: June is in the year paid for, it stands.
    feed_ok(ledger, autorenew(False, "2027-05-20T12:00:00Z"))
    assert ledger.last_outcome(ACC)["charges"] == []
    assert mgu(minutes_of(ledger, "2027-06")) == (500, 0, 500)
    # Year 2 started (99.00) before a cancel dated in October reached the ledger: that
    # renewal is reversed, the plan ended with the year it was paid for.
    feed_ok(ledger, autorenew(True, "2027-10-10T12:00:00Z"), cycle("2027-11"))
    feed_ok(ledger, autorenew(False, "2027-10-20T12:00:00Z"))
    outcome = ledger.last_outcome(ACC)
    assert [(c["kind"], c["amount"], c["period"]) for c in outcome["charges"]] == [
        ("plan_fee", "-99.0000", "2027-11")
    ]
    assert ledger.account(ACC).numbers[NUM1].plan is None
    assert ledger.minutes(ACC, NUM1, "2027-11") is None
    assert mgu(minutes_of(ledger, "2027-10")) == (500, 0, 500)
    ledger.assert_replay_matches()


def test_V7_T2_a_late_cancel_leaves_a_yearly_renewal_whose_year_is_in_use() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, purchase(plan_id="na-500-yearly"))
    feed_ok(ledger, *(cycle(period) for period in months_from("2026-12", 13)))  # to 2027-12
    feed_ok(ledger, call("2027-12-02T10:00:00Z", 60))  # year 2 in use
    feed_ok(ledger, autorenew(False, "2027-10-20T12:00:00Z"))
    # Year 2's fee stands (the service was taken, no refund): the plan runs to its end.
    assert ledger.last_outcome(ACC)["charges"] == []
    assert [(c["period"], c["amount"]) for c in fees(ledger)] == [
        ("2026-11", "99.0000"),
        ("2027-11", "99.0000"),
    ]
    feed_ok(ledger, cycle("2028-01"))
    assert mgu(minutes_of(ledger, "2028-01")) == (500, 0, 500)
    assert ledger.account(ACC).numbers[NUM1].plan is not None
    ledger.assert_replay_matches()


def test_V7_switching_autorenew_back_on_before_the_period_end_renews() -> None:
    ledger = setup()
    feed_ok(
        ledger,
        purchase(),
        autorenew(False, "2026-11-10T10:00:00Z"),
        autorenew(True, "2026-11-20T10:00:00Z"),
        cycle("2026-12"),
    )
    assert [c["period"] for c in fees(ledger)] == ["2026-11", "2026-12"]
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 0, 500)


def test_V7_autorenew_change_for_a_number_without_a_plan_is_rejected() -> None:
    ledger = setup()
    feed_ok(ledger, autorenew(False))
    entry = ledger.last_outcome(ACC)
    assert entry["status"] == "rejected" and "no active plan" in entry["reason"]


# ---------------------------------------------------------------------------------------------
# V8: plan change


def test_V8_plan_change_takes_effect_at_the_next_period_start_not_before() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(
        ledger,
        purchase(),
        event("plan.changed", ACC, "2026-11-10T10:00:00Z", msisdn=NUM1, plan_id="na-unlimited"),
    )
    change = ledger.last_outcome(ACC)
    assert (change["status"], change["rule"], change["charges"]) == ("applied", "V8", [])
    # Rest of November: still na-500 and its 500 minutes.
    feed_ok(ledger, call("2026-11-11T10:00:00Z", 60))
    doc = minutes_of(ledger, "2026-11")
    assert doc["plan_id"] == "na-500" and mgu(doc) == (500, 1, 499)
    plan = ledger.account(ACC).numbers[NUM1].plan
    assert plan is not None and plan.plan_id == "na-500"
    assert [c["amount"] for c in fees(ledger)] == ["9.9900"]
    # December: na-unlimited, its 5,000 minutes and its 19.99 fee.
    feed_ok(ledger, cycle("2026-12"))
    doc = minutes_of(ledger, "2026-12")
    assert doc["plan_id"] == "na-unlimited" and mgu(doc) == (5000, 0, 5000)
    assert [(c["period"], c["amount"]) for c in fees(ledger)] == [
        ("2026-11", "9.9900"),
        ("2026-12", "19.9900"),
    ]
    plan = ledger.account(ACC).numbers[NUM1].plan
    assert plan is not None and plan.plan_id == "na-unlimited"
    # And January renews the new plan.
    feed_ok(ledger, cycle("2027-01"))
    assert minutes_of(ledger, "2027-01")["plan_id"] == "na-unlimited"
    assert fees(ledger)[-1]["amount"] == "19.9900"


def test_V8_downgrade_to_other_countries_switches_coverage_at_the_period_start() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(
        ledger,
        purchase(),
        event("plan.changed", ACC, "2026-11-10T10:00:00Z", msisdn=NUM1, plan_id="mexico-500"),
        call("2026-11-11T10:00:00Z", 60, US),  # November: na-500 still covers US
    )
    assert payg(ledger) == []
    feed_ok(
        ledger,
        cycle("2026-12"),
        call("2026-12-02T10:00:00Z", 60, US),  # PAYG now: 1 min x 0.0150 = 0.0150
        call("2026-12-02T11:00:00Z", 60, MX),  # mexico-500: 1 min
    )
    assert [c["amount"] for c in payg(ledger)] == ["0.0150"]
    assert mgu(minutes_of(ledger, "2026-12")) == (500, 1, 499)
    assert minutes_of(ledger, "2026-12")["plan_id"] == "mexico-500"
    assert ledger.balance(ACC) == "0.9850"  # 1.00 - 0.0150


def test_V2_V8_changing_back_to_the_yearly_plan_already_held_starts_no_new_term() -> None:
    ledger = setup()
    feed_ok(
        ledger,
        purchase(plan_id="na-500-yearly"),  # 99.00 for November 2026 to October 2027
        event("plan.changed", ACC, "2026-11-10T10:00:00Z", msisdn=NUM1, plan_id="na-500"),
        # The customer changes their mind: back to the yearly plan they hold, before December.
        event("plan.changed", ACC, "2026-11-11T10:00:00Z", msisdn=NUM1, plan_id="na-500-yearly"),
        cycle("2026-12"),
    )
    # December is month 1 of the paid year: a renewal with fresh minutes, no second 99.00.
    assert [(c["period"], c["amount"]) for c in fees(ledger)] == [("2026-11", "99.0000")]
    doc = minutes_of(ledger, "2026-12")
    assert doc["plan_id"] == "na-500-yearly" and mgu(doc) == (500, 0, 500)


def test_V6_plan_purchased_with_autorenew_off_ends_at_the_next_period() -> None:
    ledger = setup()
    feed_ok(ledger, purchase(autorenew=False), cycle("2026-12"))
    assert [c["period"] for c in fees(ledger)] == ["2026-11"]
    assert ledger.account(ACC).numbers[NUM1].plan is None
    assert ledger.minutes(ACC, NUM1, "2026-12") is None


def test_V8_plan_change_on_a_number_without_a_plan_is_rejected() -> None:
    ledger = setup()
    feed_ok(ledger, event("plan.changed", ACC, msisdn=NUM1, plan_id="na-500"))
    entry = ledger.last_outcome(ACC)
    assert (entry["status"], entry["rule"]) == ("rejected", "V8")


def change(plan_id: str, at: str) -> dict[str, Any]:
    return event("plan.changed", ACC, at, msisdn=NUM1, plan_id=plan_id)


def test_V8_T2_a_change_logged_after_the_bill_run_takes_effect_where_it_would_have() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase(),
        cycle("2026-12"),  # renews na-500: 9.99
        cycle("2027-01"),  # and again
        change("na-unlimited", "2026-11-28T12:00:00Z"),  # dated in November, logged late
    )
    # December's start would have made the change: both renewals of na-500 are reversed
    # (their minutes unused) and made again with na-unlimited: its fee at the change (V8),
    # then its renewal (V6), each on the invoice it goes to (December's is closed).
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("applied", "V8")
    assert [(c["period"], c["amount"], c["rule"]) for c in outcome["charges"]] == [
        ("2027-01", "-9.9900", "V8"),
        ("2026-12", "-9.9900", "V8"),
        ("2026-12", "19.9900", "V8"),
        ("2027-01", "19.9900", "V6"),
    ]
    assert all("plan changed to na-unlimited at" in c["label"] for c in outcome["charges"][:2])
    plan = ledger.account(ACC).numbers[NUM1].plan
    assert plan is not None and (plan.plan_id, plan.pending_plan_id) == ("na-unlimited", None)
    assert mgu(minutes_of(ledger, "2027-01")) == (5000, 0, 5000)
    # January held its na-500 renewal (9.99); now also 19.99 x 2 - 9.99 x 2.
    assert ledger.invoice(ACC, "2027-01")["total"] == "29.99"
    # The renewals reversed count as credited: a dispute of them is denied as such.
    credited = ledger.account(ACC).credited_charges
    assert sorted(credited) == sorted(
        c["rate"].removeprefix("reverses ") for c in outcome["charges"][:2]
    )
    # February renews na-unlimited, once.
    feed_ok(ledger, cycle("2027-02"))
    assert [c["amount"] for c in fees(ledger) if c["period"] == "2027-02"] == ["19.9900"]
    ledger.assert_replay_matches()


def test_V8_T2_a_late_change_after_the_renewed_minutes_were_used_waits_for_the_next_start() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase(),
        cycle("2026-12"),
        call("2026-12-02T10:00:00Z", 60),  # December's na-500 minutes in use
        change("na-unlimited", "2026-11-28T12:00:00Z"),
    )
    # The renewal stands (the customer took the service); the change is pending, as any.
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["charges"]) == ("applied", [])
    plan = ledger.account(ACC).numbers[NUM1].plan
    assert plan is not None and (plan.plan_id, plan.pending_plan_id) == ("na-500", "na-unlimited")
    feed_ok(ledger, cycle("2027-01"))
    assert [(c["period"], c["amount"]) for c in fees(ledger)] == [
        ("2026-11", "9.9900"),
        ("2026-12", "9.9900"),
        ("2027-01", "19.9900"),
    ]
    ledger.assert_replay_matches()


def test_V8_T2_a_late_change_continues_a_cancelled_plan_the_bill_run_ended() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        *cancelled_then_ended(),
        change("na-unlimited", "2026-11-28T12:00:00Z"),  # a change is an instruction to continue
    )
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("applied", "V8")
    assert [(c["period"], c["amount"], c["rule"]) for c in outcome["charges"]] == [
        ("2026-12", "19.9900", "V8")
    ]
    plan = ledger.account(ACC).numbers[NUM1].plan
    assert plan is not None and (plan.plan_id, plan.autorenew) == ("na-unlimited", True)
    assert mgu(minutes_of(ledger, "2026-12")) == (5000, 0, 5000)
    ledger.assert_replay_matches()


def test_V7_T2_a_late_switch_on_keeps_the_change_pending_before_the_cancel() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase(),
        change("na-unlimited", "2026-11-08T10:00:00Z"),
        autorenew(False, "2026-11-10T10:00:00Z"),
        cycle("2026-12"),
        autorenew(True, "2026-11-20T10:00:00Z"),
    )
    # As if the switch had come in time: the bill run would have made the pending change.
    assert [(c["period"], c["amount"], c["rule"]) for c in fees(ledger)] == [
        ("2026-11", "9.9900", "V2"),
        ("2026-12", "19.9900", "V8"),
    ]
    ledger.assert_replay_matches()


# ---------------------------------------------------------------------------------------------
# V9: authorize, debt, blocks


def test_V9_authorize_is_plan_seconds_left_plus_what_the_balance_buys() -> None:
    ledger = setup(recharge="0.05")
    feed_ok(ledger, purchase(), call("2026-11-06T10:00:00Z", 600))  # 10 min used, 490 left
    at = "2026-11-07T10:00:00Z"
    us = ask(ledger, US, at)
    # Plan: 490 min = 29,400 s. Balance 0.05 / 0.0150 per 60 s = 3.33 -> 3 increments = 180 s.
    assert (us.allowed, us.plan_seconds, us.payg_seconds, us.seconds) == (True, 29400, 180, 29580)
    assert us.country == "US"
    # GB landline is not covered: 0.05 / 0.0200 = 2.5 -> 2 increments = 120 s.
    gb = ask(ledger, GB_LANDLINE, at)
    assert (gb.allowed, gb.plan_seconds, gb.payg_seconds, gb.seconds) == (True, 0, 120, 120)
    # Mexico: 30 s increments at 0.0300/min = 0.0150 each; 0.05 / 0.015 = 3.33 -> 3 = 90 s.
    assert ask(ledger, MX, at).seconds == 90
    # India per second: 0.0150 / 60 = 0.00025 a second; 0.05 / 0.00025 = 200 s.
    assert ask(ledger, IN, at).seconds == 200
    # GB mobile: 0.05 / 0.0800 = 0.625 -> not one increment: refused.
    mobile = ask(ledger, GB_MOBILE, at)
    assert (mobile.allowed, mobile.seconds) == (False, 0)
    assert "less than one 60 s increment" in mobile.reason


def test_V9_prepaid_with_no_balance_and_no_covering_minutes_is_refused() -> None:
    ledger = setup()
    refused = ask(ledger, US, "2026-11-07T10:00:00Z")
    assert (refused.allowed, refused.seconds) == (False, 0)
    assert refused.reason.startswith("refused")
    # With covering minutes the same account may call, for the minutes only.
    feed_ok(ledger, purchase())
    allowed = ask(ledger, US, "2026-11-07T10:00:00Z")
    assert (allowed.allowed, allowed.plan_seconds, allowed.payg_seconds) == (True, 30000, 0)
    assert allowed.seconds == 30000
    # ... but not to a destination the plan does not cover.
    assert ask(ledger, GB_LANDLINE, "2026-11-07T10:00:00Z").allowed is False


def test_V9_call_arriving_anyway_is_charged_in_full_and_the_next_recharge_pays_the_debt() -> None:
    ledger = setup(recharge="0.02")
    # 0.02 buys 1 minute to the US (0.02 / 0.0150 = 1.33 -> 1 increment = 60 s).
    assert ask(ledger, US, "2026-11-06T09:00:00Z").seconds == 60
    # The switch lets a 300 s call through anyway: 5 min x 0.0150 = 0.0750, charged in full.
    feed_ok(ledger, call("2026-11-06T10:00:00Z", 300))
    assert last_charge(ledger)["amount"] == "0.0750"
    # 0.02 - 0.0750 = -0.0550: the view shows the debt.
    assert ledger.balance(ACC) == "-0.0550"
    assert ask(ledger, US, "2026-11-06T11:00:00Z").allowed is False
    # A 5.00 recharge pays the 0.0550 debt first: 5.00 - 0.0550 = 4.9450.
    feed_ok(ledger, recharged("5.00", "2026-11-07T10:00:00Z"))
    assert ledger.balance(ACC) == "4.9450"
    # 4.9450 / 0.0150 = 329.67 -> 329 increments = 19,740 s.
    assert ask(ledger, US, "2026-11-07T11:00:00Z").seconds == 19740


def test_V9_B2_blocked_account_is_refused_but_its_calls_are_still_charged() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(
        ledger,
        purchase(),
        event("account.blocked", ACC, "2026-11-06T09:00:00Z", reason="AUP violation"),
    )
    refused = ask(ledger, US, "2026-11-06T10:00:00Z")
    assert (refused.allowed, refused.seconds) == (False, 0)
    assert "blocked" in refused.reason
    # Call records still arrive and are rated: plan minutes for US, PAYG for GB mobile
    # (60 s = 1 min x 0.0800 = 0.0800; 10.00 - 0.08 = 9.9200).
    feed_ok(
        ledger,
        call("2026-11-06T10:00:00Z", 60),
        call("2026-11-06T10:05:00Z", 60, GB_MOBILE),
    )
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 1, 499)
    assert [c["amount"] for c in payg(ledger)] == ["0.0800"]
    assert ledger.balance(ACC) == "9.9200"
    feed_ok(ledger, event("account.unblocked", ACC, "2026-11-07T09:00:00Z", reason="cleared"))
    assert ask(ledger, US, "2026-11-07T10:00:00Z").allowed is True


def test_V9_B2_blocked_postpaid_account_is_refused_too() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, event("account.blocked", ACC, "2026-11-06T09:00:00Z", reason="AUP"))
    assert ask(ledger, US, "2026-11-06T10:00:00Z").allowed is False


def test_V9_postpaid_is_allowed_without_a_limit() -> None:
    ledger = setup("postpaid")
    open_ended = ask(ledger, GB_MOBILE, "2026-11-06T10:00:00Z")
    assert (open_ended.allowed, open_ended.seconds, open_ended.payg_seconds) == (True, None, None)
    feed_ok(ledger, purchase(), call("2026-11-06T10:00:00Z", 60))
    with_plan = ask(ledger, US, "2026-11-06T11:00:00Z")
    # 499 min of plan minutes left = 29,940 s, reported; no limit overall.
    assert (with_plan.allowed, with_plan.seconds, with_plan.plan_seconds) == (True, None, 29940)


def test_V9_authorize_counts_only_the_minutes_of_the_period_at_that_instant() -> None:
    ledger = setup()
    feed_ok(ledger, purchase(), autorenew(False))
    assert ask(ledger, US, "2026-11-30T23:59:59Z").plan_seconds == 30000
    feed_ok(ledger, cycle("2026-12"))
    # The plan ended with November; nothing left to authorize against on a zero balance.
    assert ask(ledger, US, "2026-12-01T00:00:01Z").allowed is False


def test_V9_T2_authorize_ahead_of_the_bill_run_counts_the_plans_renewal() -> None:
    ledger = setup()  # prepaid, no balance: only plan minutes let it call
    feed_ok(ledger, purchase(), call("2026-11-20T10:00:00Z", 30000))  # November's 500 min used
    assert ask(ledger, US, "2026-11-30T23:00:00Z").allowed is False
    # Between December's start and its bill run the first call record would renew na-500
    # (V6; its fee goes to the payment method, not the balance), so authorize counts
    # December's 500 fresh minutes, for covered destinations only, and changes nothing.
    early = ask(ledger, US, "2026-12-01T00:01:00Z")
    assert (early.allowed, early.plan_seconds, early.payg_seconds) == (True, 30000, 0)
    assert ask(ledger, GB_LANDLINE, "2026-12-01T00:01:00Z").allowed is False
    assert ledger.minutes(ACC, NUM1, "2026-12") is None and len(fees(ledger)) == 1
    # Two periods ahead (a bill run missed) nothing renews: refused.
    assert ask(ledger, US, "2027-01-01T00:01:00Z").allowed is False
    # The call then made is taken from those minutes, and the bill run agrees.
    feed_ok(ledger, call("2026-12-01T00:02:00Z", 600, call_id="early"))
    assert ask(ledger, US, "2026-12-01T00:15:00Z").plan_seconds == 29400
    feed_ok(ledger, cycle("2026-12", "2026-12-01T00:20:00Z"))
    assert ask(ledger, US, "2026-12-01T00:30:00Z").plan_seconds == 29400


def test_V9_T2_authorize_ahead_of_the_bill_run_counts_no_renewal_for_a_cancelled_plan() -> None:
    ledger = setup()
    feed_ok(ledger, purchase(), autorenew(False))
    assert ask(ledger, US, "2026-12-01T00:01:00Z").allowed is False  # the plan ends (V6, V7)


def test_V8_T2_authorize_ahead_of_the_bill_run_counts_the_changed_plans_minutes() -> None:
    ledger = setup()
    feed_ok(
        ledger,
        purchase(),
        event("plan.changed", ACC, "2026-11-10T10:00:00Z", msisdn=NUM1, plan_id="mexico-500"),
    )
    # December's plan is mexico-500 (V8): Mexico is covered from December's start, not before.
    assert ask(ledger, MX, "2026-11-30T23:00:00Z").allowed is False
    assert ask(ledger, MX, "2026-12-01T00:01:00Z").plan_seconds == 30000


def test_V9_authorize_for_a_number_not_on_the_account_is_an_error() -> None:
    ledger = setup()
    with pytest.raises(RejectedEvent, match="unknown number"):
        ask(ledger, US, "2026-11-06T10:00:00Z", msisdn=NUM2)


# ---------------------------------------------------------------------------------------------
# C2, C3: catalog versions and prefixes


def test_C2_a_new_version_rates_only_calls_at_or_after_its_effective_from() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(ledger, second_catalog("2026-12-a", "2026-12-01T00:00:00Z", us_per_minute="0.0300"))
    feed_ok(
        ledger,
        call("2026-11-30T23:59:59Z", 95),  # 2 min x 0.0150 = 0.0300 (2026-01-a)
        call("2026-12-01T00:00:00Z", 95),  # 2 min x 0.0300 = 0.0600 (2026-12-a, at its start)
        call("2026-11-15T10:00:00Z", 95),  # a late November call: still 0.0300 (2026-01-a)
    )
    assert [(c["amount"], c["catalog_version"]) for c in payg(ledger)] == [
        ("0.0300", "2026-01-a"),
        ("0.0600", "2026-12-a"),
        ("0.0300", "2026-01-a"),
    ]
    assert payg(ledger)[1]["rate"].startswith("0.0300/min")
    assert payg(ledger)[1]["arithmetic"].endswith("x 0.0300 = 0.0600")
    # 10.00 - 0.03 - 0.06 - 0.03 = 9.8800
    assert ledger.balance(ACC) == "9.8800"
    # authorize uses the version in force at its instant: 9.88 / 0.015 = 658.67 -> 658 min;
    # 9.88 / 0.03 = 329.33 -> 329 min.
    assert ask(ledger, US, "2026-11-30T23:00:00Z").seconds == 658 * 60
    assert ask(ledger, US, "2026-12-01T01:00:00Z").seconds == 329 * 60


def test_C2_renewal_fee_and_minutes_come_from_the_version_in_force_at_the_period_start() -> None:
    ledger = setup()
    feed_ok(
        ledger,
        purchase(),
        second_catalog("2026-12-b", "2026-12-01T00:00:00Z", fee="10.99", minutes=600),
        cycle("2026-12"),
    )
    # November: bought under 2026-01-a (9.99, 500 min). December renews under 2026-12-b.
    assert [(c["amount"], c["catalog_version"]) for c in fees(ledger)] == [
        ("9.9900", "2026-01-a"),
        ("10.9900", "2026-12-b"),
    ]
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 0, 500)
    # The renewal is rated with the version in force (C2): the 10.99 plan grants 600 minutes.
    assert mgu(minutes_of(ledger, "2026-12")) == (600, 0, 600)


TOKYO = "Asia/Tokyo"  # December 2026 starts there at 2026-11-30T15:00:00Z


def tokyo_december(*events: dict[str, Any], effective_from: str) -> list[Any]:
    """A postpaid Tokyo account's plan fees after `events`, with 2026-12-a (na-500 at 11.99)
    in force from `effective_from`."""
    ledger = setup("postpaid", timezone=TOKYO)
    feed_ok(ledger, second_catalog("2026-12-a", effective_from, fee="11.99"))
    for each in events:
        feed_ok(ledger, each)  # one batch each: the order they reach the ledger
    ledger.assert_replay_matches()
    return [(c["period"], c["amount"], c["catalog_version"]) for c in fees(ledger)]


@pytest.mark.parametrize(
    ("effective_from", "december"),
    [
        # In force from midnight UTC: after Tokyo's December began, so not December's.
        ("2026-12-01T00:00:00Z", ("2026-12", "9.9900", "2026-01-a")),
        # In force from the instant Tokyo's December began: December's.
        ("2026-11-30T15:00:00Z", ("2026-12", "11.9900", "2026-12-a")),
    ],
)
def test_C2_T2_a_renewal_takes_the_catalog_of_its_period_start_whatever_arrives_first(
    effective_from: str, december: tuple[str, str, str]
) -> None:
    """A renewal is charged under the catalog in force when its period starts in the account's
    time zone, however it is made: by the bill run (here logged at 00:30 UTC, after the new
    version took effect), by a call ahead of the bill run, or by a late purchase's catch-up.
    (The bill run used its own instant and the call its own: the same facts billed 9.99 or
    11.99 for December by the order they arrived in.)"""
    bought = purchase("2026-11-20T12:00:00Z")
    bill_run = cycle("2026-12", "2026-12-01T00:30:00Z")
    december_call = call("2026-12-01T01:00:00Z", 60)
    november = ("2026-11", "9.9900", "2026-01-a")
    assert tokyo_december(bought, bill_run, december_call, effective_from=effective_from) == [
        november,
        december,
    ]
    assert tokyo_december(bought, december_call, bill_run, effective_from=effective_from) == [
        november,
        december,
    ]
    # The purchase logged after the bill run: December's renewal is made late, the same.
    assert tokyo_december(bill_run, bought, effective_from=effective_from) == [
        november,
        december,
    ]


@settings(max_examples=40, deadline=None)
@given(
    zone_name=st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York", "Pacific/Kiritimati"]),
    takes_effect_hours=st.integers(min_value=-20, max_value=20),
    bill_run_minutes=st.integers(min_value=0, max_value=900),
    call_minutes=st.integers(min_value=0, max_value=900),
)
def test_C2_T2_a_renewal_fee_never_depends_on_what_reaches_the_ledger_first(
    zone_name: str, takes_effect_hours: int, bill_run_minutes: int, call_minutes: int
) -> None:
    """Whatever the zone, and wherever the new version takes effect around December's start,
    the bill run and a December call give the same December fee in either order: the one in
    force when December starts in the account's zone."""
    start = period_start("2026-12", zone_name)
    effective = instant_text(start + timedelta(hours=takes_effect_hours))
    bill_run = cycle("2026-12", instant_text(start + timedelta(minutes=bill_run_minutes)))
    december_call = call(instant_text(start + timedelta(minutes=call_minutes)), 60)
    expected = ("9.9900", CATALOG) if takes_effect_hours > 0 else ("11.9900", "2026-12-a")
    for order in ((bill_run, december_call), (december_call, bill_run)):
        ledger = setup("postpaid", timezone=zone_name)
        feed_ok(ledger, second_catalog("2026-12-a", effective, fee="11.99"))
        feed_ok(ledger, purchase("2026-11-20T12:00:00Z"))
        for each in order:
            feed_ok(ledger, each)
        december = [(c["amount"], c["catalog_version"]) for c in fees(ledger)][1:]
        assert december == [expected], order


def test_C3_longest_prefix_canadian_area_code_is_rated_at_the_CA_rate() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(ledger, call("2026-11-06T10:00:00Z", 60, CA), call("2026-11-06T11:00:00Z", 60, US))
    toronto, new_york = payg(ledger)
    # +1416... matches +1416 (CA, 0.0200) before +1 (US, 0.0150): 1 min x 0.0200 = 0.0200.
    assert toronto["amount"] == "0.0200"
    assert toronto["rate"] == "0.0200/min, 60 s increments, prefix +1416 (CA)"
    assert new_york["amount"] == "0.0150"
    assert "prefix +1 (US)" in new_york["rate"]
    assert ledger.balance(ACC) == "0.9650"  # 1.00 - 0.02 - 0.015


def test_C3_V3_a_plus_one_number_outside_US_and_CA_is_not_covered_by_na_500() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(ledger, purchase(), call("2026-11-06T10:00:00Z", 60, JM))
    # +1876 is Jamaica: PAYG 1 min x 0.1500 = 0.1500, no plan minutes.
    assert last_charge(ledger)["rate"].endswith("prefix +1876 (JM)")
    assert last_charge(ledger)["amount"] == "0.1500"
    assert mgu(minutes_of(ledger, "2026-11")) == (500, 0, 500)


# ---------------------------------------------------------------------------------------------
# G2: dead letters


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            call("2026-11-06T10:00:00Z", 60, msisdn="+14155550999"),
            f"unknown number +14155550999 on account {ACC}",
        ),
        (
            call("2026-11-06T10:00:00Z", -1),
            "call.completed: duration_seconds must be an integer >= 0, got -1",
        ),
        (
            purchase(plan_id="na-9000"),
            f"unknown plan 'na-9000' in catalog version {CATALOG}",
        ),
        (
            event("plan.changed", ACC, msisdn=NUM1, plan_id="na-9000"),
            f"unknown plan 'na-9000' in catalog version {CATALOG}",
        ),
        (
            call("2026-11-06T10:00:00Z", 60, NO_RATE),
            f"no rate for destination {NO_RATE} in catalog version {CATALOG}",
        ),
    ],
    ids=[
        "unknown-number",
        "negative-duration",
        "unknown-plan",
        "change-to-unknown-plan",
        "no-rate",
    ],
)
def test_G2_voice_records_that_do_not_fit_are_dead_lettered_with_a_reason(
    bad: dict[str, Any], reason: str
) -> None:
    ledger = setup(recharge="1.00")
    feed_ok(ledger, purchase(at="2026-11-02T10:00:00Z", event_id=f"p-{bad['event_id']}"))
    before = (ledger.history(ACC), ledger.all_views())
    counts = ledger.feed(bad)
    assert (counts.consumed, counts.applied, len(counts.dead_letters)) == (1, 0, 1)
    assert ledger.reasons() == [reason]
    # Nothing recorded, nothing moved.
    assert (ledger.history(ACC), ledger.all_views()) == before


# ---------------------------------------------------------------------------------------------
# The command line (SPEC 12)


def _cli_month() -> list[dict[str, Any]]:
    return [
        catalog_published(),
        opened(ACC, timezone="America/New_York"),
        event("number.added", ACC, "2026-11-01T09:30:00Z", msisdn=NUM1),
        event("number.added", ACC, "2026-11-01T09:31:00Z", msisdn=NUM2),
        recharged("0.05", "2026-11-01T09:45:00Z"),
        purchase("2026-11-05T12:00:00Z", event_id="cli-buy"),
        purchase("2026-11-05T12:30:00Z", "na-unlimited", event_id="cli-buy-again"),
        call("2026-11-06T10:00:00Z", 61),  # 2 min of the plan
        call("2026-11-06T11:00:00Z", 95, GB_LANDLINE, event_id="cli-payg"),  # 2 x 0.02 = 0.04
    ]


def test_cli_minutes_json_lines(tmp_path: Path, sqlite_url: str) -> None:
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    doc = run_json("--store", sqlite_url, "minutes", ACC, "--msisdn", NUM1, "--period", "2026-11")
    assert doc == {
        "account_id": ACC,
        "lines": [
            {
                "msisdn": NUM1,
                "plan_id": "na-500",
                "period": "2026-11",
                "granted": 500,
                "used": 2,
                "remaining": 498,
                "expires_at": "2026-12-01T05:00:00Z",  # local midnight, New York (EST)
            }
        ],
    }
    # NUM2 has no plan: no lines.
    empty = run_json("--store", sqlite_url, "minutes", ACC, "--msisdn", NUM2)
    assert empty["lines"] == []


def test_cli_authorize_json_allowed_and_exit_3_when_refused(
    tmp_path: Path, sqlite_url: str
) -> None:
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    # Balance 0.05 - 0.04 = 0.01. US on the plan: 498 min = 29,880 s; 0.01 buys no full minute.
    allowed = run_json(
        "--store", sqlite_url, "authorize", ACC,
        "--msisdn", NUM1, "--to", US, "--at", "2026-11-07T10:00:00Z",
    )  # fmt: skip
    assert allowed == {
        "account_id": ACC,
        "msisdn": NUM1,
        "destination": US,
        "allowed": True,
        "seconds": 29880,
        "plan_seconds": 29880,
        "payg_seconds": 0,
        "country": "US",
        "reason": allowed["reason"],
    }
    # NUM2 to a GB mobile: no plan, 0.01 / 0.08 buys nothing: refused, exit status 3.
    result = run(
        "--store", sqlite_url, "--json", "authorize", ACC,
        "--msisdn", NUM2, "--to", GB_MOBILE, "--at", "2026-11-07T10:00:00Z",
        expect=3,
    )  # fmt: skip
    refused = json.loads(result.stdout)
    assert (refused["allowed"], refused["seconds"], refused["country"]) == (False, 0, "GB")


def test_cli_history_json_shows_the_rejected_purchase_and_the_charges(
    tmp_path: Path, sqlite_url: str
) -> None:
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    doc = run_json("--store", sqlite_url, "history", ACC)
    assert doc["account_id"] == ACC
    by_id = {entry["event_id"]: entry for entry in doc["entries"]}
    again = by_id["cli-buy-again"]
    assert (again["status"], again["rule"]) == ("rejected", "V1")
    assert "already has plan na-500" in again["reason"]
    [fee] = by_id["cli-buy"]["charges"]
    assert (fee["amount"], fee["payer"], fee["catalog_version"]) == (
        "9.9900",
        "payment_method",
        CATALOG,
    )
    [call_charge] = by_id["cli-payg"]["charges"]
    # 95 s -> 120 s = 2 min x 0.0200 = 0.0400
    assert (call_charge["amount"], call_charge["rule"], call_charge["payer"]) == (
        "0.0400",
        "V5",
        "balance",
    )
    assert by_id["cli-payg"]["balance_delta"] == "-0.0400"
    assert run_json("--store", sqlite_url, "balance", ACC)["balance"] == "0.0100"


def test_cli_authorize_unknown_number_is_a_one_line_error(tmp_path: Path, sqlite_url: str) -> None:
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    result = run(
        "--store", sqlite_url, "authorize", ACC,
        "--msisdn", "+14155550999", "--to", US, "--at", "2026-11-07T10:00:00Z",
        expect=1,
    )  # fmt: skip
    assert result.stderr.startswith("ledger: error:") and result.stderr.count("\n") == 1
    assert "unknown number +14155550999" in result.stderr


@pytest.mark.parametrize("at", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00+01:00"])
def test_cli_an_instant_off_the_billing_calendar_is_a_one_line_error(
    tmp_path: Path, sqlite_url: str, at: str
) -> None:
    """A "forever" date or the first day of year 1 used to end in a traceback (December 9999
    has no next month; year 1 at +01:00 is year 0 in UTC)."""
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    says = f"--at {at!r} is outside the years the ledger bills in (0002 to 9998)"
    assert_one_line_error(
        sqlite_url, "authorize", ACC, "--msisdn", NUM1, "--to", US, "--at", at, says=says
    )
    assert_one_line_error(
        sqlite_url, "dispute", ACC, "cli-payg:payg", "--reason", "x", "--at", at, says=says
    )
    assert_one_line_error(
        sqlite_url,
        "invoice",
        ACC,
        "--period",
        "9999-12",
        says="--period '9999-12' is outside the periods the ledger bills in (0001-12 to 9999-01",
    )
