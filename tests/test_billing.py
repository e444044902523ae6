"""Billing cycles, invoices and statements, porting, surcharges, blocks, late usage and manual
adjustments (SPEC 6 and 7: I1-I3, M2, P1, P2, S1, B2, B3; SPEC 8: F3).

Every figure is computed by hand from the default catalog (version 2026-01-a,
ledger/catalogs/default.toml); the arithmetic is in the comment next to each assertion.
Figures used throughout:

- na-500: 9.99 monthly, 500 min to US and CA, 60 s increments.
- data-1gb 5.00 (1,000,000,000 bytes); data-5gb 15.00 (5,000,000,000 bytes), prorated on
  postpaid by days left / days in month, the subscription day included (D4).
- PAYG voice: +1 US 0.0150/min, +33 FR landline 0.0250/min, +44 GB landline 0.0200/min,
  all per started minute.
- PAYG home data 0.0500/MB (1 MB = 1,000,000 bytes); roaming FR 1.5000/MB.
- Port-out fee 15.00.
- November 2026 has 30 days.
"""

import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.account import MAX_PORTED_IN_KEPT, MAX_PORTED_OUT_KEPT, Account
from ledger.instants import instant_text, parse_instant
from ledger.rules.voice import authorize
from projections import invoices
from projections.invoices import CHARGES_PER_CHUNK, read_invoices
from projections.runner import view_documents
from tests.factories import catalog_published, event, opened
from tests.harness import Ledger

ACC = "ACC-BILL"
NUM1 = "+14155550101"
NUM2 = "+14155550102"
NUM3 = "+14155550103"
NEW = "+14155550777"  # the temporary number a port-in request gives the account
PORTED = "+13125550199"  # the number ported in from another operator
US = "+12125550100"  # +1 -> US, 0.0150/min, 60 s
FR_LANDLINE = "+33142685300"  # +33 -> FR, 0.0250/min, 60 s
GB_LANDLINE = "+442071234567"  # +44 -> GB, 0.0200/min, 60 s
MB = 1_000_000


# ---------------------------------------------------------------------------------------------
# Builders


def setup(
    mode: str = "postpaid",
    *,
    numbers: tuple[str, ...] = (NUM1,),
    recharge: str | None = None,
) -> Ledger:
    """A ledger with the default catalog, one account opened in 2026-11 and its numbers."""
    ledger = Ledger()
    events = [catalog_published(), opened(ACC, mode)]
    events += [event("number.added", ACC, "2026-11-01T09:30:00Z", msisdn=n) for n in numbers]
    if recharge is not None:
        events.append(event("balance.recharged", ACC, "2026-11-01T09:45:00Z", amount=recharge))
    feed_ok(ledger, *events)
    return ledger


def feed_ok(ledger: Ledger, *events: dict[str, Any]) -> None:
    counts = ledger.feed(*events)
    assert not counts.dead_letters, ledger.reasons()


def call(at: str, seconds: int, to: str = US, msisdn: str = NUM1) -> dict[str, Any]:
    return event(
        "call.completed",
        ACC,
        at,
        msisdn=msisdn,
        destination=to,
        duration_seconds=seconds,
        call_id=f"call-{msisdn}-{at}-{seconds}-{to}",
    )


def used(at: str, nbytes: int, msisdn: str = NUM1) -> dict[str, Any]:
    return event("data.used", ACC, at, msisdn=msisdn, bytes=nbytes, roaming=False)


def roamed(at: str, nbytes: int, country: str, msisdn: str = NUM1) -> dict[str, Any]:
    return event("data.used", ACC, at, msisdn=msisdn, bytes=nbytes, roaming=True, country=country)


def purchase(at: str, msisdn: str = NUM1, plan_id: str = "na-500") -> dict[str, Any]:
    return event("plan.purchased", ACC, at, msisdn=msisdn, plan_id=plan_id, channel="portal")


def subscribe(at: str, package_id: str, msisdn: str = NUM1) -> dict[str, Any]:
    return event("package.subscribed", ACC, at, msisdn=msisdn, package_id=package_id)


def cycle(period: str, event_id: str | None = None) -> dict[str, Any]:
    return event(
        "cycle.started",
        ACC,
        f"{period}-01T00:00:00Z",
        period=period,
        event_id=event_id or f"cycle-{period}",
    )


def recharged(amount: str, at: str) -> dict[str, Any]:
    return event("balance.recharged", ACC, at, amount=amount)


def surcharge(at: str, amount: str, kind: str, description: str, **fields: Any) -> dict[str, Any]:
    return event(
        "surcharge.applied", ACC, at, amount=amount, kind=kind, description=description, **fields
    )


def adjustment(at: str, amount: str, reason: str, approved_by: str) -> dict[str, Any]:
    return event(
        "adjustment.posted", ACC, at, amount=amount, reason=reason, approved_by=approved_by
    )


def port(type_: str, at: str, msisdn: str, **fields: Any) -> dict[str, Any]:
    return event(type_, ACC, at, msisdn=msisdn, **fields)


def invoice_of(ledger: Ledger, period: str) -> dict[str, Any]:
    doc = ledger.invoice(ACC, period)
    assert doc is not None, f"no invoice for {period}"
    return doc


def statements(ledger: Ledger) -> list[dict[str, Any]]:
    return read_invoices(ledger.views, ACC)


def statement_of(ledger: Ledger, period: str) -> dict[str, Any]:
    [doc] = read_invoices(ledger.views, ACC, period)
    return doc


