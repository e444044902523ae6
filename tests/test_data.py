"""Data packages, fair use and roaming (SPEC 5: D1-D9, with M2, T1, C2 and G2 as they apply).

Every figure is computed by hand from the default catalog (version 2026-01-a,
ledger/catalogs/default.toml); the arithmetic is in the comment next to each assertion.
Figures used throughout:

- data-1gb: 5.00, 1,000,000,000 bytes; data-5gb: 15.00, 5,000,000,000 bytes;
  data-10gb: 25.00, 10,000,000,000 bytes; data-unlimited: 30.00, fair use 2,200,000,000 bytes.
- Home PAYG: 0.0500 per MB (1 MB = 1,000,000 bytes), rated to 4 places HALF_UP (M2).
- Roaming per MB: CA 0.5000, MX 0.7500, GB 1.2000, FR/DE/ES/IT 1.5000, IN 1.0000, AU 1.7500;
  any other country 2.0000 (the default).
- Month lengths: November 2026 30 days, December 2026 31, January 2027 31, February 2027 28,
  February 2028 29.
"""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.account import Account
from ledger.ids import account_stream_id
from tests.cli_helpers import ingest_events, run, run_json
from tests.factories import catalog_published, event
from tests.harness import Ledger

ACC = "ACC-D"
NUM1 = "+14155550101"
NUM2 = "+14155550102"
STRANGER = "+14155550999"  # not on the account
CATALOG = "2026-01-a"
GB = 1_000_000_000  # bytes in a (decimal) gigabyte
FUP = 2_200_000_000  # Data Unlimited's fair-use threshold in the default catalog


# ---------------------------------------------------------------------------------------------
# Builders


def setup(
    mode: str = "prepaid",
    *,
    numbers: tuple[str, ...] = (NUM1,),
    recharge: str | None = None,
    timezone: str | None = None,
    opened_at: str = "2026-11-01T09:00:00Z",
) -> Ledger:
    """A ledger with the default catalog and one open account with its numbers."""
    ledger = Ledger()
    extra = {"timezone": timezone} if timezone else {}
    start = datetime.fromisoformat(opened_at.replace("Z", "+00:00"))
    later = (start + timedelta(minutes=30)).isoformat()
    events = [
        catalog_published(),
        event("account.opened", ACC, opened_at, billing_mode=mode, currency="USD", **extra),
    ]
    events += [event("number.added", ACC, later, msisdn=n) for n in numbers]
    if recharge is not None:
        events.append(event("balance.recharged", ACC, later, amount=recharge))
    feed_ok(ledger, *events)
    return ledger


def feed_ok(ledger: Ledger, *events: dict[str, Any]) -> None:
    counts = ledger.feed(*events)
    assert not counts.dead_letters, ledger.reasons()


def used(at: str, nbytes: int, msisdn: str = NUM1, **fields: Any) -> dict[str, Any]:
    return event("data.used", ACC, at, msisdn=msisdn, bytes=nbytes, roaming=False, **fields)


def roamed(at: str, nbytes: int, country: str, msisdn: str = NUM1) -> dict[str, Any]:
    return event("data.used", ACC, at, msisdn=msisdn, bytes=nbytes, roaming=True, country=country)


def subscribe(at: str, package_id: str, msisdn: str = NUM1, **fields: Any) -> dict[str, Any]:
    return event("package.subscribed", ACC, at, msisdn=msisdn, package_id=package_id, **fields)


def change(at: str, package_id: str, msisdn: str = NUM1, **fields: Any) -> dict[str, Any]:
    return event("package.changed", ACC, at, msisdn=msisdn, package_id=package_id, **fields)


def unsubscribe(at: str, msisdn: str = NUM1) -> dict[str, Any]:
    return event("package.unsubscribed", ACC, at, msisdn=msisdn)


def cycle(period: str, at: str | None = None) -> dict[str, Any]:
    return event("cycle.started", ACC, at or f"{period}-01T00:00:00Z", period=period)


def recharged(amount: str, at: str) -> dict[str, Any]:
    return event("balance.recharged", ACC, at, amount=amount)


def data_of(ledger: Ledger, msisdn: str = NUM1) -> dict[str, Any]:
    doc = ledger.data(ACC, msisdn)
    assert doc is not None, f"no data view for {msisdn}"
    return doc


def throttle_of(ledger: Ledger, msisdn: str = NUM1) -> dict[str, Any]:
    doc = ledger.throttle(ACC, msisdn)
    assert doc is not None, f"no throttle view for {msisdn}"
    return doc


def remaining(ledger: Ledger, msisdn: str = NUM1) -> tuple[Any, Any]:
    doc = data_of(ledger, msisdn)
    return doc["package_id"], doc["remaining_bytes"]


def package_fees(ledger: Ledger) -> list[tuple[Any, ...]]:
    """(msisdn, period, amount, rule, payer) of every package fee, in log order."""
    return [
        (c["msisdn"], c["period"], c["amount"], c["rule"], c["payer"])
        for c in ledger.charges(ACC)
        if c["kind"] == "package_fee"
    ]


def usage_charges(ledger: Ledger) -> list[tuple[Any, ...]]:
    """(kind, amount, payer) of every data usage charge, in log order."""
    return [
        (c["kind"], c["amount"], c["payer"])
        for c in ledger.charges(ACC)
        if c["kind"] in {"payg_data", "roaming_data"}
    ]


def last_charge(ledger: Ledger) -> dict[str, Any]:
    charges: list[dict[str, Any]] = ledger.last_outcome(ACC)["charges"]
    assert len(charges) == 1, charges
    return charges[0]


def last_effects(ledger: Ledger) -> dict[str, Any]:
    """The effects the rules decided for the account's last event (read from its stream)."""
    *_, last = ledger.app.events.get(account_stream_id(ACC))
    assert isinstance(last, Account.FactApplied)
    effects: dict[str, Any] = last.outcome["effects"]
    return effects


def split(ledger: Ledger) -> tuple[int, int, int]:
    """(package_bytes, payg_bytes, roaming_bytes) of the last data record."""
    effects = last_effects(ledger)
    return effects["package_bytes"], effects["payg_bytes"], effects["roaming_bytes"]


def assert_applied(ledger: Ledger, rule: str) -> None:
    last = ledger.last_outcome(ACC)
    assert (last["status"], last["rule"]) == ("applied", rule), last


# ---------------------------------------------------------------------------------------------
# D1: home data from the package, PAYG beyond it


def test_D1_home_data_is_taken_from_the_package_without_a_charge() -> None:
    ledger = setup(recharge="20.00")
    feed_ok(ledger, subscribe("2026-11-10T12:00:00Z", "data-1gb"))
    # 20.00 - 5.00 (data-1gb, D7) = 15.0000
    assert ledger.balance(ACC) == "15.0000"
    feed_ok(ledger, used("2026-11-11T08:00:00Z", 400_000_000))
    assert_applied(ledger, "D1")
    assert ledger.last_outcome(ACC)["charges"] == []
    # 1,000,000,000 - 400,000,000 = 600,000,000 left; nothing PAYG, the balance stays.
    assert split(ledger) == (400_000_000, 0, 0)
    assert remaining(ledger) == ("data-1gb", 600_000_000)
    assert ledger.balance(ACC) == "15.0000"


def test_D1_beyond_the_package_data_is_payg_and_prepaid_pays_from_the_balance() -> None:
    ledger = setup(recharge="20.00")
    feed_ok(ledger, subscribe("2026-11-10T12:00:00Z", "data-1gb"))
    feed_ok(ledger, used("2026-11-11T08:00:00Z", 1_234_567_891))
    # 1,000,000,000 from the package; 234,567,891 PAYG:
    # 234,567,891 / 1,000,000 x 0.0500 = 11.72839455 -> 11.7284 (HALF_UP)
    assert split(ledger) == (1_000_000_000, 234_567_891, 0)
    charge = last_charge(ledger)
    assert charge["kind"] == "payg_data"
    assert charge["amount"] == "11.7284"
    assert charge["rule"] == "D1"
    assert charge["payer"] == "balance"
    assert charge["catalog_version"] == CATALOG
    assert charge["rate"] == "0.0500/MB home PAYG"
    assert (charge["period"], charge["msisdn"]) == ("2026-11", NUM1)
    assert ledger.last_outcome(ACC)["balance_delta"] == "-11.7284"
    # 15.0000 - 11.7284 = 3.2716
    assert ledger.balance(ACC) == "3.2716"
    assert remaining(ledger) == ("data-1gb", 0)
    # The package is used up: the next record is all PAYG, 2 MB x 0.0500 = 0.1000.
    feed_ok(ledger, used("2026-11-12T08:00:00Z", 2_000_000))
    assert split(ledger) == (0, 2_000_000, 0)
    assert last_charge(ledger)["amount"] == "0.1000"
    assert ledger.balance(ACC) == "3.1716"  # 3.2716 - 0.1000


def test_D1_no_package_all_payg_and_postpaid_puts_it_on_the_invoice() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, used("2026-11-05T10:00:00Z", 2_500_000))
    # 2,500,000 / 1,000,000 x 0.0500 = 0.1250, on the invoice
    assert split(ledger) == (0, 2_500_000, 0)
    charge = last_charge(ledger)
    assert (charge["kind"], charge["amount"], charge["payer"], charge["rule"]) == (
        "payg_data",
        "0.1250",
        "invoice",
        "D1",
    )
    assert ledger.last_outcome(ACC)["balance_delta"] == "0.0000"
    assert ledger.balance(ACC) == "0.0000"
    assert data_of(ledger)["package_id"] is None


