"""Refund disputes and charge explanations (SPEC 8: F1, F2; SPEC 10: R4; SPEC 3: C4).

In memory (tests/harness.py) for the decisions, and through `ledger explain` / `ledger dispute`
on a SQLite store for what finance and support type. The decision of a refund request is read
from the stored outcome of its `refund.requested` event (`effects`: decision, clause, policy,
evidence, charged, rerated, credited); a credit is a `refund_credit` charge with a negative
amount, paid back the way the charge was paid.

Every figure is computed by hand from the default catalog (version 2026-01-a,
ledger/catalogs/default.toml); the arithmetic is in the comment next to each assertion.
Figures used throughout:

- PAYG voice: +1 US 0.0150/min, +44 GB landline 0.0200/min, both per started minute (60 s).
  A 95 s call bills 120 s = 2 min: to +1 2 x 0.0150 = 0.0300, to +44 2 x 0.0200 = 0.0400.
- na-500: 9.99 a month (plan fee: payment method on prepaid, invoice on postpaid, I3).
- data-1gb: 5.00 (prepaid: full fee from the balance, D7; postpaid subscribed on 2 Nov:
  5.00 x 29/30 days left = 4.8333, D4); data-5gb 15.00 (postpaid on 2 Nov: 15.00 x 29/30 =
  14.5000).
- Home PAYG data 0.0500/MB; roaming FR 1.5000/MB; port-out fee 15.00.
- The correcting catalog 2026-01-b (corrects 2026-01-a) charges +1 at 0.0100/min: a 95 s call
  re-rates to 2 x 0.0100 = 0.0200, so 0.0300 - 0.0200 = 0.0100 is credited (C4, F1).

The denied decisions must quote the refund policy (seed 001) word for word: each `policy` is
looked up verbatim in docs/policies/refund-policy.txt (seed 001).
"""

import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ledger.account import Account
from ledger.application import LedgerApp
from ledger.catalog import default_catalog_path, load_catalog_file
from ledger.chain import link
from ledger.outcome import Outcome
from ledger.policy import CLAUSES
from ledger.rerate import corrected_history, rerate, rerated_account
from projections.invoices import read_invoices
from projections.runner import fold, view_documents
from tests.cli_helpers import ingest_events, run, run_json
from tests.factories import catalog_published, event, opened
from tests.harness import Ledger

ACC = "ACC-F"
NUM = "+14155550101"
NUM2 = "+14155550102"
US = "+12125550100"  # +1 -> US, 0.0150/min, 60 s
GB_LANDLINE = "+442071234567"  # +44 -> GB, 0.0200/min, 60 s (not covered by na-500)

CATALOG = "2026-01-a"
CORRECTION = "2026-01-b"
# The refund policy as published (seed 001), kept in the repository.
SEED_001 = Path(__file__).resolve().parents[1] / "docs" / "policies" / "refund-policy.txt"
REQUESTED_AT = "2026-11-20T12:00:00Z"


@cache
def refund_policy() -> str:
    return SEED_001.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Builders


def setup(mode: str = "prepaid", *, recharge: str | None = "10.00") -> Ledger:
    """The default catalog, one account opened 2026-11-01 with NUM and NUM2 (prepaid: 10.00)."""
    ledger = Ledger()
    events = [
        catalog_published(),
        opened(ACC, mode),
        event("number.added", ACC, "2026-11-01T09:30:00Z", msisdn=NUM),
        event("number.added", ACC, "2026-11-01T09:31:00Z", msisdn=NUM2),
    ]
    if mode == "prepaid" and recharge is not None:
        events.append(event("balance.recharged", ACC, "2026-11-01T09:45:00Z", amount=recharge))
    feed_ok(ledger, *events)
    return ledger


def feed_ok(ledger: Ledger, *events: dict[str, Any]) -> None:
    counts = ledger.feed(*events)
    assert not counts.dead_letters, ledger.reasons()


def call(
    event_id: str,
    at: str = "2026-11-05T10:00:00Z",
    *,
    seconds: int = 95,
    to: str = US,
    msisdn: str = NUM,
    call_id: str = "call-1",
) -> dict[str, Any]:
    return event(
        "call.completed",
        ACC,
        at,
        event_id=event_id,
        msisdn=msisdn,
        destination=to,
        duration_seconds=seconds,
        call_id=call_id,
    )


def purchase(event_id: str, channel: str = "portal", at: str = "2026-11-02T10:00:00Z") -> Any:
    return event(
        "plan.purchased",
        ACC,
        at,
        event_id=event_id,
        msisdn=NUM,
        plan_id="na-500",
        channel=channel,
    )


def refund(
    charge_id: str, event_id: str, at: str = REQUESTED_AT, reason: str = "charged twice"
) -> dict[str, Any]:
    return event("refund.requested", ACC, at, event_id=event_id, charge_id=charge_id, reason=reason)


def correcting_catalog(
    *,
    rates: dict[str, str] | None = None,
    plan_fees: dict[str, str] | None = None,
    plan_minutes: dict[str, int] | None = None,
    package_fees: dict[str, str] | None = None,
    effective_from: str = "2026-11-15T00:00:00Z",
) -> dict[str, Any]:
    """catalog.published of 2026-01-b, which corrects 2026-01-a (C4): the default catalog with
    the given per-minute rates (by prefix), plan fees and plan minutes (by plan id) and package
    fees (by package id)."""
    doc = load_catalog_file(default_catalog_path()).to_document()
    doc["version"] = CORRECTION
    doc["corrects"] = CATALOG
    doc["effective_from"] = effective_from
    for rate in doc["rates"]:
        rate["per_minute"] = (rates or {}).get(rate["prefix"], rate["per_minute"])
    for plan in doc["plans"]:
        plan["fee"] = (plan_fees or {}).get(plan["id"], plan["fee"])
        plan["minutes"] = (plan_minutes or {}).get(plan["id"], plan["minutes"])
    for package in doc["packages"]:
        package["fee"] = (package_fees or {}).get(package["id"], package["fee"])
    return {
        "event_id": f"catalog-{CORRECTION}",
        "type": "catalog.published",
        "account_id": "*",
        "occurred_at": effective_from,
        "schema_version": 1,
        "catalog": doc,
    }


def outcome_of(ledger: Ledger, event_id: str) -> dict[str, Any]:
    """The stored outcome of one of the account's events (the decision is in its effects)."""
    for stored in ledger.app.account_events(ACC):
        if isinstance(stored, Account.FactApplied) and stored.fact["event_id"] == event_id:
            return stored.outcome
    raise AssertionError(f"no stored event {event_id} on {ACC}")