def lines_of(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [line for line in doc["lines"] if line["kind"] == kind]


def only_line(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    lines = lines_of(doc, kind)
    assert len(lines) == 1, (kind, doc["lines"])
    return lines[0]


def summary(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(kind, msisdn, period, payer, exact_amount, amount) of each line, in invoice order."""
    return [
        (ln["kind"], ln["msisdn"], ln["period"], ln["payer"], ln["exact_amount"], ln["amount"])
        for ln in doc["lines"]
    ]


def all_invoices(ledger: Ledger) -> dict[str, dict[str, Any]]:
    return {f"{doc['account_id']}|{doc['period']}": doc for doc in read_invoices(ledger.views)}


def charges_of(ledger: Ledger, kind: str) -> list[dict[str, Any]]:
    return [c for c in ledger.charges(ACC) if c["kind"] == kind]


def last(ledger: Ledger) -> dict[str, Any]:
    return ledger.last_outcome(ACC)


def last_effects(ledger: Ledger) -> dict[str, Any]:
    *_, latest = ledger.app.account_events(ACC)
    assert isinstance(latest, Account.FactApplied)
    effects: dict[str, Any] = latest.outcome["effects"]
    return effects


def late_usage(ledger: Ledger, day: str, msisdn: str) -> list[dict[str, Any]]:
    """Records of `day` on the number that reach the ledger late: a 120 s call to the US, 1 MB
    of home data, a 60 s call to a French landline (no plan covers it: PAYG 0.0250). Each is
    applied; their effects, in order."""
    feed_ok(
        ledger,
        call(f"{day}T10:00:00Z", 120, US, msisdn),
        used(f"{day}T11:00:00Z", MB, msisdn),
        call(f"{day}T12:00:00Z", 60, FR_LANDLINE, msisdn),
    )
    outcomes = [e.outcome for e in list(ledger.app.account_events(ACC))[-3:]]
    assert [o["status"] for o in outcomes] == ["applied"] * 3
    return [o["effects"] for o in outcomes]


def numbers(ledger: Ledger) -> set[str]:
    return set(ledger.account(ACC).numbers)


# ---------------------------------------------------------------------------------------------
# I1: postpaid invoices, one per period; the bill run closes and opens them


def test_I1_cycle_started_closes_the_previous_invoice_and_opens_the_next_with_fees_in_advance() -> (
    None
):
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase("2026-11-05T12:00:00Z"),
        subscribe("2026-11-16T12:00:00Z", "data-5gb"),
        call("2026-11-20T10:00:00Z", 30, GB_LANDLINE),
    )
    november = invoice_of(ledger, "2026-11")
    assert (november["status"], november["closed_by"], november["closed_at"]) == (
        "open",
        None,
        None,
    )
    assert november["document"] == "invoice"

    feed_ok(ledger, cycle("2026-12", "bill-run-2026-12"))
    november = invoice_of(ledger, "2026-11")
    assert november["status"] == "closed"
    assert november["closed_by"] == "bill-run-2026-12"
    assert november["closed_at"] == "2026-12-01T00:00:00Z"
    # Plan 9.99 at purchase; data-5gb from Nov 16: 15 of 30 days left -> 15.00 x 15/30 = 7.50;
    # 30 s to GB -> 1 started minute x 0.0200 = 0.0200 -> 0.02. Total 9.99 + 7.50 + 0.02.
    assert summary(november) == [
        ("plan_fees", NUM1, "2026-11", "invoice", "9.9900", "9.99"),
        ("package_fees", NUM1, "2026-11", "invoice", "7.5000", "7.50"),
        ("payg_calls", NUM1, "2026-11", "invoice", "0.0200", "0.02"),
    ]
    assert november["total"] == "17.51"

    december = invoice_of(ledger, "2026-12")
    assert (december["status"], december["closed_by"], december["closed_at"]) == (
        "open",
        None,
        None,
    )
    # Fees in advance: the plan renews (V6, 9.99) and the package's full month (D4, 15.00).
    assert summary(december) == [
        ("plan_fees", NUM1, "2026-12", "invoice", "9.9900", "9.99"),
        ("package_fees", NUM1, "2026-12", "invoice", "15.0000", "15.00"),
    ]
    assert december["total"] == "24.99"
    assert only_line(december, "plan_fees")["event_ids"] == ["bill-run-2026-12"]
    assert only_line(december, "package_fees")["event_ids"] == ["bill-run-2026-12"]

    # Usage after the bill run lands on the new open invoice.
    feed_ok(ledger, call("2026-12-03T10:00:00Z", 30, GB_LANDLINE))
    assert only_line(invoice_of(ledger, "2026-12"), "payg_calls")["amount"] == "0.02"
    assert invoice_of(ledger, "2026-12")["total"] == "25.01"
    assert invoice_of(ledger, "2026-11") == november


def test_I1_a_repeated_cycle_started_is_rejected_and_changes_no_invoice() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, purchase("2026-11-05T12:00:00Z"), cycle("2026-12", "bill-run-1"))
    before = all_invoices(ledger)
    fees_before = charges_of(ledger, "plan_fee")

    feed_ok(ledger, cycle("2026-12", "bill-run-again"))
    outcome = last(ledger)
    assert (outcome["type"], outcome["status"]) == ("cycle.started", "rejected")
    assert "already started" in outcome["reason"]
    assert outcome["charges"] == []
    # An earlier period than the one started is rejected too.
    feed_ok(ledger, cycle("2026-11", "bill-run-november-again"))
    assert last(ledger)["status"] == "rejected"

    assert all_invoices(ledger) == before
    assert charges_of(ledger, "plan_fee") == fees_before  # no second renewal fee
    assert invoice_of(ledger, "2026-11")["closed_by"] == "bill-run-1"


def test_I1_skipped_periods_a_cycle_closes_every_earlier_open_invoice() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        call("2026-11-10T10:00:00Z", 60),
        cycle("2026-12", "bill-run-2026-12"),
        call("2026-12-10T10:00:00Z", 60),
        # A January record before any January bill run opens January's invoice.
        call("2027-01-10T10:00:00Z", 60),
    )
    assert invoice_of(ledger, "2026-12")["status"] == "open"
    assert invoice_of(ledger, "2027-01")["status"] == "open"

    feed_ok(ledger, cycle("2027-02", "bill-run-2027-02"))
    for period in ("2026-12", "2027-01"):
        doc = invoice_of(ledger, period)
        assert (doc["status"], doc["closed_by"], doc["closed_at"]) == (
            "closed",
            "bill-run-2027-02",
            "2027-02-01T00:00:00Z",
        )
        # Each keeps its own call: 60 s to US = 1 min x 0.0150 = 0.0150 -> 0.02.
        assert summary(doc) == [("payg_calls", NUM1, period, "invoice", "0.0150", "0.02")]
    # November was closed by December's bill run and stays so.
    assert invoice_of(ledger, "2026-11")["closed_by"] == "bill-run-2026-12"
    february = invoice_of(ledger, "2027-02")
    assert (february["status"], february["lines"], february["total"]) == ("open", [], "0.00")
    assert ledger.views.get("invoice_index", ACC) == {
        "billing_mode": "postpaid",
        "currency": "USD",
        "periods": {
            "2026-11": "closed",
            "2026-12": "closed",
            "2027-01": "closed",
            "2027-02": "open",
        },
    }


def test_I1_every_line_keeps_the_charge_ids_and_event_ids_behind_it() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z", NUM1),
        purchase("2026-11-02T10:05:00Z", NUM2),
        subscribe("2026-11-03T10:00:00Z", "data-1gb", NUM2),
        call(
            "2026-11-04T10:00:00Z",
            61,
            GB_LANDLINE,
            NUM1,
        ),
        call("2026-11-05T10:00:00Z", 30, GB_LANDLINE, NUM1),
        call("2026-11-05T11:00:00Z", 30, GB_LANDLINE, NUM2),
        used("2026-11-06T10:00:00Z", 2 * MB, NUM1),
        roamed("2026-11-07T10:00:00Z", MB, "FR", NUM1),
        surcharge("2026-11-08T10:00:00Z", "0.5000", "carrier", "Carrier recovery"),
        port("port_out.requested", "2026-11-09T10:00:00Z", NUM2),
        adjustment("2026-11-10T10:00:00Z", "-1.00", "Goodwill", "fin-1"),
        cycle("2026-12"),
        call("2026-11-29T10:00:00Z", 30, GB_LANDLINE, NUM1),  # late (B3)
    )
    history = ledger.history(ACC)
    ids = [c["charge_id"] for e in history for c in e["charges"]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"charge ids name more than one charge: {duplicates}"
    event_of = {c["charge_id"]: e["event_id"] for e in history for c in e["charges"]}
    amount_of = {c["charge_id"]: Decimal(c["amount"]) for e in history for c in e["charges"]}
    assert len(event_of) >= 12

    seen: list[str] = []
    for doc in all_invoices(ledger).values():
        for line in doc["lines"]:
            assert line["charge_ids"], line
            seen += line["charge_ids"]
            # The events behind the line are exactly those of its charges, in log order.
            expected_events = list(dict.fromkeys(event_of[c] for c in line["charge_ids"]))
            assert line["event_ids"] == expected_events, line
            exact = sum((amount_of[c] for c in line["charge_ids"]), start=Decimal(0))
            assert Decimal(line["exact_amount"]) == exact, line
    # Every charge is on exactly one line of one invoice.
    assert sorted(seen) == sorted(event_of)

    # Two calls of NUM1 share one line and keep both references.
    november = invoice_of(ledger, "2026-11")
    num1_calls = [ln for ln in lines_of(november, "payg_calls") if ln["msisdn"] == NUM1]
    assert len(num1_calls) == 1
    assert len(num1_calls[0]["charge_ids"]) == 2 and len(num1_calls[0]["event_ids"]) == 2


def busy_month(calls: int) -> list[dict[str, Any]]:
    """PAYG calls on two numbers, a minute apart from 2026-11-02, then the bill run."""
    start = parse_instant("2026-11-02T00:00:00Z", "at")
    return [
        call(instant_text(start + timedelta(minutes=n)), 60, US, (NUM1, NUM2)[n % 3 == 0])
        for n in range(calls)
    ] + [cycle("2026-12")]


def test_I1_a_busy_months_invoice_keeps_every_charge_id_and_is_written_alike_however_batched() -> (
    None
):
    """Charge ids past `CHARGES_PER_CHUNK` are filed in chunks of their own, so a batch
    rewrites a bounded invoice however busy the month; the lines read back whole, and the
    views are the same whether the month came in one batch or in uneven ones."""
    left = CHARGES_PER_CHUNK // 2 + 1  # the latest charges, after two chunks filed
    calls = 2 * CHARGES_PER_CHUNK + left
    month = busy_month(calls)
    at_once = setup(numbers=(NUM1, NUM2))
    feed_ok(at_once, *month)
    unevenly = setup(numbers=(NUM1, NUM2))
    for first in range(0, len(month), 7):
        feed_ok(unevenly, *month[first : first + 7])
    assert view_documents(unevenly.views) == view_documents(at_once.views)

    stored = at_once.views.get("invoices", f"{ACC}|2026-11")
    assert stored is not None
    assert (len(stored["charges"]), stored["charge_chunks"]) == (left, 2)
    filed = dict(at_once.views.scan("invoice_charges", f"{ACC}|"))
    assert list(filed) == [f"{ACC}|2026-11|000000", f"{ACC}|2026-11|000001"]
    # A chunk lists its charges by line, their ids as the line shows them: reading a busy
    # month back extends each line by them, not builds every id from its parts.
    first_chunk = [c["event_id"] for c in month[:CHARGES_PER_CHUNK]]
    on_num1 = [e["event_id"] for e in month[:CHARGES_PER_CHUNK] if e["msisdn"] == NUM1]
    on_num2 = [e for e in first_chunk if e not in on_num1]
    assert filed[f"{ACC}|2026-11|000000"] == {
        "lines": [  # in the order of each line's first charge in the chunk: NUM2 called first
            [0, [f"{e}:payg" for e in on_num2], on_num2],
            [1, [f"{e}:payg" for e in on_num1], on_num1],
        ]
    }
    # Nothing in the document grows with the month: the filed calls' ids are elsewhere.
    assert len(orjson.dumps(stored)) < 2_000 + 60 * CHARGES_PER_CHUNK

    november = invoice_of(at_once, "2026-11")
    assert november["status"] == "closed"
    assert "charges" not in november and "charge_chunks" not in november
    for number in (NUM1, NUM2):
        [line] = [ln for ln in lines_of(november, "payg_calls") if ln["msisdn"] == number]
        events = [e["event_id"] for e in month[:-1] if e["msisdn"] == number]
        assert line["event_ids"] == events
        assert line["charge_ids"] == [f"{e}:payg" for e in events]
        # 0.0150 a minute each, one minute each (US)
        assert line["exact_amount"] == str(Decimal("0.0150") * len(events))
        assert "line_id" not in line and "number" not in line


def test_I1_latest_charges_held_under_a_larger_chunk_are_filed_at_the_next_charge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Views written by a version that filed charges in larger chunks hold more latest charges
    than this one files at: the next charge files them all, and the document stays bounded."""
    ledger = setup(numbers=(NUM1, NUM2))
    month = busy_month(2 * CHARGES_PER_CHUNK)[:-1]  # no bill run: the invoice stays open
    monkeypatch.setattr(invoices, "CHARGES_PER_CHUNK", 4 * CHARGES_PER_CHUNK)
    feed_ok(ledger, *month[:-1])
    held = ledger.views.get("invoices", f"{ACC}|2026-11")
    assert held is not None
    assert (len(held["charges"]), held["charge_chunks"]) == (2 * CHARGES_PER_CHUNK - 1, 0)
    monkeypatch.undo()
    feed_ok(ledger, month[-1])
    filed = ledger.views.get("invoices", f"{ACC}|2026-11")
    assert filed is not None
    assert (filed["charges"], filed["charge_chunks"]) == ([], 1)
    shown = invoice_of(ledger, "2026-11")["lines"]
    assert sum(len(line["charge_ids"]) for line in shown) == 2 * CHARGES_PER_CHUNK


# Charges as an invoice lists them: [line number, event id, charge id after "<event id>:"].
# Few event ids, so one event's charges fall side by side on a line, and across chunks.
listed_charges = st.lists(
    st.tuples(
        st.integers(0, 2), st.sampled_from(["e1", "e2", "e:3"]), st.sampled_from(["a", "b:1"])
    ),
    max_size=60,
)


@given(charges=listed_charges, chunk_size=st.integers(1, 7))
def test_I1_an_invoice_reads_the_same_ids_however_its_charges_were_filed(
    charges: list[tuple[int, str, str]], chunk_size: int
) -> None:
    """Each line shows every charge id in order, and the ids of the events behind them, an
    event's once for its charges in a row, whether its charges were filed in chunks (of any
    size, split anywhere, an event's charges across two) or are still the latest."""
    doc = invoices.empty_invoice(ACC, "2026-11", "postpaid", "USD")
    on_lines = Counter(number for number, _, _ in charges)
    doc["lines"] = [
        [n, "payg_calls", f"+1415555010{n}", "2026-11", "invoice", "0", on_lines[n]]
        for n in range(3)
    ]
    listed = [list(charge) for charge in charges]
    latest = len(listed) % chunk_size
    filed = [
        invoices.filed_chunk(listed[first : first + chunk_size])
        for first in range(0, len(listed) - latest, chunk_size)
    ]
    doc["charges"], doc["charge_chunks"] = listed[len(listed) - latest :], len(filed)

    shown = invoices.published(doc, filed)["lines"]
    for number, line in enumerate(shown):
        on_line = [(event_id, after) for n, event_id, after in charges if n == number]
        assert line["charge_ids"] == [f"{event_id}:{after}" for event_id, after in on_line]
        assert line["charge_count"] == len(on_line)
        event_ids = [event_id for event_id, _ in on_line]
        assert line["event_ids"] == [
            e for i, e in enumerate(event_ids) if event_ids[i - 1 : i] != [e]
        ]


def test_I1_a_line_counting_other_charges_than_it_lists_is_caught_when_read() -> None:
    """A line's count of its charges is what its table shows: read with their ids, the two
    must agree, or the views are not what the ledger wrote."""
    doc = invoices.empty_invoice(ACC, "2026-11", "postpaid", "USD")
    doc["lines"] = [[0, "payg_calls", NUM1, "2026-11", "invoice", "0.0300", 2]]
    doc["charges"] = [[0, "e1", "payg"]]
    shown = f"PAYG calls, {NUM1} counts 2 charges and lists 1"
    with pytest.raises(AssertionError, match=re.escape(shown)):
        invoices.published(doc, [])


def test_I1_a_stored_invoice_holds_lines_amounts_and_keys_and_their_texts_are_written_read() -> (
    None
):
    """A batch rewrites the whole document of each invoice it charges, and PostgreSQL's work
    grows with its bytes: a stored line holds its exact sum and what tells it apart, without
    its fields' names, a charge its event id once; the texts, the shown amounts and the charge
    ids are put together when the invoice is read."""
    ledger = setup(numbers=(NUM1, NUM2))
    calls = busy_month(4)[:-1]  # on NUM2, NUM1, NUM1, NUM2
    fee = surcharge("2026-11-20T10:00:00Z", "1.25", "carrier", "Carrier cost recovery")
    feed_ok(ledger, *calls, fee)
    stored = ledger.views.get("invoices", f"{ACC}|2026-11")
    assert stored is not None
    first, second, third, fourth = (c["event_id"] for c in calls)
    # [number, kind, msisdn, period, payer, exact amount, charges (, charge kind, label,
    # charge id)]
    assert stored["lines"] == [  # in line order; numbered as they were made
        [1, "payg_calls", NUM1, "2026-11", "invoice", "0.0300", 2],
        [0, "payg_calls", NUM2, "2026-11", "invoice", "0.0300", 2],
        [
            *(2, "surcharges", None, "2026-11", "invoice", "1.2500", 1),
            *(None, "Carrier cost recovery", f"{fee['event_id']}:surcharge"),
        ],
    ]
    assert stored["charges"] == [
        [0, first, "payg"],
        [1, second, "payg"],
        [1, third, "payg"],
        [0, fourth, "payg"],
        [2, fee["event_id"], "surcharge"],
    ]
    shown = [
        (ln["description"], ln["amount"], ln["charge_ids"], ln["event_ids"])
        for ln in invoice_of(ledger, "2026-11")["lines"]
    ]
    assert shown == [
        (f"PAYG calls, {NUM1}", "0.03", [f"{second}:payg", f"{third}:payg"], [second, third]),
        (f"PAYG calls, {NUM2}", "0.03", [f"{first}:payg", f"{fourth}:payg"], [first, fourth]),
        (
            "Surcharges: Carrier cost recovery",
            "1.25",
            [f"{fee['event_id']}:surcharge"],
            [fee["event_id"]],
        ),
    ]


def test_I1_one_invoice_read_reads_its_own_chunks_of_charges_not_every_months() -> None:
    """A support query for one period reads that invoice's filed charges alone: an account's
    chunks pile up month after month, and its other invoices do not need them."""
    ledger = setup(numbers=(NUM1, NUM2))
    feed_ok(ledger, *busy_month(CHARGES_PER_CHUNK + 5))
    asked: list[str] = []
    scan = ledger.views.scan

    def recorded_scan(view: str, key_prefix: str = "") -> Any:
        if view == "invoice_charges":
            asked.append(key_prefix)
        return scan(view, key_prefix)

    ledger.views.scan = recorded_scan  # type: ignore[method-assign]
    [november] = read_invoices(ledger.views, ACC, "2026-11")
    [december] = read_invoices(ledger.views, ACC, "2026-12")
    assert asked == [f"{ACC}|2026-11|", f"{ACC}|2026-12|"]
    calls = lines_of(november, "payg_calls")
    assert sum(len(line["charge_ids"]) for line in calls) == CHARGES_PER_CHUNK + 5
    assert lines_of(december, "payg_calls") == []
    both = read_invoices(ledger.views, ACC)
    assert [doc["period"] for doc in both] == ["2026-11", "2026-12"]
    assert both[0] == november and asked[-1] == f"{ACC}|"


def test_I1_fees_in_advance_for_a_plan_and_a_package_on_one_number_have_distinct_charge_ids() -> (
    None
):
    """I1: each line references its charges; a charge id must name exactly one charge."""
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z"),
        subscribe("2026-11-02T11:00:00Z", "data-5gb"),
        cycle("2026-12", "bill-run-2026-12"),
    )
    renewal = last(ledger)["charges"]
    assert sorted((c["kind"], c["amount"]) for c in renewal) == [
        ("package_fee", "15.0000"),
        ("plan_fee", "9.9900"),
    ]
    december = invoice_of(ledger, "2026-12")
    plan_ids = only_line(december, "plan_fees")["charge_ids"]
    package_ids = only_line(december, "package_fees")["charge_ids"]
    assert len(plan_ids) == len(package_ids) == 1
    # The plan fee and the package fee are different charges: their ids must differ.
    assert plan_ids != package_ids, (plan_ids, package_ids)
    assert len({c["charge_id"] for c in renewal}) == 2


def test_I1_an_account_without_charges_has_an_empty_open_invoice() -> None:
    ledger = setup("postpaid")
    doc = invoice_of(ledger, "2026-11")
    assert doc["account_id"] == ACC and doc["period"] == "2026-11"
    assert (doc["document"], doc["status"], doc["lines"], doc["total"]) == (
        "invoice",
        "open",
        [],
        "0.00",
    )
    assert (doc["closed_by"], doc["closed_at"], doc["currency"]) == (None, None, "USD")
    # A prepaid account gets an empty statement that starts and ends at 0.
    prepaid = setup("prepaid")
    statement = statement_of(prepaid, "2026-11")
    assert (statement["document"], statement["lines"], statement["total"]) == (
        "statement",
        [],
        "0.00",
    )
    assert (statement["balance_start"], statement["balance_end"]) == ("0.0000", "0.0000")
    assert statement["recharges"] == []


# ---------------------------------------------------------------------------------------------
# I2: prepaid statements


def test_I2_prepaid_statement_lists_every_kind_and_the_balance_at_start_and_end() -> None:
    ledger = setup("prepaid", recharge="20.00")
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z"),
        subscribe("2026-11-02T11:00:00Z", "data-1gb"),
        call("2026-11-03T10:00:00Z", 61, GB_LANDLINE),
        used("2026-11-04T10:00:00Z", 0),  # covered by the package: no charge
        roamed("2026-11-04T12:00:00Z", MB, "FR"),
        recharged("5.00", "2026-11-05T10:00:00Z"),
        port("port_out.requested", "2026-11-06T10:00:00Z", NUM1),
        surcharge("2026-11-07T10:00:00Z", "1.2345", "carrier", "Carrier recovery fee"),
    )
    doc = statement_of(ledger, "2026-11")
    assert doc["document"] == "statement"
    # Plan fee 9.99 to the payment method (V2); data-1gb 5.00 from the balance (D7);
    # 61 s to GB -> 2 min x 0.0200 = 0.0400; 1 MB roaming in FR x 1.5000 = 1.5000;
    # port-out fee 15.00 and the surcharge 1.2345 to the payment method (I3).
    assert summary(doc) == [
        ("plan_fees", NUM1, "2026-11", "payment_method", "9.9900", "9.99"),
        ("package_fees", NUM1, "2026-11", "balance", "5.0000", "5.00"),
        ("payg_calls", NUM1, "2026-11", "balance", "0.0400", "0.04"),
        ("roaming", NUM1, "2026-11", "balance", "1.5000", "1.50"),
        ("one_time_fees", NUM1, "2026-11", "payment_method", "15.0000", "15.00"),
        ("surcharges", None, "2026-11", "payment_method", "1.2345", "1.23"),
    ]
    # 9.99 + 5.00 + 0.04 + 1.50 + 15.00 + 1.23
    assert doc["total"] == "32.76"
    assert "payment method" in only_line(doc, "plan_fees")["description"]
    assert "from balance" in only_line(doc, "package_fees")["description"]
    assert [r["amount"] for r in doc["recharges"]] == ["20.0000", "5.0000"]
    # 0 + 20.00 + 5.00 - 5.00 - 0.04 - 1.50 = 18.46
    assert (doc["balance_start"], doc["balance_end"]) == ("0.0000", "18.4600")
    assert doc["balance_change"] == "18.4600"
    assert ledger.balance(ACC) == "18.4600"


def test_I2_each_statement_starts_where_the_previous_ended_and_the_latest_ends_at_the_balance() -> (
    None
):
    ledger = setup("prepaid", recharge="10.00")
    feed_ok(
        ledger,
        call("2026-11-03T10:00:00Z", 120),  # 2 min x 0.0150 = 0.0300
        cycle("2026-12"),
        recharged("5.00", "2026-12-02T10:00:00Z"),
        used("2026-12-03T10:00:00Z", 3 * MB),  # 3 MB x 0.0500 = 0.1500
        call("2026-11-30T10:00:00Z", 60),  # late November call: 0.0150 on December's (B3)
        cycle("2027-01"),
        adjustment("2027-01-05T10:00:00Z", "-2.00", "Outage", "fin-1"),
        call("2027-01-06T10:00:00Z", 180),  # 3 min x 0.0150 = 0.0450
    )
    docs = statements(ledger)
    assert [d["period"] for d in docs] == ["2026-11", "2026-12", "2027-01"]
    assert [(d["balance_start"], d["balance_end"]) for d in docs] == [
        ("0.0000", "9.9700"),  # 10.00 - 0.0300
        ("9.9700", "14.8050"),  # + 5.00 - 0.1500 - 0.0150
        ("14.8050", "16.7600"),  # + 2.00 credit - 0.0450
    ]
    for previous, current in pairwise(docs):
        assert current["balance_start"] == previous["balance_end"]
    assert docs[-1]["balance_end"] == ledger.balance(ACC) == "16.7600"
    # Reading one period still gives its running balances, not a fresh start at 0.
    december = statement_of(ledger, "2026-12")
    assert (december["balance_start"], december["balance_end"]) == ("9.9700", "14.8050")


# ---------------------------------------------------------------------------------------------
# I3: who pays what


def test_I3_prepaid_fees_and_surcharges_never_move_the_balance_usage_and_packages_do() -> None:
    ledger = setup("prepaid", numbers=(NUM1, NUM2), recharge="50.00")
    steps: list[tuple[dict[str, Any], str]] = [
        (purchase("2026-11-02T10:00:00Z"), "50.0000"),  # plan fee: payment method
        (surcharge("2026-11-03T10:00:00Z", "2.00", "carrier", "Carrier fee"), "50.0000"),
        (surcharge("2026-11-03T11:00:00Z", "4.00", "tcr_registration", "TCR"), "50.0000"),
        (port("port_out.requested", "2026-11-04T10:00:00Z", NUM2), "50.0000"),  # port-out fee
        (subscribe("2026-11-05T10:00:00Z", "data-1gb"), "45.0000"),  # 50.00 - 5.00 (D7)
        (call("2026-11-06T10:00:00Z", 60, GB_LANDLINE), "44.9800"),  # - 0.0200
        (used("2026-11-07T10:00:00Z", 2 * MB, NUM2), "44.8800"),  # - 2 x 0.0500
        (roamed("2026-11-08T10:00:00Z", MB, "FR"), "43.3800"),  # - 1.5000
        (cycle("2026-12"), "43.3800"),  # the plan renews: payment method
    ]
    for fact, balance in steps:
        feed_ok(ledger, fact)
        assert ledger.balance(ACC) == balance, fact["type"]
    payers = {(c["kind"], c["payer"]) for c in ledger.charges(ACC)}
    assert payers == {
        ("plan_fee", "payment_method"),
        ("carrier_surcharge", "payment_method"),
        ("tcr_registration_fee", "payment_method"),
        ("port_out_fee", "payment_method"),
        ("package_fee", "balance"),
        ("payg_call", "balance"),
        ("payg_data", "balance"),
        ("roaming_data", "balance"),
    }


def test_I3_postpaid_everything_goes_on_the_invoice_and_the_balance_stays_zero() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z"),
        subscribe("2026-11-02T11:00:00Z", "data-1gb"),
        call("2026-11-03T10:00:00Z", 60, GB_LANDLINE),
        used("2026-11-04T10:00:00Z", 2 * MB, NUM2),
        roamed("2026-11-05T10:00:00Z", MB, "FR"),
        surcharge("2026-11-06T10:00:00Z", "2.00", "carrier", "Carrier fee"),
        port("port_out.requested", "2026-11-07T10:00:00Z", NUM2),
        adjustment("2026-11-08T10:00:00Z", "1.00", "Paper bill", "fin-1"),
        cycle("2026-12"),
    )
    assert ledger.balance(ACC) == "0.0000"
    assert {c["payer"] for c in ledger.charges(ACC)} == {"invoice"}
    november = invoice_of(ledger, "2026-11")
    assert {ln["payer"] for ln in november["lines"]} == {"invoice"}
    assert [ln["kind"] for ln in november["lines"]] == [
        "plan_fees",
        "package_fees",
        "payg_calls",
        "payg_data",
        "roaming",
        "one_time_fees",
        "surcharges",
        "adjustments",
    ]
    # data-1gb from Nov 2: 29 of 30 days -> 5.00 x 29/30 = 4.8333 -> 4.83 (D4).
    # 9.99 + 4.83 + 0.02 + 0.10 + 1.50 + 15.00 + 2.00 + 1.00
    assert november["total"] == "34.44"
    assert "balance_change" not in november and "recharges" not in november


