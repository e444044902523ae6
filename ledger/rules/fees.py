"""Charges given from outside the catalog: carrier surcharges and TCR fees (S1), and
finance's manual adjustments (F3)."""

from decimal import Decimal

from ledger.account import Account
from ledger.catalog import CatalogHistory
from ledger.contract import IncomingEvent
from ledger.instants import period_of
from ledger.money import ZERO, rated
from ledger.outcome import Charge, Outcome, charged
from ledger.rules.voice import fee_payer, usage_payer

SURCHARGE_KINDS = {"carrier": "carrier_surcharge", "tcr_registration": "tcr_registration_fee"}


def surcharge_applied(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    """S1: charged as given, never prorated, paid like a fee (the payment method when
    prepaid, I3); not refundable."""
    amount: Decimal = event.fields["amount"]
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    kind = SURCHARGE_KINDS[event.fields["kind"]]
    charge = Charge(
        charge_id=f"{event.event_id}:surcharge",
        kind=kind,
        amount=rated(amount),
        rule="S1",
        catalog_version=catalog.version,
        rate="as given by the carrier",
        arithmetic=f"{event.fields['description']}: {amount} as given, no proration; "
        "not refundable",
        period=period_of(event.occurred_at, account.timezone),
        payer=fee_payer(account),
        msisdn=event.fields.get("msisdn"),
        label=event.fields["description"],
    )
    return charged("S1", (charge,))


def adjustment_posted(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    """F3: a manual credit (negative) or debit (positive) with its reason and approver.

    On a prepaid account it moves the PAYG balance (a credit adds to it); on a postpaid
    account it goes on the invoice.
    """
    amount: Decimal = rated(event.fields["amount"])
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    what = "credit" if amount < ZERO else "debit"
    charge = Charge(
        charge_id=f"{event.event_id}:adjustment",
        kind="adjustment",
        amount=amount,
        rule="F3",
        catalog_version=catalog.version,
        rate="as posted by finance",
        arithmetic=f"manual {what} of {abs(amount)}: {event.fields['reason']} "
        f"(approved by {event.fields['approved_by']})",
        period=period_of(event.occurred_at, account.timezone),
        payer=usage_payer(account),
        label=f"{event.fields['reason']} (approved by {event.fields['approved_by']})",
    )
    return charged("F3", (charge,))