def dispute(ledger: Ledger, charge_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
    """Feed one refund request on its own batch; return its stored outcome."""
    feed_ok(ledger, refund(charge_id, event_id, **fields))
    return outcome_of(ledger, event_id)


def charge_of(ledger: Ledger, charge_id: str) -> dict[str, Any]:
    found = [c for c in ledger.charges(ACC) if c["charge_id"] == charge_id]
    assert len(found) == 1, (charge_id, found)
    return found[0]


def lines_of(ledger: Ledger, period: str, kind: str) -> list[dict[str, Any]]:
    doc = ledger.invoice(ACC, period)
    assert doc is not None, f"no invoice or statement for {period}"
    return [line for line in doc["lines"] if line["kind"] == kind]


def assert_denied(outcome: dict[str, Any], clause: str, charged: str) -> None:
    """Denied (F1): the clause cited, its policy text verbatim from seed 001, nothing moves."""
    decision = outcome["effects"]
    assert outcome["status"] == "applied"
    assert outcome["rule"] == "F1"
    assert decision["decision"] == "denied", decision
    assert decision["clause"] == clause, decision
    assert decision["policy"] in refund_policy(), decision["policy"]
    assert decision["charged"] == charged
    assert decision["credited"] == "0.0000"
    assert outcome["charges"] == []
    assert outcome["balance_delta"] == "0.0000"


def duplicated_call(mode: str = "prepaid") -> Ledger:
    """One call recorded twice (two event ids, the same msisdn and call_id), both charged."""
    ledger = setup(mode)
    feed_ok(ledger, call("call-a", "2026-11-05T10:00:00Z"))
    feed_ok(ledger, call("call-b", "2026-11-05T10:02:00Z"))
    return ledger


# ---------------------------------------------------------------------------------------------
# F1: a charge that duplicates another for the same call is credited in full


def test_f1_two_records_of_one_call_are_both_charged() -> None:
    """F1: the ledger charges what it is given; the duplicate is settled by a dispute."""
    ledger = duplicated_call()
    # 95 s to +1 -> 120 s billed = 2 min x 0.0150 = 0.0300, each record.
    assert charge_of(ledger, "call-a:payg")["amount"] == "0.0300"
    assert charge_of(ledger, "call-b:payg")["amount"] == "0.0300"
    # 10.00 - 0.0300 - 0.0300
    assert ledger.balance(ACC) == "9.9400"


def test_f1_duplicate_charge_is_credited_in_full_to_the_prepaid_balance() -> None:
    """F1: the second charge for one call is credited in full, citing the first as evidence;
    on a prepaid account the usage credit goes back to the balance it was taken from."""
    ledger = duplicated_call("prepaid")
    outcome = dispute(ledger, "call-b:payg", "refund-1")
    decision = outcome["effects"]
    assert outcome["rule"] == "F1"
    assert decision["decision"] == "credited"
    assert decision["charge_id"] == "call-b:payg"
    assert decision["charged"] == "0.0300"
    assert decision["credited"] == "0.0300"
    assert "call-a:payg" in decision["evidence"]  # the charge it duplicates
    assert "call-1" in decision["evidence"]  # the call id both records carry
    [credit] = outcome["charges"]
    assert credit["kind"] == "refund_credit"
    assert credit["amount"] == "-0.0300"
    assert credit["payer"] == "balance"
    assert credit["rule"] == "F1"
    assert credit["msisdn"] == NUM
    assert outcome["balance_delta"] == "0.0300"
    # 9.9400 + 0.0300
    assert ledger.balance(ACC) == "9.9700"
    [line] = lines_of(ledger, "2026-11", "credits")
    assert line["charge_ids"] == ["refund-1:refund"]
    assert line["event_ids"] == ["refund-1"]
    assert line["exact_amount"] == "-0.0300"
    assert line["amount"] == "-0.03"
    assert "refund of call-b:payg" in line["description"]
    assert "credited to balance" in line["description"]
    # statement: PAYG calls 0.06 + credits -0.03 = 0.03; balance 0 -> 9.9700 (recharge 10.00)
    statement = read_invoices(ledger.views, ACC, "2026-11")[0]
    assert statement["total"] == "0.03"
    assert statement["balance_end"] == "9.9700"


def test_f1_duplicate_charge_is_credited_on_the_open_postpaid_invoice() -> None:
    """F1, I1: on a postpaid account the credit is a line of the open invoice."""
    ledger = duplicated_call("postpaid")
    outcome = dispute(ledger, "call-b:payg", "refund-1")
    assert outcome["effects"]["decision"] == "credited"
    [credit] = outcome["charges"]
    assert (credit["amount"], credit["payer"]) == ("-0.0300", "invoice")
    assert outcome["balance_delta"] == "0.0000"  # nothing moves on a postpaid balance
    [line] = lines_of(ledger, "2026-11", "credits")
    assert (line["amount"], line["charge_ids"]) == ("-0.03", ["refund-1:refund"])
    invoice = ledger.invoice(ACC, "2026-11")
    assert invoice is not None
    # PAYG calls 2 x 0.0300 = 0.06, credits -0.03: total 0.03
    assert [(x["kind"], x["amount"]) for x in invoice["lines"]] == [
        ("payg_calls", "0.06"),
        ("credits", "-0.03"),
    ]
    assert invoice["total"] == "0.03"


def test_f1_credit_for_a_closed_period_lands_on_the_open_invoice() -> None:
    """F1, B3: a dispute after the bill run credits the open invoice; the closed one stays."""
    ledger = duplicated_call("postpaid")
    feed_ok(ledger, event("cycle.started", ACC, "2026-12-01T00:00:00Z", period="2026-12"))
    before = ledger.invoice(ACC, "2026-11")
    outcome = dispute(ledger, "call-b:payg", "refund-1", at="2026-12-04T09:00:00Z")
    assert outcome["effects"]["credited"] == "0.0300"
    assert ledger.invoice(ACC, "2026-11") == before  # closed: 0.06, no credit
    assert before is not None and before["total"] == "0.06"
    [line] = lines_of(ledger, "2026-12", "credits")
    assert line["amount"] == "-0.03"
    december = ledger.invoice(ACC, "2026-12")
    assert december is not None and december["total"] == "-0.03"


def test_f1_a_charge_already_credited_is_denied() -> None:
    """F1: a second request for a credited charge is denied and credits nothing more."""
    ledger = duplicated_call()
    dispute(ledger, "call-b:payg", "refund-1")
    again = dispute(ledger, "call-b:payg", "refund-2", reason="still charged twice")
    assert_denied(again, "one_time_and_recurring", "0.0300")
    assert "already credited" in again["effects"]["evidence"]
    assert "refund-1" in again["effects"]["evidence"]
    assert ledger.balance(ACC) == "9.9700"  # credited once: 9.9400 + 0.0300
    assert len(lines_of(ledger, "2026-11", "credits")) == 1


def test_f1_two_requests_for_one_charge_in_one_batch_credit_it_once() -> None:
    """F1: the first decision is state for the next, even within one batch."""
    ledger = duplicated_call()
    feed_ok(ledger, refund("call-b:payg", "refund-1"), refund("call-b:payg", "refund-2"))
    assert outcome_of(ledger, "refund-1")["effects"]["decision"] == "credited"
    assert_denied(outcome_of(ledger, "refund-2"), "one_time_and_recurring", "0.0300")
    assert ledger.balance(ACC) == "9.9700"


def test_f1_the_original_of_a_duplicated_call_is_denied() -> None:
    """F1: the first charge for the call re-rates to what was charged: denied."""
    ledger = duplicated_call()
    outcome = dispute(ledger, "call-a:payg", "refund-1")
    assert_denied(outcome, "one_time_and_recurring", "0.0300")
    assert outcome["effects"]["rerated"] == "0.0300"
    assert ledger.balance(ACC) == "9.9400"


def test_f1_duplicate_of_a_call_taken_from_plan_minutes_is_credited() -> None:
    """F1: the first record of a call used the plan's minutes (no charge); its duplicate found
    the minutes used up and was charged PAYG. That charge duplicates the call: credited."""
    ledger = setup("prepaid")
    feed_ok(ledger, purchase("buy"))
    # 500 minutes exactly: the first record takes all of the plan's 30,000 s.
    feed_ok(ledger, call("call-a", "2026-11-05T10:00:00Z", seconds=30_000))
    assert [c for c in ledger.charges(ACC) if c["charge_id"].startswith("call-a")] == []
    feed_ok(ledger, call("call-b", "2026-11-05T10:02:00Z", seconds=30_000))
    # The duplicate: no minutes left, 30,000 s PAYG = 500 min x 0.0150 = 7.5000.
    assert charge_of(ledger, "call-b:payg")["amount"] == "7.5000"
    decision = dispute(ledger, "call-b:payg", "refund-minutes")["effects"]
    assert decision["decision"] == "credited" and decision["credited"] == "7.5000"
    assert "call-a (plan minutes)" in decision["evidence"]
    # 10.00 - 7.5000 + 7.5000
    assert ledger.balance(ACC) == "10.0000"


def test_f1_minutes_a_duplicate_took_are_owed_back_to_the_calls_that_then_paid_payg() -> None:
    """F1: the duplicate of a 400 min call took the plan's last 100 minutes and 300 min PAYG;
    a genuine 100 min call after it found the minutes used up and paid PAYG too. Without the
    duplicate both calls fit in the 500 minutes, so everything charged is owed back: the
    duplicate's charge in full, and the genuine call's, re-rated in the account as it would
    be without the duplicate (which a what-if replay shows too)."""
    ledger = setup("prepaid")
    feed_ok(
        ledger,
        purchase("buy"),
        call("first", seconds=400 * 60, call_id="call-400"),
        call("again", "2026-11-05T10:05:00Z", seconds=400 * 60, call_id="call-400"),
        call("other", "2026-11-05T18:00:00Z", seconds=100 * 60, call_id="call-100"),
    )
    # 300 min x 0.0150 = 4.5000; 100 min x 0.0150 = 1.5000. 10.00 - 6.00 = 4.0000.
    assert charge_of(ledger, "again:payg")["amount"] == "4.5000"
    assert charge_of(ledger, "other:payg")["amount"] == "1.5000"
    assert ledger.balance(ACC) == "4.0000"
    differences, _ = rerate(
        ledger.app.account_events(ACC), corrected_history(ledger.app.catalogs())
    )
    assert [(d.charge_id, d.charged, d.rerated) for d in differences] == [
        ("again:payg", Decimal("4.5000"), None),
        ("other:payg", Decimal("1.5000"), None),
    ]
    other = dispute(ledger, "other:payg", "refund-other", reason="plan minutes")["effects"]
    assert (other["decision"], other["rerated"], other["credited"]) == (
        "credited",
        "0.0000",
        "1.5000",
    )
    duplicate = dispute(ledger, "again:payg", "refund-again", reason="charged twice")["effects"]
    assert (duplicate["decision"], duplicate["credited"]) == ("credited", "4.5000")
    assert ledger.balance(ACC) == "10.0000"  # all 6.00 back: nothing was owed
    ledger.assert_replay_matches()


def test_f1_the_same_call_id_on_another_number_is_not_a_duplicate() -> None:
    """F1: a duplicate is the same call: same number and call_id, not just the same call_id."""
    ledger = setup()
    feed_ok(ledger, call("call-a", msisdn=NUM), call("call-b", msisdn=NUM2))
    outcome = dispute(ledger, "call-b:payg", "refund-1")
    assert_denied(outcome, "one_time_and_recurring", "0.0300")
    assert ledger.balance(ACC) == "9.9400"


def test_f1_p1_one_call_recorded_on_the_new_number_and_again_after_the_port_in_is_a_duplicate() -> (
    None
):
    """F1, P1: the ported number replaces the port-in's new number as the same line of
    service, so a call recorded on the new number and again after the completion, naming the
    ported number or still the new one, is one call recorded twice."""
    new, ported = "+14155550777", "+13125550199"
    ledger = setup()
    at = "2026-11-05T10:00:00Z"
    feed_ok(
        ledger,
        event("port_in.requested", ACC, "2026-11-02T10:00:00Z", msisdn=new, ported_msisdn=ported),
        call("on-new", at, msisdn=new),
        event("port_in.completed", ACC, "2026-11-08T10:00:00Z", msisdn=new, ported_msisdn=ported),
        call("on-ported", at, msisdn=ported),
        call("on-new-again", at, msisdn=new),  # dated before the completion: rated on `ported`
    )
    # 95 s to +1 -> 2 min x 0.0150 = 0.0300, each record. 10.00 - 0.0900.
    assert ledger.balance(ACC) == "9.9100"
    differences, _ = rerate(
        ledger.app.account_events(ACC), corrected_history(ledger.app.catalogs())
    )
    assert [(d.charge_id, d.charged, d.rerated) for d in differences] == [
        ("on-ported:payg", Decimal("0.0300"), None),
        ("on-new-again:payg", Decimal("0.0300"), None),
    ]
    for charge_id, event_id in (("on-ported:payg", "refund-1"), ("on-new-again:payg", "refund-2")):
        decision = dispute(ledger, charge_id, event_id)["effects"]
        assert (decision["decision"], decision["credited"]) == ("credited", "0.0300")
        assert "on-new:payg" in decision["evidence"]  # the first record of the call
    original = dispute(ledger, "on-new:payg", "refund-3")
    assert_denied(original, "one_time_and_recurring", "0.0300")
    assert ledger.balance(ACC) == "9.9700"
    ledger.assert_replay_matches()


# ---------------------------------------------------------------------------------------------
# F1, C4: a charge rated under a catalog later corrected is credited the difference


def test_c4_call_rated_before_a_correction_is_credited_the_difference() -> None:
    """C4, F1: re-rated under the correcting version, the call costs less; the difference is
    credited, the evidence names both versions, and the original charge stays as it was."""
    ledger = setup()
    feed_ok(ledger, call("call-a"))  # 5 Nov, under 2026-01-a: 2 min x 0.0150 = 0.0300
    feed_ok(ledger, correcting_catalog(rates={"+1": "0.0100"}))
    outcome = dispute(ledger, "call-a:payg", "refund-1", reason="the +1 price was wrong")
    decision = outcome["effects"]
    assert decision["decision"] == "credited"
    assert decision["charged"] == "0.0300"
    assert decision["rerated"] == "0.0200"  # 2 min x 0.0100
    assert decision["credited"] == "0.0100"  # 0.0300 - 0.0200
    assert CATALOG in decision["evidence"] and CORRECTION in decision["evidence"]
    [credit] = outcome["charges"]
    assert (credit["kind"], credit["amount"], credit["payer"]) == (
        "refund_credit",
        "-0.0100",
        "balance",
    )
    # C2: the credit records the version and the rate it was worked out under.
    assert credit["catalog_version"] == CORRECTION
    assert credit["rate"].startswith("0.0100/min")
    # 10.00 - 0.0300 + 0.0100
    assert ledger.balance(ACC) == "9.9800"
    original = charge_of(ledger, "call-a:payg")
    assert (original["amount"], original["catalog_version"]) == ("0.0300", CATALOG)
    assert original["rate"].startswith("0.0150/min")
    [line] = lines_of(ledger, "2026-11", "payg_calls")
    assert line["exact_amount"] == "0.0300"  # the call's line is untouched
    [credits] = lines_of(ledger, "2026-11", "credits")
    assert credits["exact_amount"] == "-0.0100"


def test_c4_corrected_plan_minutes_count_for_the_calls_before_the_disputed_one() -> None:
    """C4, F1, R2: na-500 corrected to 600 minutes. The dispute replays the account to the
    charge under the correction, so the calls before it are rated again too: the disputed call
    falls inside the corrected minutes and is credited in full, as the what-if replay shows."""
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase("buy"),  # 500 minutes for November
        call("long", seconds=499 * 60, call_id="call-long"),  # 499 minutes from the plan
        call("late", "2026-11-05T20:00:00Z", seconds=150, call_id="call-late"),
    )
    # 150 s bills 3 min: 1 from the plan, 2 PAYG x 0.0150 = 0.0300.
    assert charge_of(ledger, "late:payg")["amount"] == "0.0300"
    feed_ok(ledger, correcting_catalog(plan_minutes={"na-500": 600}))
    # The what-if replay under the correction (R2): the call's charge is gone.
    differences, _ = rerate(
        ledger.app.account_events(ACC), corrected_history(ledger.app.catalogs())
    )
    assert [(d.charge_id, d.charged, d.rerated) for d in differences] == [
        ("late:payg", Decimal("0.0300"), None)
    ]
    outcome = dispute(ledger, "late:payg", "refund-1", reason="the plan has 600 minutes")
    decision = outcome["effects"]
    # Re-rated in the corrected account: 101 minutes left, all 3 from the plan.
    assert (decision["decision"], decision["rerated"], decision["credited"]) == (
        "credited",
        "0.0000",
        "0.0300",
    )
    assert (
        f"re-rated under catalog {CORRECTION}: 0.0000 instead of 0.0300" in (decision["evidence"])
    )
    [credit] = outcome["charges"]
    assert (credit["amount"], credit["catalog_version"], credit["rate"]) == (
        "-0.0300",
        CORRECTION,
        "no charge when rated again",
    )


