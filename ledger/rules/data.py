"""Data packages, fair use and roaming (D1-D9).

Every outcome that touches a package carries the number's package snapshot after the event
(`effects["package"]`, or None when it ends), so evolving state and folding views copy it.
"""

import calendar
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.account import Account
from ledger.catalog import CatalogHistory, CatalogVersion, Package
from ledger.contract import IncomingEvent
from ledger.frozen import replaced
from ledger.instants import (
    instant_text,
    parse_instant,
    period_end,
    period_of,
    period_start,
    zone,
)
from ledger.money import rated
from ledger.outcome import Charge, Outcome, Payer, applied, charged, rejected
from ledger.rules.voice import (
    ahead_of_bill_run,
    credited_in_full,
    periods_started_since,
    renewal_catalog,
    renewal_credit,
    too_late_to_renew,
    usage_payer,
)
from ledger.state import PackageState

BYTES_PER_MB = 1_000_000
PREPAID_VALIDITY = timedelta(days=30)  # D7: 30 x 24 h from purchase


def days_left(at: datetime, timezone: str) -> tuple[int, int]:
    """(days left in the month, subscription day included; days in the month) (D4)."""
    local = at.astimezone(zone(timezone))
    days_in_month = calendar.monthrange(local.year, local.month)[1]
    return days_in_month - local.day + 1, days_in_month


def _package_charge(
    event: IncomingEvent,
    account: Account,
    catalog: CatalogVersion,
    package: Package,
    amount: Decimal,
    rule: str,
    arithmetic: str,
    suffix: str = "fee",
    msisdn: str | None = None,
    period: str | None = None,
) -> Charge:
    payer = usage_payer(account)  # prepaid packages are paid from the balance (D7, I3)
    return Charge(
        charge_id=f"{event.event_id}:{suffix}",
        kind="package_fee",
        amount=amount,
        rule=rule,
        catalog_version=catalog.version,
        rate=f"{package.fee} per {'30 days' if payer == 'balance' else 'month'}",
        arithmetic=arithmetic,
        period=period or period_of(event.occurred_at, account.timezone),
        payer=payer,
        msisdn=msisdn or event.fields["msisdn"],
    )


def _snapshot(
    package: Package,
    mode: str,
    valid_from: datetime,
    valid_until: datetime,
    remaining_bytes: int,
    changed_in_period: str | None,
    carried_bytes: int = 0,
) -> PackageState:
    return PackageState(
        package_id=package.id,
        name=package.name,
        mode=mode,
        unlimited=package.unlimited,
        fee=str(package.fee),
        data_bytes=package.data_bytes or 0,
        remaining_bytes=0 if package.unlimited else remaining_bytes,
        fup_bytes=package.fup_bytes or 0,
        fup_used_bytes=0,
        throttled=False,
        throttled_since=None,
        valid_from=instant_text(valid_from),
        valid_until=instant_text(valid_until),
        renews=mode == "postpaid",
        changed_in_period=changed_in_period,
        carried_bytes=carried_bytes,
    )


def _in_force(package: PackageState | None, at: datetime) -> bool:
    if package is None:
        return False
    valid_from = parse_instant(package.valid_from, "valid_from")
    return valid_from <= at < parse_instant(package.valid_until, "valid_until")


def current_package(account: Account, msisdn: str, at: datetime) -> PackageState | None:
    """The number's current package if it is in force at that instant."""
    package = account.numbers[msisdn].package
    return package if _in_force(package, at) else None


def package_at(account: Account, msisdn: str, at: datetime) -> tuple[PackageState | None, str]:
    """The package in force at that instant, current or the one it replaced (late records,
    T2), with the effects key its new snapshot goes under."""
    number = account.rated_number(msisdn)
    if _in_force(number.package, at):
        return number.package, "package"
    if _in_force(number.previous_package, at):
        return number.previous_package, "previous_package"
    return None, "package"


def has_ended(package: PackageState, at: datetime) -> bool:
    """Gone for good at that instant. A renewing postpaid package waits for its bill run."""
    if package.mode == "postpaid" and package.renews:
        return False
    return parse_instant(package.valid_until, "valid_until") <= at