@pytest.mark.parametrize(
    ("nbytes", "amount"),
    [
        (1_000, "0.0001"),  # 0.001 MB x 0.0500 = 0.00005 -> 0.0001 (HALF_EVEN would give 0.0000)
        (5_000, "0.0003"),  # 0.005 x 0.0500 = 0.00025 -> 0.0003 (HALF_EVEN: 0.0002)
        (1_234_501_000, "61.7251"),  # 1,234.501 x 0.0500 = 61.72505 -> 61.7251
        (3_000_000_000, "150.0000"),  # 3,000 x 0.0500 = 150.0000
    ],
)
def test_D1_M2_payg_data_is_rated_to_four_places_half_up(nbytes: int, amount: str) -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, used("2026-11-05T10:00:00Z", nbytes))
    assert last_charge(ledger)["amount"] == amount


def test_D1_a_zero_byte_record_costs_nothing() -> None:
    ledger = setup(recharge="1.00")
    feed_ok(ledger, used("2026-11-05T10:00:00Z", 0))
    assert_applied(ledger, "D1")
    assert ledger.last_outcome(ACC)["charges"] == []
    assert split(ledger) == (0, 0, 0)
    assert ledger.balance(ACC) == "1.0000"


def test_D1_a_package_covers_only_its_own_number() -> None:
    ledger = setup(numbers=(NUM1, NUM2), recharge="10.00")
    feed_ok(
        ledger,
        subscribe("2026-11-10T12:00:00Z", "data-1gb", NUM1),
        used("2026-11-11T08:00:00Z", 1_000_000, NUM2),
    )
    # NUM2 has no package: 1 MB x 0.0500 = 0.0500 from the balance; NUM1's data untouched.
    assert last_charge(ledger)["msisdn"] == NUM2
    assert last_charge(ledger)["amount"] == "0.0500"
    assert remaining(ledger, NUM1) == ("data-1gb", 1_000_000_000)
    assert remaining(ledger, NUM2) == (None, 0)
    assert ledger.balance(ACC) == "4.9500"  # 10.00 - 5.00 - 0.0500


# ---------------------------------------------------------------------------------------------
# D2: roaming


def test_D2_roaming_never_uses_the_package_and_is_charged_at_the_visited_countrys_rate() -> None:
    ledger = setup(recharge="50.00")
    feed_ok(ledger, subscribe("2026-11-10T12:00:00Z", "data-5gb"))  # 50.00 - 15.00 = 35.00
    feed_ok(ledger, roamed("2026-11-12T08:00:00Z", 10_000_000, "FR"))
    assert_applied(ledger, "D2")
    # 10,000,000 / 1,000,000 x 1.5000 (FR) = 15.0000, from the balance
    assert split(ledger) == (0, 0, 10_000_000)
    charge = last_charge(ledger)
    assert charge["kind"] == "roaming_data"
    assert (charge["amount"], charge["payer"], charge["rule"]) == ("15.0000", "balance", "D2")
    assert charge["rate"] == "1.5000/MB roaming in FR"
    assert charge["catalog_version"] == CATALOG
    assert ledger.balance(ACC) == "20.0000"  # 35.0000 - 15.0000
    # The package is untouched.
    assert remaining(ledger) == ("data-5gb", 5_000_000_000)


@pytest.mark.parametrize(
    ("country", "per_mb", "amount"),
    [
        ("CA", "0.5000", "0.6173"),  # 1.234567 MB x 0.5000 = 0.6172835 -> 0.6173
        ("MX", "0.7500", "0.9259"),  # x 0.7500 = 0.92592525 -> 0.9259
        ("GB", "1.2000", "1.4815"),  # x 1.2000 = 1.4814804 -> 1.4815
        ("FR", "1.5000", "1.8519"),  # x 1.5000 = 1.8518505 -> 1.8519
        ("DE", "1.5000", "1.8519"),
        ("ES", "1.5000", "1.8519"),
        ("IT", "1.5000", "1.8519"),
        ("IN", "1.0000", "1.2346"),  # x 1.0000 = 1.234567 -> 1.2346
        ("AU", "1.7500", "2.1605"),  # x 1.7500 = 2.16049225 -> 2.1605
        ("JP", "2.0000", "2.4691"),  # not listed: default 2.0000; 2.469134 -> 2.4691
        ("BR", "2.0000", "2.4691"),  # not listed: default
    ],
)
def test_D2_roaming_rate_of_each_country_or_the_default(
    country: str, per_mb: str, amount: str
) -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, roamed("2026-11-12T08:00:00Z", 1_234_567, country))
    charge = last_charge(ledger)
    assert charge["rate"] == f"{per_mb}/MB roaming in {country}"
    assert (charge["amount"], charge["payer"]) == (amount, "invoice")
    assert ledger.balance(ACC) == "0.0000"


def test_D2_D3_roaming_on_data_unlimited_is_charged_and_never_counts_toward_fair_use() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-02T10:00:00Z", "data-unlimited"),
        roamed("2026-11-03T10:00:00Z", 3_000_000_000, "GB"),
    )
    # Roaming is charged even on Data Unlimited: 3,000 MB x 1.2000 = 3600.0000
    assert last_charge(ledger)["amount"] == "3600.0000"
    assert split(ledger) == (0, 0, 3_000_000_000)
    throttle = throttle_of(ledger)
    assert (throttle["throttled"], throttle["fup_used_bytes"]) == (False, 0)
    # Home usage still has the whole threshold: one byte short, then the byte that reaches it.
    feed_ok(ledger, used("2026-11-04T10:00:00Z", FUP - 1))
    assert throttle_of(ledger)["throttled"] is False
    feed_ok(ledger, used("2026-11-04T11:00:00Z", 1))
    assert throttle_of(ledger)["throttled"] is True


# ---------------------------------------------------------------------------------------------
# D3, D8: Data Unlimited and fair use


def test_D3_unlimited_has_no_excess_charges_and_throttles_exactly_at_the_threshold() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, subscribe("2026-11-02T10:00:00Z", "data-unlimited"))

    feed_ok(ledger, used("2026-11-03T10:00:00Z", 1_000_000_000))
    assert_applied(ledger, "D3")
    assert last_effects(ledger)["throttle_crossed"] is False
    # 1,000,000,000 + 1,199,999,999 = 2,199,999,999: one byte short of 2,200,000,000
    feed_ok(ledger, used("2026-11-04T10:00:00Z", 1_199_999_999))
    throttle = throttle_of(ledger)
    assert (throttle["throttled"], throttle["since"], throttle["fup_used_bytes"]) == (
        False,
        None,
        2_199_999_999,
    )
    assert last_effects(ledger)["throttle_crossed"] is False
    # The record that reaches the threshold throttles; its occurred_at is `since`.
    feed_ok(ledger, used("2026-11-05T08:30:00Z", 1))
    assert last_effects(ledger)["throttle_crossed"] is True
    throttle = throttle_of(ledger)
    assert throttle["throttled"] is True
    assert throttle["since"] == "2026-11-05T08:30:00Z"
    assert (throttle["fup_used_bytes"], throttle["fup_bytes"]) == (FUP, FUP)
    assert throttle["lifts_at"] == "2026-12-01T00:00:00Z"  # the next period start
    # Far beyond it: still no excess charge; `since` stays the crossing record's.
    feed_ok(ledger, used("2026-11-06T10:00:00Z", 5_000_000_000))
    assert last_effects(ledger)["throttle_crossed"] is False
    assert split(ledger) == (5_000_000_000, 0, 0)
    throttle = throttle_of(ledger)
    assert throttle["since"] == "2026-11-05T08:30:00Z"
    assert throttle["fup_used_bytes"] == 7_200_000_000  # 2,200,000,000 + 5,000,000,000
    # The only charge on the number is the package fee; no data charge at all.
    assert usage_charges(ledger) == []
    assert package_fees(ledger) == [(NUM1, "2026-11", "30.0000", "D4", "invoice")]
    assert data_of(ledger)["unlimited"] is True


def test_D3_the_crossing_record_may_overshoot_and_its_instant_is_since_in_utc() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-02T10:00:00Z", "data-unlimited"),
        used("2026-11-03T10:00:00Z", 2_000_000_000),
    )
    assert throttle_of(ledger)["throttled"] is False
    # 2,000,000,000 + 500,000,000 = 2,500,000,000 >= 2,200,000,000: this record crosses.
    feed_ok(ledger, used("2026-11-04T10:15:00+02:00", 500_000_000))
    assert last_effects(ledger)["throttle_crossed"] is True
    throttle = throttle_of(ledger)
    assert throttle["throttled"] is True
    assert throttle["since"] == "2026-11-04T08:15:00Z"  # 10:15 at +02:00
    assert throttle["fup_used_bytes"] == 2_500_000_000


def test_D3_postpaid_throttle_is_lifted_by_the_next_cycle_started() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-02T10:00:00Z", "data-unlimited"),
        used("2026-11-20T10:00:00Z", 2_300_000_000),
    )
    assert throttle_of(ledger)["throttled"] is True
    feed_ok(ledger, cycle("2026-12"))
    # The new period: fair-use count back to 0, no throttle, threshold 2.2 GB again.
    assert throttle_of(ledger) | {"account_id": None} == {
        "account_id": None,
        "msisdn": NUM1,
        "package_id": "data-unlimited",
        "throttled": False,
        "since": None,
        "fup_used_bytes": 0,
        "fup_bytes": FUP,
        "lifts_at": "2027-01-01T00:00:00Z",
    }
    # The fee for December is charged in advance, in full, on the invoice (D4).
    assert ledger.last_outcome(ACC)["charges"][0]["kind"] == "package_fee"
    assert package_fees(ledger) == [
        (NUM1, "2026-11", "30.0000", "D4", "invoice"),
        (NUM1, "2026-12", "30.0000", "D4", "invoice"),
    ]
    # December's usage counts from zero: one byte short is not throttled.
    feed_ok(ledger, used("2026-12-02T10:00:00Z", FUP - 1))
    assert throttle_of(ledger)["throttled"] is False