# ---------------------------------------------------------------------------------------------
# M2: lines round their exact sums; the total sums the shown lines


def test_M2_the_total_is_the_sum_of_the_rounded_lines_not_the_rounded_sum() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2, NUM3))
    feed_ok(ledger, *(call("2026-11-03T10:00:00Z", 60, US, n) for n in (NUM1, NUM2, NUM3)))
    doc = invoice_of(ledger, "2026-11")
    # Three lines of one 1-minute US call each: 0.0150 -> 0.02 HALF_UP.
    assert [(ln["msisdn"], ln["exact_amount"], ln["amount"]) for ln in doc["lines"]] == [
        (NUM1, "0.0150", "0.02"),
        (NUM2, "0.0150", "0.02"),
        (NUM3, "0.0150", "0.02"),
    ]
    # 0.02 x 3 = 0.06 (rounding the exact sum 0.0450 would give 0.05).
    assert doc["total"] == "0.06"


def test_M2_a_line_rounds_its_exact_sum_not_each_charge() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, *(call(f"2026-11-0{d}T10:00:00Z", 60) for d in (3, 4, 5)))
    line = only_line(invoice_of(ledger, "2026-11"), "payg_calls")
    # 3 x 0.0150 = 0.0450 -> 0.05 (rounding each charge first would give 0.06).
    assert (line["exact_amount"], line["amount"]) == ("0.0450", "0.05")
    assert len(line["charge_ids"]) == 3
    assert invoice_of(ledger, "2026-11")["total"] == "0.05"