def test_c4_call_rated_under_the_correction_is_denied() -> None:
    """C4, F1: a call after the correction took effect was rated right: denied."""
    ledger = setup()
    feed_ok(ledger, correcting_catalog(rates={"+1": "0.0100"}))
    feed_ok(ledger, call("call-a", "2026-11-16T10:00:00Z"))  # 2 min x 0.0100 = 0.0200
    charge = charge_of(ledger, "call-a:payg")
    assert (charge["amount"], charge["catalog_version"]) == ("0.0200", CORRECTION)
    outcome = dispute(ledger, "call-a:payg", "refund-1")
    assert_denied(outcome, "one_time_and_recurring", "0.0200")
    assert outcome["effects"]["rerated"] == "0.0200"


def test_c4_a_correction_of_another_rate_credits_nothing() -> None:
    """C4, F1: correcting +44 leaves a +1 call as charged: denied."""
    ledger = setup()
    feed_ok(ledger, call("call-a"))
    feed_ok(ledger, correcting_catalog(rates={"+44": "0.0100"}))
    outcome = dispute(ledger, "call-a:payg", "refund-1")
    assert_denied(outcome, "one_time_and_recurring", "0.0300")
    assert outcome["effects"]["rerated"] == "0.0300"
    assert ledger.balance(ACC) == "9.9700"  # 10.00 - 0.0300


def test_c4_f1_re_rating_makes_no_event_and_reads_stored_outcomes_as_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """C4, F1, R2: an account rated again is never stored, so re-rating its facts (a dispute's
    replay to the charge, a what-if replay) makes no event and hashes no chain link for any of
    them, and compares each stored outcome with its re-rating as the documents they are: these
    were over a third of its cost. It still moves the account as the facts move it, credits
    and all, and finds the same differences."""
    ledger = setup()
    feed_ok(ledger, call("call-a"), call("call-b", "2026-11-06T10:00:00Z", call_id="call-2"))
    feed_ok(ledger, correcting_catalog(rates={"+1": "0.0100"}))
    dispute(ledger, "call-a:payg", "refund-1")  # credits 0.0100 of call-a's 0.0300
    stored = list(ledger.app.account_events(ACC))
    catalogs = corrected_history(ledger.app.catalogs())
    hashed: list[str] = []  # the type of each fact a chain link was hashed for

    def counted_link(previous: str, fact: dict[str, Any], outcome: Any) -> str:
        hashed.append(fact["type"])
        return link(previous, fact, outcome)

    def refused(*args: Any) -> Outcome:
        raise AssertionError("a stored outcome was read into an Outcome to be re-rated")

    monkeypatch.setattr("ledger.account.link", counted_link)
    monkeypatch.setattr(Outcome, "from_document", classmethod(refused))
    differences, unrated = rerate(stored, catalogs)
    account, counted = rerated_account(stored, catalogs)
    assert hashed == ["account.opened", "account.opened"]  # each re-rating's opening only
    assert unrated == [] and counted == ()
    assert [(d.charge_id, d.charged, d.rerated, d.credited) for d in differences] == [
        ("call-a:payg", Decimal("0.0300"), Decimal("0.0200"), Decimal("0.0100")),
        ("call-b:payg", Decimal("0.0300"), Decimal("0.0200"), Decimal("0.0000")),
    ]
    # 10.00 - 2 x 0.0200 re-rated, + 0.0100 the refund credited, as stored.
    assert account.balance == Decimal("9.9700")
    assert account.version == stored[-1].originator_version
    assert ledger.balance(ACC) == "9.9500"  # as charged: 10.00 - 2 x 0.0300 + 0.0100


def test_c4_a_fact_the_catalogs_cannot_rate_again_moves_the_account_as_stored() -> None:
    """C4, R2: a fact the corrected catalogs cannot rate (here a call to a destination the
    correction has no rate for) is named with the reason, lists no difference, and moves the
    re-rated account as its stored outcome did, so the facts after it re-rate from there."""
    ledger = setup()
    feed_ok(
        ledger,
        call("call-a", to=GB_LANDLINE),  # 2 min x 0.0200 = 0.0400
        call("call-b", "2026-11-06T10:00:00Z", call_id="call-2"),  # 2 min x 0.0150 = 0.0300
    )
    correction = correcting_catalog(rates={"+1": "0.0100"})
    correction["catalog"]["rates"] = [
        rate for rate in correction["catalog"]["rates"] if rate["prefix"] != "+44"
    ]
    feed_ok(ledger, correction)
    stored = list(ledger.app.account_events(ACC))
    catalogs = corrected_history(ledger.app.catalogs())
    differences, unrated = rerate(stored, catalogs)
    assert unrated == [
        f"call-a: no rate for destination {GB_LANDLINE} in catalog version {CORRECTION}"
    ]
    assert [(d.charge_id, d.charged, d.rerated) for d in differences] == [
        ("call-b:payg", Decimal("0.0300"), Decimal("0.0200"))
    ]
    account, _ = rerated_account(stored, catalogs)
    assert account.balance == Decimal("9.9400")  # 10.00 - 0.0400 as stored - 0.0200 re-rated


def test_c4_a_second_correction_credits_only_the_further_difference() -> None:
    """C4, F1: a charge credited its difference under one correction is re-rated under the
    correction that corrects it in turn; a dispute then credits what is still owed, the charge
    less its re-rated amount less what was credited before, and nothing once nothing is."""
    ledger = setup()
    feed_ok(ledger, call("call-a"))  # 2 min x 0.0150 = 0.0300
    feed_ok(ledger, correcting_catalog(rates={"+1": "0.0100"}))
    first = dispute(ledger, "call-a:payg", "refund-1")["effects"]
    assert first["credited"] == "0.0100"  # 0.0300 - 2 min x 0.0100
    [difference] = rerate(ledger.app.account_events(ACC), corrected_history(ledger.app.catalogs()))[
        0
    ]
    assert (difference.credited, difference.still_owed) == (Decimal("0.0100"), 0)
    second_correction = correcting_catalog(rates={"+1": "0.0050"})
    second_correction["event_id"] = "catalog-2026-01-c"
    second_correction["catalog"].update(version="2026-01-c", corrects=CORRECTION)
    feed_ok(ledger, second_correction)
    second = dispute(ledger, "call-a:payg", "refund-2")
    decision = second["effects"]
    # 2 min x 0.0050 = 0.0100: 0.0300 - 0.0100 - 0.0100 already credited = 0.0100 more.
    assert (decision["decision"], decision["rerated"], decision["credited"]) == (
        "credited",
        "0.0100",
        "0.0100",
    )
    assert "2026-01-c" in decision["evidence"]
    assert "0.0100 already credited by refund-1" in decision["evidence"]
    [credit] = second["charges"]
    assert (credit["amount"], credit["catalog_version"]) == ("-0.0100", "2026-01-c")
    # 10.00 - 0.0300 + 0.0100 + 0.0100
    assert ledger.balance(ACC) == "9.9900"
    # The what-if says the same: charged 0.0300, re-rated 0.0100, 0.0200 credited, none owed.
    [difference] = rerate(ledger.app.account_events(ACC), corrected_history(ledger.app.catalogs()))[
        0
    ]
    assert (difference.charged, difference.rerated, difference.credited) == (
        Decimal("0.0300"),
        Decimal("0.0100"),
        Decimal("0.0200"),
    )
    assert difference.still_owed == 0
    third = dispute(ledger, "call-a:payg", "refund-3")
    assert_denied(third, "one_time_and_recurring", "0.0300")
    assert "already credited by refund-2 (0.0200)" in third["effects"]["evidence"]
    assert "nothing more is owed" in third["effects"]["evidence"]
    assert ledger.balance(ACC) == "9.9900"
    ledger.assert_replay_matches()


def test_f1_a_port_fee_credited_before_is_denied_citing_the_port_out_clause() -> None:
    """F1: a charge credited before and owed nothing more is denied citing the clause of its
    own kind, the evidence naming the credit; "one-time or recurring charges" is not every
    charge's clause."""
    ledger = setup()
    feed_ok(
        ledger,
        event("port_out.requested", ACC, "2026-11-06T10:00:00Z", event_id="port", msisdn=NUM2),
    )
    correction = correcting_catalog()
    correction["catalog"]["fees"]["port_out"] = "10.00"
    feed_ok(ledger, correction)
    first = dispute(ledger, "port:port_out_fee", "refund-1", reason="fee was lowered")
    assert first["effects"]["credited"] == "5.0000"  # 15.00 charged, 10.00 corrected
    again = dispute(ledger, "port:port_out_fee", "refund-2", reason="all of it")
    assert_denied(again, "port_out", "15.0000")
    assert "already credited by refund-1 (5.0000)" in again["effects"]["evidence"]


def test_c4_a_correction_raising_the_rate_collects_nothing() -> None:
    """C4, F1: re-rated higher (2 min x 0.0200 = 0.0400 > 0.0300) is denied: a dispute never
    collects an undercharge."""
    ledger = setup()
    feed_ok(ledger, call("call-a"))
    feed_ok(ledger, correcting_catalog(rates={"+1": "0.0200"}))
    outcome = dispute(ledger, "call-a:payg", "refund-1")
    assert_denied(outcome, "one_time_and_recurring", "0.0300")
    assert outcome["effects"]["rerated"] == "0.0400"
    assert ledger.balance(ACC) == "9.9700"


def test_c4_plan_fee_under_a_corrected_fee_is_credited_to_the_payment_method() -> None:
    """C4, F1, I3: na-500 corrected from 9.99 to 8.99: 1.00 is credited the way the fee was
    paid (the payment method on prepaid), never to the PAYG balance."""
    ledger = setup()
    feed_ok(ledger, purchase("buy"))
    feed_ok(ledger, correcting_catalog(plan_fees={"na-500": "8.99"}))
    outcome = dispute(ledger, "buy:fee", "refund-1", reason="price was wrong")
    decision = outcome["effects"]
    assert decision["decision"] == "credited"
    assert (decision["charged"], decision["rerated"], decision["credited"]) == (
        "9.9900",
        "8.9900",
        "1.0000",
    )
    [credit] = outcome["charges"]
    assert (credit["amount"], credit["payer"]) == ("-1.0000", "payment_method")
    assert outcome["balance_delta"] == "0.0000"
    assert ledger.balance(ACC) == "10.0000"
    assert charge_of(ledger, "buy:fee")["amount"] == "9.9900"  # the original stays
    [line] = lines_of(ledger, "2026-11", "credits")
    assert line["description"].endswith("(credited to payment method)")


def december_renewal_credited_one_dollar(
    kind: str, bought: dict[str, Any], correction: dict[str, Any], *before: dict[str, Any]
) -> Ledger:
    """A postpaid plan or package renewed for December, then corrected 1.00 lower (C4) and
    disputed: 1.00 credited, the rest of the renewal left charged."""
    ledger = setup("postpaid")
    feed_ok(ledger, bought, *before)
    feed_ok(
        ledger,
        event("cycle.started", ACC, "2026-12-01T00:00:00Z", event_id="cycle-12", period="2026-12"),
    )
    feed_ok(ledger, correction)
    renewal = f"cycle-12:{kind}:{NUM}"
    decision = dispute(ledger, renewal, "refund-1", at="2026-12-02T10:00:00Z")["effects"]
    assert (decision["decision"], decision["credited"]) == ("credited", "1.0000")
    assert ledger.account(ACC).credited_in_part == {renewal: "1.0000"}
    return ledger