def test_D3_T2_a_late_record_of_the_previous_period_does_not_count_toward_the_new_cycle() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-02T10:00:00Z", "data-unlimited"),
        cycle("2026-12"),
        # November's usage arrives after December has started (T2: it belongs to November).
        used("2026-11-30T23:00:00Z", 2_300_000_000),
    )
    # December's fair-use cycle has seen no December usage: not throttled.
    throttle = throttle_of(ledger)
    assert (throttle["throttled"], throttle["fup_used_bytes"]) == (False, 0)
    assert usage_charges(ledger) == []  # and still no excess charge (D3)


def test_D8_prepaid_unlimited_threshold_applies_per_30_day_window() -> None:
    ledger = setup(recharge="40.00")
    feed_ok(ledger, subscribe("2026-11-05T12:00:00Z", "data-unlimited"))
    # Full fee from the balance: 40.00 - 30.00 = 10.0000
    assert package_fees(ledger) == [(NUM1, "2026-11", "30.0000", "D7", "balance")]
    assert ledger.balance(ACC) == "10.0000"
    # The window: 30 x 24 h from the purchase.
    assert data_of(ledger)["valid_until"] == "2026-12-05T12:00:00Z"
    assert throttle_of(ledger)["lifts_at"] == "2026-12-05T12:00:00Z"
    assert throttle_of(ledger)["fup_bytes"] == FUP

    feed_ok(ledger, used("2026-11-20T09:00:00Z", FUP))
    assert throttle_of(ledger)["throttled"] is True
    assert throttle_of(ledger)["since"] == "2026-11-20T09:00:00Z"
    # A calendar period start does not lift a prepaid throttle: the window runs on.
    feed_ok(ledger, cycle("2026-12"))
    assert ledger.last_outcome(ACC)["charges"] == []
    assert throttle_of(ledger)["throttled"] is True
    # Last second of the window: still Data Unlimited, throttled, no charge.
    feed_ok(ledger, used("2026-12-05T11:59:59Z", 1_000_000_000))
    assert split(ledger) == (1_000_000_000, 0, 0)
    assert throttle_of(ledger)["throttled"] is True
    assert ledger.balance(ACC) == "10.0000"
    # The window has ended: the number is PAYG, 1 MB x 0.0500 = 0.0500 from the balance.
    feed_ok(ledger, used("2026-12-05T12:00:00Z", 1_000_000))
    assert split(ledger) == (0, 1_000_000, 0)
    assert last_charge(ledger)["amount"] == "0.0500"
    assert ledger.balance(ACC) == "9.9500"
    assert data_of(ledger)["package_id"] is None
    assert throttle_of(ledger)["throttled"] is False
    # A new purchase opens a new window with a fresh threshold.
    feed_ok(
        ledger,
        recharged("30.00", "2026-12-06T08:00:00Z"),
        subscribe("2026-12-06T09:00:00Z", "data-unlimited"),
    )
    assert ledger.balance(ACC) == "9.9500"  # 9.9500 + 30.00 - 30.00
    throttle = throttle_of(ledger)
    assert (throttle["throttled"], throttle["fup_used_bytes"], throttle["lifts_at"]) == (
        False,
        0,
        "2027-01-05T09:00:00Z",
    )


# ---------------------------------------------------------------------------------------------
# D4: postpaid subscription, proration, fees in advance


@pytest.mark.parametrize(
    ("opened_at", "at", "timezone", "fee", "data", "period", "valid_until"),
    [
        # November 2026, 30 days; the 14th: 30 - 14 + 1 = 17 days left.
        # 15.00 x 17/30 = 8.5000; 5,000,000,000 x 17/30 = 2,833,333,333.3 -> 2,833,333,333
        (
            "2026-11-01T09:00:00Z",
            "2026-11-14T10:00:00Z",
            "UTC",
            "8.5000",
            2_833_333_333,
            "2026-11",
            "2026-12-01T00:00:00Z",
        ),
        # December 2026, 31 days; the 1st: 31/31, the full fee and data.
        (
            "2026-11-01T09:00:00Z",
            "2026-12-01T00:00:00Z",
            "UTC",
            "15.0000",
            5_000_000_000,
            "2026-12",
            "2027-01-01T00:00:00Z",
        ),
        # January 2027, 31 days; the 20th: 12 days left.
        # 15.00 x 12/31 = 5.80645... -> 5.8065; 60,000,000,000 / 31 = 1,935,483,870.97 -> ...870
        (
            "2027-01-02T09:00:00Z",
            "2027-01-20T10:00:00Z",
            "UTC",
            "5.8065",
            1_935_483_870,
            "2027-01",
            "2027-02-01T00:00:00Z",
        ),
        # February 2027, 28 days; the 10th: 19 days left.
        # 15.00 x 19/28 = 10.178571... -> 10.1786; 95,000,000,000 / 28 = 3,392,857,142.86
        (
            "2027-02-01T09:00:00Z",
            "2027-02-10T10:00:00Z",
            "UTC",
            "10.1786",
            3_392_857_142,
            "2027-02",
            "2027-03-01T00:00:00Z",
        ),
        # February 2028, 29 days (leap year); the 10th: 20 days left.
        # 15.00 x 20/29 = 10.344827... -> 10.3448; 100,000,000,000 / 29 = 3,448,275,862.07
        (
            "2028-02-01T09:00:00Z",
            "2028-02-10T10:00:00Z",
            "UTC",
            "10.3448",
            3_448_275_862,
            "2028-02",
            "2028-03-01T00:00:00Z",
        ),
        # 29 February 2028, the last day: 1 day left of 29.
        # 15.00 x 1/29 = 0.517241... -> 0.5172; 5,000,000,000 / 29 = 172,413,793.1
        (
            "2028-02-01T09:00:00Z",
            "2028-02-29T23:00:00Z",
            "UTC",
            "0.5172",
            172_413_793,
            "2028-02",
            "2028-03-01T00:00:00Z",
        ),
        # Los Angeles: 2026-12-01T03:00Z is 30 November 19:00 PST, 1 day left of 30.
        # 15.00 x 1/30 = 0.5000; 5,000,000,000 / 30 = 166,666,666.7 -> 166,666,666;
        # valid to local midnight 1 December = 08:00Z.
        (
            "2026-11-01T09:00:00Z",
            "2026-12-01T03:00:00Z",
            "America/Los_Angeles",
            "0.5000",
            166_666_666,
            "2026-11",
            "2026-12-01T08:00:00Z",
        ),
        # Los Angeles in summer: 2027-07-01T02:00Z is 30 June 19:00 PDT (UTC-7), 1 of 30.
        (
            "2027-06-01T09:00:00Z",
            "2027-07-01T02:00:00Z",
            "America/Los_Angeles",
            "0.5000",
            166_666_666,
            "2027-06",
            "2027-07-01T07:00:00Z",
        ),
        # Tokyo: 2026-11-30T16:00Z is already 1 December 01:00 JST: 31/31, December's.
        # Valid to 1 January 00:00 JST = 31 December 15:00Z.
        (
            "2026-11-01T09:00:00Z",
            "2026-11-30T16:00:00Z",
            "Asia/Tokyo",
            "15.0000",
            5_000_000_000,
            "2026-12",
            "2026-12-31T15:00:00Z",
        ),
    ],
    ids=[
        "30-day-month",
        "first-day-31-day-month",
        "31-day-month",
        "28-day-february-2027",
        "29-day-february-2028",
        "leap-day-last-day",
        "los-angeles-still-november",
        "los-angeles-summer-time",
        "tokyo-already-december",
    ],
)
def test_D4_postpaid_fee_and_data_prorated_by_days_left_including_the_subscription_day(
    opened_at: str,
    at: str,
    timezone: str,
    fee: str,
    data: int,
    period: str,
    valid_until: str,
) -> None:
    ledger = setup("postpaid", timezone=timezone, opened_at=opened_at)
    feed_ok(ledger, subscribe(at, "data-5gb"))
    assert_applied(ledger, "D4")
    charge = last_charge(ledger)
    assert (charge["kind"], charge["amount"], charge["rule"], charge["payer"]) == (
        "package_fee",
        fee,
        "D4",
        "invoice",
    )
    assert charge["period"] == period
    # The default catalog (effective from 2026-01-01) is still in force in 2027 and 2028.
    assert charge["catalog_version"] == CATALOG
    doc = data_of(ledger)
    assert (doc["package_id"], doc["remaining_bytes"], doc["valid_until"]) == (
        "data-5gb",
        data,
        valid_until,
    )
    assert doc["unlimited"] is False
    assert ledger.balance(ACC) == "0.0000"


def test_D4_other_packages_are_prorated_too() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        subscribe("2026-11-21T10:00:00Z", "data-1gb", NUM1),
        subscribe("2026-11-21T10:00:00Z", "data-10gb", NUM2),
    )
    # 21 November: 30 - 21 + 1 = 10 days left of 30.
    # data-1gb: 5.00 x 10/30 = 1.6666... -> 1.6667; 1,000,000,000 x 10/30 -> 333,333,333
    # data-10gb: 25.00 x 10/30 = 8.3333... -> 8.3333; 10,000,000,000 x 10/30 -> 3,333,333,333
    assert package_fees(ledger) == [
        (NUM1, "2026-11", "1.6667", "D4", "invoice"),
        (NUM2, "2026-11", "8.3333", "D4", "invoice"),
    ]
    assert remaining(ledger, NUM1) == ("data-1gb", 333_333_333)
    assert remaining(ledger, NUM2) == ("data-10gb", 3_333_333_333)