def test_M2_lines_round_half_up() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        call("2026-11-03T10:00:00Z", 60, FR_LANDLINE),  # 1 min x 0.0250 = 0.0250
        used("2026-11-04T10:00:00Z", 500_000, NUM2),  # 0.5 MB x 0.0500 = 0.0250
        surcharge("2026-11-05T10:00:00Z", "0.0050", "carrier", "Tiny fee"),
    )
    doc = invoice_of(ledger, "2026-11")
    # HALF_UP, not banker's rounding: 0.0250 -> 0.03 (HALF_EVEN would give 0.02).
    assert summary(doc) == [
        ("payg_calls", NUM1, "2026-11", "invoice", "0.0250", "0.03"),
        ("payg_data", NUM2, "2026-11", "invoice", "0.0250", "0.03"),
        ("surcharges", None, "2026-11", "invoice", "0.0050", "0.01"),
    ]
    assert doc["total"] == "0.07"


# ---------------------------------------------------------------------------------------------
# P1: port-in


def test_P1_port_in_request_adds_the_new_number_at_once_and_a_plan_can_be_bought_on_it() -> None:
    ledger = setup("prepaid", recharge="10.00")
    feed_ok(ledger, port("port_in.requested", "2026-11-02T10:00:00Z", NEW, ported_msisdn=PORTED))
    assert (last(ledger)["status"], last(ledger)["charges"]) == ("applied", [])
    assert numbers(ledger) == {NUM1, NEW}
    assert ledger.data(ACC, NEW) is not None

    feed_ok(
        ledger, purchase("2026-11-02T11:00:00Z", NEW), call("2026-11-03T10:00:00Z", 60, US, NEW)
    )
    assert last(ledger)["charges"] == []  # the call is on the new plan's minutes
    minutes = ledger.minutes(ACC, NEW, "2026-11")
    assert minutes is not None and (minutes["plan_id"], minutes["used"]) == ("na-500", 1)
    assert ledger.balance(ACC) == "10.0000"


