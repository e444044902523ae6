"""Rating rules: pure functions from (account state, incoming event, catalogs) to an Outcome.

No I/O here. A rule either returns an Outcome (applied, rejected with a reason, or
recorded as not yet rated) or raises RejectedEvent when the event does not fit the ledger's
state at all (unknown number, unknown plan): the pipeline dead-letters those (G2).
"""

from collections.abc import Callable

from ledger.account import Account
from ledger.catalog import CatalogHistory
from ledger.contract import IncomingEvent
from ledger.errors import RejectedEvent
from ledger.outcome import Outcome, applied, not_yet_rated, rejected

# Types whose msisdn introduces a number rather than naming one the account holds.
_INTRODUCES_NUMBER = frozenset({"number.added", "port_in.requested"})

Rule = Callable[[Account, IncomingEvent, CatalogHistory], Outcome]


def _number_added(account: Account, event: IncomingEvent, _: CatalogHistory) -> Outcome:
    msisdn = event.fields["msisdn"]
    if msisdn in account.numbers:
        return rejected("V1", f"{msisdn} is already on account {account.account_id}")
    return applied("V1")


def _balance_recharged(account: Account, event: IncomingEvent, _: CatalogHistory) -> Outcome:
    if account.billing_mode != "prepaid":
        return rejected(
            "I3", "a postpaid account has no prepaid balance; payments are settled on invoices"
        )
    # The balance is signed: a recharge pays any debt first simply by adding to it (V9).
    return applied("V9", balance_delta=event.fields["amount"])


RULES: dict[str, Rule] = {
    "number.added": _number_added,
    "balance.recharged": _balance_recharged,
}


def check_references(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> None:
    """Dead-letter what names a number, plan or package the ledger does not know (G2)."""
    msisdn = event.fields.get("msisdn")
    if (
        msisdn is not None
        and event.type not in _INTRODUCES_NUMBER
        and msisdn not in account.numbers
    ):
        raise RejectedEvent(f"unknown number {msisdn} on account {account.account_id}")
    plan_id = event.fields.get("plan_id")
    package_id = event.fields.get("package_id")
    if plan_id is None and package_id is None:
        return
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    if plan_id is not None and plan_id not in catalog.plans:
        raise RejectedEvent(f"unknown plan {plan_id!r} in catalog version {catalog.version}")
    if package_id is not None and package_id not in catalog.packages:
        raise RejectedEvent(f"unknown package {package_id!r} in catalog version {catalog.version}")


def decide(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    """The outcome of one event for one account (never called for account.opened)."""
    check_references(account, event, catalogs)
    rule = RULES.get(event.type)
    if rule is None:
        return not_yet_rated(event.type)
    return rule(account, event, catalogs)
