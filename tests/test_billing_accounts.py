"""Whole accounts through three billing periods (issue 5): one postpaid, one prepaid.

Each account is opened on 2026-11-01 (UTC) and lives through 2026-11, 2026-12 and 2027-01;
`cycle.started` for 2026-12, 2027-01 and 2027-02 are the bill runs that close each period
(I1, I2). Along the way it meets every kind of charge the ledger knows: plan purchase (V2),
renewal (V6) and change (V8) fees; PAYG calls, split calls (V4) and calls to countries no
plan covers (V5); data packages (postpaid prorated subscription and renewal in advance, D4;
prepaid purchases from the balance, D7); PAYG data (D1), roaming (D2); a carrier surcharge and
a TCR fee (S1); a port-in (P1) and a port-out with its fee (P2); a late call and a late data
record after the bill run (B3); a credit and a debit (F3); and, prepaid, recharges.

Every figure is worked out by hand from the default catalog (version 2026-01-a,
ledger/catalogs/default.toml) in the comment next to it. Figures used:

- na-500 9.99/month, 500 min (30,000 s) to US+CA, 60 s increments; na-unlimited 19.99/month,
  5,000 min to US+CA; europe-500 12.99/month, 500 min to GB FR DE ES IT NL IE.
- PAYG voice: +1 US 0.0150/min 60 s; +1416 CA 0.0200/min 60 s; +1876 JM 0.1500/min 60 s;
  +447 GB mobile 0.0800/min 60 s; +52 MX 0.0300/min 30 s; +91 IN 0.0150/min 1 s.
- Data: payg_per_mb 0.0500; roaming FR 1.5000, GB 1.2000, CA 0.5000, default 2.0000 (BR, JP).
- Packages: data-1gb 5.00, data-5gb 15.00 (5,000,000,000 bytes). Port-out fee 15.00.

Invoice lines are rounded HALF_UP per line to 2 places and the total is the sum of the shown
lines (M2), so a total can differ from the exact sum rounded: that is asserted too.
"""

from decimal import Decimal
from pathlib import Path
from typing import Any

from projections.invoices import read_invoices
from tests.cli_helpers import ingest_events, run_json
from tests.factories import catalog_published, event, opened
from tests.harness import Ledger

US = "+12125550100"  # +1 -> US, 0.0150/min, 60 s
CA = "+14165550100"  # +1416 (Toronto) -> CA, 0.0200/min, 60 s
JM = "+18765550100"  # +1876 -> JM, 0.1500/min, 60 s
GB_MOBILE = "+447700900123"  # +447 -> GB, 0.0800/min, 60 s
MX = "+525512345678"  # +52 -> MX, 0.0300/min, 30 s
IN = "+919812345678"  # +91 -> IN, 0.0150/min, 1 s

# (kind, description, exact_amount, amount shown, number of charges)
Line = tuple[str, str, str, str, int]


def call(
    account: str, event_id: str, at: str, msisdn: str, to: str, seconds: int
) -> dict[str, Any]:
    return event(
        "call.completed",
        account,
        at,
        event_id=event_id,
        msisdn=msisdn,
        destination=to,
        duration_seconds=seconds,
        call_id=f"call-{event_id}",
    )


def data(
    account: str, event_id: str, at: str, msisdn: str, used: int, country: str | None = None
) -> dict[str, Any]:
    where: dict[str, Any] = {"roaming": False}
    if country is not None:
        where = {"roaming": True, "country": country}
    return event("data.used", account, at, event_id=event_id, msisdn=msisdn, bytes=used, **where)


def bill_run(account: str, period: str, at: str) -> dict[str, Any]:
    return event("cycle.started", account, at, event_id=f"{account}-bill-{period}", period=period)


def lines_of(doc: dict[str, Any]) -> list[Line]:
    return [
        (
            line["kind"],
            line["description"],
            line["exact_amount"],
            line["amount"],
            len(line["charge_ids"]),
        )
        for line in doc["lines"]
    ]


def check_lines_against_charges(ledger: Ledger, account: str, docs: list[dict[str, Any]]) -> None:
    """Every charge is on exactly one line, of the invoice of its billed period (I1, B3), and
    the exact line amounts add up to the exact charges, to the 4th place (M2)."""
    charges = ledger.charges(account)
    on_lines = [
        (doc["period"], charge_id)
        for doc in docs
        for line in doc["lines"]
        for charge_id in line["charge_ids"]
    ]
    assert sorted(on_lines) == sorted((c["billed_period"], c["charge_id"]) for c in charges)
    charged = sum((Decimal(c["amount"]) for c in charges), start=Decimal("0"))
    invoiced = sum(
        (Decimal(line["exact_amount"]) for doc in docs for line in doc["lines"]),
        start=Decimal("0"),
    )
    assert charged == invoiced