def test_P1_completion_replaces_the_number_keeping_plan_minutes_package_and_balance() -> None:
    ledger = setup("prepaid", recharge="30.00")
    feed_ok(
        ledger,
        port("port_in.requested", "2026-11-02T10:00:00Z", NEW, ported_msisdn=PORTED),
        purchase("2026-11-02T11:00:00Z", NEW),
        subscribe("2026-11-02T12:00:00Z", "data-1gb", NEW),  # 30.00 - 5.00 = 25.00
        call("2026-11-03T10:00:00Z", 95, US, NEW),  # 2 plan minutes
        used("2026-11-03T11:00:00Z", 100 * MB, NEW),  # from the package
    )
    charges_before = len(ledger.charges(ACC))
    feed_ok(ledger, port("port_in.completed", "2026-11-10T10:00:00Z", NEW, ported_msisdn=PORTED))
    assert (last(ledger)["status"], last(ledger)["charges"]) == ("applied", [])
    assert len(ledger.charges(ACC)) == charges_before
    assert numbers(ledger) == {NUM1, PORTED}
    assert ledger.balance(ACC) == "25.0000"

    # The minutes view moved to the ported number with what was used.
    assert ledger.minutes(ACC, NEW, "2026-11") is None
    minutes = ledger.minutes(ACC, PORTED, "2026-11")
    assert minutes is not None
    assert (minutes["msisdn"], minutes["plan_id"], minutes["used"], minutes["remaining"]) == (
        PORTED,
        "na-500",
        2,
        498,
    )
    assert ledger.views.get("plans", f"{ACC}|{NEW}") is None
    assert ledger.views.get("plans", f"{ACC}|{PORTED}") is not None
    # The data view moved too: 1,000,000,000 - 100,000,000 left.
    assert ledger.data(ACC, NEW) is None and ledger.throttle(ACC, NEW) is None
    data = ledger.data(ACC, PORTED)
    assert data is not None
    assert (data["msisdn"], data["package_id"], data["remaining_bytes"]) == (
        PORTED,
        "data-1gb",
        900_000_000,
    )
    throttle = ledger.throttle(ACC, PORTED)
    assert throttle is not None and throttle["msisdn"] == PORTED

    # The ported number uses the same plan minutes and package data.
    feed_ok(
        ledger,
        call("2026-11-11T10:00:00Z", 60, US, PORTED),
        used("2026-11-11T11:00:00Z", MB, PORTED),
    )
    minutes = ledger.minutes(ACC, PORTED, "2026-11")
    assert minutes is not None and minutes["used"] == 3
    data = ledger.data(ACC, PORTED)
    assert data is not None and data["remaining_bytes"] == 899_000_000
    assert ledger.balance(ACC) == "25.0000"

    # Usage for the old number is now invalid input (dead-lettered).
    counts = ledger.feed(
        call("2026-11-12T10:00:00Z", 60, US, NEW), used("2026-11-12T11:00:00Z", MB, NEW)
    )
    assert len(counts.dead_letters) == 2
    assert (
        ledger.reasons()
        == [
            f"number {NEW} was replaced by the ported number {PORTED} at 2026-11-10T10:00:00Z: "
            "only its usage and surcharges dated before that are still rated"
        ]
        * 2
    )

    # The plan renews on the ported number at the next period start (V6).
    feed_ok(ledger, cycle("2026-12"))
    fee = only_line(invoice_of(ledger, "2026-12"), "plan_fees")
    assert (fee["msisdn"], fee["amount"]) == (PORTED, "9.99")


def ported_in_with_plan_and_package() -> Ledger:
    """A prepaid account (30.00) whose new number NEW, with na-500 and data-1gb (25.00 left)
    and 2 plan minutes used, is replaced by PORTED on 10 November."""
    ledger = setup("prepaid", recharge="30.00")
    feed_ok(
        ledger,
        port("port_in.requested", "2026-11-02T10:00:00Z", NEW, ported_msisdn=PORTED),
        purchase("2026-11-02T11:00:00Z", NEW),
        subscribe("2026-11-02T12:00:00Z", "data-1gb", NEW),
        call("2026-11-03T10:00:00Z", 95, US, NEW),
        port("port_in.completed", "2026-11-10T10:00:00Z", NEW, ported_msisdn=PORTED),
    )
    return ledger


def test_P1_T2_usage_of_the_new_number_dated_before_the_completion_is_rated_on_the_ported_one() -> (
    None
):
    ledger = ported_in_with_plan_and_package()
    # Records of 9 November on the new number reach the ledger after the completion (the
    # switch's records lag the carrier's): rated on the ported number, which holds the plan
    # and package they used, not dead-lettered.
    effects = late_usage(ledger, "2026-11-09", NEW)
    assert all(e["ported_in_as"] == PORTED for e in effects)
    assert (effects[0]["plan_seconds"], effects[1]["package_bytes"]) == (120, MB)
    number = ledger.account(ACC).numbers[PORTED]
    assert number.minute_batches["2026-11"].used_seconds == 120 + 120  # 95 s is 2 minutes
    # The views are the ported number's: 2 + 2 minutes used, 1 GB - 1 MB left.
    minutes = ledger.minutes(ACC, PORTED, "2026-11")
    assert minutes is not None and (minutes["used"], minutes["remaining"]) == (4, 496)
    data = ledger.data(ACC, PORTED)
    assert data is not None and data["remaining_bytes"] == 1_000_000_000 - MB
    assert ledger.minutes(ACC, NEW, "2026-11") is None
    assert ledger.data(ACC, NEW) is None and ledger.throttle(ACC, NEW) is None
    # Charged after the completion, so on the ported number's line (as the later fees are).
    [payg] = charges_of(ledger, "payg_call")
    assert (payg["amount"], payg["msisdn"], payg["payer"]) == ("0.0250", PORTED, "balance")
    line = only_line(statement_of(ledger, "2026-11"), "payg_calls")
    assert (line["msisdn"], line["amount"]) == (PORTED, "0.03")
    assert ledger.balance(ACC) == "24.9750"
    # A dispute of it replays the record the same way: rated as charged, denied.
    feed_ok(
        ledger,
        event(
            "refund.requested", ACC, "2026-11-12T10:00:00Z", charge_id=payg["charge_id"], reason="x"
        ),
    )
    assert last_effects(ledger)["decision"] == "denied"
    # One dated after the completion names a number the account no longer has.
    counts = ledger.feed(call("2026-11-10T10:00:00Z", 60, US, NEW))
    assert len(counts.dead_letters) == 1
    assert ledger.reasons() == [
        f"number {NEW} was replaced by the ported number {PORTED} at 2026-11-10T10:00:00Z: only "
        "its usage and surcharges dated before that are still rated"
    ]
    ledger.assert_replay_matches()


def test_P1_T2_a_late_record_of_the_new_number_follows_the_ported_number_out() -> None:
    ledger = ported_in_with_plan_and_package()
    feed_ok(ledger, port("port_out.completed", "2026-11-20T10:00:00Z", PORTED))
    feed_ok(ledger, call("2026-11-09T10:00:00Z", 120, US, NEW))
    effects = last_effects(ledger)
    assert (effects["ported_in_as"], effects["ported_out_at"], effects["plan_seconds"]) == (
        PORTED,
        "2026-11-20T10:00:00Z",
        120,
    )
    gone = ledger.account(ACC).ported_out[PORTED]
    assert gone.minute_batches["2026-11"].used_seconds == 120 + 120
    assert ledger.minutes(ACC, PORTED, "2026-11") is None  # its views left with it
    assert ledger.minutes(ACC, NEW, "2026-11") is None
    ledger.assert_replay_matches()


def test_P1_a_new_number_given_to_the_account_again_is_a_new_number() -> None:
    ledger = ported_in_with_plan_and_package()
    feed_ok(ledger, event("number.added", ACC, "2026-11-25T10:00:00Z", msisdn=NEW))
    assert NEW not in ledger.account(ACC).ported_in
    # Usage dated before the completion now finds the number without a plan: PAYG on it.
    feed_ok(ledger, call("2026-11-09T10:00:00Z", 60, US, NEW))
    assert "ported_in_as" not in last_effects(ledger)
    [payg] = charges_of(ledger, "payg_call")
    assert (payg["amount"], payg["msisdn"]) == ("0.0150", NEW)
    ledger.assert_replay_matches()


def test_P1_only_the_latest_port_ins_are_kept_for_late_usage() -> None:
    kept = MAX_PORTED_IN_KEPT
    new = [f"+1415556{n:04d}" for n in range(kept + 1)]  # one more than kept
    ported = [f"+1312557{n:04d}" for n in range(kept + 1)]
    ledger = setup("postpaid")
    for n, (temporary, number) in enumerate(zip(new, ported, strict=True)):
        feed_ok(
            ledger,
            port(
                "port_in.requested", f"2026-11-02T10:{n:02d}:00Z", temporary, ported_msisdn=number
            ),
            port(
                "port_in.completed", f"2026-11-20T10:{n:02d}:00Z", temporary, ported_msisdn=number
            ),
        )
    assert list(ledger.account(ACC).ported_in) == new[1:]
    counts = ledger.feed(
        call("2026-11-19T10:00:00Z", 60, US, new[0]), call("2026-11-19T10:00:00Z", 60, US, new[1])
    )
    assert len(counts.dead_letters) == 1
    assert ledger.reasons() == [f"unknown number {new[0]} on account {ACC}"]
    assert last_effects(ledger)["ported_in_as"] == ported[1]


def test_P1_postpaid_ported_number_keeps_the_throttle_and_renews_on_the_ported_number() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        port("port_in.requested", "2026-11-02T10:00:00Z", NEW, ported_msisdn=PORTED),
        purchase("2026-11-02T11:00:00Z", NEW),
        subscribe("2026-11-02T12:00:00Z", "data-unlimited", NEW),  # 30.00, not prorated
        used("2026-11-03T10:00:00Z", 2_300_000_000, NEW),  # past 2.2 GB: throttled (D3)
        port("port_in.completed", "2026-11-10T10:00:00Z", NEW, ported_msisdn=PORTED),
    )
    throttle = ledger.throttle(ACC, PORTED)
    assert throttle is not None
    assert (throttle["msisdn"], throttle["throttled"], throttle["fup_used_bytes"]) == (
        PORTED,
        True,
        2_300_000_000,
    )
    feed_ok(ledger, cycle("2026-12"))
    december = invoice_of(ledger, "2026-12")
    assert summary(december) == [
        ("plan_fees", PORTED, "2026-12", "invoice", "9.9900", "9.99"),
        ("package_fees", PORTED, "2026-12", "invoice", "30.0000", "30.00"),
    ]
    # November's lines keep the number the charges were made on.
    assert {ln["msisdn"] for ln in invoice_of(ledger, "2026-11")["lines"]} == {NEW}
    assert ledger.balance(ACC) == "0.0000"