@pytest.mark.parametrize(
    ("late", "rule", "why"),
    [
        (
            event("port_out.completed", ACC, "2026-11-25T10:00:00Z", event_id="late", msisdn=NUM),
            "P2",
            "ported out",
        ),
        (
            event(
                "plan.autorenew_changed",
                ACC,
                "2026-11-25T10:00:00Z",
                event_id="late",
                msisdn=NUM,
                enabled=False,
            ),
            "V7",
            "autorenew switched off",
        ),
    ],
    ids=["port-out", "cancel"],
)
def test_f1_a_partly_credited_renewal_is_reversed_for_the_rest_by_a_late_fact(
    late: dict[str, Any], rule: str, why: str
) -> None:
    """A port-out or cancel dated before the bill run, logged after a price correction's
    dispute credited 1.00 of the renewal, reverses the other 8.99: the customer pays nothing
    for December, as without the dispute (the reversal skipped a renewal credited at all)."""
    before = (
        [event("port_out.requested", ACC, "2026-11-20T10:00:00Z", event_id="req", msisdn=NUM)]
        if rule == "P2"
        else []
    )
    # na-500 renewed at 9.99, corrected to 8.99.
    na_500 = correcting_catalog(plan_fees={"na-500": "8.99"})
    ledger = december_renewal_credited_one_dollar("plan_fee", purchase("buy"), na_500, *before)
    feed_ok(ledger, late)
    renewal = f"cycle-12:plan_fee:{NUM}"
    reversal = [
        c for c in outcome_of(ledger, "late")["charges"] if c["rate"] == f"reverses {renewal}"
    ]
    assert [(c["amount"], c["rule"], c["period"]) for c in reversal] == [
        ("-8.9900", rule, "2026-12")
    ]
    assert "(the rest: 1.0000 was credited before)" in reversal[0]["arithmetic"]
    assert why in reversal[0]["label"]
    december = ledger.invoice(ACC, "2026-12")
    assert december is not None
    assert [line["amount"] for line in december["lines"]] == ["9.99", "-8.99", "-1.00"]
    assert december["total"] == "0.00"
    assert ledger.account(ACC).credited_in_part == {}
    # Credited in full now: a further dispute credits nothing more.
    denied = dispute(ledger, renewal, "refund-2", at="2026-12-03T10:00:00Z")["effects"]
    assert (denied["decision"], denied["credited"]) == ("denied", "0.0000")
    ledger.assert_replay_matches()


def test_f1_a_partly_credited_package_renewal_is_reversed_for_the_rest_by_a_late_unsubscribe() -> (
    None
):
    """D5, T2: data-1gb renewed for December (5.00), corrected to 4.00 and disputed (1.00
    credited); an unsubscribe dated 25 November, logged after, reverses the other 4.00."""
    data_1gb = correcting_catalog(package_fees={"data-1gb": "4.00"})
    ledger = december_renewal_credited_one_dollar("package_fee", subscribed("pkg"), data_1gb)
    renewal = f"cycle-12:package_fee:{NUM}"
    feed_ok(
        ledger,
        event("package.unsubscribed", ACC, "2026-11-25T10:00:00Z", event_id="late", msisdn=NUM),
    )
    [reversal] = outcome_of(ledger, "late")["charges"]
    assert (reversal["amount"], reversal["rule"], reversal["rate"]) == (
        "-4.0000",
        "D5",
        f"reverses {renewal}",
    )
    december = ledger.invoice(ACC, "2026-12")
    assert december is not None and december["total"] == "0.00"
    ledger.assert_replay_matches()


def test_c4_prorated_package_fee_is_credited_the_prorated_difference() -> None:
    """C4, F1, D4: data-5gb subscribed on 2 Nov (postpaid) was charged 15.00 x 29/30 =
    14.5000; corrected to 12.00 it re-rates to 12.00 x 29/30 = 11.6000: 2.9000 is credited
    on the invoice."""
    ledger = setup("postpaid")
    subscribe = event(
        "package.subscribed",
        ACC,
        "2026-11-02T10:00:00Z",
        event_id="pkg",
        msisdn=NUM,
        package_id="data-5gb",
    )
    feed_ok(ledger, subscribe)
    correction = correcting_catalog()
    for package in correction["catalog"]["packages"]:
        if package["id"] == "data-5gb":
            package["fee"] = "12.00"
    feed_ok(ledger, correction)
    outcome = dispute(ledger, "pkg:fee", "refund-1", reason="the 5 GB price was wrong")
    decision = outcome["effects"]
    assert (decision["decision"], decision["charged"], decision["rerated"]) == (
        "credited",
        "14.5000",
        "11.6000",
    )
    assert decision["credited"] == "2.9000"
    [line] = lines_of(ledger, "2026-11", "credits")
    assert (line["exact_amount"], line["amount"]) == ("-2.9000", "-2.90")
    invoice = ledger.invoice(ACC, "2026-11")
    assert invoice is not None and invoice["total"] == "11.60"  # 14.50 - 2.90


def test_c4_call_of_a_number_since_ported_out_is_still_credited() -> None:
    """C4, F1, P2: the number has left the account, but its charge is still re-rated from the
    account as it was then: 0.0300 - 0.0200 = 0.0100 back to the balance."""
    ledger = setup()
    feed_ok(ledger, call("call-a", msisdn=NUM2))
    feed_ok(
        ledger,
        event("port_out.requested", ACC, "2026-11-06T10:00:00Z", event_id="port", msisdn=NUM2),
        event("port_out.completed", ACC, "2026-11-07T10:00:00Z", msisdn=NUM2),
    )
    feed_ok(ledger, correcting_catalog(rates={"+1": "0.0100"}))
    outcome = dispute(ledger, "call-a:payg", "refund-1")
    assert outcome["effects"]["credited"] == "0.0100"
    assert outcome["charges"][0]["msisdn"] == NUM2
    # 10.00 - 0.0300 + 0.0100 (the 15.00 port-out fee went to the payment method)
    assert ledger.balance(ACC) == "9.9800"


# ---------------------------------------------------------------------------------------------
# F1, T2: a charge re-rated with the facts dated before it that reached the ledger after it


def switched_back_on_late() -> list[dict[str, Any]]:
    """na-500 cancelled (V7) and ended by December's bill run; a call of 2 December rated PAYG;
    then the switch back on, dated in November, which renews December (T2)."""
    return [
        purchase("buy"),
        event("plan.autorenew_changed", ACC, "2026-11-10T10:00:00Z", msisdn=NUM, enabled=False),
        event("cycle.started", ACC, "2026-12-01T00:00:00Z", period="2026-12"),
        call("meanwhile", "2026-12-02T10:00:00Z"),
        event(
            "plan.autorenew_changed",
            ACC,
            "2026-11-20T10:00:00Z",
            event_id="switch-on",
            msisdn=NUM,
            enabled=True,
        ),
    ]


def test_f1_a_call_rated_payg_before_a_late_switch_on_of_its_plan_is_credited() -> None:
    """The plan was cancelled and ended by December's bill run; a call on 2 December was rated
    PAYG; then the switch back on, dated in November, arrived and renewed December (V7, T2).
    December's fee is charged, so the call it covered must not be charged too: the dispute
    re-rates it after the late switch-on, on December's minutes, and credits it in full. It
    was denied "as charged", the re-rating stopping at the call in log order."""
    ledger = setup("postpaid")
    feed_ok(ledger, *switched_back_on_late())
    # December's bill run sent again: rejected, it changed nothing and is not counted.
    ledger.feed(event("cycle.started", ACC, "2026-12-01T00:00:00Z", period="2026-12"))
    assert [c["amount"] for c in ledger.charges(ACC) if c["kind"] == "plan_fee"] == [
        "9.9900",  # November, at purchase
        "9.9900",  # December, renewed by the late switch-on
    ]
    outcome = dispute(ledger, "meanwhile:payg", "refund-1", at="2026-12-05T12:00:00Z")
    decision = outcome["effects"]
    assert decision["decision"] == "credited", decision
    # 95 s to +1 -> 2 min x 0.0150 = 0.0300; on December's na-500 minutes: nothing.
    assert (decision["charged"], decision["rerated"], decision["credited"]) == (
        "0.0300",
        "0.0000",
        "0.0300",
    )
    assert decision["evidence"] == (
        "re-rated under catalog 2026-01-a, counting switch-on (plan.autorenew_changed at "
        "2026-11-20T10:00:00Z), dated before it and logged after it: 0.0000 instead of "
        "0.0300 under 2026-01-a"
    )
    [credit] = outcome["charges"]
    assert (credit["amount"], credit["period"]) == ("-0.0300", "2026-12")
    ledger.assert_replay_matches()


def test_f1_a_call_rated_payg_before_a_late_purchase_dated_before_it_is_credited() -> None:
    """A portal purchase dated 2 November reached the ledger after a call of 5 November, which
    was rated PAYG: the plan was the number's when it called (T2)."""
    ledger = setup("prepaid")
    feed_ok(ledger, call("early-call", "2026-11-05T10:00:00Z"))
    feed_ok(ledger, purchase("late-buy", at="2026-11-02T10:00:00Z"))
    outcome = dispute(ledger, "early-call:payg", "refund-1")
    assert outcome["effects"]["decision"] == "credited"
    assert outcome["effects"]["credited"] == "0.0300"
    assert (
        "counting late-buy (plan.purchased at 2026-11-02T10:00:00Z)"
        in (outcome["effects"]["evidence"])
    )
    # 10.00 - 0.0300 (the call) + 0.0300 (its credit); the plan fee went to the card (I3)
    assert ledger.balance(ACC) == "10.0000"
    ledger.assert_replay_matches()


def test_f1_data_rated_payg_before_a_late_package_subscription_is_credited() -> None:
    """A prepaid 1 GB package subscribed on 4 November reached the ledger after 100 MB used on
    the 5th, rated PAYG: the package covered it (T2), so the dispute credits it all."""
    ledger = setup("prepaid")
    at = "2026-11-05T10:00:00Z"
    feed_ok(ledger, event("data.used", ACC, at, msisdn=NUM, bytes=100_000_000, roaming=False))
    at = "2026-11-04T10:00:00Z"
    feed_ok(ledger, event("package.subscribed", ACC, at, msisdn=NUM, package_id="data-1gb"))
    [charge] = [c for c in ledger.charges(ACC) if c["kind"] == "payg_data"]
    outcome = dispute(ledger, charge["charge_id"], "refund-1")
    # 100,000,000 bytes / 1,000,000 x 0.0500 = 5.0000 PAYG; from the package: nothing.
    assert (outcome["effects"]["decision"], outcome["effects"]["credited"]) == (
        "credited",
        "5.0000",
    )
    assert (
        "(package.subscribed at 2026-11-04T10:00:00Z), dated before it"
        in (outcome["effects"]["evidence"])
    )
    ledger.assert_replay_matches()


def test_f1_a_call_after_a_port_out_completion_logged_late_is_credited_in_full() -> None:
    """The carrier's completion of the port-out reached the ledger after a call dated after it:
    in date order the call would have been refused (the number had left, T2), so none of its
    charge was the account's to pay. The evidence says why."""
    ledger = setup("prepaid")
    feed_ok(
        ledger,
        event("port_out.requested", ACC, "2026-11-06T10:00:00Z", event_id="port", msisdn=NUM2),
        call("after-port", "2026-11-08T10:00:00Z", msisdn=NUM2, call_id="c2"),
        event("port_out.completed", ACC, "2026-11-07T10:00:00Z", event_id="done", msisdn=NUM2),
    )
    outcome = dispute(ledger, "after-port:payg", "refund-1")
    decision = outcome["effects"]
    assert (decision["decision"], decision["credited"]) == ("credited", "0.0300")
    assert decision["evidence"] == (
        "re-rated under catalog 2026-01-a, counting done (port_out.completed at "
        "2026-11-07T10:00:00Z), dated before it and logged after it: 0.0000 (number "
        f"{NUM2} was ported out of account {ACC} at 2026-11-07T10:00:00Z: only its usage "
        "and surcharges dated before that are still rated) instead of 0.0300 under 2026-01-a"
    )
    ledger.assert_replay_matches()