def duplicate_charge_ids(ledger: Ledger, account: str) -> list[tuple[str, list[str]]]:
    """Charge ids used by more than one charge, with those charges' kinds. A refund request
    names one charge (F1), explain and export name one (R4): an id must mean one charge."""
    kinds: dict[str, list[str]] = {}
    for charge in ledger.charges(account):
        kinds.setdefault(charge["charge_id"], []).append(charge["kind"])
    return sorted((charge_id, k) for charge_id, k in kinds.items() if len(k) > 1)


# ---------------------------------------------------------------------------------------------
# The postpaid account

POST = "ACC-POST"
A = "+14155550101"  # na-500, then na-unlimited from 2027-01 (V8); data-5gb from 2026-11-21
B = "+14155550102"  # no plan: PAYG; ported out in 2026-12
T = "+14155550103"  # the temporary number a port-in gives at once (P1)
P = "+16175550123"  # the ported number that replaces T on completion (P1)


def postpaid_events() -> list[dict[str, Any]]:
    """The postpaid account's log, in arrival order (the late records after the bill run)."""
    acc = POST
    return [
        catalog_published(),
        opened(acc, "postpaid", event_id="post-opened"),
        event("number.added", acc, "2026-11-01T09:30:00Z", event_id="post-add-a", msisdn=A),
        event("number.added", acc, "2026-11-01T09:31:00Z", event_id="post-add-b", msisdn=B),
        # --- 2026-11 -------------------------------------------------------------------------
        event(
            "plan.purchased",
            acc,
            "2026-11-01T10:00:00Z",
            event_id="post-plan",
            msisdn=A,
            plan_id="na-500",
            channel="portal",
        ),  # V2: 9.99, full 500 min for 2026-11
        call(acc, "post-call-1", "2026-11-02T10:00:00Z", A, US, 95),  # plan: 120 s
        call(acc, "post-call-2", "2026-11-03T10:00:00Z", A, US, 29_820),  # plan: 29,820 s
        # 30,000 - 120 - 29,820 = 60 s left; 150 s: plan takes 60 s, 90 s PAYG (V4)
        call(acc, "post-call-split", "2026-11-04T10:00:00Z", A, US, 150),
        call(acc, "post-call-gb", "2026-11-05T10:00:00Z", A, GB_MOBILE, 61),  # GB: not covered
        call(acc, "post-call-b", "2026-11-06T10:00:00Z", B, US, 30),  # B: no plan
        event(
            "port_in.requested",
            acc,
            "2026-11-07T10:00:00Z",
            event_id="post-port-in",
            msisdn=T,
            ported_msisdn=P,
        ),
        call(acc, "post-call-t", "2026-11-08T10:00:00Z", T, CA, 100),
        event(
            "port_in.completed",
            acc,
            "2026-11-10T10:00:00Z",
            event_id="post-port-in-done",
            msisdn=T,
            ported_msisdn=P,
        ),
        call(acc, "post-call-p", "2026-11-11T10:00:00Z", P, US, 45),
        event(
            "package.subscribed",
            acc,
            "2026-11-21T12:00:00Z",
            event_id="post-package",
            msisdn=A,
            package_id="data-5gb",
        ),  # D4: 10 of 30 days left -> 5.0000 and 1,666,666,666 bytes
        data(acc, "post-data-1", "2026-11-22T10:00:00Z", A, 1_000_000_000),  # package
        data(acc, "post-data-2", "2026-11-23T10:00:00Z", A, 700_000_000),  # package runs out
        data(acc, "post-data-b", "2026-11-24T10:00:00Z", B, 2_500_000),  # no package: PAYG
        data(acc, "post-roam-fr", "2026-11-25T10:00:00Z", A, 3_000_000, "FR"),
        event(
            "surcharge.applied",
            acc,
            "2026-11-26T10:00:00Z",
            event_id="post-carrier",
            amount="1.25",
            kind="carrier",
            description="Carrier cost recovery",
            msisdn=A,
        ),
        event(
            "surcharge.applied",
            acc,
            "2026-11-26T11:00:00Z",
            event_id="post-tcr",
            amount="4.00",
            kind="tcr_registration",
            description="TCR brand registration",
        ),
        event(
            "adjustment.posted",
            acc,
            "2026-11-27T10:00:00Z",
            event_id="post-credit",
            amount="-2.00",
            reason="Goodwill for dropped calls",
            approved_by="finance-lead",
        ),
        event(
            "adjustment.posted",
            acc,
            "2026-11-27T11:00:00Z",
            event_id="post-debit",
            amount="3.50",
            reason="Unbilled SIM replacement",
            approved_by="finance-lead",
        ),
        # --- 2026-12: the bill run closes 2026-11 --------------------------------------------
        bill_run(acc, "2026-12", "2026-12-01T00:00:00Z"),  # na-500 9.99 (V6), data-5gb 15.00
        # Late (B3): made in 2026-11, arriving after its invoice closed.
        call(acc, "post-late-call", "2026-11-29T20:00:00Z", A, US, 70),
        data(acc, "post-late-data", "2026-11-30T22:00:00Z", B, 1_000_000),
        event(
            "plan.changed",
            acc,
            "2026-12-05T10:00:00Z",
            event_id="post-plan-change",
            msisdn=A,
            plan_id="na-unlimited",
        ),  # V8: from 2027-01
        call(acc, "post-dec-ca", "2026-12-06T10:00:00Z", A, CA, 600),  # plan: 600 s
        call(acc, "post-dec-mx", "2026-12-07T10:00:00Z", A, MX, 45),  # MX: not covered
        data(acc, "post-dec-data", "2026-12-08T10:00:00Z", A, 2_000_000_000),  # package
        data(acc, "post-dec-roam-gb", "2026-12-09T10:00:00Z", A, 1_500_000, "GB"),
        event(
            "port_out.requested", acc, "2026-12-10T10:00:00Z", event_id="post-port-out", msisdn=B
        ),  # P2: 15.00
        call(acc, "post-dec-b", "2026-12-11T10:00:00Z", B, US, 200),
        event(
            "port_out.completed",
            acc,
            "2026-12-12T10:00:00Z",
            event_id="post-port-out-done",
            msisdn=B,
        ),  # no second fee: it was charged at the request
        data(acc, "post-dec-data-p", "2026-12-14T10:00:00Z", P, 4_000_000),
        # --- 2027-01: the bill run closes 2026-12 --------------------------------------------
        bill_run(acc, "2027-01", "2027-01-01T00:00:00Z"),  # na-unlimited 19.99 (V8), 15.00
        call(acc, "post-jan-us", "2027-01-05T10:00:00Z", A, US, 3_000),  # plan: 3,000 s
        call(acc, "post-jan-jm", "2027-01-06T10:00:00Z", A, JM, 61),  # JM: not covered
        data(acc, "post-jan-data", "2027-01-10T10:00:00Z", A, 5_000_250_000),  # 250,000 PAYG
        data(acc, "post-jan-roam-br", "2027-01-12T10:00:00Z", P, 2_250_000, "BR"),
        # --- 2027-02: the bill run closes 2027-01 --------------------------------------------
        bill_run(acc, "2027-02", "2027-02-01T00:00:00Z"),  # na-unlimited 19.99 (V6), 15.00
    ]


