"""`ledger invoice` and `ledger export` as users run them (SPEC 7: I1-I3, B3, M2; SPEC 12).

Every figure is computed by hand from the default catalog (version 2026-01-a,
ledger/catalogs/default.toml); the arithmetic is in the comment next to each figure.
Figures used throughout:

- na-500: 9.99 a month, 500 min to US and CA. data-1gb: 5.00 a month (postpaid: prorated by
  the days left at subscription, D4; prepaid: 5.00 for 30 days from the balance, D7).
- PAYG voice: +44 GB landline 0.0200/min, +1876 JM 0.1500/min, both per started minute.
- Home PAYG data 0.0500/MB (D1); roaming GB 1.2000/MB, CA 0.5000/MB (D2); 1 MB = 1,000,000 B.

The month used by most tests (both accounts UTC, opened 2026-11-01):

ACC-P (postpaid), numbers NUM_P (na-500 + data-1gb) and NUM_P2 (nothing), invoice 2026-11:
  plan_fees     NUM_P   9.9900 -> 9.99
  package_fees  NUM_P   5.00 x 29/30 days left (2 Nov to 30 Nov) = 4.8333 -> 4.83
  payg_calls    NUM_P   95 s to +44 -> 2 min x 0.02 = 0.0400; 61 s to +1876 (JM, not covered
                        by na-500) -> 2 min x 0.15 = 0.3000; line 0.3400 -> 0.34
  payg_data     NUM_P2  500,000 B = 0.5 MB x 0.05 = 0.0250 -> 0.03 (HALF_UP, not 0.02)
  roaming       NUM_P   2,000,000 B = 2 MB x 1.20 = 2.4000 -> 2.40
  roaming       NUM_P2  50,000 B = 0.05 MB x 0.50 = 0.0250 -> 0.03
  surcharges            1.25 as given (S1)
  credits               -2.00 (F3 adjustment)
  total = 9.99 + 4.83 + 0.34 + 0.03 + 2.40 + 0.03 + 1.25 - 2.00 = 16.87 (M2: the sum of the
  shown lines; the exact sum 16.8633 would round to 16.86)

ACC-S (prepaid), number NUM_S (na-500 + data-1gb), statement 2026-11:
  recharge 20.00; plan_fees 9.99 paid to the payment method (I3); package_fees 5.00 and PAYG
  call 95 s to +44 = 0.04 paid from the balance (D7, I3).
  total = 9.99 + 5.00 + 0.04 = 15.03; balance 0.0000 -> 20.00 - 5.00 - 0.04 = 14.9600
"""

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from projections.invoices import CHARGES_PER_CHUNK, line_fields
from projections.store import SqliteViewStore
from tests.cli_helpers import assert_one_line_error, ingest_events, run, run_json
from tests.factories import catalog_published, event, opened

POSTPAID = "ACC-P"
PREPAID = "ACC-S"
NUM_P = "+14155550101"
NUM_P2 = "+14155550103"
NUM_S = "+14155550202"
GB_LANDLINE = "+442071234567"  # +44 -> GB, 0.0200/min, 60 s
JM = "+18765550100"  # +1876 -> JM, 0.1500/min, 60 s
CATALOG = "2026-01-a"


# ---------------------------------------------------------------------------------------------
# Builders


def call(
    account: str, msisdn: str, at: str, seconds: int, to: str, event_id: str
) -> dict[str, Any]:
    return event(
        "call.completed",
        account,
        at,
        msisdn=msisdn,
        destination=to,
        duration_seconds=seconds,
        call_id=f"call-{event_id}",
        event_id=event_id,
    )


def november() -> list[dict[str, Any]]:
    """The month of the module docstring, for both accounts."""
    return [
        catalog_published(),
        opened(POSTPAID, "postpaid"),
        opened(PREPAID, "prepaid"),
        event("number.added", POSTPAID, "2026-11-01T09:30:00Z", msisdn=NUM_P),
        event("number.added", POSTPAID, "2026-11-01T09:31:00Z", msisdn=NUM_P2),
        event("number.added", PREPAID, "2026-11-01T09:30:00Z", msisdn=NUM_S),
        # ACC-P
        event(
            "plan.purchased",
            POSTPAID,
            "2026-11-02T10:00:00Z",
            msisdn=NUM_P,
            plan_id="na-500",
            channel="portal",
            event_id="p-plan",
        ),
        event(
            "package.subscribed",
            POSTPAID,
            "2026-11-02T11:00:00Z",
            msisdn=NUM_P,
            package_id="data-1gb",
            event_id="p-pkg",
        ),
        call(POSTPAID, NUM_P, "2026-11-03T10:00:00Z", 95, GB_LANDLINE, "p-call-gb"),
        call(POSTPAID, NUM_P, "2026-11-04T10:00:00Z", 61, JM, "p-call-jm"),
        event(
            "data.used",
            POSTPAID,
            "2026-11-05T10:00:00Z",
            msisdn=NUM_P2,
            bytes=500_000,
            roaming=False,
            event_id="p-data",
        ),
        event(
            "data.used",
            POSTPAID,
            "2026-11-05T11:00:00Z",
            msisdn=NUM_P,
            bytes=2_000_000,
            roaming=True,
            country="GB",
            event_id="p-roam-gb",
        ),
        event(
            "data.used",
            POSTPAID,
            "2026-11-05T12:00:00Z",
            msisdn=NUM_P2,
            bytes=50_000,
            roaming=True,
            country="CA",
            event_id="p-roam-ca",
        ),
        event(
            "surcharge.applied",
            POSTPAID,
            "2026-11-06T10:00:00Z",
            amount="1.25",
            kind="carrier",
            description="Carrier surcharge",
            event_id="p-sur",
        ),
        event(
            "adjustment.posted",
            POSTPAID,
            "2026-11-07T10:00:00Z",
            amount="-2.00",
            reason="goodwill",
            approved_by="supervisor",
            event_id="p-adj",
        ),
        # ACC-S
        event(
            "balance.recharged", PREPAID, "2026-11-02T09:00:00Z", amount="20.00", event_id="s-rch"
        ),
        event(
            "plan.purchased",
            PREPAID,
            "2026-11-02T10:00:00Z",
            msisdn=NUM_S,
            plan_id="na-500",
            channel="portal",
            event_id="s-plan",
        ),
        event(
            "package.subscribed",
            PREPAID,
            "2026-11-02T11:00:00Z",
            msisdn=NUM_S,
            package_id="data-1gb",
            event_id="s-pkg",
        ),
        call(PREPAID, NUM_S, "2026-11-03T10:00:00Z", 95, GB_LANDLINE, "s-call"),
    ]