@pytest.mark.parametrize(
    "at", ["2026-11-01T00:00:00Z", "2026-11-30T23:59:59Z", "2027-02-28T12:00:00Z"]
)
def test_D4_data_unlimited_full_fee_and_full_threshold_whatever_the_day(at: str) -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, subscribe(at, "data-unlimited"))
    # Not prorated: 30.00 and 2,200,000,000 bytes, on the first day and on the last.
    assert last_charge(ledger)["amount"] == "30.0000"
    assert last_charge(ledger)["payer"] == "invoice"
    doc = data_of(ledger)
    assert (doc["package_id"], doc["unlimited"], doc["remaining_bytes"]) == (
        "data-unlimited",
        True,
        0,
    )
    throttle = throttle_of(ledger)
    assert (throttle["fup_bytes"], throttle["fup_used_bytes"], throttle["throttled"]) == (
        FUP,
        0,
        False,
    )


def test_D4_at_cycle_started_each_active_package_is_charged_in_full_for_the_new_period() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        subscribe("2026-11-14T10:00:00Z", "data-5gb", NUM1),  # 8.5000, 2,833,333,333 bytes
        subscribe("2026-11-20T10:00:00Z", "data-unlimited", NUM2),  # 30.0000
        used("2026-11-15T10:00:00Z", 833_333_333, NUM1),  # 2,000,000,000 left
    )
    assert remaining(ledger, NUM1) == ("data-5gb", 2_000_000_000)
    feed_ok(ledger, cycle("2026-12"))
    cycle_charges = ledger.last_outcome(ACC)["charges"]
    assert [
        (c["msisdn"], c["kind"], c["period"], c["amount"], c["rule"], c["payer"])
        for c in cycle_charges
    ] == [
        (NUM1, "package_fee", "2026-12", "15.0000", "D4", "invoice"),
        (NUM2, "package_fee", "2026-12", "30.0000", "D4", "invoice"),
    ]
    # A fresh month of data; November's leftover ended with November.
    doc = data_of(ledger, NUM1)
    assert (doc["remaining_bytes"], doc["valid_until"], doc["renews"]) == (
        5_000_000_000,
        "2027-01-01T00:00:00Z",
        True,
    )
    feed_ok(ledger, cycle("2027-01"))
    assert package_fees(ledger)[-2:] == [
        (NUM1, "2027-01", "15.0000", "D4", "invoice"),
        (NUM2, "2027-01", "30.0000", "D4", "invoice"),
    ]
    assert ledger.balance(ACC) == "0.0000"


def test_D4_T2_a_subscription_logged_after_the_bill_run_is_renewed_into_the_started_period() -> (
    None
):
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        cycle("2026-12"),
        subscribe("2026-11-28T10:00:00Z", "data-5gb"),  # 3/30 x 15.00 = 1.5000, logged late
        used("2026-12-02T10:00:00Z", 100_000_000),
        used("2026-11-29T10:00:00Z", 1_000_000),  # a late November record: November's data
    )
    # November's prorated fee and the December renewal the bill run would have charged in
    # advance; December's record comes from December's 5 GB, not PAYG (it used to be 5.00).
    assert package_fees(ledger) == [
        (NUM1, "2026-11", "1.5000", "D4", "invoice"),
        (NUM1, "2026-12", "15.0000", "D4", "invoice"),
    ]
    assert usage_charges(ledger) == []
    assert remaining(ledger) == ("data-5gb", 4_900_000_000)
    feed_ok(ledger, cycle("2027-01"))
    assert [fee[1] for fee in package_fees(ledger)] == ["2026-11", "2026-12", "2027-01"]
    ledger.assert_replay_matches()


def test_D4_T2_a_subscription_dated_more_than_twelve_periods_back_is_rejected() -> None:
    ledger = setup("postpaid")
    periods = ["2026-12", *(f"2027-{month:02d}" for month in range(1, 13))]
    feed_ok(ledger, *(cycle(period) for period in periods))
    feed_ok(ledger, subscribe("2026-11-28T10:00:00Z", "data-5gb"))
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("rejected", "D4")
    assert "13 periods before the open one (2027-12)" in outcome["reason"]
    assert package_fees(ledger) == []


def test_D4_C2_T2_a_renewal_takes_the_catalog_of_its_period_start_whatever_arrives_first() -> None:
    """The renewal of a package is charged under the catalog in force when its period starts in
    the account's time zone (Tokyo's December: 2026-11-30T15:00:00Z), whether the bill run
    makes it (logged at 00:30 UTC, after a new version took effect at midnight UTC), a record
    ahead of the bill run, or a late subscription's catch-up."""
    newer = catalog_published(event_id="catalog-2026-12-a")
    catalog = newer["catalog"] = dict(newer["catalog"])
    catalog.update(version="2026-12-a", effective_from="2026-12-01T00:00:00Z")
    catalog["packages"] = [
        {**p, "fee": "17.00"} if p["id"] == "data-5gb" else p for p in catalog["packages"]
    ]
    newer["occurred_at"] = "2026-11-15T00:00:00Z"
    subscribed = subscribe("2026-11-20T12:00:00Z", "data-5gb")
    bill_run = cycle("2026-12", "2026-12-01T00:30:00Z")
    december_record = used("2026-12-01T01:00:00Z", 1_000_000)
    for order in (
        (subscribed, bill_run, december_record),
        (subscribed, december_record, bill_run),
        (bill_run, subscribed),  # the subscription logged after the bill run
    ):
        ledger = setup("postpaid", timezone="Asia/Tokyo")
        feed_ok(ledger, newer)
        for each in order:
            feed_ok(ledger, each)
        december = [
            (c["amount"], c["catalog_version"])
            for c in ledger.charges(ACC)
            if c["kind"] == "package_fee" and c["period"] == "2026-12"
        ]
        assert december == [("15.0000", "2026-01-a")], order
        ledger.assert_replay_matches()


def test_D4_package_subscribed_in_a_period_is_not_charged_again_when_that_period_starts() -> None:
    ledger = setup("postpaid")
    # The subscription at 00:05 on 1 December is logged before December's cycle.started.
    feed_ok(
        ledger,
        subscribe("2026-12-01T00:05:00Z", "data-5gb"),  # 31/31: 15.0000, 5,000,000,000
        used("2026-12-01T00:07:00Z", 1_000_000_000),
        cycle("2026-12", "2026-12-01T00:10:00Z"),
    )
    # December's fee was charged once, at the subscription; its data is not granted twice.
    assert package_fees(ledger) == [(NUM1, "2026-12", "15.0000", "D4", "invoice")]
    assert remaining(ledger) == ("data-5gb", 4_000_000_000)


def test_D4_I1_the_fee_in_advance_belongs_to_the_period_being_started() -> None:
    ledger = setup("postpaid", timezone="America/Los_Angeles")
    feed_ok(
        ledger,
        # 20 November 12:00 PST: 30 - 20 + 1 = 11 days left: 15.00 x 11/30 = 5.5000
        subscribe("2026-11-20T20:00:00Z", "data-5gb"),
        # The bill-run scheduler starts December at 00:00 UTC (30 November, 16:00 in LA).
        cycle("2026-12", "2026-12-01T00:00:00Z"),
    )
    assert package_fees(ledger) == [
        (NUM1, "2026-11", "5.5000", "D4", "invoice"),
        (NUM1, "2026-12", "15.0000", "D4", "invoice"),
    ]


def test_D4_T2_home_record_ahead_of_its_periods_bill_run_renews_the_package_and_uses_it() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-14T10:00:00Z", "data-5gb"),
        used("2026-11-20T10:00:00Z", 2_000_000_000),  # 833,333,333 of November's left
        # A December record reaches the ledger before December's cycle.started: it renews the
        # package for December as the bill run would, and takes its 1 MB from the new data.
        used("2026-12-01T00:05:00Z", 1_000_000),
    )
    assert usage_charges(ledger) == []
    assert package_fees(ledger) == [
        (NUM1, "2026-11", "8.5000", "D4", "invoice"),
        (NUM1, "2026-12", "15.0000", "D4", "invoice"),
    ]
    assert remaining(ledger) == ("data-5gb", 4_999_000_000)
    # The bill run finds it renewed: no second fee, no fresh data over what was used.
    feed_ok(
        ledger,
        cycle("2026-12", "2026-12-01T00:10:00Z"),
        used("2026-11-30T23:00:00Z", 33_333_333),  # a late November record: November's data
    )
    assert len(package_fees(ledger)) == 2
    doc = data_of(ledger)
    assert (doc["package_id"], doc["renews"], doc["valid_until"], doc["remaining_bytes"]) == (
        "data-5gb",
        True,
        "2027-01-01T00:00:00Z",
        4_999_000_000,
    )
    assert usage_charges(ledger) == []
    assert ledger.invoice(ACC, "2026-12")["total"] == "15.00"
    ledger.assert_replay_matches()


def test_D5_T2_a_home_record_ahead_of_the_bill_run_leaves_an_unsubscribed_package_to_end() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-14T10:00:00Z", "data-5gb"),
        unsubscribe("2026-11-20T10:00:00Z"),
        used("2026-12-01T00:05:00Z", 1_000_000),  # ahead of December's bill run
    )
    # Unsubscribed: no December fee; the record is PAYG, 1 MB x 0.05 = 0.0500.
    assert [fee[1] for fee in package_fees(ledger)] == ["2026-11"]
    assert usage_charges(ledger) == [("payg_data", "0.0500", "invoice")]


# ---------------------------------------------------------------------------------------------
# D5: postpaid unsubscribe