POSTPAID_INVOICES: dict[str, tuple[str, list[Line], str]] = {
    # period: (status, lines, total)
    "2026-11": (
        "closed",
        [
            # V2: na-500 bought 2026-11-01, full fee 9.99, no proration
            ("plan_fees", f"Plan fees, {A}", "9.9900", "9.99", 1),
            # D4: subscribed 2026-11-21: 30 - 21 + 1 = 10 days left; 15.00 x 10/30 = 5.0000
            ("package_fees", f"Data package fees, {A}", "5.0000", "5.00", 1),
            # V4: 150 s, 60 s from the plan, 90 s PAYG -> 120 s = 2 x 0.0150 = 0.0300
            # V5: 61 s to +447 (GB, not in na-500) -> 120 s = 2 x 0.0800 = 0.1600
            # 0.0300 + 0.1600 = 0.1900
            ("payg_calls", f"PAYG calls, {A}", "0.1900", "0.19", 2),
            # 30 s to +1 -> 60 s = 1 x 0.0150 = 0.0150, shown 0.02 (HALF_UP)
            ("payg_calls", f"PAYG calls, {B}", "0.0150", "0.02", 1),
            # P1: the temporary number calls at once: 100 s to +1416 (CA) -> 120 s
            # = 2 x 0.0200 = 0.0400
            ("payg_calls", f"PAYG calls, {T}", "0.0400", "0.04", 1),
            # the ported number after completion: 45 s to +1 -> 60 s = 0.0150 -> 0.02
            ("payg_calls", f"PAYG calls, {P}", "0.0150", "0.02", 1),
            # D1: package 1,666,666,666 bytes; 1,000,000,000 used, 666,666,666 left; of
            # 700,000,000 the last 33,333,334 bytes are PAYG: 33.333334 MB x 0.0500
            # = 1.6666667 -> 1.6667
            ("payg_data", f"PAYG data, {A}", "1.6667", "1.67", 1),
            # D1: no package: 2,500,000 bytes = 2.5 MB x 0.0500 = 0.1250 -> 0.13 (HALF_UP)
            ("payg_data", f"PAYG data, {B}", "0.1250", "0.13", 1),
            # D2: 3,000,000 bytes in FR = 3 MB x 1.5000 = 4.5000
            ("roaming", f"Roaming data, {A}", "4.5000", "4.50", 1),
            # S1: as given; the TCR fee names no number, so it sorts first
            ("surcharges", "Surcharges: TCR brand registration", "4.0000", "4.00", 1),
            ("surcharges", f"Surcharges: Carrier cost recovery, {A}", "1.2500", "1.25", 1),
            # F3: a debit and a credit, each with its reason and approver
            (
                "adjustments",
                "Adjustments: Unbilled SIM replacement (approved by finance-lead)",
                "3.5000",
                "3.50",
                1,
            ),
            (
                "credits",
                "Credits: Goodwill for dropped calls (approved by finance-lead)",
                "-2.0000",
                "-2.00",
                1,
            ),
        ],
        # 9.99 + 5.00 + 0.19 + 0.02 + 0.04 + 0.02 + 1.67 + 0.13 + 4.50 + 4.00 + 1.25 + 3.50
        # - 2.00 = 28.31 (the exact sum 28.2917 would round to 28.29: M2 adds shown lines)
        "28.31",
    ),
    "2026-12": (
        "closed",
        [
            # V6: na-500 renews at the 2026-12 bill run: 9.99
            ("plan_fees", f"Plan fees, {A}", "9.9900", "9.99", 1),
            # D4: data-5gb renews in advance, full fee 15.00
            ("package_fees", f"Data package fees, {A}", "15.0000", "15.00", 1),
            # 45 s to +52 (MX, not in na-500) -> 30 s increments: 60 s = 1 x 0.0300 = 0.0300
            # (the 600 s to Toronto came from the plan)
            ("payg_calls", f"PAYG calls, {A}", "0.0300", "0.03", 1),
            # 200 s to +1 -> 240 s = 4 x 0.0150 = 0.0600 (after the port-out request,
            # before completion: still billed)
            ("payg_calls", f"PAYG calls, {B}", "0.0600", "0.06", 1),
            # 4,000,000 bytes = 4 MB x 0.0500 = 0.2000 on the ported number
            ("payg_data", f"PAYG data, {P}", "0.2000", "0.20", 1),
            # D2: 1,500,000 bytes in GB = 1.5 MB x 1.2000 = 1.8000 (the 2 GB came from the
            # renewed package)
            ("roaming", f"Roaming data, {A}", "1.8000", "1.80", 1),
            # P2: the catalog's port-out fee at the request
            ("one_time_fees", f"One-time fees, {B}", "15.0000", "15.00", 1),
            # B3: 70 s to +1 on 2026-11-29, 2026-11's minutes used up -> 120 s = 0.0300
            ("late_usage", f"Late usage from 2026-11: PAYG calls, {A}", "0.0300", "0.03", 1),
            # B3: 1,000,000 bytes on 2026-11-30, no package = 1 MB x 0.0500 = 0.0500
            ("late_usage", f"Late usage from 2026-11: PAYG data, {B}", "0.0500", "0.05", 1),
        ],
        # 9.99 + 15.00 + 0.03 + 0.06 + 0.20 + 1.80 + 15.00 + 0.03 + 0.05 = 42.16
        "42.16",
    ),
    "2027-01": (
        "closed",
        [
            # V8: the change to na-unlimited takes effect at the 2027-01 bill run: 19.99
            ("plan_fees", f"Plan fees, {A}", "19.9900", "19.99", 1),
            ("package_fees", f"Data package fees, {A}", "15.0000", "15.00", 1),
            # 61 s to +1876 (JM, not covered) -> 120 s = 2 x 0.1500 = 0.3000
            ("payg_calls", f"PAYG calls, {A}", "0.3000", "0.30", 1),
            # 5,000,250,000 bytes: 5,000,000,000 from the package, 250,000 PAYG
            # = 0.25 MB x 0.0500 = 0.0125 -> 0.01 (HALF_UP)
            ("payg_data", f"PAYG data, {A}", "0.0125", "0.01", 1),
            # D2: BR is not listed: default 2.0000; 2,250,000 bytes = 2.25 x 2.0000 = 4.5000
            ("roaming", f"Roaming data, {P}", "4.5000", "4.50", 1),
        ],
        # 19.99 + 15.00 + 0.30 + 0.01 + 4.50 = 39.80
        "39.80",
    ),
    "2027-02": (
        "open",
        [
            # fees in advance at the 2027-02 bill run: na-unlimited renews (V6), data-5gb
            ("plan_fees", f"Plan fees, {A}", "19.9900", "19.99", 1),
            ("package_fees", f"Data package fees, {A}", "15.0000", "15.00", 1),
        ],
        # 19.99 + 15.00 = 34.99
        "34.99",
    ),
}