def december() -> list[dict[str, Any]]:
    """The bill run for 2026-12 on both accounts, a late November call and December usage.

    ACC-P 2026-12: plan renewal 9.99 and package renewal 5.00 in advance (V6, D4); the late
    call of 20 Nov, 30 s to +44 -> 1 min x 0.02 = 0.0200, on a late_usage line naming 2026-11
    (B3); total 9.99 + 5.00 + 0.02 = 15.01.
    ACC-S 2026-12: plan renewal 9.99 to the payment method; recharge 10.00; call 61 s to +44
    -> 2 min x 0.02 = 0.04 from the balance; total 9.99 + 0.04 = 10.03;
    balance 14.9600 -> 14.96 + 10.00 - 0.04 = 24.9200.
    """
    return [
        event(
            "cycle.started", POSTPAID, "2026-12-01T00:00:00Z", period="2026-12", event_id="p-cyc"
        ),
        event("cycle.started", PREPAID, "2026-12-01T00:00:00Z", period="2026-12", event_id="s-cyc"),
        call(POSTPAID, NUM_P, "2026-11-20T10:00:00Z", 30, GB_LANDLINE, "p-late"),
        event(
            "balance.recharged", PREPAID, "2026-12-02T09:00:00Z", amount="10.00", event_id="s-rch2"
        ),
        call(PREPAID, NUM_S, "2026-12-03T10:00:00Z", 61, GB_LANDLINE, "s-call2"),
    ]


def two_months(tmp_path: Path, store: str) -> None:
    ingest_events(tmp_path, store, *november())
    ingest_events(tmp_path, store, *december())


def lines_by_kind(doc: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(line["kind"], line.get("msisdn")): line for line in doc["lines"]}


def invoice_json(store: str, account: str, *period: str) -> dict[str, Any]:
    args = ["--period", period[0]] if period else []
    return run_json("--store", store, "invoice", account, *args)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# Expected 2026-11 lines of ACC-P: (kind, msisdn) -> (description, amount, exact, charge_ids).
POSTPAID_NOVEMBER = {
    ("plan_fees", NUM_P): (f"Plan fees, {NUM_P}", "9.99", "9.9900", ["p-plan:fee"]),
    ("package_fees", NUM_P): (f"Data package fees, {NUM_P}", "4.83", "4.8333", ["p-pkg:fee"]),
    ("payg_calls", NUM_P): (
        f"PAYG calls, {NUM_P}",
        "0.34",
        "0.3400",
        ["p-call-gb:payg", "p-call-jm:payg"],
    ),
    ("payg_data", NUM_P2): (f"PAYG data, {NUM_P2}", "0.03", "0.0250", ["p-data:payg"]),
    ("roaming", NUM_P): (f"Roaming data, {NUM_P}", "2.40", "2.4000", ["p-roam-gb:roaming"]),
    ("roaming", NUM_P2): (f"Roaming data, {NUM_P2}", "0.03", "0.0250", ["p-roam-ca:roaming"]),
    ("surcharges", None): ("Surcharges: Carrier surcharge", "1.25", "1.2500", ["p-sur:surcharge"]),
    ("credits", None): (
        "Credits: goodwill (approved by supervisor)",
        "-2.00",
        "-2.0000",
        ["p-adj:adjustment"],
    ),
}


# ---------------------------------------------------------------------------------------------
# ledger invoice: JSON (SPEC 12)


def test_I1_M2_invoice_json_has_the_spec_shape_with_money_as_decimal_strings(
    tmp_path: Path, sqlite_url: str
) -> None:
    """I1, M2, SPEC 12: account_id, period, status, lines[] (charge_ids, kind, description,
    amount) and total; each line rounds its exact sum HALF_UP, the total sums the shown lines."""
    ingest_events(tmp_path, sqlite_url, *november())
    doc = invoice_json(sqlite_url, POSTPAID, "2026-11")
    assert (doc["account_id"], doc["period"], doc["status"]) == (POSTPAID, "2026-11", "open")
    assert doc["document"] == "invoice"
    got = {
        key: (line["description"], line["amount"], line["exact_amount"], line["charge_ids"])
        for key, line in lines_by_kind(doc).items()
    }
    assert got == POSTPAID_NOVEMBER
    # One line per (kind, number): eight lines, in the order I1 lists the kinds.
    assert [line["kind"] for line in doc["lines"]] == [
        "plan_fees",
        "package_fees",
        "payg_calls",
        "payg_data",
        "roaming",
        "roaming",
        "surcharges",
        "credits",
    ]
    # Money is a decimal string, never a JSON number (M1, M2).
    for line in doc["lines"]:
        assert isinstance(line["amount"], str) and isinstance(line["exact_amount"], str)
        assert isinstance(line["charge_ids"], list)
    assert doc["total"] == "16.87"  # the shown lines; the exact sum 16.8633 would give 16.86
    assert Decimal(doc["total"]) == sum(Decimal(line["amount"]) for line in doc["lines"])
    assert sum(Decimal(line["exact_amount"]) for line in doc["lines"]) == Decimal("16.8633")