def test_P1_completion_moves_every_minutes_view_of_the_new_number_to_the_ported_one() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        port("port_in.requested", "2026-11-02T10:00:00Z", NEW, ported_msisdn=PORTED),
        purchase("2026-11-02T11:00:00Z", NEW),
        cycle("2026-12"),
        cycle("2027-01"),
        cycle("2027-02"),
        port("port_in.completed", "2027-02-10T10:00:00Z", NEW, ported_msisdn=PORTED),
    )
    keys = sorted(key for key, _ in ledger.views.scan("minutes", f"{ACC}|"))
    # The number NEW is gone from the account: no view may still be filed under it.
    assert [k for k in keys if f"|{NEW}|" in k] == []
    assert keys == [f"{ACC}|{PORTED}|{p}" for p in ("2026-11", "2026-12", "2027-01", "2027-02")]


def test_P1_failure_keeps_the_new_number_and_charges_nothing() -> None:
    ledger = setup("prepaid", recharge="10.00")
    feed_ok(
        ledger,
        port("port_in.requested", "2026-11-02T10:00:00Z", NEW, ported_msisdn=PORTED),
        purchase("2026-11-02T11:00:00Z", NEW),
        port("port_in.failed", "2026-11-05T10:00:00Z", NEW, ported_msisdn=PORTED),
    )
    assert (last(ledger)["status"], last(ledger)["charges"]) == ("applied", [])
    assert numbers(ledger) == {NUM1, NEW}
    assert ledger.minutes(ACC, NEW, "2026-11") is not None
    assert ledger.balance(ACC) == "10.0000"
    assert [c["kind"] for c in ledger.charges(ACC)] == ["plan_fee"]  # no refund, no fee
    # The failed port cannot complete afterwards.
    feed_ok(ledger, port("port_in.completed", "2026-11-06T10:00:00Z", NEW, ported_msisdn=PORTED))
    assert last(ledger)["status"] == "rejected"
    assert numbers(ledger) == {NUM1, NEW}
    # The ported number never joined: usage for it is dead-lettered.
    counts = ledger.feed(call("2026-11-07T10:00:00Z", 60, US, PORTED))
    assert len(counts.dead_letters) == 1
    assert f"unknown number {PORTED}" in ledger.reasons()[0]


def test_P1_completion_without_a_pending_request_is_rejected_and_nothing_moves() -> None:
    ledger = setup("prepaid", recharge="10.00")
    feed_ok(ledger, purchase("2026-11-02T10:00:00Z"))
    before = ledger.all_views()
    feed_ok(ledger, port("port_in.completed", "2026-11-05T10:00:00Z", NUM1, ported_msisdn=PORTED))
    outcome = last(ledger)
    assert (outcome["status"], outcome["rule"]) == ("rejected", "P1")
    assert "no port-in" in outcome["reason"]
    assert numbers(ledger) == {NUM1}
    assert ledger.all_views() == before


def test_P1_a_ported_number_already_on_the_account_is_rejected() -> None:
    ledger = setup("prepaid", numbers=(NUM1, NUM2))
    before = ledger.all_views()
    # At the request: the number to port in is already the account's.
    feed_ok(ledger, port("port_in.requested", "2026-11-02T10:00:00Z", NEW, ported_msisdn=NUM2))
    assert (last(ledger)["status"], last(ledger)["rule"]) == ("rejected", "P1")
    assert "already on account" in last(ledger)["reason"]
    assert numbers(ledger) == {NUM1, NUM2}
    assert ledger.all_views() == before
    # At completion: it joined the account in the meantime.
    feed_ok(
        ledger,
        port("port_in.requested", "2026-11-03T10:00:00Z", NEW, ported_msisdn=PORTED),
        event("number.added", ACC, "2026-11-04T10:00:00Z", msisdn=PORTED),
        port("port_in.completed", "2026-11-05T10:00:00Z", NEW, ported_msisdn=PORTED),
    )
    assert (last(ledger)["status"], last(ledger)["rule"]) == ("rejected", "P1")
    assert numbers(ledger) == {NUM1, NUM2, NEW, PORTED}
    assert ledger.charges(ACC) == []


# ---------------------------------------------------------------------------------------------
# P2: port-out


def test_P2_port_out_request_charges_the_fee_once() -> None:
    ledger = setup("prepaid", recharge="10.00")
    feed_ok(ledger, port("port_out.requested", "2026-11-05T10:00:00Z", NUM1))
    [fee] = last(ledger)["charges"]
    assert (fee["kind"], fee["amount"], fee["payer"], fee["msisdn"], fee["rule"]) == (
        "port_out_fee",
        "15.0000",
        "payment_method",
        NUM1,
        "P2",
    )
    assert ledger.balance(ACC) == "10.0000"  # paid through the payment method (I3)
    feed_ok(ledger, port("port_out.requested", "2026-11-06T10:00:00Z", NUM1))
    assert (last(ledger)["status"], last(ledger)["charges"]) == ("rejected", [])
    assert len(charges_of(ledger, "port_out_fee")) == 1
    line = only_line(statement_of(ledger, "2026-11"), "one_time_fees")
    assert (line["amount"], line["msisdn"], len(line["charge_ids"])) == ("15.00", NUM1, 1)
    assert ledger.balance(ACC) == "10.0000"


def test_P2_postpaid_port_out_fee_goes_on_the_invoice() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, port("port_out.requested", "2026-11-05T10:00:00Z", NUM1))
    doc = invoice_of(ledger, "2026-11")
    assert summary(doc) == [("one_time_fees", NUM1, "2026-11", "invoice", "15.0000", "15.00")]
    assert doc["total"] == "15.00"
    assert ledger.balance(ACC) == "0.0000"


def test_P2_completion_removes_the_number_and_ends_its_billing() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z", NUM1),
        purchase("2026-11-02T10:05:00Z", NUM2),
        subscribe("2026-11-02T11:00:00Z", "data-5gb", NUM1),
        call("2026-11-03T10:00:00Z", 60, US, NUM1),
        port("port_out.requested", "2026-11-10T10:00:00Z", NUM1),
        port("port_out.completed", "2026-11-20T10:00:00Z", NUM1),
    )
    outcome = last(ledger)
    assert (outcome["status"], outcome["charges"]) == ("applied", [])  # fee charged at request
    assert numbers(ledger) == {NUM2}
    # Its plan and package views are gone; the other number's stay.
    assert ledger.minutes(ACC, NUM1, "2026-11") is None
    assert ledger.views.get("plans", f"{ACC}|{NUM1}") is None
    assert ledger.data(ACC, NUM1) is None and ledger.throttle(ACC, NUM1) is None
    assert ledger.minutes(ACC, NUM2, "2026-11") is not None

    # Next bill run: only NUM2's plan renews; no fee for NUM1's plan or package.
    feed_ok(ledger, cycle("2026-12"))
    december = invoice_of(ledger, "2026-12")
    assert summary(december) == [("plan_fees", NUM2, "2026-12", "invoice", "9.9900", "9.99")]
    assert december["total"] == "9.99"
    assert len(charges_of(ledger, "port_out_fee")) == 1

    # Later usage for it is invalid input.
    counts = ledger.feed(
        call("2026-12-03T10:00:00Z", 60, US, NUM1), used("2026-12-03T11:00:00Z", MB, NUM1)
    )
    assert len(counts.dead_letters) == 2
    assert (
        ledger.reasons()
        == [
            f"number {NUM1} was ported out of account {ACC} at 2026-11-20T10:00:00Z: only its "
            "usage and surcharges dated before that are still rated"
        ]
        * 2
    )
    assert invoice_of(ledger, "2026-12") == december


def test_P2_T2_usage_dated_before_the_port_out_but_logged_after_is_rated_on_the_number() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z", NUM1),
        subscribe("2026-11-02T11:00:00Z", "data-5gb", NUM1),
        call("2026-11-03T10:00:00Z", 60, US, NUM1),
        port("port_out.completed", "2026-11-20T10:00:00Z", NUM1),
    )
    november = invoice_of(ledger, "2026-11")
    # A call and data records of 19 November reach the ledger after the port-out: they are
    # rated as the number stood, from its plan minutes and package data, not dead-lettered.
    effects = late_usage(ledger, "2026-11-19", NUM1)
    assert (effects[0]["plan_seconds"], effects[1]["package_bytes"]) == (120, MB)
    assert all(e["ported_out_at"] == "2026-11-20T10:00:00Z" for e in effects)
    number = ledger.account(ACC).ported_out[NUM1]
    assert number.minute_batches["2026-11"].used_seconds == 180
    # The package was prorated on 2 November (D4): 29/30 x 5 GB = 4,833,333,333 bytes.
    assert number.package is not None and number.package.remaining_bytes == 4_833_333_333 - MB
    # Its views left with it and stay gone; the PAYG call is on the invoice.
    assert ledger.minutes(ACC, NUM1, "2026-11") is None and ledger.data(ACC, NUM1) is None
    assert [c["amount"] for c in charges_of(ledger, "payg_call")] == ["0.0250"]
    assert Decimal(invoice_of(ledger, "2026-11")["total"]) == Decimal(november["total"]) + Decimal(
        "0.03"
    )
    # One dated after the port-out is not the account's.
    counts = ledger.feed(call("2026-11-21T10:00:00Z", 60, US, NUM1))
    assert len(counts.dead_letters) == 1 and "was ported out of account" in ledger.reasons()[0]
    ledger.assert_replay_matches()