def test_f1_a_late_fact_the_rules_refuse_where_it_now_falls_is_not_counted() -> None:
    """A call dated before the disputed one on a number added after it (its record lagged the
    number's addition, both logged after the disputed call): moved before the disputed call,
    its number is not on the account yet, so it is refused there and changes nothing. Found
    by the property tests: its stored outcome was recorded instead, on a number the account
    did not hold, and the dispute failed with an internal error (KeyError)."""
    ledger = setup("prepaid")
    third = "+14155550103"
    feed_ok(
        ledger,
        call("disputed", "2026-11-05T10:00:00Z"),
        event("number.added", ACC, "2026-11-06T10:00:00Z", msisdn=third),
        call("lagging", "2026-11-04T10:00:00Z", msisdn=third, call_id="c3"),
    )
    outcome = dispute(ledger, "disputed:payg", "refund-1")
    assert_denied(outcome, "one_time_and_recurring", "0.0300")
    # Nothing logged late was counted, so none is named.
    assert outcome["effects"]["evidence"] == "re-rated under catalog 2026-01-a: 0.0300, as charged"


def test_f1_a_fact_logged_late_and_dated_after_the_charge_does_not_change_its_rating() -> None:
    """Only what was true when the charged event occurred counts: a purchase logged after the
    call and dated after it too leaves the call PAYG, and the dispute is denied."""
    ledger = setup("prepaid")
    feed_ok(ledger, call("early-call", "2026-11-05T10:00:00Z"))
    feed_ok(ledger, purchase("later-buy", at="2026-11-06T10:00:00Z"))
    outcome = dispute(ledger, "early-call:payg", "refund-1")
    assert_denied(outcome, "one_time_and_recurring", "0.0300")
    assert "counting" not in outcome["effects"]["evidence"]


def test_f1_a_call_logged_late_that_took_the_minutes_first_leaves_the_charge_as_it_is() -> None:
    """Facts learned late count whichever way they cut: after the late switch-on renewed
    December, a call of 1 December reached the ledger and took all 500 of its minutes. The
    call of 2 December, rated PAYG, would have found none left: denied, as charged."""
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        *switched_back_on_late(),
        call("long", "2026-12-01T12:00:00Z", seconds=500 * 60, call_id="long"),
    )
    assert "long:payg" not in {c["charge_id"] for c in ledger.charges(ACC)}  # on the minutes
    outcome = dispute(ledger, "meanwhile:payg", "refund-1", at="2026-12-05T12:00:00Z")
    assert_denied(outcome, "one_time_and_recurring", "0.0300")
    assert outcome["effects"]["evidence"] == (
        "re-rated under catalog 2026-01-a, counting switch-on (plan.autorenew_changed at "
        "2026-11-20T10:00:00Z), long (call.completed at 2026-12-01T12:00:00Z), dated before "
        "it and logged after it: 0.0300, as charged"
    )


def test_f1_a_late_purchase_counts_its_minutes_once_across_the_calls_it_covered() -> None:
    """Two calls of 400 minutes each were rated PAYG; then na-500, bought before both, reached
    the ledger. In date order the first call takes 400 of the 500 minutes and the second the
    100 left: the disputes credit 6.00 and 1.50, whichever is asked first. Each was credited
    6.00 before, the late purchase placed after every call but the disputed one: 800 minutes
    credited from a plan of 500."""
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        call("first", "2026-11-10T10:00:00Z", seconds=400 * 60, call_id="c1"),
        call("second", "2026-11-11T10:00:00Z", seconds=400 * 60, call_id="c2"),
        purchase("late-buy", at="2026-11-05T10:00:00Z"),
    )
    # 400 min x 0.0150 = 6.0000 each, PAYG
    second = dispute(ledger, "second:payg", "refund-2")["effects"]
    # 100 min on the plan, 300 min x 0.0150 = 4.5000 PAYG: 6.0000 - 4.5000 = 1.5000
    assert (second["decision"], second["rerated"], second["credited"]) == (
        "credited",
        "4.5000",
        "1.5000",
    )
    first = dispute(ledger, "first:payg", "refund-1")["effects"]
    assert (first["decision"], first["rerated"], first["credited"]) == (
        "credited",
        "0.0000",
        "6.0000",
    )
    ledger.assert_replay_matches()


def test_f1_a_late_package_counts_its_data_once_across_the_records_it_covered() -> None:
    """Two records of 800 MB each were rated PAYG; then data-1gb, subscribed before both,
    reached the ledger: the first record is covered in full (40.00), the second for the
    200 MB left (600 MB x 0.05 = 30.00 still PAYG, 10.00 credited). Both were credited 40.00
    before: 1.6 GB from a 1 GB package."""
    ledger = setup("prepaid", recharge="100.00")
    mb = 1_000_000
    for event_id, at in (("d1", "2026-11-10T10:00:00Z"), ("d2", "2026-11-11T10:00:00Z")):
        feed_ok(
            ledger,
            event(
                "data.used", ACC, at, event_id=event_id, msisdn=NUM, bytes=800 * mb, roaming=False
            ),
        )
    at = "2026-11-04T10:00:00Z"
    feed_ok(ledger, event("package.subscribed", ACC, at, msisdn=NUM, package_id="data-1gb"))
    second = dispute(ledger, "d2:payg", "refund-2")["effects"]
    assert (second["rerated"], second["credited"]) == ("30.0000", "10.0000")
    first = dispute(ledger, "d1:payg", "refund-1")["effects"]
    assert (first["rerated"], first["credited"]) == ("0.0000", "40.0000")
    ledger.assert_replay_matches()


# ---------------------------------------------------------------------------------------------
# F1: everything else is denied with the clause that applies


@pytest.mark.parametrize("clause", sorted(CLAUSES))
def test_f1_every_policy_clause_is_quoted_verbatim_from_seed_001(clause: str) -> None:
    """F1: a denial reads the customer the policy the operator published, character for
    character (seed 001 separates some sentences with a no-break space, U+00A0)."""
    assert CLAUSES[clause] in refund_policy()


def month_of_charges(mode: str) -> Ledger:
    """One charge of every kind: plan fee, package fee, PAYG call, PAYG data, roaming,
    port-out fee, carrier surcharge and TCR fee."""
    ledger = setup(mode, recharge="50.00")
    feed_ok(
        ledger,
        purchase("buy"),
        event(
            "package.subscribed",
            ACC,
            "2026-11-02T10:00:00Z",
            event_id="pkg",
            msisdn=NUM,
            package_id="data-1gb",
        ),
        call("call", "2026-11-03T10:00:00Z", to=GB_LANDLINE),
        event(
            "data.used",
            ACC,
            "2026-11-03T11:00:00Z",
            event_id="data",
            msisdn=NUM2,
            bytes=1_000_000,
            roaming=False,
        ),
        event(
            "data.used",
            ACC,
            "2026-11-03T12:00:00Z",
            event_id="roam",
            msisdn=NUM2,
            bytes=1_000_000,
            roaming=True,
            country="FR",
        ),
        event("port_out.requested", ACC, "2026-11-04T10:00:00Z", event_id="port", msisdn=NUM2),
        event(
            "surcharge.applied",
            ACC,
            "2026-11-04T11:00:00Z",
            event_id="sur",
            amount="2.50",
            kind="carrier",
            description="Carrier access surcharge",
        ),
        event(
            "surcharge.applied",
            ACC,
            "2026-11-04T12:00:00Z",
            event_id="tcr",
            amount="4.00",
            kind="tcr_registration",
            description="TCR brand registration",
        ),
    )
    return ledger


# (charge id, kind, clause, amount prepaid, amount postpaid)
DENIED = [
    # na-500 9.99 (V2)
    ("buy:fee", "plan_fee", "prepaid_plans", "9.9900", "9.9900"),
    # data-1gb: prepaid 5.00 (D7); postpaid 5.00 x 29/30 = 4.8333 (D4)
    ("pkg:fee", "package_fee", "one_time_and_recurring", "5.0000", "4.8333"),
    # 95 s to +44 -> 2 min x 0.0200
    ("call:payg", "payg_call", "one_time_and_recurring", "0.0400", "0.0400"),
    # 1 MB x 0.0500
    ("data:payg", "payg_data", "one_time_and_recurring", "0.0500", "0.0500"),
    # 1 MB x 1.5000 (FR)
    ("roam:roaming", "roaming_data", "one_time_and_recurring", "1.5000", "1.5000"),
    ("port:port_out_fee", "port_out_fee", "port_out", "15.0000", "15.0000"),
    ("sur:surcharge", "carrier_surcharge", "surcharges", "2.5000", "2.5000"),
    ("tcr:surcharge", "tcr_registration_fee", "tcr_registration", "4.0000", "4.0000"),
]


@pytest.mark.parametrize("mode", ["prepaid", "postpaid"])
@pytest.mark.parametrize(
    ("charge_id", "kind", "clause", "prepaid_amount", "postpaid_amount"),
    DENIED,
    ids=[row[1] for row in DENIED],
)
def test_f1_charge_rated_as_charged_is_denied_citing_its_clause(
    mode: str,
    charge_id: str,
    kind: str,
    clause: str,
    prepaid_amount: str,
    postpaid_amount: str,
) -> None:
    """F1, S1, P2: re-rated to what was charged, each kind is denied under its own clause of
    the refund policy, quoted verbatim; nothing is credited and no invoice line moves."""
    ledger = month_of_charges(mode)
    amount = prepaid_amount if mode == "prepaid" else postpaid_amount
    charge = charge_of(ledger, charge_id)
    assert (charge["kind"], charge["amount"]) == (kind, amount)
    balance = ledger.balance(ACC)
    invoice = ledger.invoice(ACC, "2026-11")
    outcome = dispute(ledger, charge_id, "refund-1", reason="I want my money back")
    if (kind, mode) == ("plan_fee", "postpaid"):
        clause = "cancel_or_downgrade"  # the prepaid-plans clause is not a postpaid customer's
    assert_denied(outcome, clause, amount)
    assert ledger.balance(ACC) == balance
    after = ledger.invoice(ACC, "2026-11")
    assert after is not None and invoice is not None
    assert after["lines"] == invoice["lines"]
    assert after["total"] == invoice["total"]


def test_f1_prepaid_balance_of_the_month_of_charges() -> None:
    """I3: the figures the denial tests start from: 50.00 - package 5.00 - call 0.04 - data
    0.05 - roaming 1.50 = 43.41 (plan fee, port-out fee and surcharges go to the card)."""
    assert month_of_charges("prepaid").balance(ACC) == "43.4100"


def test_f1_any_charge_on_a_blocked_account_is_denied_under_aup_blocks() -> None:
    """F1, B2: charges made while the account is blocked (usage is still charged) are denied
    under the acceptable-use clause, even a plan fee; after the unblock the kind's clause
    applies again."""
    ledger = setup(recharge="20.00")
    feed_ok(ledger, event("account.blocked", ACC, "2026-11-02T08:00:00Z", reason="AUP 4.2"))
    feed_ok(ledger, purchase("buy", at="2026-11-02T10:00:00Z"))
    feed_ok(ledger, call("call-a", "2026-11-03T10:00:00Z", to=GB_LANDLINE))
    feed_ok(ledger, event("account.unblocked", ACC, "2026-11-04T08:00:00Z", reason="appeal"))
    feed_ok(ledger, call("call-b", "2026-11-05T10:00:00Z", to=GB_LANDLINE, call_id="call-2"))
    assert_denied(dispute(ledger, "call-a:payg", "refund-1"), "aup_blocks", "0.0400")
    assert_denied(dispute(ledger, "buy:fee", "refund-2"), "aup_blocks", "9.9900")
    assert_denied(dispute(ledger, "call-b:payg", "refund-3"), "one_time_and_recurring", "0.0400")
    # 20.00 - 0.0400 - 0.0400: nothing credited
    assert ledger.balance(ACC) == "19.9200"


