"""Number porting (P1, P2): port-in swaps a temporary number for the ported one, port-out
charges the mandatory fee and ends billing for the number."""

from typing import Any

from ledger.account import Account
from ledger.catalog import CatalogHistory, CatalogVersion
from ledger.contract import IncomingEvent
from ledger.instants import instant_text, parse_instant, period_of
from ledger.outcome import Charge, Outcome, applied, charged, rejected
from ledger.rules.data import renewal_period
from ledger.rules.voice import credited_in_full, fee_payer, renewal_credit, usage_payer


def port_in_requested(account: Account, event: IncomingEvent, _: CatalogHistory) -> Outcome:
    """P1: the account gets the new number at once; a subscription can start on it."""
    msisdn, ported = event.fields["msisdn"], event.fields["ported_msisdn"]
    if ported in account.numbers:
        return rejected("P1", f"{ported} is already on account {account.account_id}")
    number = account.numbers.get(msisdn)
    if number is not None and number.porting_in is not None:
        return rejected("P1", f"a port-in of {number.porting_in} to {msisdn} is already pending")
    return applied("P1", effects={"porting_in": ported, "added": number is None})


def port_in_completed(account: Account, event: IncomingEvent, _: CatalogHistory) -> Outcome:
    """P1: the ported number replaces the new one, keeping its plan, packages and minutes."""
    msisdn, ported = event.fields["msisdn"], event.fields["ported_msisdn"]
    pending = account.numbers[msisdn].porting_in
    if pending != ported:
        return rejected("P1", f"no port-in of {ported} to {msisdn} is pending")
    if ported in account.numbers:
        return rejected("P1", f"{ported} is already on account {account.account_id}")
    return applied("P1", effects={"replaced_by": ported, **_number_views(account, msisdn)})


def port_in_failed(account: Account, event: IncomingEvent, _: CatalogHistory) -> Outcome:
    """P1: the new number simply stays; nothing is refunded."""
    msisdn, ported = event.fields["msisdn"], event.fields["ported_msisdn"]
    if account.numbers[msisdn].porting_in != ported:
        return rejected("P1", f"no port-in of {ported} to {msisdn} is pending")
    return applied("P1", effects={"porting_in": None})


def port_out_fee(
    account: Account, event: IncomingEvent, catalog: CatalogVersion, why: str
) -> Charge:
    fee = catalog.port_out_fee
    return Charge(
        charge_id=f"{event.event_id}:port_out_fee",
        kind="port_out_fee",
        amount=fee,
        rule="P2",
        catalog_version=catalog.version,
        rate=f"{fee} once per port-out",
        arithmetic=f"mandatory one-time port-out fee {fee}, {why}; not refundable",
        period=period_of(event.occurred_at, account.timezone),
        payer=fee_payer(account),  # paid in the portal, never from the balance (I3)
        msisdn=event.fields["msisdn"],
    )


def port_out_requested(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    """P2: the request charges the catalog's one-time port-out fee."""
    msisdn = event.fields["msisdn"]
    if account.numbers[msisdn].porting_out:
        return rejected("P2", f"a port-out of {msisdn} is already requested and its fee charged")
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    charge = port_out_fee(account, event, catalog, "charged at the request")
    return charged("P2", (charge,), {"porting_out": True})


def port_out_completed(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    """P2: the number leaves; its plan and packages end without refund, billing stops.

    The fee is mandatory: a completion that arrives without a request charges it here.
    """
    msisdn = event.fields["msisdn"]
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    charges: tuple[Charge, ...] = ()
    if not account.numbers[msisdn].porting_out:
        charges = (port_out_fee(account, event, catalog, "charged at completion (no request)"),)
    credits, reversed_charges = _renewals_after_completion(account, event, catalog)
    effects = {"removed": True, **_number_views(account, msisdn)}
    if reversed_charges:
        effects["reversed_charges"] = reversed_charges
    return charged("P2", charges + credits, effects)


def _renewals_after_completion(
    account: Account, event: IncomingEvent, catalog: CatalogVersion
) -> tuple[tuple[Charge, ...], list[str]]:
    """A completion dated before a bill run but logged after it: billing for the number
    stopped at its date, so the renewals made for it since (plan and package fees) are
    credited in full, used or not (P2). With the ids of the renewal charges credited."""
    msisdn = event.fields["msisdn"]
    number = account.numbers[msisdn]
    at = event.occurred_at
    why = f"ported out at {instant_text(at)}"
    since = period_of(at, account.timezone)
    renewals = [
        ("plan_fee", period, batch.fee_charge_id, batch.fee, fee_payer(account))
        for period, batch in sorted(number.minute_batches.items())
        if period > since and batch.renewed
    ] + [
        (
            "package_fee",
            renewal_period(account, package),
            package.renewal_charge_id,
            package.fee,
            usage_payer(account),
        )
        for package in (number.previous_package, number.package)
        if package is not None and parse_instant(package.valid_from, "valid_from") > at
    ]
    credits: list[Charge] = []
    reversed_charges: list[str] = []
    for kind, period, charge_id, fee, payer in renewals:
        if charge_id is None or fee is None or credited_in_full(account, charge_id, fee):
            continue  # no fee (a yearly plan's month), or credited already
        credits.append(
            renewal_credit(
                account, event, catalog, kind, period, charge_id, fee, payer, msisdn, "P2", why
            )
        )
        reversed_charges.append(charge_id)
    return tuple(credits), reversed_charges


def _number_views(account: Account, msisdn: str) -> dict[str, Any]:
    """What the number held when it was replaced or left (for the record and explain)."""
    number = account.numbers[msisdn]
    return {
        "plan_id": number.plan.plan_id if number.plan else None,
        "package_id": number.package.package_id if number.package else None,
    }