def test_D5_unsubscribing_data_unlimited_stops_it_at_once_and_the_number_is_payg() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-02T10:00:00Z", "data-unlimited"),  # 30.0000
        used("2026-11-05T10:00:00Z", 100_000_000),  # no charge
        unsubscribe("2026-11-10T12:00:00Z"),
    )
    assert_applied(ledger, "D5")
    assert ledger.last_outcome(ACC)["charges"] == []  # no refund either
    assert data_of(ledger) | {"account_id": None} == {
        "account_id": None,
        "msisdn": NUM1,
        "package_id": None,
        "remaining_bytes": 0,
        "valid_until": None,
        "unlimited": False,
        "renews": False,
    }
    throttle = throttle_of(ledger)
    assert (throttle["throttled"], throttle["fup_bytes"], throttle["package_id"]) == (
        False,
        0,
        None,
    )
    # One minute later: PAYG, 2 MB x 0.0500 = 0.1000 on the invoice.
    feed_ok(ledger, used("2026-11-10T12:01:00Z", 2_000_000))
    assert split(ledger) == (0, 2_000_000, 0)
    assert usage_charges(ledger) == [("payg_data", "0.1000", "invoice")]
    # No fee at the next period start.
    feed_ok(ledger, cycle("2026-12"))
    assert ledger.last_outcome(ACC)["charges"] == []
    assert package_fees(ledger) == [(NUM1, "2026-11", "30.0000", "D4", "invoice")]


def test_D5_unsubscribing_other_packages_keeps_the_data_to_the_period_end_no_further_fee() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-14T10:00:00Z", "data-5gb"),  # 8.5000, 2,833,333,333 bytes
        used("2026-11-15T10:00:00Z", 833_333_333),  # 2,000,000,000 left
        unsubscribe("2026-11-20T10:00:00Z"),
    )
    assert_applied(ledger, "D5")
    doc = data_of(ledger)
    assert (doc["package_id"], doc["remaining_bytes"], doc["valid_until"], doc["renews"]) == (
        "data-5gb",
        2_000_000_000,
        "2026-12-01T00:00:00Z",
        False,
    )
    # Still usable: 1,500,000,000 from the package, 500,000,000 left, no charge.
    feed_ok(ledger, used("2026-11-25T10:00:00Z", 1_500_000_000))
    assert split(ledger) == (1_500_000_000, 0, 0)
    assert ledger.last_outcome(ACC)["charges"] == []
    # The last second of November: 500,000,000 from the package, 100,000,000 PAYG:
    # 100 MB x 0.0500 = 5.0000 on the invoice.
    feed_ok(ledger, used("2026-11-30T23:59:59Z", 600_000_000))
    assert split(ledger) == (500_000_000, 100_000_000, 0)
    assert last_charge(ledger)["amount"] == "5.0000"
    # The period starts: no further fee, the package ends.
    feed_ok(ledger, cycle("2026-12"))
    assert ledger.last_outcome(ACC)["charges"] == []
    assert remaining(ledger) == (None, 0)
    feed_ok(ledger, used("2026-12-02T10:00:00Z", 1_000_000))
    assert last_charge(ledger)["amount"] == "0.0500"  # 1 MB x 0.0500, PAYG
    assert package_fees(ledger) == [(NUM1, "2026-11", "8.5000", "D4", "invoice")]


def test_D5_T2_an_unsubscribe_logged_after_the_bill_run_reverses_the_unused_renewal() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-14T10:00:00Z", "data-5gb"),  # 8.5000
        cycle("2026-12"),  # renews: 15.0000 in advance
        # Dated in November, logged after December's bill run: it used to be rejected ("no
        # active package") and the package renewed every month after.
        unsubscribe("2026-11-28T10:00:00Z"),
        used("2026-11-29T10:00:00Z", 1_000_000),  # a late November record: November's data
    )
    unsubscribed = ledger.history(ACC)[-2]
    assert (unsubscribed["status"], unsubscribed["rule"]) == ("applied", "D5")
    assert [(c["kind"], c["amount"], c["period"]) for c in unsubscribed["charges"]] == [
        ("package_fee", "-15.0000", "2026-12")
    ]
    assert remaining(ledger) == (None, 0)
    assert usage_charges(ledger) == []
    feed_ok(ledger, used("2026-12-03T10:00:00Z", 1_000_000), cycle("2027-01"))
    assert usage_charges(ledger) == [("payg_data", "0.0500", "invoice")]
    assert [fee[1:3] for fee in package_fees(ledger)] == [
        ("2026-11", "8.5000"),
        ("2026-12", "15.0000"),
        ("2026-12", "-15.0000"),
    ]
    ledger.assert_replay_matches()


def test_D5_T2_an_unsubscribe_logged_after_the_renewed_data_was_used_stops_further_fees() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-14T10:00:00Z", "data-5gb"),
        cycle("2026-12"),
        used("2026-12-02T10:00:00Z", 1_000_000),  # December's data in use
        unsubscribe("2026-11-28T10:00:00Z"),
        cycle("2027-01"),
    )
    # The December renewal stands (its data was used); no January fee, the package ends.
    assert [fee[1:3] for fee in package_fees(ledger)] == [
        ("2026-11", "8.5000"),
        ("2026-12", "15.0000"),
    ]
    assert remaining(ledger) == (None, 0)


def test_D5_a_new_subscription_after_an_unsubscribe_keeps_the_data_left_to_the_period_end() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-5gb"),  # 30/30: 15.0000, 5,000,000,000
        used("2026-11-02T10:00:00Z", GB),  # 4,000,000,000 left
        unsubscribe("2026-11-10T10:00:00Z"),  # kept, usable to the period end
        subscribe("2026-11-16T10:00:00Z", "data-1gb"),  # 15/30: 2.5000, 500,000,000
    )
    fee = last_charge(ledger)
    assert (fee["amount"], fee["rule"]) == ("2.5000", "D4")
    assert "+ 4000000000 bytes carried" in fee["arithmetic"]
    assert "data kept from data-5gb after its unsubscribe" in fee["arithmetic"]
    doc = data_of(ledger)
    # 500,000,000 prorated + 4,000,000,000 kept; renewing, like any postpaid subscription.
    assert (doc["package_id"], doc["remaining_bytes"], doc["valid_until"], doc["renews"]) == (
        "data-1gb",
        4_500_000_000,
        "2026-12-01T00:00:00Z",
        True,
    )
    # 1 GB used: all of it from the package, nothing charged.
    feed_ok(ledger, used("2026-11-17T10:00:00Z", GB))
    assert split(ledger) == (GB, 0, 0)
    assert ledger.last_outcome(ACC)["charges"] == []
    assert remaining(ledger) == ("data-1gb", 3_500_000_000)


def test_D5_data_kept_after_an_unsubscribe_is_not_carried_into_data_unlimited() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-5gb"),
        unsubscribe("2026-11-10T10:00:00Z"),
        subscribe("2026-11-16T10:00:00Z", "data-unlimited"),  # full fee 30.0000 (D4)
    )
    fee = last_charge(ledger)
    assert (fee["amount"], fee["rule"]) == ("30.0000", "D4")
    assert "carried" not in fee["arithmetic"]
    assert remaining(ledger) == ("data-unlimited", 0)


def test_D5_unsubscribing_without_a_package_is_rejected_and_nothing_moves() -> None:
    ledger = setup("postpaid")
    before = ledger.all_views()
    feed_ok(ledger, unsubscribe("2026-11-10T12:00:00Z"))
    last = ledger.last_outcome(ACC)
    assert (last["status"], last["rule"]) == ("rejected", "D5")
    assert "no active package" in last["reason"]
    assert ledger.all_views() == before


# ---------------------------------------------------------------------------------------------
# D6: postpaid change


def test_D6_change_between_other_packages_is_prorated_and_existing_data_is_added() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-5gb"),  # 30/30: 15.0000, 5,000,000,000
        used("2026-11-05T10:00:00Z", 1_000_000_000),  # 4,000,000,000 left
        change("2026-11-21T10:00:00Z", "data-10gb"),
    )
    assert_applied(ledger, "D6")
    # 21 November: 10 days left of 30. 25.00 x 10/30 = 8.3333...; data
    # 10,000,000,000 x 10/30 = 3,333,333,333 + 4,000,000,000 carried = 7,333,333,333
    charge = last_charge(ledger)
    assert (charge["kind"], charge["amount"], charge["rule"], charge["payer"]) == (
        "package_fee",
        "8.3333",
        "D6",
        "invoice",
    )
    doc = data_of(ledger)
    assert (doc["package_id"], doc["remaining_bytes"], doc["renews"], doc["valid_until"]) == (
        "data-10gb",
        7_333_333_333,
        True,
        "2026-12-01T00:00:00Z",
    )
    # The new package renews in full at the next period start.
    feed_ok(ledger, cycle("2026-12"))
    assert package_fees(ledger) == [
        (NUM1, "2026-11", "15.0000", "D4", "invoice"),
        (NUM1, "2026-11", "8.3333", "D6", "invoice"),
        (NUM1, "2026-12", "25.0000", "D4", "invoice"),
    ]
    assert remaining(ledger) == ("data-10gb", 10_000_000_000)


def test_D6_downgrade_is_prorated_and_the_existing_data_is_added() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        # 16 November: 15 days left. 25.00 x 15/30 = 12.5000; 10,000,000,000 x 15/30
        subscribe("2026-11-16T10:00:00Z", "data-10gb"),
        # 26 November: 5 days left. 5.00 x 5/30 = 0.8333...; 1,000,000,000 x 5/30 =
        # 166,666,666 + 5,000,000,000 carried = 5,166,666,666
        change("2026-11-26T10:00:00Z", "data-1gb"),
    )
    assert [fee[2] for fee in package_fees(ledger)] == ["12.5000", "0.8333"]
    assert remaining(ledger) == ("data-1gb", 5_166_666_666)