def test_I1_invoice_json_is_byte_identical_across_runs(tmp_path: Path, sqlite_url: str) -> None:
    """SPEC 12: the same store gives the same bytes (a deterministic document)."""
    two_months(tmp_path, sqlite_url)
    for account in (POSTPAID, PREPAID):
        for period in ("2026-11", "2026-12"):
            args = ("--store", sqlite_url, "--json", "invoice", account, "--period", period)
            first, second = run(*args).stdout, run(*args).stdout
            assert first == second
            assert json.loads(first)["period"] == period


def test_I2_I3_statement_json_lists_payers_recharges_and_balances(
    tmp_path: Path, sqlite_url: str
) -> None:
    """I2, I3: a prepaid statement; plan fee to the payment method, the package and the call
    from the balance; the balance at its start and end."""
    ingest_events(tmp_path, sqlite_url, *november())
    doc = invoice_json(sqlite_url, PREPAID, "2026-11")
    assert (doc["account_id"], doc["period"], doc["status"], doc["document"]) == (
        PREPAID,
        "2026-11",
        "open",
        "statement",
    )
    got = {
        key: (line["description"], line["amount"], line["payer"], line["charge_ids"])
        for key, line in lines_by_kind(doc).items()
    }
    assert got == {
        ("plan_fees", NUM_S): (
            f"Plan fees, {NUM_S} (paid to payment method)",
            "9.99",
            "payment_method",
            ["s-plan:fee"],
        ),
        ("package_fees", NUM_S): (
            f"Data package fees, {NUM_S} (paid from balance)",
            "5.00",
            "balance",
            ["s-pkg:fee"],
        ),
        ("payg_calls", NUM_S): (
            f"PAYG calls, {NUM_S} (paid from balance)",
            "0.04",
            "balance",
            ["s-call:payg"],
        ),
    }
    assert doc["total"] == "15.03"  # 9.99 + 5.00 + 0.04
    assert doc["recharges"] == [{"event_id": "s-rch", "amount": "20.0000"}]
    # 20.00 - 5.00 - 0.04 = 14.96: the plan fee never touches the balance (I3).
    assert (doc["balance_start"], doc["balance_end"]) == ("0.0000", "14.9600")
    assert run_json("--store", sqlite_url, "balance", PREPAID)["balance"] == "14.9600"


def test_I2_next_statement_starts_at_the_balance_the_previous_one_ended_with(
    tmp_path: Path, sqlite_url: str
) -> None:
    """I2: statement balances chain from period to period."""
    two_months(tmp_path, sqlite_url)
    november_doc = invoice_json(sqlite_url, PREPAID, "2026-11")
    december_doc = invoice_json(sqlite_url, PREPAID, "2026-12")
    assert november_doc["status"] == "closed"
    assert (november_doc["balance_start"], november_doc["balance_end"]) == ("0.0000", "14.9600")
    # 14.96 + 10.00 - 0.04 = 24.92
    assert (december_doc["balance_start"], december_doc["balance_end"]) == ("14.9600", "24.9200")
    assert december_doc["recharges"] == [{"event_id": "s-rch2", "amount": "10.0000"}]
    assert december_doc["total"] == "10.03"  # renewal 9.99 + call 0.04
    assert run_json("--store", sqlite_url, "balance", PREPAID)["balance"] == "24.9200"


# ---------------------------------------------------------------------------------------------
# ledger invoice: readable text


def test_I1_invoice_text_has_header_one_row_per_line_and_the_total(
    tmp_path: Path, sqlite_url: str
) -> None:
    """I1: a readable invoice: Invoice, account, period, status; each line; the total."""
    two_months(tmp_path, sqlite_url)
    text = run("--store", sqlite_url, "invoice", POSTPAID, "--period", "2026-11").stdout
    rows = text.splitlines()
    assert rows[0].startswith(f"Invoice {POSTPAID} 2026-11")
    assert rows[1].startswith("status: closed")
    assert "p-cyc" in rows[1]  # the bill run that closed it
    for description, amount, _, _ in POSTPAID_NOVEMBER.values():
        [row] = [r for r in rows if r.startswith(description + " ")]
        assert row.split()[-2] == amount, row  # columns: line, amount, number of charges
    assert "total 16.87 USD" in rows
    assert "balance" not in text  # an invoice has no balance line


def test_I2_statement_text_shows_the_balance_from_start_to_end(
    tmp_path: Path, sqlite_url: str
) -> None:
    """I2: a readable statement: Statement header, its lines, the total, balance start -> end."""
    two_months(tmp_path, sqlite_url)
    text = run("--store", sqlite_url, "invoice", PREPAID, "--period", "2026-12").stdout
    rows = text.splitlines()
    assert rows[0].startswith(f"Statement {PREPAID} 2026-12")
    assert rows[1] == "status: open"
    [plan] = [r for r in rows if r.startswith(f"Plan fees, {NUM_S} (paid to payment method)")]
    assert plan.split()[-2] == "9.99"
    [payg] = [r for r in rows if r.startswith(f"PAYG calls, {NUM_S} (paid from balance)")]
    assert payg.split()[-2] == "0.04"
    assert "total 10.03 USD" in rows
    [balance] = [r for r in rows if r.startswith("balance ")]
    assert balance.startswith("balance 14.9600 -> 24.9200")