def check_postpaid_invoices(docs: list[dict[str, Any]]) -> None:
    assert [d["period"] for d in docs] == list(POSTPAID_INVOICES)
    for doc in docs:
        status, lines, total = POSTPAID_INVOICES[doc["period"]]
        assert (doc["document"], doc["status"]) == ("invoice", status), doc["period"]
        assert lines_of(doc) == lines, doc["period"]
        assert doc["total"] == total, doc["period"]
        # M2: the total is the sum of the shown lines
        assert Decimal(doc["total"]) == sum(Decimal(line[3]) for line in lines)
    closers = [(d["closed_by"], d["closed_at"]) for d in docs]
    assert closers == [
        (f"{POST}-bill-2026-12", "2026-12-01T00:00:00Z"),
        (f"{POST}-bill-2027-01", "2027-01-01T00:00:00Z"),
        (f"{POST}-bill-2027-02", "2027-02-01T00:00:00Z"),
        (None, None),
    ]


def test_i1_postpaid_account_through_three_periods_with_every_kind_of_charge() -> None:
    """I1, M2, V2/V4/V5/V6/V8, D1/D2/D4, S1, P1, P2, B3, F3: a whole postpaid account."""
    ledger = Ledger()
    counts = ledger.feed(*postpaid_events())
    assert not counts.dead_letters, ledger.reasons()
    history = ledger.history(POST)
    assert [(e["event_id"], e["status"]) for e in history if e["status"] != "applied"] == []

    docs = read_invoices(ledger.views, POST)
    check_postpaid_invoices(docs)
    assert ledger.invoice(POST, "2026-11") is not None
    check_lines_against_charges(ledger, POST, docs)
    # The exact charges: 28.2917 + 42.16 + 39.8025 + 34.99 = 145.2442
    assert sum(Decimal(c["amount"]) for c in ledger.charges(POST)) == Decimal("145.2442")

    # P1, P2: the temporary number and the ported-out number are gone; usage for them later
    # is invalid input, and no invoice moves.
    before = ledger.all_views()
    ledger.feed(
        call(POST, "post-after-port-out", "2026-12-13T10:00:00Z", B, US, 60),
        call(POST, "post-after-port-in", "2026-12-13T11:00:00Z", T, US, 60),
    )
    assert ledger.reasons() == [
        f"number {B} was ported out of account {POST} at 2026-12-12T10:00:00Z: only its usage "
        "and surcharges dated before that are still rated",
        f"number {T} was replaced by the ported number {P} at 2026-11-10T10:00:00Z: only its "
        "usage and surcharges dated before that are still rated",
    ]
    after = ledger.all_views()
    assert {k: v for k, v in after.items() if k.startswith("invoices/")} == {
        k: v for k, v in before.items() if k.startswith("invoices/")
    }

    # Every charge can be named on its own (a refund request names one, F1; R4 explains one).
    assert duplicate_charge_ids(ledger, POST) == []


