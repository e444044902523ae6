"""Invoices (postpaid, I1) and statements (prepaid, I2): one document per account and period.

Every charge lands on exactly one line of the invoice or statement of its `billed_period`
(its own period, or the next open one when late, B3). A line groups charges of one kind for
one number and payer, with its exact sum (4 places) and the amount shown (2 places, HALF_UP);
the total is the sum of the shown lines (M2).

A line's charge and event ids are what a month of calls makes grow, so the document does not
hold them all: it lists its latest charges (`charges`: line number, event id, and the charge
id's part after the event id), and every `CHARGES_PER_CHUNK` of them are filed as a chunk of
their own (`CHARGES_VIEW`), never written again. A batch then rewrites a bounded document,
however busy the account, and the layout is the same however the charges were batched. A
chunk holds its charges by line, their charge and event ids as the invoice shows them
(`filed_chunk`): reading a busy month back then extends each line's lists by a chunk's,
where building every id from its parts was most of the read.

A batch rewrites the whole document of each invoice it charges, so the document holds what
only it knows: a line's exact sum and what tells it from the others, as a list without field
names (`StoredLine`), not its text or its shown amount, which are written from them when
read. PostgreSQL's work to store a document grows with its bytes (docs/PERFORMANCE.md,
round 23 and session 40). `read_invoices` puts each line's fields, text and ids back together;
a line also counts its charges, so the invoice's table needs none of its chunks (`summarised`).

`cycle.started` for a period closes every earlier open invoice of the account (the bill run)
and opens the period's own, which already holds the fees in advance.
"""

from bisect import bisect
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import chain
from typing import Any

from ledger.errors import LedgerError
from ledger.instants import parse_instant, period_of
from ledger.money import ZERO, ZERO_TEXT, money_text, rated, shown
from projections.projection import Fact, Projection, ViewChanges
from projections.store import ViewStore

VIEW = "invoices"
INDEX_VIEW = "invoice_index"  # per account: its billing mode and each period's status
CHARGES_VIEW = "invoice_charges"  # filed chunks of an invoice's charges, "ACCOUNT|PERIOD|CHUNK"
# The latest charges are rewritten with the invoice by every batch that charges it: 25 of them
# are about 1.2 KB with an upstream system's UUID event ids (docs/PERFORMANCE.md, session 40).
CHARGES_PER_CHUNK = 25
MAX_CHUNKS = 1_000_000  # the chunk's number has 6 digits in its key, so keys sort in order