def test_P2_S1_T2_a_surcharge_dated_before_the_port_out_but_logged_after_is_charged() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(ledger, port("port_out.completed", "2026-11-20T10:00:00Z", NUM1))
    # The carrier's TCR registration fee of 5 November reaches the ledger after the port-out:
    # it concerns the time the number was on the account, so it is charged as given (S1),
    # like a call of that day (it used to be dead-lettered while the call was charged).
    feed_ok(
        ledger,
        surcharge(
            "2026-11-05T10:00:00Z", "4.00", "tcr_registration", "TCR registration", msisdn=NUM1
        ),
    )
    [fee] = charges_of(ledger, "tcr_registration_fee")
    assert (fee["amount"], fee["msisdn"], fee["rule"]) == ("4.0000", NUM1, "S1")
    assert only_line(invoice_of(ledger, "2026-11"), "surcharges")["amount"] == "4.00"
    # One dated after the port-out is not the account's.
    counts = ledger.feed(
        surcharge("2026-11-21T10:00:00Z", "4.00", "carrier", "Carrier fee", msisdn=NUM1)
    )
    assert counts.dead_letters and ledger.reasons() == [
        f"number {NUM1} was ported out of account {ACC} at 2026-11-20T10:00:00Z: only its "
        "usage and surcharges dated before that are still rated"
    ]
    ledger.assert_replay_matches()


def test_P1_S1_T2_a_surcharge_of_the_new_number_before_the_completion_goes_to_the_ported_one() -> (
    None
):
    ledger = ported_in_with_plan_and_package()
    feed_ok(
        ledger,
        surcharge("2026-11-04T10:00:00Z", "1.25", "carrier", "Carrier recovery", msisdn=NEW),
    )
    [fee] = charges_of(ledger, "carrier_surcharge")
    # Charged as given to the payment method (prepaid, I3), on the number that replaced it.
    assert (fee["amount"], fee["msisdn"], fee["payer"]) == ("1.2500", PORTED, "payment_method")
    counts = ledger.feed(
        surcharge("2026-11-11T10:00:00Z", "1.25", "carrier", "Carrier recovery", msisdn=NEW)
    )
    assert counts.dead_letters and "was replaced by the ported number" in ledger.reasons()[0]
    ledger.assert_replay_matches()


def test_P2_a_number_added_again_after_its_port_out_is_a_new_number() -> None:
    ledger = setup("postpaid", numbers=(NUM1,))
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z", NUM1),
        port("port_out.completed", "2026-11-20T10:00:00Z", NUM1),
        event("number.added", ACC, "2026-11-25T10:00:00Z", msisdn=NUM1),
    )
    assert NUM1 not in ledger.account(ACC).ported_out
    # Usage dated before the port-out now finds the number without the plan it had: PAYG.
    feed_ok(ledger, call("2026-11-19T10:00:00Z", 60, US, NUM1))
    assert [c["amount"] for c in charges_of(ledger, "payg_call")] == ["0.0150"]
    ledger.assert_replay_matches()


def test_P2_only_the_latest_port_outs_are_kept_for_late_usage() -> None:
    kept = MAX_PORTED_OUT_KEPT
    gone = [f"+1415555{n:04d}" for n in range(200, 201 + kept)]  # one more than kept
    ledger = setup("postpaid", numbers=tuple(gone))
    feed_ok(
        ledger,
        *(
            port("port_out.completed", f"2026-11-20T10:{n:02d}:00Z", msisdn)
            for n, msisdn in enumerate(gone)
        ),
    )
    assert list(ledger.account(ACC).ported_out) == gone[1:]
    counts = ledger.feed(
        call("2026-11-19T10:00:00Z", 60, US, gone[0]), call("2026-11-19T10:00:00Z", 60, US, gone[1])
    )
    assert len(counts.dead_letters) == 1
    assert ledger.reasons() == [f"unknown number {gone[0]} on account {ACC}"]


def test_P2_completion_removes_every_minutes_view_of_the_number() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z", NUM1),
        cycle("2026-12"),
        cycle("2027-01"),
        cycle("2027-02"),
        port("port_out.completed", "2027-02-10T10:00:00Z", NUM1),
    )
    assert numbers(ledger) == {NUM2}
    # Four periods of minutes were granted; none may survive the number leaving.
    leftover = sorted(key for key, _ in ledger.views.scan("minutes", f"{ACC}|{NUM1}|"))
    assert leftover == []


def test_P2_T2_a_completion_logged_after_the_bill_run_credits_the_renewals_made_since() -> None:
    ledger = setup("postpaid", numbers=(NUM1, NUM2))
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z", NUM1),
        purchase("2026-11-02T10:05:00Z", NUM2),
        subscribe("2026-11-02T11:00:00Z", "data-5gb", NUM1),  # 29/30 x 15.00 = 14.5000
        port("port_out.requested", "2026-11-20T10:00:00Z", NUM1),  # 15.00
        cycle("2026-12"),  # renews both plans (9.99 each) and NUM1's package (15.00)
        call("2026-12-02T10:00:00Z", 60, US, NUM2),
        # The carrier's completion, dated 28 November, reaches the ledger after the bill run.
        port("port_out.completed", "2026-11-28T10:00:00Z", NUM1),
    )
    # Billing for NUM1 stopped on 28 November: December's renewals of its plan and package
    # are credited in full, each on a line of its own that says why.
    credits = [c for c in last(ledger)["charges"] if c["amount"].startswith("-")]
    assert [(c["kind"], c["amount"], c["rule"], c["period"]) for c in credits] == [
        ("plan_fee", "-9.9900", "P2", "2026-12"),
        ("package_fee", "-15.0000", "P2", "2026-12"),
    ]
    assert numbers(ledger) == {NUM2}
    december = invoice_of(ledger, "2026-12")
    # 9.99 + 9.99 + 15.00 - 9.99 - 15.00 = 9.99: only NUM2's plan is left to pay.
    assert december["total"] == "9.99"
    credit_lines = [ln for ln in december["lines"] if ln["kind"] == "credits"]
    assert len(credit_lines) == 2
    assert all("ported out at 2026-11-28T10:00:00Z" in ln["description"] for ln in credit_lines)
    # The credited renewals are settled: a dispute of one is denied as already credited.
    renewal = f"cycle-2026-12:plan_fee:{NUM1}"
    feed_ok(
        ledger,
        event("refund.requested", ACC, "2026-12-05T10:00:00Z", charge_id=renewal, reason="x"),
    )
    *_, decision = ledger.app.account_events(ACC)
    assert isinstance(decision, Account.FactApplied)
    assert decision.outcome["effects"]["decision"] == "denied"
    assert "already credited" in decision.outcome["effects"]["evidence"]
    assert invoice_of(ledger, "2026-12")["total"] == "9.99"
    ledger.assert_replay_matches()


def test_P2_completion_without_a_request_charges_the_fee_at_completion() -> None:
    ledger = setup("prepaid", numbers=(NUM1, NUM2), recharge="10.00")
    feed_ok(ledger, port("port_out.completed", "2026-11-20T10:00:00Z", NUM1))
    [fee] = last(ledger)["charges"]
    assert (fee["kind"], fee["amount"], fee["payer"]) == (
        "port_out_fee",
        "15.0000",
        "payment_method",
    )
    assert numbers(ledger) == {NUM2}
    assert ledger.balance(ACC) == "10.0000"
    assert only_line(statement_of(ledger, "2026-11"), "one_time_fees")["amount"] == "15.00"


# ---------------------------------------------------------------------------------------------
# S1: surcharges


def test_S1_surcharges_are_charged_exactly_as_given_on_their_own_lines_postpaid() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        surcharge("2026-11-20T10:00:00Z", "1.2345", "carrier", "Carrier recovery fee"),
        surcharge("2026-11-25T10:00:00Z", "4.00", "tcr_registration", "TCR brand fee", msisdn=NUM1),
        surcharge("2026-11-26T10:00:00Z", "1.2345", "carrier", "Carrier recovery fee"),
    )
    kinds = [(c["kind"], c["amount"], c["msisdn"], c["rule"]) for c in ledger.charges(ACC)]
    # As given to the cent and below, never prorated by the days left (Nov 20, Nov 25).
    assert kinds == [
        ("carrier_surcharge", "1.2345", None, "S1"),
        ("tcr_registration_fee", "4.0000", NUM1, "S1"),
        ("carrier_surcharge", "1.2345", None, "S1"),
    ]
    doc = invoice_of(ledger, "2026-11")
    lines = lines_of(doc, "surcharges")
    assert len(lines) == 3  # one line each, even with the same description
    assert sorted((ln["msisdn"] or "", ln["exact_amount"], ln["amount"]) for ln in lines) == [
        ("", "1.2345", "1.23"),
        ("", "1.2345", "1.23"),
        (NUM1, "4.0000", "4.00"),
    ]
    for ln in lines:
        assert ln["payer"] == "invoice"
        assert len(ln["charge_ids"]) == 1
    descriptions = sorted(ln["description"] for ln in lines)
    assert sum("Carrier recovery fee" in d for d in descriptions) == 2
    tcr = next(ln for ln in lines if ln["msisdn"] == NUM1)
    assert "TCR brand fee" in tcr["description"] and NUM1 in tcr["description"]
    assert doc["total"] == "6.46"  # 1.23 + 4.00 + 1.23