def _carried_bytes(current: PackageState | None, new: Package) -> int:
    """The data a new package takes over from the one the number holds (D6, D7): all that is
    left of it, none with Data Unlimited on either side."""
    if current is None or current.unlimited or new.unlimited:
        return 0
    return current.remaining_bytes


def _postpaid_start(
    account: Account,
    event: IncomingEvent,
    catalog: CatalogVersion,
    package: Package,
    carried_bytes: int,
    rule: str,
    changed_in_period: str | None,
    why: str,
) -> Outcome:
    """Postpaid subscribe or change: prorated by days left unless Data Unlimited (D4, D6)."""
    at = event.occurred_at
    period = period_of(at, account.timezone)
    left, days = days_left(at, account.timezone)
    if package.unlimited:
        fee = rated(package.fee)
        data = 0
        arithmetic = f"{package.name}: full fee {package.fee}, full threshold ({why}); not prorated"
    else:
        fee = rated(package.fee * left / days)
        assert package.data_bytes is not None
        data = package.data_bytes * left // days
        arithmetic = (
            f"{package.name}: {package.fee} x {left}/{days} days left = {fee}; data "
            f"{package.data_bytes} x {left}/{days} = {data} bytes"
            + (f" + {carried_bytes} bytes carried" if carried_bytes else "")
            + f" ({why})"
        )
    state = _snapshot(
        package,
        "postpaid",
        at,
        period_end(period, account.timezone),
        data + carried_bytes,
        changed_in_period,
        carried_bytes,
    )
    charge = _package_charge(event, account, catalog, package, fee, rule, arithmetic)
    return charged(rule, (charge,), {"package": state.document()})


def _prepaid_purchase(
    account: Account, event: IncomingEvent, catalog: CatalogVersion, package: Package, rule: str
) -> Outcome:
    """Prepaid purchase or change: full fee from the balance, full data, 30 days (D7, D8)."""
    msisdn = event.fields["msisdn"]
    fee = rated(package.fee)
    if account.balance < fee:
        return rejected(
            "D7", f"balance {account.balance} cannot cover the {package.name} fee {fee}"
        )
    previous = current_package(account, msisdn, event.occurred_at)
    carried = _carried_bytes(previous, package)
    at = event.occurred_at
    data = package.data_bytes or 0
    state = _snapshot(package, "prepaid", at, at + PREPAID_VALIDITY, data + carried, None, carried)
    arithmetic = (
        f"{package.name}: full fee {package.fee} from the balance; "
        + (
            "fair-use threshold per 30-day window"
            if package.unlimited
            else f"{data} bytes"
            + (
                f" + {carried} bytes carried from {previous.package_id}"
                if carried and previous
                else ""
            )
        )
        + f"; valid until {state.valid_until}"
    )
    charge = _package_charge(event, account, catalog, package, fee, rule, arithmetic)
    return charged(rule, (charge,), {"package": state.document()})