# Line kinds in the order an invoice lists them (I1, I2).
LINE_KINDS: dict[str, str] = {
    "plan_fees": "Plan fees",
    "package_fees": "Data package fees",
    "payg_calls": "PAYG calls",
    "payg_data": "PAYG data",
    "roaming": "Roaming data",
    "one_time_fees": "One-time fees",
    "surcharges": "Surcharges",
    "late_usage": "Late usage",
    "adjustments": "Adjustments",
    "credits": "Credits",
}
_LINE_ORDER = {kind: order for order, kind in enumerate(LINE_KINDS)}
_CHARGE_LINE_KINDS = {
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
USAGE_CHARGE_KINDS = frozenset({"payg_call", "payg_data", "roaming_data"})
_PAYERS = {"balance": "from balance", "payment_method": "to payment method", "invoice": ""}
_CREDITED_TO = {"balance": "balance", "payment_method": "payment method"}
# The document's layout: 1 listed every charge id on its line, 2 held each line's text and key,
# 3 held each line as an object with its fields' names and its shown amount, 4 filed each
# charge with its line's number and its ids' parts, 5 did not count a line's charges.
LAYOUT = 6
_EARLIER_LAYOUTS = {
    None: "its lines list every charge id",
    2: "its lines spell out their texts",  # stored without a layout, told by its `charges`
    3: "its lines name their fields",
    4: "its filed charges are listed one by one",
    5: "its lines do not count their charges",
}

# A stored line (layout 6): [number, kind, msisdn, period, payer, exact amount, charges],
# followed on a late-usage or labelled line by its charge kind (or None), and on a labelled one
# by its label and its charge's id. `number` is its place among the lines as they were made;
# `charges` counts the charges on it, so its table row is written without reading their ids.
StoredLine = list[Any]
_NUMBER, _KIND, _MSISDN, _PERIOD, _PAYER, _EXACT, _CHARGES, _CHARGE_KIND, _LABEL, _CHARGE_ID = (
    range(10)
)


def invoice_key(account_id: str, period: str) -> str:
    return f"{account_id}|{period}"


def line_kind(charge: dict[str, Any]) -> str:
    """The line a charge belongs on: late usage (B3) and credits have lines of their own."""
    if charge["kind"] in USAGE_CHARGE_KINDS and charge["billed_period"] != charge["period"]:
        return "late_usage"
    amount: str = charge["amount"]
    if amount.startswith("-") and Decimal(amount) < ZERO:  # "-0.0000" is not a credit
        return "credits"
    return _CHARGE_LINE_KINDS.get(charge["kind"], "one_time_fees")


def line_description(line: dict[str, Any], billed_period: str, billing_mode: str) -> str:
    """A line's text (I1, I2), from its fields (`line_fields`)."""
    kind, period = line["kind"], line["period"]
    if kind == "late_usage":
        usage = LINE_KINDS[_CHARGE_LINE_KINDS[line["charge_kind"]]]
        text = f"Late usage from {period}: {usage}"
    else:
        text = LINE_KINDS[kind]
        if billed_period != period:
            text += f" from {period}"
    label = line.get("label")
    if label:
        text += f": {label}"
    if line["msisdn"]:
        text += f", {line['msisdn']}"
    if billing_mode == "prepaid":
        if kind == "credits":  # back where it was paid from (F1): the balance or the card
            text += f" (credited to {_CREDITED_TO[line['payer']]})"
        else:
            text += f" (paid {_PAYERS[line['payer']]})"
    return text


LineId = tuple[int, str, str, str, str, str]


def _line_id(kind: str, charge: dict[str, Any]) -> LineId:
    """Charges sharing this land on one line; a labelled charge has a line of its own. The
    same as `_stored_line_id` of the line the charge makes, asserted where a line is made."""
    return (
        _LINE_ORDER[kind],
        charge["msisdn"] or "",
        charge["period"],
        charge["kind"] if kind == "late_usage" else "",
        charge["payer"],
        charge["charge_id"] if charge["label"] else "",
    )


def _stored_line_id(line: StoredLine) -> LineId:
    """A stored line's id, which also orders the lines."""
    return (
        _LINE_ORDER[line[_KIND]],
        line[_MSISDN] or "",
        line[_PERIOD],
        (line[_CHARGE_KIND] or "") if len(line) > _CHARGE_KIND else "",
        line[_PAYER],
        line[_CHARGE_ID] if len(line) > _CHARGE_ID else "",
    )


def line_fields(line: StoredLine) -> dict[str, Any]:
    """A stored line by its fields' names, with its shown amount and how many charges are on
    it: `charge_kind` on a late-usage line, `label` and `charge_id` on a labelled one."""
    exact = line[_EXACT]
    fields = {
        "number": line[_NUMBER],
        "kind": line[_KIND],
        "msisdn": line[_MSISDN],
        "period": line[_PERIOD],
        "payer": line[_PAYER],
        "exact_amount": exact,
        "amount": str(shown(Decimal(exact))),
        "charge_count": line[_CHARGES],
    }
    if len(line) > _CHARGE_KIND and line[_CHARGE_KIND] is not None:
        fields["charge_kind"] = line[_CHARGE_KIND]
    if len(line) > _LABEL:
        fields["label"], fields["charge_id"] = line[_LABEL], line[_CHARGE_ID]
    return fields


def empty_invoice(account_id: str, period: str, billing_mode: str, currency: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "account_id": account_id,
        "period": period,
        "document": "statement" if billing_mode == "prepaid" else "invoice",
        "layout": LAYOUT,
        "billing_mode": billing_mode,
        "currency": currency,
        "status": "open",
        "closed_by": None,
        "closed_at": None,
        "lines": [],  # StoredLine each, in invoice order
        "total": "0.00",
        # [line number, event id, charge id after "<event id>:"], fewer than CHARGES_PER_CHUNK
        "charges": [],
        "charge_chunks": 0,  # chunks of charges filed before them
    }
    if billing_mode == "prepaid":
        # The exact net change of the PAYG balance billed to this statement; balances at
        # its start and end are running sums over the statements (see `with_balances`).
        doc["balance_change"] = money_text(ZERO)
        doc["recharges"] = []
    return doc


class HeldLine:
    """A line of a held invoice with the exact sum its text says and the amount shown."""

    __slots__ = ("exact", "line", "shown")

    def __init__(self, line: StoredLine, exact: Decimal, shown_amount: Decimal) -> None:
        self.line = line
        self.exact = exact
        self.shown = shown_amount


class OutdatedInvoiceLayout(LedgerError):
    """The views hold an invoice in the layout of an earlier version: rebuild them."""


def _current_layout(doc: dict[str, Any]) -> dict[str, Any]:
    layout = doc.get("layout")
    if layout == LAYOUT:
        return doc
    if layout is None and "charges" in doc:
        layout = 2
    if layout in _EARLIER_LAYOUTS:
        raise OutdatedInvoiceLayout(
            f"invoice {doc['account_id']} {doc['period']} is in an earlier layout of the views"
            f" ({_EARLIER_LAYOUTS[layout]}): run `ledger rebuild`"
        )
    raise OutdatedInvoiceLayout(
        f"invoice {doc['account_id']} {doc['period']} is in layout {layout!r} of the views,"
        f" and this ledger reads layout {LAYOUT}: run the ledger's version that wrote them,"
        " or `ledger rebuild`"
    )


class HeldInvoice:
    """An open invoice as a process holds it between charges: its lines by grouping key, and
    the amounts its texts say as Decimals.

    Adding a charge then parses the charge's amount alone, not the line's sum, the total and
    a statement's balance change back from their texts (parses that were a tenth of folding
    the views). Each text is still written as it moves, so the document is at every moment
    what the store would hold.
    """

    __slots__ = ("balance_change", "by_id", "doc", "order", "total")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = _current_layout(doc)
        self.by_id = {}
        for line in doc["lines"]:
            exact = Decimal(line[_EXACT])
            self.by_id[_stored_line_id(line)] = HeldLine(line, exact, shown(exact))
        # The lines' ids in the order of the lines: where a new line goes, found among them.
        self.order = list(self.by_id)
        assert self.order == sorted(self.order), f"lines out of order: {self.order}"
        self.total = Decimal(doc["total"])
        self.balance_change = Decimal(doc.get("balance_change", ZERO_TEXT))

    def add_charge(self, charge: dict[str, Any], event_id: str) -> Decimal:
        """Put one charge on its line (creating the line) and in the invoice's latest charges,
        and move the total with it (M2). Returns the charge's amount."""
        kind = line_kind(charge)
        line_id = _line_id(kind, charge)
        held = self.by_id.get(line_id)
        if held is None:
            held = self._new_line(line_id, kind, charge)
        line = held.line
        # No check that the charge id is new: against a month's ids it cost the square of the
        # month's calls. A charge id is unique by construction (its event's id, deduplicated,
        # and `rules.bill` asserts it within an outcome).
        charge_id: str = charge["charge_id"]
        after = len(event_id) + 1
        assert charge_id[after - 1 : after] == ":" and charge_id.startswith(event_id), (
            f"charge {charge_id} is not named after its event {event_id}"
        )
        self.doc["charges"].append([line[_NUMBER], event_id, charge_id[after:]])
        line[_CHARGES] += 1
        amount = Decimal(charge["amount"])
        exact = rated(held.exact + amount)
        held.exact = exact
        line[_EXACT] = str(exact)
        shown_now = shown(exact)
        if shown_now != held.shown:
            # The sum of the lines' shown amounts, moved by this line's change rather than
            # summed again over every line (Decimal addition is exact: both give the same).
            self.total = self.total - held.shown + shown_now
            self.doc["total"] = str(self.total)
            held.shown = shown_now
        return amount

    def move_balance(self, delta: Decimal) -> None:
        """A statement's net change of the PAYG balance moves by `delta` (I2)."""
        self.balance_change = rated(self.balance_change + delta)
        self.doc["balance_change"] = str(self.balance_change)

    def _new_line(self, line_id: LineId, kind: str, charge: dict[str, Any]) -> HeldLine:
        number = len(self.doc["lines"])
        line = [number, kind, charge["msisdn"], charge["period"], charge["payer"], ZERO_TEXT, 0]
        # What else tells the line apart and goes into its text, only where there is any.
        charge_kind = charge["kind"] if kind == "late_usage" else None
        if charge["label"]:
            line.extend((charge_kind, charge["label"], charge["charge_id"]))
        elif charge_kind is not None:
            line.append(charge_kind)
        assert _stored_line_id(line) == line_id, (line, line_id)
        # The lines are kept in line order: a new one goes in its place, no sort of them all.
        place = bisect(self.order, line_id)
        self.order.insert(place, line_id)
        self.doc["lines"].insert(place, line)
        held = self.by_id[line_id] = HeldLine(line, ZERO, ZERO)
        return held


class HeldInvoices:
    """The open invoices a process holds, by document: a document read again from the store is
    a new object, held anew. Each entry keeps its document alive, so no other object can have
    its id while it is held. Bounded."""

    def __init__(self, max_invoices: int = 50_000) -> None:
        self.max_invoices = max_invoices
        self._by_doc: dict[int, HeldInvoice] = {}

    def of(self, doc: dict[str, Any]) -> HeldInvoice:
        held = self._by_doc.get(id(doc))
        if held is not None:
            return held
        if len(self._by_doc) >= self.max_invoices:
            self._by_doc.clear()
        held = self._by_doc[id(doc)] = HeldInvoice(doc)
        return held


def with_balances(statements: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statements of one account in period order with `balance_start` and `balance_end` (I2):
    the running sum of the balance changes billed to each."""
    balance = ZERO
    result = []
    for doc in sorted(statements, key=lambda d: str(d["period"])):
        end = balance + Decimal(doc["balance_change"])
        result.append({**doc, "balance_start": money_text(balance), "balance_end": money_text(end)})
        balance = end
    return result


class InvoiceProjection(Projection):
    def __init__(self) -> None:
        self._held = HeldInvoices()

    def applied(self, fact: Fact, outcome: dict[str, Any], changes: ViewChanges) -> None:
        account_id = fact["account_id"]
        if fact["type"] == "cycle.started":
            self._bill_run(changes, account_id, outcome["effects"]["period"], fact)
        paid_by_balance = ZERO
        for charge in outcome["charges"]:
            key, doc = self._invoice(changes, account_id, charge["billed_period"])
            held = self._held.of(doc)
            amount = held.add_charge(charge, fact["event_id"])
            if charge["payer"] == "balance":
                paid_by_balance += amount
                held.move_balance(-amount)
            if len(doc["charges"]) >= CHARGES_PER_CHUNK:  # >=: views filed under a larger one
                self._file_charges(changes, key, doc)
            changes.put(VIEW, key, doc)
        # What moved the balance besides charges: a recharge (I2).
        balance_delta: str = outcome["balance_delta"]
        if paid_by_balance == ZERO and balance_delta == ZERO_TEXT:
            return
        other = Decimal(balance_delta) + paid_by_balance
        if other != ZERO:
            key, doc = self._invoice(changes, account_id, outcome["billed_period"])
            assert doc["billing_mode"] == "prepaid", (account_id, fact["event_id"])
            doc["recharges"].append({"event_id": fact["event_id"], "amount": money_text(other)})
            self._held.of(doc).move_balance(other)
            changes.put(VIEW, key, doc)

    @staticmethod
    def _file_charges(changes: ViewChanges, key: str, doc: dict[str, Any]) -> None:
        """The invoice's latest charges become its next chunk, settled: never written again."""
        chunk: int = doc["charge_chunks"]
        assert chunk < MAX_CHUNKS, f"{key} has {MAX_CHUNKS} chunks of charges"
        changes.put(CHARGES_VIEW, f"{key}|{chunk:06d}", filed_chunk(doc["charges"]), settled=True)
        doc["charges"] = []
        doc["charge_chunks"] = chunk + 1

    def opened(self, fact: Fact, changes: ViewChanges) -> None:
        period = period_of(
            parse_instant(fact["occurred_at"], "occurred_at"), fact.get("timezone", "UTC")
        )
        changes.put(
            INDEX_VIEW,
            fact["account_id"],
            {"billing_mode": fact["billing_mode"], "currency": fact["currency"], "periods": {}},
        )
        self._invoice(changes, fact["account_id"], period)

    def _invoice(
        self, changes: ViewChanges, account_id: str, period: str
    ) -> tuple[str, dict[str, Any]]:
        """The key and the open invoice of that period, opened if it is new. A closed one is
        never written again: `rules.bill` sends late charges to the next open period (B3)."""
        key = invoice_key(account_id, period)
        index = changes.get(INDEX_VIEW, account_id)
        assert index is not None, f"invoice for {account_id} before it opened"
        status = index["periods"].get(period)
        if status is None:  # new: known from the index, not by asking the store for it
            doc = empty_invoice(account_id, period, index["billing_mode"], index["currency"])
            index["periods"][period] = "open"
            changes.put(INDEX_VIEW, account_id, index)
            changes.put(VIEW, key, doc)
            return key, doc
        assert status == "open", f"a charge reached the closed invoice {account_id} {period}"
        held = changes.get(VIEW, key)
        assert held is not None and held["status"] == "open", (account_id, period)
        return key, held

    def _bill_run(
        self, changes: ViewChanges, account_id: str, period: str, fact: dict[str, Any]
    ) -> None:
        """I1: close every earlier open invoice, open the period's own."""
        index = changes.get(INDEX_VIEW, account_id)
        assert index is not None
        for earlier, status in sorted(index["periods"].items()):
            if earlier < period and status == "open":
                doc = changes.get(VIEW, invoice_key(account_id, earlier))
                assert doc is not None
                changes.put(
                    VIEW,
                    invoice_key(account_id, earlier),
                    {
                        **doc,
                        "status": "closed",
                        "closed_by": fact["event_id"],
                        "closed_at": fact["occurred_at"],
                    },
                    settled=True,
                )
                index["periods"][earlier] = "closed"
        changes.put(INDEX_VIEW, account_id, index)
        self._invoice(changes, account_id, period)


_INTERNAL_FIELDS = ("layout", "charges", "charge_chunks")


def filed_chunk(charges: Sequence[list[Any]]) -> dict[str, Any]:
    """A chunk of an invoice's latest charges as filed: `lines`, for each line they are on
    (in the order of its first charge here), [line number, charge ids, event ids], the ids as
    the line shows them (an event's id once for its charges in a row)."""
    by_number: dict[int, list[Any]] = {}
    for number, event_id, after_event_id in charges:
        line = by_number.get(number)
        if line is None:
            line = by_number[number] = [number, [], []]
        line[1].append(f"{event_id}:{after_event_id}")
        event_ids = line[2]
        if not event_ids or event_ids[-1] != event_id:
            event_ids.append(event_id)
    return {"lines": list(by_number.values())}


def summarised(doc: dict[str, Any]) -> dict[str, Any]:
    """An invoice as its table shows it (I1): each line with its text and how many charges are
    on it, without their ids, so it needs none of its filed chunks of charges."""
    _current_layout(doc)
    lines = []
    for stored in doc["lines"]:
        line = line_fields(stored)
        lines.append(
            {
                "amount": line["amount"],
                "charge_count": line["charge_count"],
                "description": line_description(line, doc["period"], doc["billing_mode"]),
                "exact_amount": line["exact_amount"],
                "kind": line["kind"],
                "msisdn": line["msisdn"],
                "payer": line["payer"],
                "period": line["period"],
            }
        )
    invoice = {k: v for k, v in doc.items() if k not in _INTERNAL_FIELDS}
    invoice["lines"] = lines
    return invoice


def published(doc: dict[str, Any], filed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An invoice as people and accounting tools see it (I1): `summarised`, each line also with
    the ids of its charges and of the events behind them, in the order they came; `filed` are
    its chunks of charges, in order."""
    invoice = summarised(doc)
    assert len(filed) == doc["charge_chunks"], (doc["account_id"], doc["period"], len(filed))
    by_number: dict[int, dict[str, Any]] = {}
    for stored, line in zip(doc["lines"], invoice["lines"], strict=True):
        line["charge_ids"] = []
        line["event_ids"] = []
        by_number[stored[_NUMBER]] = line
    for number, charge_ids, event_ids in chain(
        *(chunk["lines"] for chunk in filed), filed_chunk(doc["charges"])["lines"]
    ):
        line = by_number[number]
        line["charge_ids"] += charge_ids
        shown_event_ids = line["event_ids"]
        if shown_event_ids and shown_event_ids[-1] == event_ids[0]:  # one event across chunks
            shown_event_ids += event_ids[1:]
        else:
            shown_event_ids += event_ids
    for line in invoice["lines"]:  # every charge filed is counted on its line, and no other
        assert len(line["charge_ids"]) == line["charge_count"], (
            f"invoice {doc['account_id']} {doc['period']}: {line['description']} counts "
            f"{line['charge_count']} charges and lists {len(line['charge_ids'])}"
        )
    return invoice


def latest_open_period(views: ViewStore, account_id: str) -> str | None:
    """The latest period of the account whose invoice or statement is open, from its index:
    the one a support query shows unasked, found without reading any invoice."""
    index = views.get(INDEX_VIEW, account_id)
    if index is None:
        return None
    periods: dict[str, str] = index["periods"]
    return max((period for period, status in periods.items() if status == "open"), default=None)


def read_invoices(
    views: ViewStore,
    account_id: str | None = None,
    period: str | None = None,
    *,
    charge_ids: bool = True,
) -> list[dict[str, Any]]:
    """Invoices and statements in (account, period) order, statements with their balances:
    `published`, or `summarised` without `charge_ids`."""
    prefix = f"{account_id}|" if account_id is not None else ""
    by_account: dict[str, list[dict[str, Any]]] = {}
    for _, doc in views.scan(VIEW, prefix):
        by_account.setdefault(doc["account_id"], []).append(doc)
    # One invoice asked for: its own chunks only, not those of every month the account has.
    chunks_prefix = prefix
    if account_id is not None and period is not None:
        chunks_prefix = f"{invoice_key(account_id, period)}|"
    filed: dict[str, list[dict[str, Any]]] = {}
    chunks = views.scan(CHARGES_VIEW, chunks_prefix) if charge_ids else ()
    for key, chunk in chunks:  # in key order: chunks in order
        filed.setdefault(key.rsplit("|", 1)[0], []).append(chunk)
    result: list[dict[str, Any]] = []
    for account in sorted(by_account):
        docs = by_account[account]
        if docs[0]["billing_mode"] == "prepaid":
            docs = with_balances(docs)
        result.extend(
            published(d, filed.get(invoice_key(account, d["period"]), []))
            if charge_ids
            else summarised(d)
            for d in docs
            if period is None or d["period"] == period
        )
    return result