def test_B3_late_call_is_a_late_usage_line_of_the_open_invoice_naming_its_period(
    tmp_path: Path, sqlite_url: str
) -> None:
    """B3: a November call arriving after the bill run lands on December's invoice."""
    two_months(tmp_path, sqlite_url)
    closed = invoice_json(sqlite_url, POSTPAID, "2026-11")
    assert closed["status"] == "closed"
    assert closed["total"] == "16.87"  # unchanged: a closed invoice is never written again
    doc = invoice_json(sqlite_url, POSTPAID, "2026-12")
    assert doc["status"] == "open"
    late = lines_by_kind(doc)[("late_usage", NUM_P)]
    # 30 s to +44 -> 1 min x 0.02 = 0.02
    assert (late["description"], late["amount"], late["period"], late["charge_ids"]) == (
        f"Late usage from 2026-11: PAYG calls, {NUM_P}",
        "0.02",
        "2026-11",
        ["p-late:payg"],
    )
    assert [(line["kind"], line["amount"]) for line in doc["lines"]] == [
        ("plan_fees", "9.99"),
        ("package_fees", "5.00"),
        ("late_usage", "0.02"),
    ]
    assert doc["total"] == "15.01"
    text = run("--store", sqlite_url, "invoice", POSTPAID, "--period", "2026-12").stdout
    assert f"Late usage from 2026-11: PAYG calls, {NUM_P}" in text
    assert "total 15.01 USD" in text.splitlines()


# ---------------------------------------------------------------------------------------------
# ledger invoice: the default period


def recorded_scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each view store scan from now on, as "view key-prefix", in the order asked."""
    asked: list[str] = []
    scan = SqliteViewStore.scan

    def recorded_scan(store: SqliteViewStore, view: str, key_prefix: str = "") -> Any:
        asked.append(f"{view} {key_prefix}")
        return scan(store, view, key_prefix)

    monkeypatch.setattr(SqliteViewStore, "scan", recorded_scan)
    return asked


def test_I1_default_period_is_the_latest_open_invoice_and_moves_with_the_bill_run(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Without --period: the latest open invoice; after cycle.started, the new period's."""
    ingest_events(tmp_path, sqlite_url, *november())
    assert invoice_json(sqlite_url, POSTPAID) == invoice_json(sqlite_url, POSTPAID, "2026-11")
    text = run("--store", sqlite_url, "invoice", PREPAID).stdout
    assert text.splitlines()[0].startswith(f"Statement {PREPAID} 2026-11")

    ingest_events(tmp_path, sqlite_url, *december())
    doc = invoice_json(sqlite_url, POSTPAID)
    assert (doc["period"], doc["status"], doc["total"]) == ("2026-12", "open", "15.01")
    assert invoice_json(sqlite_url, PREPAID)["period"] == "2026-12"
    text = run("--store", sqlite_url, "invoice", POSTPAID).stdout
    assert text.splitlines()[0].startswith(f"Invoice {POSTPAID} 2026-12")