def test_b2_no_credit_for_a_charge_made_while_blocked_not_a_duplicate_nor_a_correction() -> None:
    """B2, F1: "no refunds" for a blocked account: a duplicated call record and a charge a
    correction prices lower, both made while blocked, are denied under the acceptable-use
    clause; the same pair after the unblock is credited."""
    ledger = setup()
    feed_ok(ledger, event("account.blocked", ACC, "2026-11-05T08:00:00Z", reason="AUP 4.2"))
    feed_ok(ledger, call("call-a", "2026-11-05T10:00:00Z"))
    feed_ok(ledger, call("call-b", "2026-11-05T10:02:00Z"))  # call-a's record again
    feed_ok(ledger, event("account.unblocked", ACC, "2026-11-06T08:00:00Z", reason="appeal"))
    feed_ok(ledger, call("call-c", "2026-11-07T10:00:00Z", call_id="call-2"))
    feed_ok(ledger, call("call-d", "2026-11-07T10:02:00Z", call_id="call-2"))
    feed_ok(ledger, correcting_catalog(rates={"+1": "0.0100"}))
    for charge_id, refund_id in (("call-b:payg", "refund-1"), ("call-a:payg", "refund-2")):
        outcome = dispute(ledger, charge_id, refund_id)
        assert_denied(outcome, "aup_blocks", "0.0300")
        assert "blocked under the acceptable-use policy" in outcome["effects"]["evidence"]
    credited = [
        dispute(ledger, charge_id, refund_id)["effects"]["credited"]
        for charge_id, refund_id in (("call-d:payg", "refund-3"), ("call-c:payg", "refund-4"))
    ]
    assert credited == ["0.0300", "0.0100"]  # the duplicate in full; the correction's difference


# ---------------------------------------------------------------------------------------------
# F2: store purchases are refunded by the store


@pytest.mark.parametrize("channel", ["app_store", "google_play"])
def test_f2_plan_bought_through_a_store_is_referred_to_the_store(channel: str) -> None:
    """F2: the decision refers the customer to the store and credits nothing."""
    ledger = setup()
    feed_ok(ledger, purchase("buy", channel=channel))
    outcome = dispute(ledger, "buy:fee", "refund-1", reason="did not want it")
    decision = outcome["effects"]
    assert outcome["rule"] == "F2"
    assert decision["decision"] == "refer_to_store"
    assert decision["clause"] == "store_purchases"
    assert decision["policy"] in refund_policy()
    assert channel in decision["evidence"]
    assert (decision["charged"], decision["credited"]) == ("9.9900", "0.0000")
    assert outcome["charges"] == []
    assert ledger.balance(ACC) == "10.0000"
    assert lines_of(ledger, "2026-11", "credits") == []


@pytest.mark.parametrize("mode", ["prepaid", "postpaid"])
def test_f2_renewal_fee_of_a_store_plan_is_referred_to_the_store(mode: str) -> None:
    """F2, V6: the fee charged at renewal belongs to the store purchase too."""
    ledger = setup(mode)
    feed_ok(ledger, purchase("buy", channel="app_store"))
    feed_ok(
        ledger,
        event("cycle.started", ACC, "2026-12-01T00:00:00Z", event_id="cycle-12", period="2026-12"),
    )
    renewal = charge_of(ledger, f"cycle-12:plan_fee:{NUM}")
    assert (renewal["kind"], renewal["rule"], renewal["amount"]) == ("plan_fee", "V6", "9.9900")
    outcome = dispute(ledger, renewal["charge_id"], "refund-1", at="2026-12-03T10:00:00Z")
    assert outcome["rule"] == "F2"
    assert outcome["effects"]["decision"] == "refer_to_store"
    assert outcome["effects"]["clause"] == "store_purchases"
    assert outcome["effects"]["credited"] == "0.0000"
    assert outcome["charges"] == []
    assert lines_of(ledger, "2026-12", "credits") == []


def test_f2_portal_plan_is_denied_under_prepaid_plans() -> None:
    """F2, F1: a plan bought in the portal is not a store purchase: its purchase and renewal
    fees are denied under the prepaid-plans clause."""
    ledger = setup()
    feed_ok(ledger, purchase("buy", channel="portal"))
    feed_ok(
        ledger,
        event("cycle.started", ACC, "2026-12-01T00:00:00Z", event_id="cycle-12", period="2026-12"),
    )
    assert_denied(dispute(ledger, "buy:fee", "refund-1"), "prepaid_plans", "9.9900")
    renewal = f"cycle-12:plan_fee:{NUM}"
    denied = dispute(ledger, renewal, "refund-2", at="2026-12-03T10:00:00Z")
    assert_denied(denied, "prepaid_plans", "9.9900")


NEW = "+14155550177"  # the new number a port-in gives at once (P1)
PORTED = "+13125550199"  # the number being ported in


def subscribed(event_id: str, msisdn: str = NUM, at: str = "2026-11-02T11:00:00Z") -> Any:
    return event(
        "package.subscribed", ACC, at, event_id=event_id, msisdn=msisdn, package_id="data-1gb"
    )


def port_in(type_: str, at: str, event_id: str) -> dict[str, Any]:
    """A port-in's request, completion or failure: PORTED in place of NEW (P1)."""
    return event(type_, ACC, at, event_id=event_id, msisdn=NEW, ported_msisdn=PORTED)


def port_in_with_a_plan() -> list[dict[str, Any]]:
    """A port-in requested on 2 November, and na-500 bought on its new number ("buy")."""
    bought = event(
        "plan.purchased",
        ACC,
        "2026-11-02T10:00:00Z",
        event_id="buy",
        msisdn=NEW,
        plan_id="na-500",
        channel="portal",
    )
    return [port_in("port_in.requested", "2026-11-02T09:00:00Z", "port-in"), bought]


@pytest.mark.parametrize("mode", ["prepaid", "postpaid"])
def test_f1_p1_fees_on_the_new_number_of_a_failed_port_in_cite_the_port_in_clause(
    mode: str,
) -> None:
    """F1, P1: the plan and package fees of the subscription a port-in set up are not refunded
    when the port fails: the denial cites the port-in clause, not the generic one."""
    ledger = setup(mode)
    feed_ok(
        ledger,
        *port_in_with_a_plan(),
        subscribed("pkg", NEW),
        port_in("port_in.failed", "2026-11-09T09:00:00Z", "port-failed"),
    )
    # data-1gb: prepaid 5.00 (D7); postpaid 5.00 x 29/30 = 4.8333 (D4)
    package_fee = "5.0000" if mode == "prepaid" else "4.8333"
    denied = dispute(ledger, "buy:fee", "refund-1", reason="port-in failed, refund my plan")
    assert_denied(denied, "port_in_failure", "9.9900")
    assert "can't be ported" in denied["effects"]["policy"]
    assert_denied(dispute(ledger, "pkg:fee", "refund-2"), "port_in_failure", package_fee)


@pytest.mark.parametrize("mode", ["prepaid", "postpaid"])
def test_f1_p2_fees_of_a_number_ported_out_since_cite_the_remaining_term_clause(mode: str) -> None:
    """F1, P2: a plan or package fee of a number that left is not refunded for the rest of its
    term: the denial cites the port-out clause ("no partial refunds for the remaining
    period"). A fee of a number still on the account cites its kind's clause."""
    ledger = setup(mode)
    feed_ok(
        ledger,
        purchase("buy"),
        subscribed("pkg"),
        subscribed("pkg-2", NUM2),
        event("port_out.completed", ACC, "2026-11-12T10:00:00Z", event_id="gone", msisdn=NUM),
    )
    package_fee = "5.0000" if mode == "prepaid" else "4.8333"
    denied = dispute(ledger, "buy:fee", "refund-1", reason="ported out, refund remaining term")
    assert_denied(denied, "port_out", "9.9900")
    assert "no partial refunds for the remaining period" in denied["effects"]["policy"]
    assert_denied(dispute(ledger, "pkg:fee", "refund-2"), "port_out", package_fee)
    other = dispute(ledger, "pkg-2:fee", "refund-3")
    assert_denied(other, "one_time_and_recurring", package_fee)


def test_f1_p1_p2_a_fee_on_a_port_ins_temporary_number_follows_it_to_the_ported_one() -> None:
    """The fee was charged on the temporary number; the ported number that replaced it was
    ported out since: the same line left, and the denial cites the port-out clause."""
    ledger = setup("prepaid")
    feed_ok(
        ledger,
        *port_in_with_a_plan(),
        port_in("port_in.completed", "2026-11-05T09:00:00Z", "port-done"),
        event("port_out.completed", ACC, "2026-11-12T10:00:00Z", event_id="gone", msisdn=PORTED),
    )
    assert_denied(dispute(ledger, "buy:fee", "refund-1"), "port_out", "9.9900")


@pytest.mark.parametrize(
    "then",
    [
        {"type": "package.changed", "package_id": "data-5gb"},
        {"type": "package.unsubscribed"},
    ],
    ids=["changed", "unsubscribed"],
)
def test_f1_a_package_fee_after_its_change_or_cancel_cites_the_cancel_or_downgrade_clause(
    then: dict[str, str],
) -> None:
    """F1: a package the customer changed or cancelled after its fee keeps the fee: "you will
    not be issued a refund for the most recently ... charged monthly or one-time fees"."""
    ledger = setup("prepaid", recharge="30.00")
    fields = {k: v for k, v in then.items() if k != "type"}
    feed_ok(
        ledger,
        subscribed("pkg"),
        event(then["type"], ACC, "2026-11-10T10:00:00Z", event_id="then", msisdn=NUM, **fields),
    )
    assert_denied(dispute(ledger, "pkg:fee", "refund-1"), "cancel_or_downgrade", "5.0000")


def test_f1_a_plan_fee_keeps_its_own_clause_when_the_numbers_package_changed_since() -> None:
    """The package's change is not the plan's: its fee is denied under the prepaid-plans
    clause, as with no change."""
    ledger = setup("prepaid", recharge="30.00")
    feed_ok(
        ledger,
        purchase("buy"),
        subscribed("pkg"),
        event("package.unsubscribed", ACC, "2026-11-10T10:00:00Z", event_id="then", msisdn=NUM),
    )
    assert_denied(dispute(ledger, "buy:fee", "refund-1"), "prepaid_plans", "9.9900")


# ---------------------------------------------------------------------------------------------
# The decision is an event


def test_f1_the_decision_is_an_event_in_the_account_history() -> None:
    """F1: the refund request and its decision are in the history like any other event."""
    ledger = duplicated_call()
    dispute(ledger, "call-b:payg", "refund-1", reason="charged twice")
    dispute(ledger, "call-a:payg", "refund-2", reason="charged at all")
    entries = [e for e in ledger.history(ACC) if e["type"] == "refund.requested"]
    assert [(e["event_id"], e["status"], e["rule"]) for e in entries] == [
        ("refund-1", "applied", "F1"),
        ("refund-2", "applied", "F1"),
    ]
    assert entries[0]["summary"] == "charge_id=call-b:payg reason=charged twice"
    assert [c["charge_id"] for c in entries[0]["charges"]] == ["refund-1:refund"]
    assert entries[0]["balance_delta"] == "0.0300"
    assert entries[1]["charges"] == []


def test_f1_refund_for_an_unknown_charge_is_dead_lettered() -> None:
    """F1, G2: a request naming no charge of the account is dead-lettered, naming the charge."""
    ledger = duplicated_call()
    counts = ledger.feed(refund("call-z:payg", "refund-1"))
    assert (counts.applied, len(counts.dead_letters)) == (0, 1)
    assert ledger.reasons() == [f"unknown charge call-z:payg on account {ACC}"]
    assert [e for e in ledger.history(ACC) if e["type"] == "refund.requested"] == []
    assert ledger.balance(ACC) == "9.9400"


