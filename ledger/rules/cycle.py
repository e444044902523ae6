"""The start of a billing period (`cycle.started`): renewals and expiries of every family."""

from ledger.account import Account
from ledger.catalog import CatalogHistory
from ledger.contract import IncomingEvent
from ledger.outcome import Outcome, charged, rejected
from ledger.rules import data, voice


def cycle_started(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    period = event.fields["period"]
    if period < account.current_period or (
        account.last_cycle_period is not None and period <= account.last_cycle_period
    ):
        return rejected("V6", f"period {period} has already started on this account")
    catalog = voice.renewal_catalog(account, catalogs, period, event.occurred_at)
    plan_charges, plans = voice.renew_plans(account, event, period, catalog)
    package_charges, packages = data.renew_packages(account, event, period, catalog)
    charges = plan_charges + package_charges
    return charged("V6", tuple(charges), {"period": period, "plans": plans, "packages": packages})