def test_D6_change_to_data_unlimited_carries_nothing_and_is_not_prorated() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-5gb"),
        used("2026-11-05T10:00:00Z", 1_000_000_000),  # 4,000,000,000 left
        change("2026-11-21T10:00:00Z", "data-unlimited"),
    )
    # The full 30.00 on the 21st; the 4,000,000,000 bytes are not carried.
    assert last_charge(ledger)["amount"] == "30.0000"
    doc = data_of(ledger)
    assert (doc["package_id"], doc["unlimited"], doc["remaining_bytes"]) == (
        "data-unlimited",
        True,
        0,
    )
    throttle = throttle_of(ledger)
    assert (throttle["fup_bytes"], throttle["fup_used_bytes"]) == (FUP, 0)


def test_D6_change_from_data_unlimited_carries_nothing_and_the_new_package_is_prorated() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-unlimited"),  # 30.0000
        used("2026-11-05T10:00:00Z", FUP),  # throttled
        change("2026-11-21T10:00:00Z", "data-5gb"),
    )
    # 10 days left of 30: 15.00 x 10/30 = 5.0000; 5,000,000,000 x 10/30 = 1,666,666,666.7
    assert last_charge(ledger)["amount"] == "5.0000"
    assert remaining(ledger) == ("data-5gb", 1_666_666_666)
    assert throttle_of(ledger)["throttled"] is False


def test_D6_a_fee_charged_in_advance_is_not_refunded_on_change() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-14T10:00:00Z", "data-5gb"),  # 8.5000
        cycle("2026-12"),  # 15.0000 for December, in advance; 5,000,000,000 bytes
        # 11 December: 31 - 11 + 1 = 21 days left of 31. 25.00 x 21/31 = 16.935483... ->
        # 16.9355; 10,000,000,000 x 21/31 = 6,774,193,548.4 -> 6,774,193,548 + 5,000,000,000
        change("2026-12-11T10:00:00Z", "data-10gb"),
    )
    assert package_fees(ledger) == [
        (NUM1, "2026-11", "8.5000", "D4", "invoice"),
        (NUM1, "2026-12", "15.0000", "D4", "invoice"),
        (NUM1, "2026-12", "16.9355", "D6", "invoice"),
    ]
    # No credit, no negative charge of any kind.
    assert all(not c["amount"].startswith("-") for c in ledger.charges(ACC))
    assert ledger.last_outcome(ACC)["balance_delta"] == "0.0000"
    assert remaining(ledger) == ("data-10gb", 11_774_193_548)


def test_D6_a_second_change_in_the_period_is_rejected_with_a_reason_and_nothing_moves() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-5gb"),  # 15.0000, 5,000,000,000
        # 10 days left: 8.3333; 3,333,333,333 + 5,000,000,000 = 8,333,333,333
        change("2026-11-21T10:00:00Z", "data-10gb"),
    )
    views_before, charges_before = ledger.all_views(), ledger.charges(ACC)
    feed_ok(ledger, change("2026-11-25T10:00:00Z", "data-1gb", event_id="second-change"))
    last = ledger.last_outcome(ACC)
    assert last["event_id"] == "second-change"
    assert (last["status"], last["rule"]) == ("rejected", "D6")
    assert "already changed its package in 2026-11" in last["reason"]
    assert (last["charges"], last["balance_delta"]) == ([], "0.0000")
    # Nothing else moved: the data view and the charges are as they were.
    assert ledger.all_views() == views_before
    assert ledger.charges(ACC) == charges_before
    assert remaining(ledger) == ("data-10gb", 8_333_333_333)
    # The rejection is visible in the history.
    [entry] = [e for e in ledger.history(ACC) if e["event_id"] == "second-change"]
    assert entry["status"] == "rejected" and entry["reason"] == last["reason"]

    # One change per number: the other number may still change in November.
    feed_ok(
        ledger,
        subscribe("2026-11-01T11:00:00Z", "data-1gb", NUM2),  # 5.0000, 1,000,000,000
        # 25 November: 6 days left. 15.00 x 6/30 = 3.0000; 1,000,000,000 + 1,000,000,000
        change("2026-11-25T11:00:00Z", "data-5gb", NUM2),
    )
    assert_applied(ledger, "D6")
    assert remaining(ledger, NUM2) == ("data-5gb", 2_000_000_000)

    # The next period allows a change again.
    feed_ok(ledger, cycle("2026-12"))  # data-10gb renews: 25.0000, 10,000,000,000 bytes
    feed_ok(ledger, change("2026-12-05T10:00:00Z", "data-1gb"))
    assert_applied(ledger, "D6")
    # 5 December: 27 days left of 31. 5.00 x 27/31 = 4.354838... -> 4.3548;
    # 1,000,000,000 x 27/31 = 870,967,741.9 -> 870,967,741 + 10,000,000,000 = 10,870,967,741
    assert last_charge(ledger)["amount"] == "4.3548"
    assert remaining(ledger) == ("data-1gb", 10_870_967_741)


def test_D6_T2_a_change_logged_after_the_bill_run_is_rated_as_of_its_date_and_renewed() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-5gb"),  # 30/30: 15.0000, 5,000,000,000
        used("2026-11-05T10:00:00Z", 1_000_000_000),  # 4,000,000,000 left
        cycle("2026-12"),  # renews data-5gb: 15.0000 in advance
        # Dated in November, logged after December's bill run: it used to be rejected ("no
        # package to change") and data-5gb renewed every month after.
        change("2026-11-21T10:00:00Z", "data-10gb"),
    )
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("applied", "D6")
    # November's change as if in time (10 days of 30: 8.3333, 3,333,333,333 + 4,000,000,000
    # carried); December's data-5gb renewal reversed; data-10gb renewed for December instead.
    assert [(c["period"], c["amount"], c["rule"]) for c in outcome["charges"]] == [
        ("2026-11", "8.3333", "D6"),
        ("2026-12", "-15.0000", "D6"),
        ("2026-12", "25.0000", "D4"),
    ]
    assert "package changed to data-10gb at 2026-11-21T10:00:00Z" in outcome["charges"][1]["label"]
    assert remaining(ledger) == ("data-10gb", 10_000_000_000)
    # A late November record still finds November's package: the changed one.
    feed_ok(ledger, used("2026-11-25T10:00:00Z", 333_333_333))
    number = ledger.account(ACC).numbers[NUM1]
    assert number.previous_package is not None
    assert number.previous_package.package_id == "data-10gb"
    assert number.previous_package.remaining_bytes == 7_000_000_000
    assert remaining(ledger) == ("data-10gb", 10_000_000_000)
    # The reversed renewal counts as credited; January renews data-10gb, once.
    reversed_id = outcome["charges"][1]["rate"].removeprefix("reverses ")
    assert reversed_id in ledger.account(ACC).credited_charges
    feed_ok(ledger, cycle("2027-01"))
    assert [fee[1:4] for fee in package_fees(ledger)] == [
        ("2026-11", "15.0000", "D4"),
        ("2026-12", "15.0000", "D4"),
        ("2026-11", "8.3333", "D6"),
        ("2026-12", "-15.0000", "D6"),
        ("2026-12", "25.0000", "D4"),
        ("2027-01", "25.0000", "D4"),
    ]
    ledger.assert_replay_matches()


def test_D6_T2_a_late_change_after_the_renewed_data_was_used_is_rejected_with_the_reason() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-5gb"),
        cycle("2026-12"),
        used("2026-12-02T10:00:00Z", 1_000_000),  # December's data-5gb in use
        change("2026-11-21T10:00:00Z", "data-10gb"),
    )
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("rejected", "D6")
    assert outcome["reason"] == (
        f"{NUM1}'s package data-5gb was renewed for 2026-12 before this change dated "
        "2026-11-21T10:00:00Z reached the ledger, and its data is in use; change it again "
        "for 2026-12"
    )
    assert [fee[1:3] for fee in package_fees(ledger)] == [
        ("2026-11", "15.0000"),
        ("2026-12", "15.0000"),
    ]
    # A late change still counts once per period: one already made in November refuses it.
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-5gb"),
        change("2026-11-10T10:00:00Z", "data-10gb"),
        cycle("2026-12"),
        change("2026-11-21T10:00:00Z", "data-5gb"),
    )
    outcome = ledger.last_outcome(ACC)
    assert (outcome["status"], outcome["rule"]) == ("rejected", "D6")
    assert "already changed its package in 2026-11" in outcome["reason"]


def test_D6_T2_a_late_record_of_the_replaced_package_uses_the_carried_data_once() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-1gb"),  # 30/30: 5.0000, 1,000,000,000
        # 16 November: 15 days left of 30. 5,000,000,000 x 15/30 = 2,500,000,000 + the
        # 1,000,000,000 data-1gb had left = 3,500,000,000.
        change("2026-11-16T10:00:00Z", "data-5gb"),
    )
    assert remaining(ledger) == ("data-5gb", 3_500_000_000)
    # Logged late, dated while data-1gb was in force: it takes data-1gb's 1,000,000,000,
    # which now lie in data-5gb, so data-5gb keeps 2,500,000,000 (it used to keep all
    # 3,500,000,000: the same gigabyte used twice). 500,000,000 bytes beyond it are PAYG:
    # 500 MB x 0.0500 = 25.0000.
    feed_ok(ledger, used("2026-11-03T10:00:00Z", 1_500_000_000))
    assert split(ledger) == (1_000_000_000, 500_000_000, 0)
    assert usage_charges(ledger) == [("payg_data", "25.0000", "invoice")]
    assert remaining(ledger) == ("data-5gb", 2_500_000_000)
    # The carried data is gone: a second late record of data-1gb finds none left.
    feed_ok(ledger, used("2026-11-04T10:00:00Z", 1_000_000))
    assert split(ledger) == (0, 1_000_000, 0)
    assert remaining(ledger) == ("data-5gb", 2_500_000_000)
    ledger.assert_replay_matches()