# ---------------------------------------------------------------------------------------------
# The prepaid account

PRE = "ACC-PRE"
C = "+14155550201"  # na-500, then europe-500 from 2027-01 (V8)
D = "+14155550202"  # data-1gb, then data-5gb (D7); ported out in 2026-12
T2 = "+14155550203"  # the temporary number of a port-in (P1)
P2 = "+16175550234"  # the ported number replacing T2


def prepaid_events() -> list[dict[str, Any]]:
    acc = PRE
    return [
        catalog_published(),
        opened(acc, "prepaid", event_id="pre-opened"),
        event("number.added", acc, "2026-11-01T09:30:00Z", event_id="pre-add-c", msisdn=C),
        event("number.added", acc, "2026-11-01T09:31:00Z", event_id="pre-add-d", msisdn=D),
        # --- 2026-11 -------------------------------------------------------------------------
        event(
            "balance.recharged", acc, "2026-11-01T09:45:00Z", event_id="pre-top-1", amount="30.00"
        ),
        event(
            "plan.purchased",
            acc,
            "2026-11-01T10:00:00Z",
            event_id="pre-plan",
            msisdn=C,
            plan_id="na-500",
            channel="portal",
        ),  # V2, I3: 9.99 through the payment method, not the balance
        call(acc, "pre-call-1", "2026-11-02T10:00:00Z", C, US, 95),  # plan: 120 s
        call(acc, "pre-call-2", "2026-11-03T10:00:00Z", C, US, 29_820),  # plan: 60 s left
        call(acc, "pre-call-split", "2026-11-04T10:00:00Z", C, CA, 150),  # V4
        call(acc, "pre-call-in", "2026-11-05T10:00:00Z", C, IN, 100),  # IN: not covered
        event(
            "package.subscribed",
            acc,
            "2026-11-10T12:00:00Z",
            event_id="pre-package",
            msisdn=D,
            package_id="data-1gb",
        ),  # D7: 5.00 from the balance, 1 GB to 2026-12-10T12:00Z
        data(acc, "pre-data-d", "2026-11-11T10:00:00Z", D, 400_000_000),  # package
        data(acc, "pre-data-c", "2026-11-12T10:00:00Z", C, 3_000_000),  # no package
        data(acc, "pre-roam-ca", "2026-11-13T10:00:00Z", D, 2_000_000, "CA"),
        event(
            "port_in.requested",
            acc,
            "2026-11-14T10:00:00Z",
            event_id="pre-port-in",
            msisdn=T2,
            ported_msisdn=P2,
        ),
        call(acc, "pre-call-t2", "2026-11-15T10:00:00Z", T2, US, 20),
        event(
            "port_in.completed",
            acc,
            "2026-11-16T10:00:00Z",
            event_id="pre-port-in-done",
            msisdn=T2,
            ported_msisdn=P2,
        ),
        event(
            "surcharge.applied",
            acc,
            "2026-11-17T10:00:00Z",
            event_id="pre-carrier",
            amount="0.75",
            kind="carrier",
            description="Carrier network access",
            msisdn=C,
        ),
        event(
            "surcharge.applied",
            acc,
            "2026-11-17T11:00:00Z",
            event_id="pre-tcr",
            amount="4.00",
            kind="tcr_registration",
            description="TCR campaign registration",
        ),
        event(
            "adjustment.posted",
            acc,
            "2026-11-18T10:00:00Z",
            event_id="pre-credit",
            amount="-1.00",
            reason="Dropped call",
            approved_by="finance-lead",
        ),  # F3: a credit adds 1.00 to the balance
        event(
            "balance.recharged", acc, "2026-11-20T10:00:00Z", event_id="pre-top-2", amount="10.00"
        ),
        # --- 2026-12: the bill run closes 2026-11 --------------------------------------------
        bill_run(acc, "2026-12", "2026-12-01T00:00:00Z"),  # na-500 renews 9.99 (V6)
        event(
            "plan.changed",
            acc,
            "2026-12-02T10:00:00Z",
            event_id="pre-plan-change",
            msisdn=C,
            plan_id="europe-500",
        ),  # V8: from 2027-01
        call(acc, "pre-dec-us", "2026-12-03T10:00:00Z", C, US, 200),  # plan: 240 s
        # Late (B3): made in 2026-11, arriving after its statement closed.
        call(acc, "pre-late-call", "2026-11-29T20:00:00Z", C, US, 70),
        data(acc, "pre-late-data", "2026-11-30T22:00:00Z", C, 1_000_000),
        event(
            "package.changed",
            acc,
            "2026-12-09T12:00:00Z",
            event_id="pre-package-2",
            msisdn=D,
            package_id="data-5gb",
        ),  # D7: 15.00 from the balance; 600,000,000 bytes left are carried
        data(acc, "pre-dec-data-d", "2026-12-15T10:00:00Z", D, 5_600_400_000),
        event(
            "port_out.requested", acc, "2026-12-16T10:00:00Z", event_id="pre-port-out", msisdn=D
        ),  # P2, I3: 15.00 through the payment method
        event(
            "port_out.completed",
            acc,
            "2026-12-18T10:00:00Z",
            event_id="pre-port-out-done",
            msisdn=D,
        ),
        event(
            "adjustment.posted",
            acc,
            "2026-12-20T10:00:00Z",
            event_id="pre-debit",
            amount="0.60",
            reason="Missed roaming charge",
            approved_by="finance-lead",
        ),  # F3: a debit takes 0.60 from the balance
        event(
            "balance.recharged", acc, "2026-12-21T10:00:00Z", event_id="pre-top-3", amount="5.00"
        ),
        data(acc, "pre-dec-roam-fr", "2026-12-22T10:00:00Z", P2, 1_000_000, "FR"),
        # --- 2027-01: the bill run closes 2026-12 --------------------------------------------
        bill_run(acc, "2027-01", "2027-01-01T00:00:00Z"),  # europe-500 12.99 (V8)
        call(acc, "pre-jan-gb", "2027-01-03T10:00:00Z", C, GB_MOBILE, 300),  # plan: 300 s
        call(acc, "pre-jan-us", "2027-01-04T10:00:00Z", C, US, 61),  # US: no longer covered
        data(acc, "pre-jan-data", "2027-01-05T10:00:00Z", P2, 10_000_000),
        event(
            "balance.recharged", acc, "2027-01-06T10:00:00Z", event_id="pre-top-4", amount="20.00"
        ),
        data(acc, "pre-jan-roam-jp", "2027-01-07T10:00:00Z", C, 1_234_567, "JP"),
        # --- 2027-02: the bill run closes 2027-01 --------------------------------------------
        bill_run(acc, "2027-02", "2027-02-01T00:00:00Z"),  # europe-500 renews 12.99 (V6)
    ]