def test_I1_the_default_invoice_is_read_without_the_filed_charges_of_earlier_months(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A support query for the open invoice reads its own filed charges alone: a busy
    account's closed months hold thousands each, and reading them all was most of the query."""
    busy = [
        call(POSTPAID, NUM_P, f"2026-11-06T10:{n:02d}:00Z", 30, GB_LANDLINE, f"p-busy-{n}")
        for n in range(2 * CHARGES_PER_CHUNK)
    ]
    ingest_events(tmp_path, sqlite_url, *november(), *busy, *december())
    asked = recorded_scans(monkeypatch)
    doc = invoice_json(sqlite_url, POSTPAID)
    assert asked == [f"invoices {POSTPAID}|", f"invoice_charges {POSTPAID}|2026-12|"]
    assert doc == invoice_json(sqlite_url, POSTPAID, "2026-12")
    assert doc["period"] == "2026-12"
    november_calls = lines_by_kind(invoice_json(sqlite_url, POSTPAID, "2026-11"))
    assert len(november_calls["payg_calls", NUM_P]["charge_ids"]) == 2 + 2 * CHARGES_PER_CHUNK


def test_I1_an_invoice_table_counts_each_lines_charges_without_reading_their_ids(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Support's table of a busy month counts each line's charges from the invoice alone: its
    filed chunks hold thousands of ids, and reading them back was most of the query. --json
    still lists every id, and each line counts as many as it lists."""
    busy = [
        call(POSTPAID, NUM_P, f"2026-11-06T10:{n:02d}:00Z", 30, GB_LANDLINE, f"p-busy-{n}")
        for n in range(2 * CHARGES_PER_CHUNK + 3)
    ]
    ingest_events(tmp_path, sqlite_url, *november(), *busy)
    doc = invoice_json(sqlite_url, POSTPAID, "2026-11")
    busy_line = lines_by_kind(doc)["payg_calls", NUM_P]
    assert busy_line["charge_count"] == len(busy_line["charge_ids"]) == 2 + len(busy)
    asked = recorded_scans(monkeypatch)
    text = run("--store", sqlite_url, "invoice", POSTPAID, "--period", "2026-11").stdout
    assert asked == [f"invoices {POSTPAID}|"]
    rows = text.splitlines()
    for line in doc["lines"]:
        assert line["charge_count"] == len(line["charge_ids"])
        [row] = [r for r in rows if r.startswith(line["description"] + " ")]
        assert row.split()[-2:] == [line["amount"], str(line["charge_count"])], row


def test_T1_B3_invoice_periods_are_months_in_the_account_time_zone(
    tmp_path: Path, sqlite_url: str
) -> None:
    """T1: 2026-12-01T02:00Z is the evening of 30 Nov in New York: on the 2026-11 invoice; the
    bill run at local midnight (05:00Z) closes it, and a later-arriving 30 Nov call is late."""
    acc, num = "ACC-NY", NUM_P
    ingest_events(
        tmp_path,
        sqlite_url,
        catalog_published(),
        opened(acc, "postpaid", timezone="America/New_York"),
        event("number.added", acc, "2026-11-01T09:30:00Z", msisdn=num),
        call(acc, num, "2026-12-01T02:00:00Z", 30, GB_LANDLINE, "ny-eve"),  # 1 min x 0.02
        event("cycle.started", acc, "2026-12-01T05:00:00Z", period="2026-12", event_id="ny-cyc"),
        call(acc, num, "2026-11-30T10:00:00Z", 61, GB_LANDLINE, "ny-late"),  # 2 min x 0.02
    )
    november_doc = invoice_json(sqlite_url, acc, "2026-11")
    assert (november_doc["status"], november_doc["total"]) == ("closed", "0.02")
    assert november_doc["lines"][0]["charge_ids"] == ["ny-eve:payg"]
    december_doc = invoice_json(sqlite_url, acc)
    assert december_doc["period"] == "2026-12"
    assert [(ln["kind"], ln["period"], ln["amount"]) for ln in december_doc["lines"]] == [
        ("late_usage", "2026-11", "0.04")
    ]


# ---------------------------------------------------------------------------------------------
# ledger invoice: errors (SPEC 12)


def test_invoice_for_an_unknown_account_is_a_one_line_error(
    tmp_path: Path, sqlite_url: str
) -> None:
    ingest_events(tmp_path, sqlite_url, *november())
    assert_one_line_error(sqlite_url, "invoice", "ACC-404", says="unknown account ACC-404")
    assert_one_line_error(
        sqlite_url, "--json", "invoice", "ACC-404", "--period", "2026-11", says="ACC-404"
    )


def test_invoice_with_a_malformed_period_is_a_one_line_error(
    tmp_path: Path, sqlite_url: str
) -> None:
    ingest_events(tmp_path, sqlite_url, *november())
    for bad in ("2026-1", "2026-13", "november", "\uff12\uff10\uff12\uff16-11"):
        assert_one_line_error(sqlite_url, "invoice", POSTPAID, "--period", bad, says=f"got '{bad}'")
    assert_one_line_error(
        sqlite_url, "invoice", POSTPAID, "--period", "0000-01", says="outside the periods"
    )


def test_invoice_for_a_period_without_one_is_a_one_line_error(
    tmp_path: Path, sqlite_url: str
) -> None:
    ingest_events(tmp_path, sqlite_url, *november())
    # Opened in November: nothing before, and December has not started.
    for period in ("2026-10", "2026-12"):
        assert_one_line_error(
            sqlite_url,
            "invoice",
            POSTPAID,
            "--period",
            period,
            says=f"no invoice or statement for {POSTPAID} in {period}",
        )


def _fifth_layout(doc: dict[str, Any]) -> dict[str, Any]:
    """An invoice as the views held it before its lines counted their charges."""
    return {**doc, "layout": 5, "lines": [line[:6] + line[7:] for line in doc["lines"]]}


def _fourth_layout(doc: dict[str, Any]) -> dict[str, Any]:
    """An invoice as the views held it before its filed charges were listed by line."""
    return {**_fifth_layout(doc), "layout": 4}


def _third_layout(doc: dict[str, Any]) -> dict[str, Any]:
    """An invoice as the views held it before its lines were stored without their fields'
    names and shown amounts."""
    return {**doc, "layout": 3, "lines": [line_fields(line) for line in doc["lines"]]}


def _second_layout(doc: dict[str, Any]) -> dict[str, Any]:
    """An invoice as the views held it before its lines' texts were written when read."""
    earlier = {k: v for k, v in _third_layout(doc).items() if k != "layout"}
    earlier["lines"] = [
        {**line, "line_id": [2, line["msisdn"] or "", line["period"], "", line["payer"], ""]}
        | {"description": "PAYG calls"}
        for line in earlier["lines"]
    ]
    earlier["charges"] = [
        [number, f"{event_id}:{rest}", event_id] for number, event_id, rest in doc["charges"]
    ]
    return earlier


def _first_layout(doc: dict[str, Any]) -> dict[str, Any]:
    """An invoice as the views held it before its charge ids were filed apart."""
    third = _third_layout(doc)
    earlier = {k: v for k, v in third.items() if k not in ("layout", "charges", "charge_chunks")}
    earlier["lines"] = [
        {**line, "charge_ids": ["c"], "event_ids": ["e"]} for line in third["lines"]
    ]
    return earlier


@pytest.mark.parametrize(
    ("earlier_layout", "held"),
    [
        (_first_layout, "its lines list every charge id"),
        (_second_layout, "its lines spell out their texts"),
        (_third_layout, "its lines name their fields"),
        (_fourth_layout, "its filed charges are listed one by one"),
        (_fifth_layout, "its lines do not count their charges"),
    ],
)
def test_views_of_an_earlier_layout_are_a_one_line_error_until_rebuilt(
    tmp_path: Path,
    sqlite_url: str,
    earlier_layout: Callable[[dict[str, Any]], dict[str, Any]],
    held: str,
) -> None:
    """Views written by an earlier version of the ledger, read, name the fix instead of
    failing on a missing field or showing wrong lines: 1 listed every charge id on its line,
    2 held each line's text, 3 each line's fields by name, 4 filed its charges one by one,
    each with its line's number, 5 did not count each line's charges."""
    ingest_events(tmp_path, sqlite_url, *november())
    shown = run_json("--store", sqlite_url, "invoice", POSTPAID)
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        [(text,)] = db.execute(
            "SELECT doc FROM ledger_views WHERE view = 'invoices' AND key = ?",
            (f"{POSTPAID}|2026-11",),
        )
        db.execute(
            "UPDATE ledger_views SET doc = ? WHERE view = 'invoices' AND key = ?",
            (json.dumps(earlier_layout(json.loads(text))), f"{POSTPAID}|2026-11"),
        )
    for command in (("invoice", POSTPAID), ("export", "invoices")):
        assert_one_line_error(
            sqlite_url,
            *command,
            says=f"invoice {POSTPAID} 2026-11 is in an earlier layout of the views"
            f" ({held}): run `ledger rebuild`",
        )
    run("--store", sqlite_url, "rebuild")
    assert run_json("--store", sqlite_url, "invoice", POSTPAID) == shown


# ---------------------------------------------------------------------------------------------
# ledger export invoices


def test_export_invoices_csv_has_a_header_and_one_row_per_invoice_line(
    tmp_path: Path, sqlite_url: str
) -> None:
    two_months(tmp_path, sqlite_url)
    text = run("--store", sqlite_url, "export", "invoices").stdout
    header = text.splitlines()[0].split(",")
    for column in ("account_id", "period", "status", "line_kind", "amount", "charge_ids"):
        assert column in header
    rows = csv_rows(text)
    # ACC-P: 8 lines in 2026-11, 3 in 2026-12; ACC-S: 3 in 2026-11, 2 in 2026-12.
    count = {
        (a, p): sum(1 for r in rows if (r["account_id"], r["period"]) == (a, p))
        for a in (POSTPAID, PREPAID)
        for p in ("2026-11", "2026-12")
    }
    assert count == {
        (POSTPAID, "2026-11"): 8,
        (POSTPAID, "2026-12"): 3,
        (PREPAID, "2026-11"): 3,
        (PREPAID, "2026-12"): 2,
    }
    november_rows = [r for r in rows if (r["account_id"], r["period"]) == (POSTPAID, "2026-11")]
    assert {r["status"] for r in november_rows} == {"closed"}
    got = {
        (r["line_kind"], r["msisdn"] or None): (r["amount"], r["charge_ids"].split())
        for r in november_rows
    }
    assert got == {key: (amount, ids) for key, (_, amount, _, ids) in POSTPAID_NOVEMBER.items()}
    # Descriptions with commas survive CSV quoting.
    assert f"PAYG calls, {NUM_P}" in {r["description"] for r in november_rows}
    late = [r for r in rows if r["line_kind"] == "late_usage"]
    assert [(r["account_id"], r["period"], r["status"], r["amount"]) for r in late] == [
        (POSTPAID, "2026-12", "open", "0.02")
    ]


def test_export_invoices_json_matches_ledger_invoice(tmp_path: Path, sqlite_url: str) -> None:
    """--format json and the global --json give one object {"invoices": [...]}, each the
    document `ledger --json invoice` shows."""
    two_months(tmp_path, sqlite_url)
    by_format = json.loads(
        run("--store", sqlite_url, "export", "invoices", "--format", "json").stdout
    )
    by_flag = run_json("--store", sqlite_url, "export", "invoices")
    assert by_format == by_flag
    assert list(by_format) == ["invoices"]
    docs = by_format["invoices"]
    assert [(d["account_id"], d["period"]) for d in docs] == [
        (POSTPAID, "2026-11"),
        (POSTPAID, "2026-12"),
        (PREPAID, "2026-11"),
        (PREPAID, "2026-12"),
    ]
    for doc in docs:
        shown = invoice_json(sqlite_url, doc["account_id"], doc["period"])
        assert doc["lines"] == shown["lines"]
        assert doc == shown


def test_export_invoices_filters_by_account_and_period(tmp_path: Path, sqlite_url: str) -> None:
    two_months(tmp_path, sqlite_url)
    only_prepaid = run_json("--store", sqlite_url, "export", "invoices", "--account", PREPAID)
    assert [(d["account_id"], d["period"]) for d in only_prepaid["invoices"]] == [
        (PREPAID, "2026-11"),
        (PREPAID, "2026-12"),
    ]
    # The balances of a filtered statement are still its running balances (I2).
    assert only_prepaid["invoices"][1]["balance_start"] == "14.9600"
    only_december = run_json("--store", sqlite_url, "export", "invoices", "--period", "2026-12")
    assert [(d["account_id"], d["period"]) for d in only_december["invoices"]] == [
        (POSTPAID, "2026-12"),
        (PREPAID, "2026-12"),
    ]
    assert only_december["invoices"][1]["balance_start"] == "14.9600"
    text = run(
        "--store", sqlite_url, "export", "invoices", "--account", POSTPAID, "--period", "2026-11"
    ).stdout
    rows = csv_rows(text)
    assert len(rows) == 8
    assert {(r["account_id"], r["period"]) for r in rows} == {(POSTPAID, "2026-11")}
    none = run_json("--store", sqlite_url, "export", "invoices", "--period", "2027-01")
    assert none == {"invoices": []}


def test_export_invoices_output_writes_the_file(tmp_path: Path, sqlite_url: str) -> None:
    two_months(tmp_path, sqlite_url)
    out = tmp_path / "invoices.csv"
    result = run("--store", sqlite_url, "export", "invoices", "--output", str(out))
    assert result.stdout == ""
    assert str(out) in result.stderr
    assert (
        out.read_text(encoding="utf-8") == run("--store", sqlite_url, "export", "invoices").stdout
    )
    assert len(csv_rows(out.read_text(encoding="utf-8"))) == 16  # 8 + 3 + 3 + 2 lines
    json_out = tmp_path / "invoices.json"
    run("--store", sqlite_url, "--json", "export", "invoices", "--output", str(json_out))
    doc = json.loads(json_out.read_text(encoding="utf-8"))
    assert doc == run_json("--store", sqlite_url, "export", "invoices")


def test_export_errors_are_one_line(tmp_path: Path, sqlite_url: str) -> None:
    ingest_events(tmp_path, sqlite_url, *november())
    assert_one_line_error(
        sqlite_url, "export", "invoices", "--account", "ACC-404", says="unknown account ACC-404"
    )
    assert_one_line_error(
        sqlite_url, "export", "charges", "--period", "2026-1", says="got '2026-1'"
    )
    missing = str(tmp_path / "no-such-dir" / "invoices.csv")
    assert_one_line_error(
        sqlite_url, "export", "invoices", "--output", missing, says="No such file or directory"
    )


# ---------------------------------------------------------------------------------------------
# ledger export charges


def test_export_charges_one_row_per_charge_with_rule_catalog_rate_and_arithmetic(
    tmp_path: Path, sqlite_url: str
) -> None:
    ingest_events(tmp_path, sqlite_url, *november())
    rows = csv_rows(run("--store", sqlite_url, "export", "charges", "--account", POSTPAID).stdout)
    by_id = {r["charge_id"]: r for r in rows}
    assert len(by_id) == len(rows) == 9  # one per charge (two calls on one invoice line)
    jm = by_id["p-call-jm:payg"]
    assert (jm["rule"], jm["catalog_version"], jm["amount"], jm["period"], jm["billed_period"]) == (
        "V5",
        CATALOG,
        "0.3000",
        "2026-11",
        "2026-11",
    )
    assert "0.1500/min" in jm["rate"] and "+1876" in jm["rate"]
    assert "120 s billed" in jm["arithmetic"] and "0.3000" in jm["arithmetic"]
    package = by_id["p-pkg:fee"]
    assert (package["rule"], package["amount"]) == ("D4", "4.8333")
    assert "29/30" in package["arithmetic"]
    roaming = by_id["p-roam-gb:roaming"]
    assert (roaming["rule"], roaming["rate"]) == ("D2", "1.2000/MB roaming in GB")
    assert {r["catalog_version"] for r in rows} == {CATALOG}
    assert {r["account_id"] for r in rows} == {POSTPAID}


def test_B3_export_charges_by_period_selects_what_was_billed_on_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    """--period selects charges billed on that period: the late call shows its own period
    (2026-11) and the later billed_period (2026-12)."""
    two_months(tmp_path, sqlite_url)
    december_rows = csv_rows(
        run("--store", sqlite_url, "export", "charges", "--period", "2026-12").stdout
    )
    assert {r["billed_period"] for r in december_rows} == {"2026-12"}
    late = [r for r in december_rows if r["event_id"] == "p-late"]
    assert [(r["period"], r["billed_period"], r["amount"]) for r in late] == [
        ("2026-11", "2026-12", "0.0200")
    ]
    november_rows = csv_rows(
        run("--store", sqlite_url, "export", "charges", "--period", "2026-11").stdout
    )
    assert "p-late" not in {r["event_id"] for r in november_rows}
    assert {r["period"] for r in november_rows} == {"2026-11"}
    # JSON export carries the same charges.
    doc = run_json("--store", sqlite_url, "export", "charges", "--period", "2026-12")
    assert list(doc) == ["charges"]
    assert [c["charge_id"] for c in doc["charges"]] == [r["charge_id"] for r in december_rows]


def test_I1_exported_charges_of_a_period_add_up_to_its_invoice_lines(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Accounting check: per account and period, the exported charges sum to the exact sums of
    the invoice lines, and every charge id on a line is an exported charge."""
    two_months(tmp_path, sqlite_url)
    for account in (POSTPAID, PREPAID):
        for period in ("2026-11", "2026-12"):
            charges = run_json(
                "--store", sqlite_url, "export", "charges",
                "--account", account, "--period", period,
            )["charges"]  # fmt: skip
            doc = invoice_json(sqlite_url, account, period)
            charged = sum((Decimal(c["amount"]) for c in charges), start=Decimal(0))
            on_lines = sum((Decimal(ln["exact_amount"]) for ln in doc["lines"]), start=Decimal(0))
            assert charged == on_lines, (account, period)
            ids = sorted(i for ln in doc["lines"] for i in ln["charge_ids"])
            assert ids == sorted(c["charge_id"] for c in charges), (account, period)
    # ACC-P 2026-11 by hand: 9.99 + 4.8333 + 0.04 + 0.30 + 0.025 + 2.40 + 0.025 + 1.25 - 2.00
    charges = run_json(
        "--store", sqlite_url, "export", "charges", "--account", POSTPAID, "--period", "2026-11"
    )["charges"]
    assert sum(Decimal(c["amount"]) for c in charges) == Decimal("16.8633")


def test_export_charges_ids_are_unique_so_lines_can_be_joined_to_charges(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Each line's charge_ids name its charges (I1); a charge id must name one charge, or
    joining lines to the export (and refund.requested by charge_id) is ambiguous. The bill run
    renews the plan and the package of one number: two charges, two ids."""
    two_months(tmp_path, sqlite_url)
    rows = csv_rows(run("--store", sqlite_url, "export", "charges").stdout)
    ids = [r["charge_id"] for r in rows]
    renewals = sorted(
        (r["kind"], r["amount"]) for r in rows if (r["event_id"], r["msisdn"]) == ("p-cyc", NUM_P)
    )
    assert renewals == [("package_fee", "5.0000"), ("plan_fee", "9.9900")]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicated == [], f"charge ids naming more than one charge: {duplicated}"


# ---------------------------------------------------------------------------------------------
# Stores and rebuilds


def test_same_invoice_json_on_sqlite_and_postgresql(
    tmp_path: Path, sqlite_url: str, postgres_url: str
) -> None:
    """The same events give byte-identical invoice documents on both stores."""
    events = november() + december()
    ingest_events(tmp_path, sqlite_url, *events)
    ingest_events(tmp_path, postgres_url, *events)
    for account in (POSTPAID, PREPAID):
        for period in ("2026-11", "2026-12"):
            outputs = [
                run("--store", store, "--json", "invoice", account, "--period", period).stdout
                for store in (sqlite_url, postgres_url)
            ]
            assert outputs[0] == outputs[1], (account, period)
    exports = [
        run("--store", store, "export", "invoices").stdout for store in (sqlite_url, postgres_url)
    ]
    assert exports[0] == exports[1]
    assert invoice_json(postgres_url, POSTPAID, "2026-11")["total"] == "16.87"


def test_rebuild_gives_the_same_invoice_json(tmp_path: Path, sqlite_url: str) -> None:
    """Views are disposable: `ledger rebuild` replays the events into the same invoices."""
    two_months(tmp_path, sqlite_url)
    before = {
        (account, period): run(
            "--store", sqlite_url, "--json", "invoice", account, "--period", period
        ).stdout
        for account in (POSTPAID, PREPAID)
        for period in ("2026-11", "2026-12")
    }
    default_before = run("--store", sqlite_url, "--json", "invoice", POSTPAID).stdout
    rebuilt = run_json("--store", sqlite_url, "rebuild")
    assert rebuilt["replayed"] > 0
    after = {
        key: run("--store", sqlite_url, "--json", "invoice", key[0], "--period", key[1]).stdout
        for key in before
    }
    assert after == before
    assert run("--store", sqlite_url, "--json", "invoice", POSTPAID).stdout == default_before


def postpaid_ingested(tmp_path: Path, sqlite_url: str, *events: dict[str, Any]) -> None:
    """The postpaid account with its number NUM_P, then these events, ingested."""
    ingest_events(
        tmp_path,
        sqlite_url,
        catalog_published(),
        opened(POSTPAID, "postpaid"),
        event("number.added", POSTPAID, "2026-11-01T09:30:00Z", msisdn=NUM_P),
        *events,
    )


def adjustment(amount: str, reason: str, approved_by: str = "j@f") -> dict[str, Any]:
    """Finance's adjustment p-adj on the postpaid account, 7 November (F3)."""
    return event(
        "adjustment.posted",
        POSTPAID,
        "2026-11-07T10:00:00Z",
        amount=amount,
        reason=reason,
        approved_by=approved_by,
        event_id="p-adj",
    )


def test_S1_outside_text_neither_runs_as_a_spreadsheet_formula_nor_breaks_the_table(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A carrier's description is kept as given, but a CSV cell that would start a formula
    gets a leading apostrophe (amounts stay numbers), and a newline is shown escaped in the
    invoice table, so each line stays one row."""
    postpaid_ingested(
        tmp_path,
        sqlite_url,
        event(
            "surcharge.applied",
            POSTPAID,
            "2026-11-06T10:00:00Z",
            amount="1.25",
            kind="carrier",
            description="=1+2\nsecond line",
            msisdn=NUM_P,
            event_id="p-sur",
        ),
        adjustment("-2.00", "@goodwill", approved_by="supervisor"),
    )
    rows = csv_rows(run("--store", sqlite_url, "export", "charges").stdout)
    assert [(row["label"], row["amount"], row["msisdn"]) for row in rows] == [
        ("'=1+2\nsecond line", "1.2500", NUM_P),  # the phone number stays as it is
        ("'@goodwill (approved by supervisor)", "-2.0000", ""),
    ]
    text = run("--store", sqlite_url, "invoice", POSTPAID, "--period", "2026-11").stdout
    [surcharge] = [line for line in text.splitlines() if line.startswith("Surcharges")]
    assert "Surcharges: =1+2\\nsecond line" in surcharge and surcharge.endswith("1")
    assert "second line" not in text.replace(surcharge, "")


def test_outside_text_with_control_characters_keeps_each_history_and_explain_line_one(
    tmp_path: Path, sqlite_url: str
) -> None:
    """An adjustment's reason holding a newline used to print as two lines of `history` (and
    of `explain`), the second looking like an entry of its own."""
    postpaid_ingested(
        tmp_path, sqlite_url, adjustment("2.00", "Goodwill\n2026-11-08T00:00:00Z  refund.requested")
    )
    history = run("--store", sqlite_url, "history", POSTPAID).stdout.splitlines()
    assert not [line for line in history if line.startswith("2026-11-08")]
    assert any("reason=Goodwill\\n2026-11-08T00:00:00Z  refund.requested" in x for x in history)
    explained = run("--store", sqlite_url, "explain", POSTPAID, "p-adj:adjustment").stdout
    assert [x for x in explained.splitlines() if x.startswith("arithmetic:")] == [
        "arithmetic: manual debit of 2.0000: Goodwill\\n2026-11-08T00:00:00Z  refund.requested "
        "(approved by j@f)"
    ]
    assert len(explained.splitlines()) == 6


def test_tables_right_align_a_column_of_amounts_with_its_header_and_show_flags_as_words(
    tmp_path: Path, sqlite_url: str
) -> None:
    """An amount wider than its header used to push the header to its left; history printed
    Python's True/False where tables say yes/no."""
    postpaid_ingested(
        tmp_path,
        sqlite_url,
        adjustment("1234.50", "Equipment"),
        event(
            "data.used",
            POSTPAID,
            "2026-11-08T10:00:00Z",
            msisdn=NUM_P,
            bytes=1_000_000,
            roaming=False,
            event_id="p-data",
        ),
    )
    text = run("--store", sqlite_url, "invoice", POSTPAID, "--period", "2026-11").stdout
    rows = text.splitlines()
    [header] = [row for row in rows if row.startswith("line")]
    [amount] = [row for row in rows if "1234.50" in row]
    # The header's last letter sits over the amount's last digit.
    assert header.index("amount") + len("amount") == amount.index("1234.50") + len("1234.50")
    history = run("--store", sqlite_url, "history", POSTPAID).stdout
    assert "bytes=1000000 roaming=no" in history
    assert "False" not in history