def test_D6_T2_a_late_record_takes_no_more_than_the_new_package_has_left() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-1gb"),  # 1,000,000,000
        change("2026-11-16T10:00:00Z", "data-5gb"),  # 2,500,000,000 + 1,000,000,000 carried
        used("2026-11-20T10:00:00Z", 3_400_000_000),  # 100,000,000 left, all carried ones
    )
    assert remaining(ledger) == ("data-5gb", 100_000_000)
    # Of data-1gb's gigabyte only 100,000,000 bytes were not used since: the rest of the late
    # record is PAYG, 900 MB x 0.0500 = 45.0000.
    feed_ok(ledger, used("2026-11-03T10:00:00Z", 1_000_000_000))
    assert split(ledger) == (100_000_000, 900_000_000, 0)
    assert usage_charges(ledger)[-1] == ("payg_data", "45.0000", "invoice")
    assert remaining(ledger) == ("data-5gb", 0)
    ledger.assert_replay_matches()


def test_D6_change_without_a_package_is_rejected() -> None:
    ledger = setup("postpaid")
    before = ledger.all_views()
    feed_ok(ledger, change("2026-11-21T10:00:00Z", "data-5gb"))
    last = ledger.last_outcome(ACC)
    assert (last["status"], last["rule"]) == ("rejected", "D6")
    assert last["reason"]
    assert ledger.all_views() == before


# ---------------------------------------------------------------------------------------------
# D7: prepaid purchase


def test_D7_prepaid_purchase_full_fee_from_the_balance_full_data_valid_30_days() -> None:
    ledger = setup(recharge="20.00")
    # Late in the month: still the full fee and the full data (no proration on prepaid).
    feed_ok(ledger, subscribe("2026-11-28T15:30:00Z", "data-5gb"))
    assert_applied(ledger, "D7")
    charge = last_charge(ledger)
    assert (charge["kind"], charge["amount"], charge["rule"], charge["payer"]) == (
        "package_fee",
        "15.0000",
        "D7",
        "balance",
    )
    assert ledger.last_outcome(ACC)["balance_delta"] == "-15.0000"
    assert ledger.balance(ACC) == "5.0000"  # 20.00 - 15.00
    doc = data_of(ledger)
    # Valid 30 x 24 h from the purchase.
    assert (doc["package_id"], doc["remaining_bytes"], doc["valid_until"]) == (
        "data-5gb",
        5_000_000_000,
        "2026-12-28T15:30:00Z",
    )
    assert doc["renews"] is False


def test_D7_validity_is_30_times_24_hours_across_a_daylight_saving_change() -> None:
    ledger = setup(recharge="5.00", timezone="America/New_York")
    # New York moves to summer time on 14 March 2027; 720 hours later is still 15:30Z.
    feed_ok(ledger, subscribe("2027-02-20T15:30:00Z", "data-1gb"))
    assert data_of(ledger)["valid_until"] == "2027-03-22T15:30:00Z"


def test_D7_leftover_data_is_added_and_takes_the_new_validity() -> None:
    ledger = setup(recharge="30.00")
    feed_ok(
        ledger,
        subscribe("2026-11-10T12:00:00Z", "data-5gb"),  # 30.00 - 15.00 = 15.00
        used("2026-11-12T10:00:00Z", 1_000_000_000),  # 4,000,000,000 left
        subscribe("2026-11-20T08:00:00Z", "data-1gb"),  # 15.00 - 5.00 = 10.00
    )
    # 1,000,000,000 + 4,000,000,000 carried = 5,000,000,000, valid 30 days from 20 November.
    doc = data_of(ledger)
    assert (doc["package_id"], doc["remaining_bytes"], doc["valid_until"]) == (
        "data-1gb",
        5_000_000_000,
        "2026-12-20T08:00:00Z",
    )
    assert ledger.balance(ACC) == "10.0000"
    # After the old package's end (10 December) the carried data is still usable.
    feed_ok(ledger, used("2026-12-15T00:00:00Z", 4_500_000_000))
    assert split(ledger) == (4_500_000_000, 0, 0)
    assert remaining(ledger) == ("data-1gb", 500_000_000)
    assert ledger.balance(ACC) == "10.0000"


def test_D7_no_data_carried_when_data_unlimited_is_on_either_side() -> None:
    ledger = setup(recharge="60.00")
    feed_ok(
        ledger,
        subscribe("2026-11-10T12:00:00Z", "data-5gb"),  # 45.00 left
        used("2026-11-12T10:00:00Z", 1_000_000_000),  # 4,000,000,000 left
        subscribe("2026-11-13T10:00:00Z", "data-unlimited"),  # 15.00 left
    )
    # To Data Unlimited: the 4,000,000,000 bytes are not carried.
    doc = data_of(ledger)
    assert (doc["package_id"], doc["unlimited"], doc["remaining_bytes"]) == (
        "data-unlimited",
        True,
        0,
    )
    feed_ok(ledger, change("2026-11-14T10:00:00Z", "data-1gb"))  # 10.00 left
    # From Data Unlimited: exactly the new package's data.
    assert remaining(ledger) == ("data-1gb", 1_000_000_000)
    assert ledger.balance(ACC) == "10.0000"


def test_D7_leftover_of_an_expired_package_is_not_carried() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(
        ledger,
        subscribe("2026-11-01T10:00:00Z", "data-1gb"),  # valid until 2026-12-01T10:00:00Z
        subscribe("2026-12-01T10:00:00Z", "data-1gb"),  # bought as the first one ends
    )
    assert remaining(ledger) == ("data-1gb", 1_000_000_000)
    assert ledger.balance(ACC) == "0.0000"  # 10.00 - 5.00 - 5.00


def test_D7_a_purchase_the_balance_cannot_cover_is_rejected_and_nothing_moves() -> None:
    ledger = setup(recharge="14.99")
    views_before = ledger.all_views()
    feed_ok(ledger, subscribe("2026-11-10T12:00:00Z", "data-5gb", event_id="too-dear"))
    last = ledger.last_outcome(ACC)
    assert (last["event_id"], last["status"], last["rule"]) == ("too-dear", "rejected", "D7")
    assert "cannot cover" in last["reason"] and "15.00" in last["reason"]
    assert (last["charges"], last["balance_delta"]) == ([], "0.0000")
    assert ledger.all_views() == views_before
    assert ledger.balance(ACC) == "14.9900"
    assert remaining(ledger) == (None, 0)
    # A change the balance cannot cover is rejected the same way.
    feed_ok(ledger, change("2026-11-10T12:05:00Z", "data-unlimited"))
    assert (ledger.last_outcome(ACC)["status"], ledger.last_outcome(ACC)["rule"]) == (
        "rejected",
        "D7",
    )
    # With 0.01 more the balance covers it exactly: 15.00 - 15.00 = 0.0000.
    feed_ok(
        ledger,
        recharged("0.01", "2026-11-10T13:00:00Z"),
        subscribe("2026-11-10T13:05:00Z", "data-5gb"),
    )
    assert_applied(ledger, "D7")
    assert ledger.balance(ACC) == "0.0000"


def test_D7_T2_a_late_record_of_the_replaced_package_uses_the_carried_data_once() -> None:
    ledger = setup(recharge="100.00")
    feed_ok(
        ledger,
        subscribe("2026-11-02T10:00:00Z", "data-1gb"),  # 1,000,000,000
        # data-1gb's gigabyte is added: 5,000,000,000 + 1,000,000,000 = 6,000,000,000.
        subscribe("2026-11-10T10:00:00Z", "data-5gb"),
    )
    assert remaining(ledger) == ("data-5gb", 6_000_000_000)
    # Logged late, dated while data-1gb was in force: its gigabyte is taken once, from where
    # it lies now; 500 MB beyond it are PAYG from the balance: 500 x 0.0500 = 25.0000.
    feed_ok(ledger, used("2026-11-03T10:00:00Z", 1_500_000_000))
    assert split(ledger) == (1_000_000_000, 500_000_000, 0)
    assert remaining(ledger) == ("data-5gb", 5_000_000_000)
    assert ledger.balance(ACC) == "55.0000"  # 100.00 - 5.00 - 15.00 - 25.00
    ledger.assert_replay_matches()


def test_D7_prepaid_changes_are_purchases_and_not_limited_per_period() -> None:
    ledger = setup(recharge="100.00")
    feed_ok(
        ledger,
        subscribe("2026-11-02T10:00:00Z", "data-5gb"),  # 100.00 - 15.00 = 85.00
        change("2026-11-03T10:00:00Z", "data-10gb"),  # 85.00 - 25.00 = 60.00
        change("2026-11-04T10:00:00Z", "data-1gb"),  # 60.00 - 5.00 = 55.00
        change("2026-11-05T10:00:00Z", "data-5gb"),  # 55.00 - 15.00 = 40.00
    )
    statuses = [
        (e["status"], e["rule"]) for e in ledger.history(ACC) if e["type"].startswith("package.")
    ]
    assert statuses == [("applied", "D7")] * 4
    assert package_fees(ledger) == [
        (NUM1, "2026-11", "15.0000", "D7", "balance"),
        (NUM1, "2026-11", "25.0000", "D7", "balance"),
        (NUM1, "2026-11", "5.0000", "D7", "balance"),
        (NUM1, "2026-11", "15.0000", "D7", "balance"),
    ]
    assert ledger.balance(ACC) == "40.0000"
    # All the data accumulates: 5 + 10 + 1 + 5 GB = 21,000,000,000 bytes, valid from the last.
    doc = data_of(ledger)
    assert (doc["package_id"], doc["remaining_bytes"], doc["valid_until"]) == (
        "data-5gb",
        21_000_000_000,
        "2026-12-05T10:00:00Z",
    )


# ---------------------------------------------------------------------------------------------
# D9: prepaid removal