BAL = "(paid from balance)"
CARD = "(paid to payment method)"

# period: (status, lines, total, recharges, balance_start, balance_end)
PREPAID_STATEMENTS: dict[str, tuple[str, list[Line], str, list[str], str, str]] = {
    "2026-11": (
        "closed",
        [
            # V2, I3: na-500 9.99 through the payment method
            ("plan_fees", f"Plan fees, {C} {CARD}", "9.9900", "9.99", 1),
            # D7: data-1gb full fee 5.00 from the balance
            ("package_fees", f"Data package fees, {D} {BAL}", "5.0000", "5.00", 1),
            # V4: 150 s to +1416, 60 s left on the plan, 90 s PAYG -> 120 s = 2 x 0.0200
            # = 0.0400; V5: 100 s to +91 (IN, not in na-500), 1 s increments:
            # 100/60 x 0.0150 = 0.0250; 0.0400 + 0.0250 = 0.0650 -> 0.07 (HALF_UP)
            ("payg_calls", f"PAYG calls, {C} {BAL}", "0.0650", "0.07", 2),
            # P1: 20 s to +1 from the temporary number -> 60 s = 0.0150 -> 0.02
            ("payg_calls", f"PAYG calls, {T2} {BAL}", "0.0150", "0.02", 1),
            # D1: 3,000,000 bytes, no package = 3 MB x 0.0500 = 0.1500
            ("payg_data", f"PAYG data, {C} {BAL}", "0.1500", "0.15", 1),
            # D2: 2,000,000 bytes in CA = 2 MB x 0.5000 = 1.0000
            ("roaming", f"Roaming data, {D} {BAL}", "1.0000", "1.00", 1),
            # S1, I3: through the payment method
            ("surcharges", f"Surcharges: TCR campaign registration {CARD}", "4.0000", "4.00", 1),
            ("surcharges", f"Surcharges: Carrier network access, {C} {CARD}", "0.7500", "0.75", 1),
            # F3: the credit goes to the balance
            (
                "credits",
                "Credits: Dropped call (approved by finance-lead) (credited to balance)",
                "-1.0000",
                "-1.00",
                1,
            ),
        ],
        # 9.99 + 5.00 + 0.07 + 0.02 + 0.15 + 1.00 + 4.00 + 0.75 - 1.00 = 19.98
        "19.98",
        ["30.0000", "10.0000"],
        # from the balance: 5.00 + 0.04 + 0.025 + 0.015 + 0.15 + 1.00 - 1.00 (credit) = 5.23;
        # 0 + 30.00 + 10.00 - 5.23 = 34.77
        "0.0000",
        "34.7700",
    ),
    "2026-12": (
        "closed",
        [
            # V6: na-500 renews 9.99 through the payment method
            ("plan_fees", f"Plan fees, {C} {CARD}", "9.9900", "9.99", 1),
            # D7: the change to data-5gb is a purchase: full fee 15.00 from the balance
            ("package_fees", f"Data package fees, {D} {BAL}", "15.0000", "15.00", 1),
            # D7: 5,000,000,000 + 600,000,000 carried = 5,600,000,000; of 5,600,400,000
            # 400,000 bytes are PAYG = 0.4 MB x 0.0500 = 0.0200
            ("payg_data", f"PAYG data, {D} {BAL}", "0.0200", "0.02", 1),
            # D2: 1,000,000 bytes in FR on the ported number = 1 MB x 1.5000 = 1.5000
            ("roaming", f"Roaming data, {P2} {BAL}", "1.5000", "1.50", 1),
            # P2, I3: port-out fee 15.00 through the payment method
            ("one_time_fees", f"One-time fees, {D} {CARD}", "15.0000", "15.00", 1),
            # B3: 70 s to +1 on 2026-11-29, 2026-11's minutes used up -> 120 s = 0.0300
            (
                "late_usage",
                f"Late usage from 2026-11: PAYG calls, {C} {BAL}",
                "0.0300",
                "0.03",
                1,
            ),
            # B3: 1,000,000 bytes on 2026-11-30, no package = 0.0500
            (
                "late_usage",
                f"Late usage from 2026-11: PAYG data, {C} {BAL}",
                "0.0500",
                "0.05",
                1,
            ),
            # F3: the debit is taken from the balance
            (
                "adjustments",
                f"Adjustments: Missed roaming charge (approved by finance-lead) {BAL}",
                "0.6000",
                "0.60",
                1,
            ),
        ],
        # 9.99 + 15.00 + 0.02 + 1.50 + 15.00 + 0.03 + 0.05 + 0.60 = 42.19
        "42.19",
        ["5.0000"],
        # from the balance: 15.00 + 0.02 + 1.50 + 0.03 + 0.05 + 0.60 = 17.20;
        # 34.77 + 5.00 - 17.20 = 22.57
        "34.7700",
        "22.5700",
    ),
    "2027-01": (
        "closed",
        [
            # V8: the change to europe-500 takes effect at the 2027-01 bill run: 12.99
            ("plan_fees", f"Plan fees, {C} {CARD}", "12.9900", "12.99", 1),
            # 61 s to +1: europe-500 does not cover US -> 120 s = 2 x 0.0150 = 0.0300
            ("payg_calls", f"PAYG calls, {C} {BAL}", "0.0300", "0.03", 1),
            # 10,000,000 bytes = 10 MB x 0.0500 = 0.5000
            ("payg_data", f"PAYG data, {P2} {BAL}", "0.5000", "0.50", 1),
            # D2: JP is not listed: default 2.0000; 1,234,567 bytes = 1.234567 x 2.0000
            # = 2.469134 -> 2.4691, shown 2.47
            ("roaming", f"Roaming data, {C} {BAL}", "2.4691", "2.47", 1),
        ],
        # 12.99 + 0.03 + 0.50 + 2.47 = 15.99
        "15.99",
        ["20.0000"],
        # 22.57 + 20.00 - (0.03 + 0.50 + 2.4691 = 2.9991) = 39.5709
        "22.5700",
        "39.5709",
    ),
    "2027-02": (
        "open",
        [
            # V6: europe-500 renews 12.99 through the payment method: the balance stays
            ("plan_fees", f"Plan fees, {C} {CARD}", "12.9900", "12.99", 1),
        ],
        "12.99",
        [],
        "39.5709",
        "39.5709",
    ),
}