def package_subscribed(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    msisdn = event.fields["msisdn"]
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    package = catalog.package(event.fields["package_id"])
    if account.billing_mode == "prepaid":
        return _prepaid_purchase(account, event, catalog, package, "D7")
    current = current_package(account, msisdn, event.occurred_at)
    if current is None:
        started = _postpaid_start(account, event, catalog, package, 0, "D4", None, "subscription")
        return _renewed_since(account, event, catalogs, started)
    if current.renews:
        return rejected(
            "D6", f"{msisdn} already has package {current.package_id}; use package.changed"
        )
    # Unsubscribed, its data usable to the period's end (D5): a new package does not take
    # that away. It is added to the new data as a change adds it (D6).
    return _postpaid_start(
        account,
        event,
        catalog,
        package,
        _carried_bytes(current, package),
        "D4",
        None,
        f"subscription; data kept from {current.package_id} after its unsubscribe",
    )


def _renewed_since(
    account: Account, event: IncomingEvent, catalogs: CatalogHistory, started: Outcome
) -> Outcome:
    """A postpaid subscription dated before bill runs but logged after them (T2): the
    renewals those bill runs would have made of it (D4), each period's fee in advance with
    its own catalog (C2), up to the account's open period. Its package is then the last
    renewal, and the subscription's own is kept for late records of its period. Only for a
    number without a package of its own since: one subscribed meanwhile is not overlaid."""
    msisdn = event.fields["msisdn"]
    if account.numbers[msisdn].package is not None:
        return started
    period = period_of(event.occurred_at, account.timezone)
    too_late = too_late_to_renew(account, period, "D4", "subscription")
    if too_late is not None:
        return too_late
    subscribed = PackageState.from_document(started.effects["package"])
    package = subscribed
    fees: list[Charge] = []
    for started_period, catalog in periods_started_since(account, catalogs, period):
        renewal = renew_package(
            account, event, msisdn, started_period, catalog, package, f":{started_period}"
        )
        if renewal is None or renewal[0] is None or renewal[1] is None:
            break  # gone from the catalog: it ends, as the bill run would end it
        fees.append(renewal[0])
        package = renewal[1]
    if not fees:
        return started
    effects = {"package": package.document(), "previous_package": subscribed.document()}
    return charged("D4", (*started.charges, *fees), effects)


def package_changed(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    msisdn = event.fields["msisdn"]
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    package = catalog.package(event.fields["package_id"])
    if account.billing_mode == "prepaid":
        return _prepaid_purchase(account, event, catalog, package, "D7")
    current = current_package(account, msisdn, event.occurred_at)
    if current is None:
        renewed = renewed_after(account, msisdn, event.occurred_at)
        if renewed is None:
            return rejected("D6", f"{msisdn} has no package to change; subscribe instead")
        return _change_renewed(account, event, catalogs, package, renewed)
    period = period_of(event.occurred_at, account.timezone)
    if current.changed_in_period == period:
        return _changed_already(msisdn, period)
    return _postpaid_start(
        account,
        event,
        catalog,
        package,
        _carried_bytes(current, package),
        "D6",
        period,
        f"change from {current.package_id}",
    )


def _changed_already(msisdn: str, period: str) -> Outcome:
    return rejected(
        "D6", f"{msisdn} already changed its package in {period}; one change per period"
    )


def _change_renewed(
    account: Account,
    event: IncomingEvent,
    catalogs: CatalogHistory,
    package: Package,
    renewed: PackageState,
) -> Outcome:
    """D6 as of the change's date, which the bill run's renewal followed (T2). The change is
    rated against the package in force then (prorated fee and data for the rest of its
    period, the data left carried), and the renewal is made again with the new package: the
    old renewal reversed (fee credited) and the new package's full fee and data for the
    period started (D4). Only when nothing has used the renewal's data; otherwise the change
    is rejected with the reason: the customer used the package the bill run renewed, and a
    change in the new period is the way to leave it."""
    at = event.occurred_at
    msisdn = event.fields["msisdn"]
    before = account.numbers[msisdn].previous_package
    assert before is not None
    period = period_of(at, account.timezone)
    renewed_for = renewal_period(account, renewed)
    if before.changed_in_period == period:
        return _changed_already(msisdn, period)
    if not _untouched(account, renewed):
        return rejected(
            "D6",
            f"{msisdn}'s package {renewed.package_id} was renewed for {renewed_for} before "
            f"this change dated {instant_text(at)} reached the ledger, and its data is in use; "
            f"change it again for {renewed_for}",
        )
    catalog = catalogs.in_force(account.currency, at)
    started = _postpaid_start(
        account,
        event,
        catalog,
        package,
        _carried_bytes(before, package),
        "D6",
        period,
        f"change from {before.package_id}",
    )
    changed = PackageState.from_document(started.effects["package"])
    why = f"package changed to {package.id} at {instant_text(at)}"
    credit = _renewal_reversed(account, event, catalog, renewed, "D6", why)
    fee, again = renew_package(
        account,
        event,
        msisdn,
        renewed_for,
        renewal_catalog(account, catalogs, renewed_for, at),
        changed,
        f":{renewed_for}",
    ) or (None, None)
    effects = {
        "package": None if again is None else again.document(),
        "previous_package": changed.document(),
        "reversed_charges": [renewed.renewal_charge_id],
    }
    fees = () if fee is None else (fee,)
    return charged("D6", (*started.charges, credit, *fees), effects)


def renewal_period(account: Account, renewed: PackageState) -> str:
    """The period a bill run renewed the package for (its validity's first)."""
    return period_of(parse_instant(renewed.valid_from, "valid_from"), account.timezone)


def _renewal_reversed(
    account: Account,
    event: IncomingEvent,
    catalog: CatalogVersion,
    renewed: PackageState,
    rule: str,
    why: str,
) -> Charge:
    """The credit of the whole fee of a package renewal that a fact dated before it reverses
    (D5, D6), on the renewal's own period."""
    assert renewed.renewal_charge_id is not None
    return renewal_credit(
        account,
        event,
        catalog,
        "package_fee",
        renewal_period(account, renewed),
        renewed.renewal_charge_id,
        renewed.fee,
        usage_payer(account),
        event.fields["msisdn"],
        rule,
        why,
    )


def _untouched(account: Account, renewed: PackageState) -> bool:
    """A renewal whose data nothing has used, and whose fee nothing has credited in full."""
    return (
        renewed.remaining_bytes == renewed.data_bytes
        and renewed.fup_used_bytes == 0
        and not credited_in_full(account, renewed.renewal_charge_id, renewed.fee)
    )


def package_unsubscribed(
    account: Account, event: IncomingEvent, catalogs: CatalogHistory
) -> Outcome:
    """D5, D9: Data Unlimited stops at once; other packages' data stays usable."""
    msisdn = event.fields["msisdn"]
    current = current_package(account, msisdn, event.occurred_at)
    if current is None:
        renewed = renewed_after(account, msisdn, event.occurred_at)
        if renewed is None:
            return rejected("D5", f"{msisdn} has no active package")
        return _unsubscribe_renewed(account, event, catalogs, renewed)
    rule = "D9" if account.billing_mode == "prepaid" else "D5"
    ended = _unsubscribed(current, event.occurred_at)
    if current.unlimited:  # stopped: late records from before this instant still find it (T2)
        return applied(rule, effects={"package": None, "previous_package": ended.document()})
    return applied(rule, effects={"package": ended.document()})


def _unsubscribed(current: PackageState, at: datetime) -> PackageState:
    """The package unsubscribed at that instant (D5, D9): Data Unlimited stops then, other
    packages renew no more and their data stays usable."""
    if current.unlimited:
        return replaced(current, valid_until=instant_text(at))
    return replaced(current, renews=False)


def renewed_after(account: Account, msisdn: str, at: datetime) -> PackageState | None:
    """The number's postpaid package if a bill run renewed it after that instant, from the
    package that was in force then: a fact dated before the renewal reached the ledger after
    it (T2)."""
    number = account.numbers[msisdn]
    package = number.package
    if (
        package is None
        or package.renewal_charge_id is None
        or parse_instant(package.valid_from, "valid_from") <= at
        or not _in_force(number.previous_package, at)
    ):
        return None
    return package


def _unsubscribe_renewed(
    account: Account, event: IncomingEvent, catalogs: CatalogHistory, renewed: PackageState
) -> Outcome:
    """D5 as of the unsubscribe's date, which the bill run's renewal followed: a renewal whose
    data nothing has used is reversed (fee credited) and the package ends as it would have;
    one already used stands (the customer took the service) and renews no more."""
    at = event.occurred_at
    msisdn = event.fields["msisdn"]
    before = account.numbers[msisdn].previous_package
    assert before is not None and renewed.renewal_charge_id is not None
    if not _untouched(account, renewed):
        return applied("D5", effects={"package": replaced(renewed, renews=False).document()})
    catalog = catalogs.in_force(account.currency, at)
    why = f"unsubscribed at {instant_text(at)}"
    credit = _renewal_reversed(account, event, catalog, renewed, "D5", why)
    effects = {
        "package": None,
        "previous_package": _unsubscribed(before, at).document(),
        "reversed_charges": [renewed.renewal_charge_id],
    }
    return charged("D5", (credit,), effects)


def _per_mb_charge(
    event: IncomingEvent,
    catalog: CatalogVersion,
    suffix: str,
    kind: str,
    rule: str,
    billed_bytes: int,
    per_mb: Decimal,
    rate: str,
    what: str,
    note: str,
    period: str,
    payer: Payer,
) -> Charge:
    """A data charge: bytes / 1,000,000 x the per-MB rate, rated to 4 places (D1, D2)."""
    amount = rated(Decimal(billed_bytes) * per_mb / BYTES_PER_MB)
    return Charge(
        charge_id=f"{event.event_id}:{suffix}",
        kind=kind,
        amount=amount,
        rule=rule,
        catalog_version=catalog.version,
        rate=rate,
        arithmetic=f"{what} / 1,000,000 x {per_mb} = {amount}" + (f" {note}" if note else ""),
        period=period,
        payer=payer,
        msisdn=event.fields["msisdn"],
    )


def data_used(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    """D1-D3: package data first at home, PAYG beyond it; roaming always at roaming rates."""
    msisdn = event.fields["msisdn"]
    used: int = event.fields["bytes"]
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    period = period_of(event.occurred_at, account.timezone)
    payer = usage_payer(account)
    effects: dict[str, Any] = {"period": period, "bytes": used}

    if event.fields["roaming"]:
        country = event.fields["country"]
        per_mb = catalog.roaming_per_mb(country)
        effects.update(roaming_bytes=used, package_bytes=0, payg_bytes=0)
        charge = _per_mb_charge(
            event,
            catalog,
            "roaming",
            "roaming_data",
            "D2",
            used,
            per_mb,
            f"{per_mb}/MB roaming in {country}",
            f"{used} bytes",
            "(roaming never uses a package nor counts toward fair use)",
            period,
            payer,
        )
        return charged("D2", (charge,), effects)

    renewed_fee: tuple[Charge, ...] = ()
    ahead = package_renewal_ahead(account, event, msisdn, period, catalogs)
    if ahead is None:
        package, slot = package_at(account, msisdn, event.occurred_at)
    else:
        renewed_fee, package, slot = (ahead[0],), ahead[1], "package"
    effects["roaming_bytes"] = 0
    if package is not None and package.unlimited:
        after = package.fup_used_bytes + used
        crossing = not package.throttled and after >= package.fup_bytes
        snapshot = replaced(
            package,
            fup_used_bytes=after,
            throttled=package.throttled or crossing,
            throttled_since=(
                instant_text(event.occurred_at) if crossing else package.throttled_since
            ),
        )
        effects.update(package_bytes=used, payg_bytes=0, throttle_crossed=crossing)
        effects[slot] = snapshot.document()
        return charged("D3", renewed_fee, effects)

    from_package = min(used, package.remaining_bytes) if package is not None else 0
    carried_into = _carried_into(account, msisdn, slot)
    if carried_into is not None:
        # What the replaced package had left now lies in the one that replaced it: taken
        # from there too, and only what is left of it there.
        from_package = min(from_package, carried_into.carried_bytes, carried_into.remaining_bytes)
        effects["package"] = replaced(
            carried_into,
            remaining_bytes=carried_into.remaining_bytes - from_package,
            carried_bytes=carried_into.carried_bytes - from_package,
        ).document()
    payg = used - from_package
    if package is not None:
        snapshot = replaced(package, remaining_bytes=package.remaining_bytes - from_package)
        effects[slot] = snapshot.document()
    else:
        stored = account.rated_number(msisdn).package
        if stored is not None and has_ended(stored, event.occurred_at):
            effects["package"] = None  # its validity is over: the number is PAYG now (D9)
    effects.update(package_bytes=from_package, payg_bytes=payg)
    if payg == 0:
        return charged("D1", renewed_fee, effects)
    per_mb = catalog.data.payg_per_mb
    why = "no package" if package is None else f"package {package.package_id} used up"
    charge = _per_mb_charge(
        event,
        catalog,
        "payg",
        "payg_data",
        "D1",
        payg,
        per_mb,
        f"{per_mb}/MB home PAYG",
        f"{payg} bytes PAYG ({why}; {from_package} bytes from the package)",
        "",
        period,
        payer,
    )
    return charged("D1", (*renewed_fee, charge), effects)


def _carried_into(account: Account, msisdn: str, slot: str) -> PackageState | None:
    """The number's current package when a record is taken from the package it replaced and
    took over that one's data (D6, D7): a late record (T2) uses those bytes once."""
    if slot != "previous_package":
        return None
    current = account.rated_number(msisdn).package
    return current if current is not None and current.carried_bytes else None


def renew_packages(
    account: Account, event: IncomingEvent, period: str, catalog: CatalogVersion
) -> tuple[list[Charge], dict[str, dict[str, Any] | None]]:
    """D3, D4: at a postpaid period start each renewing package's fee goes on the invoice in
    advance, its data and fair-use count start afresh and any throttle lifts; a package that
    was unsubscribed ends. Prepaid packages live by their 30-day validity instead."""
    charges: list[Charge] = []
    changes: dict[str, dict[str, Any] | None] = {}
    for msisdn in sorted(account.numbers):
        renewal = renew_package(account, event, msisdn, period, catalog)
        if renewal is None:
            continue
        charge, renewed = renewal
        changes[msisdn] = None if renewed is None else renewed.document()
        if charge is not None:
            charges.append(charge)
    return charges, changes


def renew_package(
    account: Account,
    event: IncomingEvent,
    msisdn: str,
    period: str,
    catalog: CatalogVersion,
    current: PackageState | None = None,
    suffix: str = "",
) -> tuple[Charge | None, PackageState | None] | None:
    """What the start of `period` does to the number's postpaid package (or to `current`, one
    not on the number yet) (D4): its fee in advance and its new snapshot, or (None, None) when
    it ends; None when nothing changes (no postpaid package, or one already in that period).
    The snapshot names its fee charge, which an unsubscribe, a change or a port-out dated
    before the renewal may reverse."""
    if current is None:
        current = account.numbers[msisdn].package
    if current is None or current.mode != "postpaid":
        return None
    start = period_start(period, account.timezone)
    if parse_instant(current.valid_until, "valid_until") > start:
        return None  # subscribed in the period being started: already charged for it (D4)
    if not current.renews or current.package_id not in catalog.packages:
        return None, None
    package = catalog.package(current.package_id)
    fee = rated(package.fee)
    charge = _package_charge(
        event,
        account,
        catalog,
        package,
        fee,
        "D4",
        f"{package.name}: full fee {package.fee} for {period}, charged in advance",
        suffix=f"package_fee:{msisdn}{suffix}",
        msisdn=msisdn,
        period=period,
    )
    until = period_end(period, account.timezone)
    renewed = _snapshot(package, "postpaid", start, until, package.data_bytes or 0, None)
    return charge, replaced(renewed, renewal_charge_id=charge.charge_id)


def package_renewal_ahead(
    account: Account, event: IncomingEvent, msisdn: str, period: str, catalogs: CatalogHistory
) -> tuple[Charge, PackageState] | None:
    """A home record of the period after the account's open one, arriving before that period's
    bill run: the number's renewing package renews for it now, as the bill run would (D4), so
    the record is taken from the data the customer pays for, not rated PAYG. None: nothing
    renews (the bill run ends an unsubscribed package), nor on a number ported out since."""
    if msisdn not in account.numbers or not ahead_of_bill_run(account, period):
        return None
    catalog = renewal_catalog(account, catalogs, period, event.occurred_at)
    renewal = renew_package(account, event, msisdn, period, catalog)
    if renewal is None or renewal[0] is None or renewal[1] is None:
        return None
    return renewal[0], renewal[1]