def test_f1_refund_requested_before_its_charge_happened_is_dead_lettered() -> None:
    """F1, G2: a request dated before the event that made the charge is an upstream error: it
    is dead-lettered, naming both instants, and credits nothing. One at the same instant is
    decided."""
    ledger = duplicated_call()
    counts = ledger.feed(refund("call-b:payg", "refund-1", at="2026-11-05T10:01:59Z"))
    assert (counts.applied, len(counts.dead_letters)) == (0, 1)
    assert ledger.reasons() == [
        "refund request at 2026-11-05T10:01:59Z is before charge call-b:payg "
        "(its call.completed occurred at 2026-11-05T10:02:00Z)"
    ]
    assert ledger.balance(ACC) == "9.9400"
    feed_ok(ledger, refund("call-b:payg", "refund-2", at="2026-11-05T10:02:00Z"))
    assert outcome_of(ledger, "refund-2")["effects"]["decision"] == "credited"


def test_f1_a_refund_of_a_charge_in_the_same_batch_is_decided_as_in_a_batch_of_its_own() -> None:
    """F1, T2: the decision does not depend on where a consumer's batches happen to end. A
    request for a charge recorded earlier in the same batch (not yet stored) finds it, the
    record of the call it duplicates and the account as it was before it, exactly as when
    every record arrives on its own."""
    records = [
        call("call-a", "2026-11-05T10:00:00Z"),
        call("call-b", "2026-11-05T10:02:00Z"),  # the same call recorded again
        purchase("buy-1", channel="app_store"),
        refund("call-b:payg", "refund-1"),  # duplicate: credited in full
        refund("call-b:payg", "refund-2"),  # already credited: denied
        refund("buy-1:fee", "refund-3"),  # bought through the app store: referred
    ]
    one_by_one, together = setup(), setup()
    one_by_one.feed_each(records)
    feed_ok(together, *records)

    assert together.reasons() == []
    decisions = {}
    for refund_id in ("refund-1", "refund-2", "refund-3"):
        outcome = outcome_of(together, refund_id)
        assert outcome == outcome_of(one_by_one, refund_id)
        decisions[refund_id] = outcome["effects"]["decision"]
    assert decisions == {"refund-1": "credited", "refund-2": "denied", "refund-3": "refer_to_store"}
    assert "call-a:payg" in outcome_of(together, "refund-1")["effects"]["evidence"]
    assert together.balance(ACC) == one_by_one.balance(ACC)


def test_f1_refund_naming_another_accounts_charge_is_dead_lettered() -> None:
    """F1, G2: a charge id is looked up on the requesting account only."""
    ledger = duplicated_call()
    other = "ACC-OTHER"
    feed_ok(
        ledger,
        opened(other, "prepaid"),
        event("number.added", other, "2026-11-01T09:30:00Z", msisdn="+14155550999"),
    )
    request = event("refund.requested", other, REQUESTED_AT, charge_id="call-b:payg", reason="x")
    counts = ledger.feed(request)
    assert len(counts.dead_letters) == 1
    assert ledger.reasons() == [f"unknown charge call-b:payg on account {other}"]
    assert ledger.balance(ACC) == "9.9400"


def test_g1_the_same_refund_event_again_is_a_duplicate() -> None:
    """G1, F1: the same refund event id again is ignored and counted, never credited twice."""
    ledger = duplicated_call()
    request = refund("call-b:payg", "refund-1")
    feed_ok(ledger, request)
    counts = ledger.feed(request)
    assert (counts.applied, counts.duplicates, len(counts.dead_letters)) == (0, 1, 0)
    assert ledger.balance(ACC) == "9.9700"
    assert len([e for e in ledger.history(ACC) if e["type"] == "refund.requested"]) == 1


def test_r1_a_replay_of_the_log_shows_the_credit() -> None:
    """R1, F1: the decision is in the log, so a fresh fold of the stored events gives the
    same views, credit included."""
    ledger = duplicated_call()
    dispute(ledger, "call-b:payg", "refund-1")
    dispute(ledger, "call-a:payg", "refund-2")
    replayed = view_documents(fold(ledger.app.stored_events()))
    assert replayed == ledger.all_views()
    assert replayed[f"balance/{ACC}"]["balance"] == "9.9700"


# ---------------------------------------------------------------------------------------------
# CLI: ledger explain (R4) and ledger dispute (F1, F2) on a SQLite store


def cli_month(tmp_path: Path, store: str) -> None:
    """A postpaid month: NUM has na-500 (9.99) and data-5gb (15.00 x 29/30 = 14.5000); NUM2 has
    no plan: one 95 s call to +1 recorded twice (2 x 0.0300); a carrier surcharge 2.50."""
    ingest_events(
        tmp_path,
        store,
        catalog_published(),
        opened(ACC, "postpaid"),
        event("number.added", ACC, "2026-11-01T09:30:00Z", msisdn=NUM),
        event("number.added", ACC, "2026-11-01T09:31:00Z", msisdn=NUM2),
        purchase("buy"),
        event(
            "package.subscribed",
            ACC,
            "2026-11-02T10:00:00Z",
            event_id="pkg",
            msisdn=NUM,
            package_id="data-5gb",
        ),
        call("call-a", "2026-11-05T10:00:00Z", msisdn=NUM2),
        call("call-b", "2026-11-05T10:02:00Z", msisdn=NUM2),
        event(
            "surcharge.applied",
            ACC,
            "2026-11-06T10:00:00Z",
            event_id="sur",
            amount="2.50",
            kind="carrier",
            description="Carrier access surcharge",
        ),
    )


def explain_lines(store: str, charge_id: str) -> list[str]:
    lines: list[str] = run("--store", store, "explain", ACC, charge_id).stdout.splitlines()
    return lines


EXPLAINED = [
    (
        "call-a:payg",
        [
            "charge call-a:payg: 0.0300 (payg_call, paid by invoice), billed on 2026-11",
            "source event: call-a call.completed at 2026-11-05T10:00:00Z",
            "rule: V5",
            f"catalog version: {CATALOG}",
            "rate: 0.0150/min, 60 s increments, prefix +1 (US)",
            # 95 s -> 120 s billed = 2 min x 0.0150
            "arithmetic: 95 s PAYG (no plan minutes for US in 2026-11) -> 120 s billed = "
            "120/60 min x 0.0150 = 0.0300",
        ],
    ),
    (
        "buy:fee",
        [
            "charge buy:fee: 9.9900 (plan_fee, paid by invoice), billed on 2026-11",
            "source event: buy plan.purchased at 2026-11-02T10:00:00Z",
            "rule: V2",
            f"catalog version: {CATALOG}",
            "rate: 9.99 per month",
            "arithmetic: My North America 500 (na-500) monthly fee 9.99, charged at purchase; "
            "no proration",
        ],
    ),
    (
        "pkg:fee",
        [
            "charge pkg:fee: 14.5000 (package_fee, paid by invoice), billed on 2026-11",
            "source event: pkg package.subscribed at 2026-11-02T10:00:00Z",
            "rule: D4",
            f"catalog version: {CATALOG}",
            "rate: 15.00 per month",
            # 2 Nov to 30 Nov: 29 of 30 days
            "arithmetic: 5 GB: 15.00 x 29/30 days left = 14.5000; data 5000000000 x 29/30 = "
            "4833333333 bytes (subscription)",
        ],
    ),
    (
        "sur:surcharge",
        [
            "charge sur:surcharge: 2.5000 (carrier_surcharge, paid by invoice), billed on 2026-11",
            "source event: sur surcharge.applied at 2026-11-06T10:00:00Z",
            "rule: S1",
            f"catalog version: {CATALOG}",
            "rate: as given by the carrier",
            "arithmetic: Carrier access surcharge: 2.50 as given, no proration; not refundable",
        ],
    ),
]


@pytest.mark.parametrize(
    ("charge_id", "expected"), EXPLAINED, ids=["payg_call", "plan_fee", "package_fee", "surcharge"]
)
def test_r4_explain_shows_source_event_rule_catalog_rate_and_arithmetic(
    tmp_path: Path, sqlite_url: str, charge_id: str, expected: list[str]
) -> None:
    """R4: for any charge, the source event, the rule id, the catalog version and rate, and
    the arithmetic."""
    cli_month(tmp_path, sqlite_url)
    lines = explain_lines(sqlite_url, charge_id)
    assert len(lines) == 6, lines
    assert lines[0] == expected[0]
    assert lines[1].startswith(expected[1] + " (position "), lines[1]
    assert lines[2:] == expected[2:]