def test_i2_prepaid_account_through_three_periods_with_every_kind_of_charge() -> None:
    """I2, I3, M2, V2/V4/V5/V6/V8, D1/D2/D7, S1, P1, P2, B3, F3, V9 recharges: a whole
    prepaid account, with the balance at the start and end of every statement."""
    ledger = Ledger()
    counts = ledger.feed(*prepaid_events())
    assert not counts.dead_letters, ledger.reasons()
    history = ledger.history(PRE)
    assert [(e["event_id"], e["status"]) for e in history if e["status"] != "applied"] == []

    docs = read_invoices(ledger.views, PRE)
    assert [d["period"] for d in docs] == list(PREPAID_STATEMENTS)
    for doc in docs:
        status, lines, total, recharges, start, end = PREPAID_STATEMENTS[doc["period"]]
        assert (doc["document"], doc["status"]) == ("statement", status), doc["period"]
        assert lines_of(doc) == lines, doc["period"]
        assert doc["total"] == total, doc["period"]
        assert Decimal(doc["total"]) == sum(Decimal(line[3]) for line in lines)
        assert [r["amount"] for r in doc["recharges"]] == recharges, doc["period"]
        assert (doc["balance_start"], doc["balance_end"]) == (start, end), doc["period"]
    assert [d["closed_by"] for d in docs] == [
        f"{PRE}-bill-2026-12",
        f"{PRE}-bill-2027-01",
        f"{PRE}-bill-2027-02",
        None,
    ]
    assert [r["event_id"] for d in docs for r in d["recharges"]] == [
        "pre-top-1",
        "pre-top-2",
        "pre-top-3",
        "pre-top-4",
    ]

    # The balance view agrees with the last statement: 30 + 10 + 5 + 20 = 65.00 recharged,
    # 5.23 + 17.20 + 2.9991 = 25.4291 paid from the balance; 65.00 - 25.4291 = 39.5709.
    assert ledger.balance(PRE) == "39.5709"
    check_lines_against_charges(ledger, PRE, docs)
    # The exact charges: 19.97 + 42.19 + 15.9891 + 12.99 = 91.1391
    assert sum(Decimal(c["amount"]) for c in ledger.charges(PRE)) == Decimal("91.1391")
    # I3: plan fees, the port-out fee and surcharges never touch the balance
    by_payer: dict[str, set[str]] = {}
    for charge in ledger.charges(PRE):
        by_payer.setdefault(charge["payer"], set()).add(charge["kind"])
    assert by_payer == {
        "payment_method": {"plan_fee", "port_out_fee", "carrier_surcharge", "tcr_registration_fee"},
        "balance": {"package_fee", "payg_call", "payg_data", "roaming_data", "adjustment"},
    }

    ledger.feed(call(PRE, "pre-after-port-out", "2026-12-19T10:00:00Z", D, US, 60))
    [reason] = ledger.reasons()
    assert reason.startswith(f"number {D} was ported out of account {PRE} at ")
    assert ledger.balance(PRE) == "39.5709"

    assert duplicate_charge_ids(ledger, PRE) == []


# ---------------------------------------------------------------------------------------------
# The same postpaid account through the command line on PostgreSQL


def test_i1_postpaid_invoices_from_the_cli_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """I1 end to end: ingest the postpaid log into PostgreSQL and read each invoice with
    `ledger --json invoice ACCOUNT --period P`: the same invoices as the in-memory ledger."""
    events = postpaid_events()
    ingest_events(tmp_path, postgres_url, *events)
    from_cli = [
        run_json("--store", postgres_url, "invoice", POST, "--period", period)
        for period in POSTPAID_INVOICES
    ]
    check_postpaid_invoices(from_cli)

    ledger = Ledger()
    ledger.feed(*events)
    assert from_cli == read_invoices(ledger.views, POST)
    # Without --period: the latest open invoice, 2027-02 with its fees in advance.
    latest = run_json("--store", postgres_url, "invoice", POST)
    assert (latest["period"], latest["status"], latest["total"]) == ("2027-02", "open", "34.99")