def test_D9_removing_data_unlimited_stops_it_at_once() -> None:
    ledger = setup(recharge="40.00")
    feed_ok(
        ledger,
        subscribe("2026-11-05T12:00:00Z", "data-unlimited"),  # 10.00 left
        unsubscribe("2026-11-06T00:00:00Z"),
    )
    assert_applied(ledger, "D9")
    assert ledger.last_outcome(ACC)["charges"] == []  # no refund
    assert remaining(ledger) == (None, 0)
    assert throttle_of(ledger)["fup_bytes"] == 0
    # PAYG from that moment: 2 MB x 0.0500 = 0.1000 from the balance.
    feed_ok(ledger, used("2026-11-06T01:00:00Z", 2_000_000))
    assert split(ledger) == (0, 2_000_000, 0)
    assert ledger.balance(ACC) == "9.9000"


def test_D9_removing_other_packages_keeps_the_data_to_the_end_of_its_validity() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(
        ledger,
        subscribe("2026-11-10T12:00:00Z", "data-1gb"),  # 5.00 left
        used("2026-11-11T10:00:00Z", 300_000_000),  # 700,000,000 left
        unsubscribe("2026-11-12T10:00:00Z"),
    )
    assert_applied(ledger, "D9")
    doc = data_of(ledger)
    assert (doc["package_id"], doc["remaining_bytes"], doc["valid_until"]) == (
        "data-1gb",
        700_000_000,
        "2026-12-10T12:00:00Z",
    )
    # The last second of its validity: from the package.
    feed_ok(ledger, used("2026-12-10T11:59:59Z", 500_000_000))
    assert split(ledger) == (500_000_000, 0, 0)
    assert remaining(ledger) == ("data-1gb", 200_000_000)
    # Validity over: the 200,000,000 left are gone; 100 MB x 0.0500 = 5.0000 PAYG.
    feed_ok(ledger, used("2026-12-10T12:00:00Z", 100_000_000))
    assert split(ledger) == (0, 100_000_000, 0)
    assert last_charge(ledger)["amount"] == "5.0000"
    assert ledger.balance(ACC) == "0.0000"
    assert remaining(ledger) == (None, 0)


def test_D9_D1_after_its_validity_usage_is_payg() -> None:
    ledger = setup(recharge="10.00")
    feed_ok(
        ledger,
        subscribe("2026-11-10T12:00:00Z", "data-1gb"),  # 5.00 left, 1,000,000,000 unused
        used("2026-12-10T12:00:00Z", 20_000_000),
    )
    # 20 MB x 0.0500 = 1.0000 PAYG; the unused gigabyte expired with the package.
    assert split(ledger) == (0, 20_000_000, 0)
    assert ledger.balance(ACC) == "4.0000"
    assert remaining(ledger) == (None, 0)


# ---------------------------------------------------------------------------------------------
# G2: dead letters


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            subscribe("2026-11-12T10:00:00Z", "data-2gb"),
            f"unknown package 'data-2gb' in catalog version {CATALOG}",
        ),
        (
            change("2026-11-12T10:00:00Z", "data-2gb"),
            f"unknown package 'data-2gb' in catalog version {CATALOG}",
        ),
        (
            used("2026-11-12T10:00:00Z", 1_000_000, STRANGER),
            f"unknown number {STRANGER} on account {ACC}",
        ),
        (
            roamed("2026-11-12T10:00:00Z", 1_000_000, "FR", STRANGER),
            f"unknown number {STRANGER} on account {ACC}",
        ),
        (
            subscribe("2026-11-12T10:00:00Z", "data-1gb", STRANGER),
            f"unknown number {STRANGER} on account {ACC}",
        ),
        (
            event("data.used", ACC, msisdn=NUM1, bytes=1_000_000, roaming=True),
            "data.used: country is required when roaming is true",
        ),
    ],
    ids=[
        "unknown-package",
        "change-to-unknown-package",
        "unknown-number",
        "roaming-unknown-number",
        "subscribe-unknown-number",
        "roaming-without-country",
    ],
)
def test_G2_data_records_that_do_not_fit_are_dead_lettered_with_a_reason(
    bad: dict[str, Any], reason: str
) -> None:
    ledger = setup(recharge="20.00")
    feed_ok(ledger, subscribe("2026-11-10T10:00:00Z", "data-1gb"))
    before = (ledger.history(ACC), ledger.all_views())
    counts = ledger.feed(bad)
    assert (counts.consumed, counts.applied, len(counts.dead_letters)) == (1, 0, 1)
    assert ledger.reasons() == [reason]
    # Nothing recorded, nothing moved.
    assert (ledger.history(ACC), ledger.all_views()) == before


# ---------------------------------------------------------------------------------------------
# The command line (SPEC 12)


# The CLI judges validity at --at (default now): pin it so the tests never depend on the clock.
LOOK_AT = "2026-11-20T00:00:00Z"


def _cli_month() -> list[dict[str, Any]]:
    return [
        catalog_published(),
        event(
            "account.opened", ACC, "2026-11-01T09:00:00Z", billing_mode="prepaid", currency="USD"
        ),
        event("number.added", ACC, "2026-11-01T09:30:00Z", msisdn=NUM1),
        event("number.added", ACC, "2026-11-01T09:31:00Z", msisdn=NUM2),
        recharged("50.00", "2026-11-01T09:45:00Z"),
        subscribe("2026-11-10T12:00:00Z", "data-5gb", NUM1),  # 35.00 left
        used("2026-11-11T12:00:00Z", 1_250_000_000, NUM1),  # 3,750,000,000 left
        subscribe("2026-11-11T08:00:00Z", "data-unlimited", NUM2),  # 5.00 left
        used("2026-11-12T09:30:00Z", 2_300_000_000, NUM2),  # crosses 2,200,000,000
    ]


def test_cli_data_json_lines(tmp_path: Path, sqlite_url: str) -> None:
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    doc = run_json("--store", sqlite_url, "data", ACC, "--at", LOOK_AT)
    assert doc == {
        "account_id": ACC,
        "lines": [
            {
                "msisdn": NUM1,
                "package_id": "data-5gb",
                "remaining_bytes": 3_750_000_000,
                "valid_until": "2026-12-10T12:00:00Z",
                "unlimited": False,
            },
            {
                "msisdn": NUM2,
                "package_id": "data-unlimited",
                "remaining_bytes": 0,
                "valid_until": "2026-12-11T08:00:00Z",
                "unlimited": True,
            },
        ],
    }
    only = run_json("--store", sqlite_url, "data", ACC, "--msisdn", NUM2, "--at", LOOK_AT)
    assert [line["msisdn"] for line in only["lines"]] == [NUM2]
    # 50.00 - 15.00 - 30.00 = 5.0000
    assert run_json("--store", sqlite_url, "balance", ACC)["balance"] == "5.0000"


def test_cli_data_table_shows_no_byte_count_for_data_unlimited(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Its JSON keeps remaining_bytes 0 (nothing to count down); the table shows "-", not a 0
    that reads as data used up."""
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    rows = run("--store", sqlite_url, "data", ACC, "--at", LOOK_AT).stdout.splitlines()
    assert rows[1].split() == [NUM1, "data-5gb", "3750000000", "2026-12-10T12:00:00Z", "no"]
    assert rows[2].split() == [NUM2, "data-unlimited", "-", "2026-12-11T08:00:00Z", "yes"]


def test_cli_throttle_json_lines(tmp_path: Path, sqlite_url: str) -> None:
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    doc = run_json("--store", sqlite_url, "throttle", ACC, "--at", LOOK_AT)
    assert doc["account_id"] == ACC
    required = ("msisdn", "throttled", "fup_used_bytes", "fup_bytes")
    assert [{key: line[key] for key in required} for line in doc["lines"]] == [
        {"msisdn": NUM1, "throttled": False, "fup_used_bytes": 0, "fup_bytes": 0},
        {"msisdn": NUM2, "throttled": True, "fup_used_bytes": 2_300_000_000, "fup_bytes": FUP},
    ]
    by_number = {line["msisdn"]: line for line in doc["lines"]}
    assert by_number[NUM2]["since"] == "2026-11-12T09:30:00Z"
    assert by_number[NUM2]["lifts_at"] == "2026-12-11T08:00:00Z"  # the 30-day window's end
    only = run_json("--store", sqlite_url, "throttle", ACC, "--msisdn", NUM1, "--at", LOOK_AT)
    assert [line["msisdn"] for line in only["lines"]] == [NUM1]


@pytest.mark.parametrize("command", ["data", "throttle"])
def test_cli_data_and_throttle_of_an_unknown_account_is_a_one_line_error(
    command: str, tmp_path: Path, sqlite_url: str
) -> None:
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    result = run("--store", sqlite_url, command, "NOPE", expect=1)
    assert result.stderr.startswith("ledger: error:") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_D3_D8_cli_shows_a_prepaid_throttle_lifted_and_the_package_gone_after_its_window(
    tmp_path: Path, sqlite_url: str
) -> None:
    ingest_events(tmp_path, sqlite_url, *_cli_month())
    # NUM2's Data Unlimited window ends at 2026-12-11T08:00:00Z (purchase + 30 x 24 h).
    during = run_json(
        "--store", sqlite_url, "throttle", ACC, "--msisdn", NUM2, "--at", "2026-12-11T07:59:59Z"
    )
    assert during["lines"][0]["throttled"] is True
    after = run_json(
        "--store", sqlite_url, "throttle", ACC, "--msisdn", NUM2, "--at", "2026-12-11T08:00:00Z"
    )
    assert (after["lines"][0]["throttled"], after["lines"][0]["since"]) == (False, None)
    gone = run_json(
        "--store", sqlite_url, "data", ACC, "--msisdn", NUM1, "--at", "2026-12-10T12:00:00Z"
    )
    assert gone["lines"][0]["package_id"] is None and gone["lines"][0]["remaining_bytes"] == 0
