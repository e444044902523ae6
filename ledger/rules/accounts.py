"""Numbers, recharges and acceptable-use blocks."""

from ledger.account import Account
from ledger.catalog import CatalogHistory
from ledger.contract import IncomingEvent
from ledger.outcome import Outcome, applied, rejected


def number_added(account: Account, event: IncomingEvent, _: CatalogHistory) -> Outcome:
    msisdn = event.fields["msisdn"]
    if msisdn in account.numbers:
        return rejected("V1", f"{msisdn} is already on account {account.account_id}")
    return applied("V1")


def balance_recharged(account: Account, event: IncomingEvent, _: CatalogHistory) -> Outcome:
    if account.billing_mode != "prepaid":
        return rejected(
            "I3", "a postpaid account has no prepaid balance; payments are settled on invoices"
        )
    # The balance is signed: a recharge pays any debt first simply by adding to it (V9).
    return applied("V9", balance_delta=event.fields["amount"])


def account_blocked(account: Account, event: IncomingEvent, _: CatalogHistory) -> Outcome:
    return applied("B2", effects={"blocked": True, "reason": event.fields["reason"]})


def account_unblocked(account: Account, event: IncomingEvent, _: CatalogHistory) -> Outcome:
    return applied("B2", effects={"blocked": False, "reason": event.fields["reason"]})