def test_S1_prepaid_surcharges_are_paid_through_the_payment_method() -> None:
    ledger = setup("prepaid", recharge="3.00")
    feed_ok(
        ledger,
        surcharge("2026-11-20T10:00:00Z", "1.2345", "carrier", "Carrier recovery fee"),
        surcharge("2026-11-21T10:00:00Z", "10.00", "tcr_registration", "TCR fee", msisdn=NUM1),
    )
    assert {c["payer"] for c in ledger.charges(ACC)} == {"payment_method"}
    assert ledger.balance(ACC) == "3.0000"  # even a surcharge above the balance never touches it
    doc = statement_of(ledger, "2026-11")
    assert [(ln["kind"], ln["payer"], ln["amount"]) for ln in doc["lines"]] == [
        ("surcharges", "payment_method", "1.23"),
        ("surcharges", "payment_method", "10.00"),
    ]
    assert (doc["balance_start"], doc["balance_end"]) == ("0.0000", "3.0000")


def test_S1_a_surcharge_for_a_number_not_on_the_account_is_dead_lettered() -> None:
    ledger = setup("postpaid")
    counts = ledger.feed(surcharge("2026-11-20T10:00:00Z", "1.00", "carrier", "Fee", msisdn=NUM2))
    assert len(counts.dead_letters) == 1
    assert f"unknown number {NUM2}" in ledger.reasons()[0]
    assert invoice_of(ledger, "2026-11")["lines"] == []


# ---------------------------------------------------------------------------------------------
# B2: blocked accounts


def test_B2_a_blocked_accounts_usage_is_still_recorded_charged_and_billed() -> None:
    ledger = setup("prepaid", recharge="5.00")
    feed_ok(ledger, event("account.blocked", ACC, "2026-11-02T10:00:00Z", reason="AUP: spam"))
    answer = authorize(
        ledger.account(ACC),
        NUM1,
        US,
        parse_instant("2026-11-03T10:00:00Z", "at"),
        ledger.app.catalogs(),
    )
    assert (answer.allowed, answer.seconds) == (False, 0)
    assert "blocked" in answer.reason

    feed_ok(ledger, call("2026-11-03T10:00:00Z", 120), used("2026-11-03T11:00:00Z", 2 * MB))
    # 2 min x 0.0150 = 0.0300; 2 MB x 0.0500 = 0.1000; 5.00 - 0.13 = 4.87.
    assert [(c["kind"], c["amount"]) for c in ledger.charges(ACC)] == [
        ("payg_call", "0.0300"),
        ("payg_data", "0.1000"),
    ]
    assert ledger.balance(ACC) == "4.8700"
    doc = statement_of(ledger, "2026-11")
    assert [(ln["kind"], ln["amount"]) for ln in doc["lines"]] == [
        ("payg_calls", "0.03"),
        ("payg_data", "0.10"),
    ]
    assert doc["balance_end"] == "4.8700"


# ---------------------------------------------------------------------------------------------
# B3: late usage


def test_B3_late_usage_goes_on_the_next_open_invoice_naming_its_period() -> None:
    ledger = setup("postpaid")
    feed_ok(ledger, call("2026-11-10T10:00:00Z", 60), cycle("2026-12"))
    november = invoice_of(ledger, "2026-11")
    assert november["status"] == "closed"

    feed_ok(
        ledger,
        call("2026-11-29T10:00:00Z", 95),  # 2 min x 0.0150 = 0.0300
        used("2026-11-30T10:00:00Z", 3 * MB),  # 3 MB x 0.0500 = 0.1500
        call("2026-12-02T10:00:00Z", 60),  # December's own: 0.0150
    )
    assert invoice_of(ledger, "2026-11") == november  # the closed invoice does not change

    december = invoice_of(ledger, "2026-12")
    late = lines_of(december, "late_usage")
    assert [(ln["period"], ln["exact_amount"], ln["amount"]) for ln in late] == [
        ("2026-11", "0.0300", "0.03"),
        ("2026-11", "0.1500", "0.15"),
    ]
    for ln in late:
        assert "Late usage from 2026-11" in ln["description"]
    assert "PAYG calls" in late[0]["description"] and "PAYG data" in late[1]["description"]
    late_charges = [c for c in ledger.charges(ACC) if c["period"] == "2026-11"][1:]
    assert [c["billed_period"] for c in late_charges] == ["2026-12", "2026-12"]
    own = only_line(december, "payg_calls")
    assert (own["period"], own["amount"]) == ("2026-12", "0.02")
    assert december["total"] == "0.20"  # 0.03 + 0.15 + 0.02


def test_B3_a_late_surcharge_or_adjustment_keeps_its_kind_and_names_its_own_period() -> None:
    """B3 for charges other than usage (docs/DECISIONS.md, Late lines): a surcharge or an
    adjustment dated in a closed period lands on the open invoice under its own kind, and its
    description names the period it belongs to."""
    ledger = setup("postpaid")
    feed_ok(ledger, cycle("2026-12"))
    november = invoice_of(ledger, "2026-11")
    feed_ok(
        ledger,
        surcharge("2026-11-28T10:00:00Z", "1.50", "carrier", "Carrier recovery fee"),
        adjustment("2026-11-29T10:00:00Z", "-2.00", "Outage credit", "jane.doe"),
    )
    assert invoice_of(ledger, "2026-11") == november
    december = invoice_of(ledger, "2026-12")
    assert not lines_of(december, "late_usage")
    fee = only_line(december, "surcharges")
    credit = only_line(december, "credits")
    assert (fee["period"], fee["amount"]) == ("2026-11", "1.50")
    assert (credit["period"], credit["amount"]) == ("2026-11", "-2.00")
    assert "Carrier recovery fee" in fee["description"]
    assert "Outage credit" in credit["description"]
    assert "2026-11" in fee["description"], fee["description"]
    assert "2026-11" in credit["description"], credit["description"]


def test_B3_a_late_record_whose_period_is_still_open_lands_on_its_own_period() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        call("2026-12-02T10:00:00Z", 60),  # December's record arrives first, no bill run yet
        call("2026-11-29T10:00:00Z", 120),  # November is still open: 2 x 0.0150 = 0.0300
    )
    november = invoice_of(ledger, "2026-11")
    assert summary(november) == [("payg_calls", NUM1, "2026-11", "invoice", "0.0300", "0.03")]
    december = invoice_of(ledger, "2026-12")
    assert summary(december) == [("payg_calls", NUM1, "2026-12", "invoice", "0.0150", "0.02")]
    assert not lines_of(december, "late_usage")


def test_B3_prepaid_late_usage_is_on_the_open_statement_and_moves_the_balance() -> None:
    ledger = setup("prepaid", recharge="10.00")
    feed_ok(ledger, cycle("2026-12"))
    november = invoice_of(ledger, "2026-11")
    feed_ok(ledger, roamed("2026-11-30T10:00:00Z", MB, "FR"))  # 1 MB x 1.5000
    assert invoice_of(ledger, "2026-11") == november
    december = statement_of(ledger, "2026-12")
    line = only_line(december, "late_usage")
    assert (line["period"], line["payer"], line["amount"]) == ("2026-11", "balance", "1.50")
    assert "Roaming data" in line["description"] and "2026-11" in line["description"]
    assert (december["balance_start"], december["balance_end"]) == ("10.0000", "8.5000")
    assert ledger.balance(ACC) == "8.5000"


# ---------------------------------------------------------------------------------------------
# F3: manual adjustments


def test_F3_credit_and_debit_show_on_the_invoice_with_reason_and_approver() -> None:
    ledger = setup("postpaid")
    feed_ok(
        ledger,
        purchase("2026-11-02T10:00:00Z"),
        adjustment("2026-11-10T10:00:00Z", "-5.00", "Network outage credit", "jane.doe"),
        adjustment("2026-11-11T10:00:00Z", "2.50", "Paper bill fee", "sam.lee"),
    )
    charges = [(c["kind"], c["amount"], c["rule"]) for c in ledger.charges(ACC)][1:]
    assert charges == [("adjustment", "-5.0000", "F3"), ("adjustment", "2.5000", "F3")]
    doc = invoice_of(ledger, "2026-11")
    credit = only_line(doc, "credits")
    assert (credit["amount"], credit["payer"]) == ("-5.00", "invoice")
    assert "Network outage credit" in credit["description"] and "jane.doe" in credit["description"]
    debit = only_line(doc, "adjustments")
    assert (debit["amount"], debit["payer"]) == ("2.50", "invoice")
    assert "Paper bill fee" in debit["description"] and "sam.lee" in debit["description"]
    assert doc["total"] == "7.49"  # 9.99 - 5.00 + 2.50
    assert ledger.balance(ACC) == "0.0000"


def test_F3_prepaid_credit_raises_the_balance_and_shows_on_the_statement() -> None:
    ledger = setup("prepaid", recharge="10.00")
    feed_ok(ledger, adjustment("2026-11-10T10:00:00Z", "-3.00", "Dropped calls", "jane.doe"))
    assert ledger.balance(ACC) == "13.0000"
    feed_ok(ledger, adjustment("2026-11-11T10:00:00Z", "1.25", "Correction", "sam.lee"))
    assert ledger.balance(ACC) == "11.7500"
    doc = statement_of(ledger, "2026-11")
    credit = only_line(doc, "credits")
    assert credit["amount"] == "-3.00"
    assert "Dropped calls" in credit["description"] and "jane.doe" in credit["description"]
    assert "credited to balance" in credit["description"]
    assert only_line(doc, "adjustments")["amount"] == "1.25"
    # Only the recharge is listed as a recharge; the credit is a line, not a recharge.
    assert [r["amount"] for r in doc["recharges"]] == ["10.0000"]
    assert (doc["balance_start"], doc["balance_end"]) == ("0.0000", "11.7500")


def test_M2_a_line_that_rounds_to_zero_shows_0_00_never_minus_zero() -> None:
    """M2: a credit of -0.0040 rounds HALF_UP to zero; the invoice shows 0.00, not -0.00."""
    from decimal import Decimal

    from ledger.money import shown

    assert str(shown(Decimal("-0.0040"))) == "0.00"
    assert str(shown(Decimal("-0.0050"))) == "-0.01"
    assert str(shown(Decimal("0.0049"))) == "0.00"