def test_r4_explain_json_carries_the_charge_and_its_source_event(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R4, SPEC 12: --json gives the stored charge and the event exactly as it came in."""
    cli_month(tmp_path, sqlite_url)
    doc = run_json("--store", sqlite_url, "explain", ACC, "call-b:payg")
    assert doc["account_id"] == ACC
    charge = doc["charge"]
    assert charge["charge_id"] == "call-b:payg"
    assert (charge["kind"], charge["amount"], charge["rule"]) == ("payg_call", "0.0300", "V5")
    assert (charge["catalog_version"], charge["payer"]) == (CATALOG, "invoice")
    assert charge["rate"] == "0.0150/min, 60 s increments, prefix +1 (US)"
    assert charge["arithmetic"].endswith("120/60 min x 0.0150 = 0.0300")
    source = doc["source_event"]
    assert (source["event_id"], source["type"]) == ("call-b", "call.completed")
    assert (source["msisdn"], source["destination"]) == (NUM2, US)
    assert (source["duration_seconds"], source["call_id"]) == (95, "call-1")


def test_r4_explain_unknown_charge_or_account_is_one_line_error(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R4, SPEC 12: one clear line on stderr, exit 1, no traceback."""
    cli_month(tmp_path, sqlite_url)
    unknown_charge = run("--store", sqlite_url, "explain", ACC, "nope:payg", expect=1)
    assert unknown_charge.stdout == ""
    assert unknown_charge.stderr.splitlines() == [
        f"ledger: error: no charge nope:payg on account {ACC}"
    ]
    unknown_account = run("--store", sqlite_url, "explain", "ACC-404", "call-a:payg", expect=1)
    assert unknown_account.stdout == ""
    assert unknown_account.stderr.splitlines() == ["ledger: error: unknown account ACC-404"]


def cli_dispute(store: str, charge_id: str, event_id: str, *extra: str, expect: int = 0) -> Any:
    return run(
        "--store",
        store,
        *extra,
        "dispute",
        ACC,
        charge_id,
        "--reason",
        "charged twice for one call",
        "--event-id",
        event_id,
        "--at",
        REQUESTED_AT,
        expect=expect,
    )


def test_f1_cli_dispute_denial_prints_the_decision_and_the_policy(
    tmp_path: Path, sqlite_url: str
) -> None:
    """F1, SPEC 12: a denial names the charge, the evidence, the clause and its policy text."""
    cli_month(tmp_path, sqlite_url)
    result = cli_dispute(sqlite_url, "call-a:payg", "d-1")
    policy = (
        "There are no refunds for one-time or recurring charges. These includes usage credits, "
        "feature plans, port fees etc."
    )
    assert policy in refund_policy()
    assert result.stdout.splitlines() == [
        f"denied: charge call-a:payg (0.0300); re-rated under catalog {CATALOG}: 0.0300, "
        "as charged",
        f"policy (one_time_and_recurring): {policy}",
    ]
    doc = json.loads(cli_dispute(sqlite_url, "buy:fee", "d-2", "--json").stdout)
    assert (doc["account_id"], doc["event_id"], doc["charge_id"]) == (ACC, "d-2", "buy:fee")
    assert (doc["decision"], doc["clause"]) == ("denied", "cancel_or_downgrade")  # postpaid
    assert doc["policy"] in refund_policy()
    assert (doc["charged"], doc["rerated"], doc["credited"]) == ("9.9900", "9.9900", "0.0000")
    invoice = run_json("--store", sqlite_url, "invoice", ACC)
    assert [line["kind"] for line in invoice["lines"] if line["kind"] == "credits"] == []


def test_f1_cli_dispute_credit_shows_on_the_invoice(tmp_path: Path, sqlite_url: str) -> None:
    """F1, I1: the duplicate is credited; `ledger invoice` then shows the credit line, and
    `ledger explain` explains the credit like any charge."""
    cli_month(tmp_path, sqlite_url)
    human = cli_dispute(sqlite_url, "call-b:payg", "d-1").stdout.splitlines()
    assert human == [
        "credited: charge call-b:payg (0.0300), credited 0.0300; charge call-b:payg duplicates "
        "call-a:payg for the same call (call_id call-1)"
    ]
    # the same charge again, as JSON: already credited, denied
    doc = json.loads(cli_dispute(sqlite_url, "call-b:payg", "d-2", "--json").stdout)
    assert (doc["decision"], doc["clause"], doc["credited"]) == (
        "denied",
        "one_time_and_recurring",
        "0.0000",
    )
    assert "already credited by d-1" in doc["evidence"]

    invoice = run_json("--store", sqlite_url, "invoice", ACC)
    assert invoice["period"] == "2026-11"
    credits = [line for line in invoice["lines"] if line["kind"] == "credits"]
    assert [(c["amount"], c["charge_ids"]) for c in credits] == [("-0.03", ["d-1:refund"])]
    # plan 9.99 + package 14.50 + PAYG calls 0.06 + surcharge 2.50 + credit -0.03
    assert invoice["total"] == "27.02"
    text = run("--store", sqlite_url, "invoice", ACC).stdout
    [credit_row] = [row for row in text.splitlines() if row.startswith("Credits")]
    assert "refund of call-b:payg (charged twice for one call)" in credit_row
    assert "-0.03" in credit_row
    assert "total 27.02 USD" in text

    explained = explain_lines(sqlite_url, "d-1:refund")
    assert explained[0] == (
        "charge d-1:refund: -0.0300 (refund_credit, paid by invoice), billed on 2026-11"
    )
    assert explained[1].startswith("source event: d-1 refund.requested at 2026-11-20T12:00:00Z")
    assert explained[2] == "rule: F1"


def test_f1_cli_dispute_json_credit(tmp_path: Path, sqlite_url: str) -> None:
    """F1, SPEC 12: --json prints the decision's effects with the request's event id."""
    cli_month(tmp_path, sqlite_url)
    doc = json.loads(cli_dispute(sqlite_url, "call-b:payg", "d-1", "--json").stdout)
    assert doc["account_id"] == ACC
    assert doc["event_id"] == "d-1"
    assert (doc["charge_id"], doc["decision"]) == ("call-b:payg", "credited")
    assert (doc["charged"], doc["credited"]) == ("0.0300", "0.0300")
    assert "call-a:payg" in doc["evidence"]
    history = run_json("--store", sqlite_url, "history", ACC)
    [entry] = [e for e in history["entries"] if e["type"] == "refund.requested"]
    assert (entry["event_id"], entry["rule"]) == ("d-1", "F1")


def test_f1_cli_dispute_reads_the_account_s_stream_once(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F1: a dispute re-rates against the account's history, read once; its decision, or the
    event that took the request's id, is then found as `explain` finds a charge's event, among
    the latest events or by the store. Reading a busy account's stream again for it was a
    fifth of a dispute (20,000 events)."""
    cli_month(tmp_path, sqlite_url)
    monkeypatch.setattr("ledger.application.LATEST_EVENTS_SEARCHED", 3)
    streams_read: list[str] = []
    account_events = LedgerApp.account_events

    def counted(app: LedgerApp, account_id: str) -> Any:
        streams_read.append(account_id)
        return account_events(app, account_id)

    monkeypatch.setattr(LedgerApp, "account_events", counted)
    doc = json.loads(cli_dispute(sqlite_url, "call-b:payg", "d-1", "--json").stdout)
    assert (doc["event_id"], doc["decision"], doc["credited"]) == ("d-1", "credited", "0.0300")
    assert streams_read == [ACC]  # the evidence (`dispute_evidence`)
    streams_read.clear()
    again = cli_dispute(sqlite_url, "call-b:payg", "d-1", expect=1)
    assert again.stderr.splitlines() == ["ledger: error: refund request d-1 was already decided"]
    # call-a is older than the latest three events: the store finds it.
    taken = cli_dispute(sqlite_url, "call-b:payg", "call-a", expect=1)
    assert taken.stderr.splitlines() == [
        f"ledger: error: event id call-a is taken on account {ACC} by its call.completed event"
    ]
    assert streams_read == []


def test_f1_cli_dispute_refusals_are_one_line_errors(tmp_path: Path, sqlite_url: str) -> None:
    """F1, G1, SPEC 12: an unknown charge, an unknown account, and a request id already
    decided each fail with one line and exit 1; nothing is credited."""
    cli_month(tmp_path, sqlite_url)
    unknown = cli_dispute(sqlite_url, "nope:payg", "d-1", expect=1)
    assert unknown.stderr.splitlines() == [
        f"ledger: error: unknown charge nope:payg on account {ACC}"
    ]
    cli_dispute(sqlite_url, "call-b:payg", "d-2")
    again = cli_dispute(sqlite_url, "call-b:payg", "d-2", expect=1)
    assert again.stderr.splitlines() == ["ledger: error: refund request d-2 was already decided"]
    taken = cli_dispute(sqlite_url, "call-b:payg", "call-a", expect=1)
    assert taken.stderr.splitlines() == [
        f"ledger: error: event id call-a is taken on account {ACC} by its call.completed event"
    ]
    empty = cli_dispute(sqlite_url, "call-b:payg", "", expect=1)
    assert "--event-id must not be empty" in empty.stderr
    early = run(
        "--store", sqlite_url, "dispute", ACC, "call-b:payg", "--reason", "x",
        "--at", "2020-01-01T00:00:00Z", expect=1,
    )  # fmt: skip
    assert early.stderr.splitlines() == [
        "ledger: error: refund request at 2020-01-01T00:00:00Z is before charge call-b:payg "
        "(its call.completed occurred at 2026-11-05T10:02:00Z)"
    ]
    no_account = run(
        "--store", sqlite_url, "dispute", "ACC-404", "call-a:payg", "--reason", "x", expect=1
    )
    assert no_account.stderr.splitlines() == ["ledger: error: unknown account ACC-404"]
    invoice = run_json("--store", sqlite_url, "invoice", ACC)
    credits = [line for line in invoice["lines"] if line["kind"] == "credits"]
    assert [c["charge_ids"] for c in credits] == [["d-2:refund"]]


def corrected_toml(tmp_path: Path) -> Path:
    """The default catalog as 2026-01-b, correcting 2026-01-a: +1 at 0.0100/min (C4)."""
    text = default_catalog_path().read_text(encoding="utf-8")
    us_rate = 'prefix = "+1"\ncountry = "US"\nper_minute = "0.0150"'
    assert text.count(us_rate) == 1 and text.count('version = "2026-01-a"') == 1
    text = text.replace(us_rate, us_rate.replace("0.0150", "0.0100"))
    text = text.replace('version = "2026-01-a"', 'version = "2026-01-b"\ncorrects = "2026-01-a"')
    path = tmp_path / "corrected.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_c4_cli_dispute_under_a_corrected_catalog(tmp_path: Path, sqlite_url: str) -> None:
    """C4, F1: after `ledger catalog event` of a correction is ingested, disputing the original
    call credits the difference (0.0300 - 2 min x 0.0100 = 0.0100) naming both versions, the
    duplicate is still credited in full, and `ledger export charges` still shows the original
    charges as they were."""
    cli_month(tmp_path, sqlite_url)
    published = json.loads(run("catalog", "event", str(corrected_toml(tmp_path))).stdout)
    assert published["catalog"]["corrects"] == CATALOG
    ingest_events(tmp_path, sqlite_url, published)

    doc = json.loads(cli_dispute(sqlite_url, "call-a:payg", "d-1", "--json").stdout)
    assert doc["decision"] == "credited"
    assert (doc["charged"], doc["rerated"], doc["credited"]) == ("0.0300", "0.0200", "0.0100")
    assert CATALOG in doc["evidence"] and CORRECTION in doc["evidence"]
    duplicate = json.loads(cli_dispute(sqlite_url, "call-b:payg", "d-2", "--json").stdout)
    assert (duplicate["decision"], duplicate["credited"]) == ("credited", "0.0300")

    exported = json.loads(
        run("--store", sqlite_url, "export", "charges", "--account", ACC, "--format", "json").stdout
    )
    rows = exported if isinstance(exported, list) else exported["charges"]
    by_id = {row["charge_id"]: row for row in rows}
    for original in ("call-a:payg", "call-b:payg"):
        assert (by_id[original]["amount"], by_id[original]["catalog_version"]) == (
            "0.0300",
            CATALOG,
        )
    assert by_id["d-1:refund"]["amount"] == "-0.0100"
    assert by_id["d-2:refund"]["amount"] == "-0.0300"
    # credits -0.01 and -0.03, each on its own line: the call cost 0.0200 in the end
    invoice = run_json("--store", sqlite_url, "invoice", ACC)
    credits = sorted(
        Decimal(line["amount"]) for line in invoice["lines"] if line["kind"] == "credits"
    )
    assert credits == [Decimal("-0.03"), Decimal("-0.01")]


def test_r3_audit_adds_up_after_disputes(tmp_path: Path, sqlite_url: str) -> None:
    """R3, G2: decisions recorded by `ledger dispute` keep the chains, views and intake whole."""
    cli_month(tmp_path, sqlite_url)
    cli_dispute(sqlite_url, "call-b:payg", "d-1")
    cli_dispute(sqlite_url, "call-a:payg", "d-2")
    cli_dispute(sqlite_url, "nope:payg", "d-3", expect=1)
    report = run_json("--store", sqlite_url, "audit")
    assert report["findings"] == []
    assert report["adds_up"] is True


def test_history_says_what_a_dispute_decided_and_what_a_call_took_from_the_plan(
    tmp_path: Path, sqlite_url: str
) -> None:
    """R4, F1: the timeline gives each fact's outcome where no charge says it: a dispute's
    decision, clause and evidence; a call's seconds taken from plan minutes."""
    cli_month(tmp_path, sqlite_url)
    ingest_events(tmp_path, sqlite_url, call("call-c", "2026-11-07T10:00:00Z", call_id="c3"))
    run("--store", sqlite_url, "dispute", ACC, "call-b:payg", "--reason", "twice")
    run("--store", sqlite_url, "dispute", ACC, "sur:surcharge", "--reason", "why")
    entries = {e["event_id"]: e for e in run_json("--store", sqlite_url, "history", ACC)["entries"]}
    assert entries["call-c"]["outcome"] == (
        "95 s to US covered by plan na-500: 120 s taken in 60 s increments from 30000 s left "
        "in 2026-11"
    )
    assert entries["call-c"]["charges"] == []
    disputes = [e for e in entries.values() if e["type"] == "refund.requested"]
    assert [d["outcome"].split(":")[0] for d in disputes] == [
        "credited 0.0300",  # call-b repeats call-a's call_id
        "denied under the surcharges clause",
    ]
    text = run("--store", sqlite_url, "history", ACC).stdout
    assert "V3: 95 s to US covered by plan na-500" in text
    assert "F1: credited 0.0300: charge call-b:payg duplicates call-a:payg" in text
