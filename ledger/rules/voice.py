"""Voice plans and pay-as-you-go calls (V1-V9, C2, C3).

Plan minutes are kept in seconds so every increment stays exact. A call is rounded up to the
plan's increment and taken from the minutes of its own period; when the minutes run out during
the call, the rest is rated PAYG at the destination's rate, rounded up to the rate's increment.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.account import Account, plan_from_effect
from ledger.catalog import CatalogHistory, CatalogVersion, Plan, Rate
from ledger.contract import IncomingEvent
from ledger.errors import RejectedEvent
from ledger.frozen import replaced
from ledger.instants import instant_text, months_between, next_period, period_of, period_start
from ledger.money import ZERO, money_text, rated
from ledger.outcome import Charge, Outcome, Payer, applied, charged, rejected
from ledger.state import ENDED_AUTORENEW_OFF, MinuteBatch, NumberState, PlanState

SECONDS_PER_MINUTE = 60
# Explicit limit: how many periods a late purchase is renewed through (T2); one dated further
# back than this is rejected with the reason.
MAX_CATCH_UP_PERIODS = 12
# Explicit limit on what `authorize` grants at once: a day, whatever the balance buys.
MAX_AUTHORIZED_SECONDS = 24 * 3600


def round_up(seconds: int, increment: int) -> int:
    """Seconds rounded up to a whole number of increments (60: per started minute)."""
    return -(-seconds // increment) * increment


def fee_payer(account: Account) -> Payer:
    """Prepaid plan fees go through the payment method, never the balance (V2, I3)."""
    return "payment_method" if account.billing_mode == "prepaid" else "invoice"


def usage_payer(account: Account) -> Payer:
    """PAYG usage: the prepaid balance, or the postpaid invoice (V5)."""
    return "balance" if account.billing_mode == "prepaid" else "invoice"


def plan_document(plan: Plan, autorenew: bool, channel: str, started_period: str) -> dict[str, Any]:
    """The plan as it is granted to a number: a copy, so later catalogs change nothing here."""
    return {
        "plan_id": plan.id,
        "name": plan.name,
        "term": plan.term,
        "minutes": plan.minutes,
        "countries": sorted(plan.countries),
        "increment_seconds": plan.increment_seconds,
        "autorenew": autorenew,
        "channel": channel,
        "started_period": started_period,
    }


def plan_fee_charge(
    charge_id: str,
    plan: Plan,
    catalog: CatalogVersion,
    period: str,
    msisdn: str,
    payer: Payer,
    why: str,
    rule: str = "V2",
) -> Charge:
    return Charge(
        charge_id=charge_id,
        kind="plan_fee",
        amount=rated(plan.fee),
        rule=rule,
        catalog_version=catalog.version,
        rate=f"{plan.fee} per {'year' if plan.term == 'yearly' else 'month'}",
        arithmetic=f"{plan.name} ({plan.id}) {plan.term} fee {plan.fee}, {why}; no proration",
        period=period,
        payer=payer,
        msisdn=msisdn,
    )


def plan_purchased(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    """V1, V2: full fee and full minutes to the end of the current period; no proration."""
    msisdn = event.fields["msisdn"]
    current = account.numbers[msisdn].plan
    if current is not None:
        return rejected(
            "V1",
            f"{msisdn} already has plan {current.plan_id}; a number has at most one active plan "
            "(use plan.changed to switch from the next period)",
        )
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    plan = catalog.plan(event.fields["plan_id"])
    period = period_of(event.occurred_at, account.timezone)
    too_late = too_late_to_renew(account, period, "V2", "purchase")
    if too_late is not None:
        return too_late
    charge = plan_fee_charge(
        f"{event.event_id}:fee",
        plan,
        catalog,
        period,
        msisdn,
        fee_payer(account),
        "charged at purchase",
    )
    doc = plan_document(plan, event.fields["autorenew"], event.fields["channel"], period)
    effects: dict[str, Any] = {"plan": doc, "period": period}
    renewals, fees = _renewals_since(account, event, catalogs, plan_from_effect(doc, period))
    if renewals:
        effects["renewals"] = renewals
    return applied("V2", charges=(charge, *fees), effects=effects)


def too_late_to_renew(account: Account, period: str, rule: str, what: str) -> Outcome | None:
    """A rejection when a purchase or subscription of that period is dated further back than
    late ones are renewed (MAX_CATCH_UP_PERIODS); None when it is not."""
    late = months_between(period, account.current_period)
    if late <= MAX_CATCH_UP_PERIODS:
        return None
    return rejected(
        rule,
        f"{what} dated in {period}, {late} periods before the open one "
        f"({account.current_period}); at most {MAX_CATCH_UP_PERIODS} are renewed late",
    )


def periods_started_since(
    account: Account, catalogs: CatalogHistory, period: str
) -> Iterator[tuple[str, CatalogVersion]]:
    """Each period the account has started after `period`, with the catalog in force at its
    start (C2): the bill runs a late purchase or subscription missed. At most
    MAX_CATCH_UP_PERIODS (`too_late_to_renew` refuses one dated further back)."""
    assert months_between(period, account.current_period) <= MAX_CATCH_UP_PERIODS
    while period < account.current_period:
        period = next_period(period)
        # A period started since a purchase starts after it: a catalog is in force there.
        yield period, renewal_catalog(account, catalogs, period)


def renewal_catalog(
    account: Account, catalogs: CatalogHistory, period: str, otherwise_at: datetime | None = None
) -> CatalogVersion:
    """The catalog a renewal for `period` is charged under (C2): the one in force at the
    period's start in the account's time zone, whichever way the renewal comes (its bill run,
    a record ahead of it, a late purchase's catch-up), so the fee does not depend on which
    arrives first. A period that starts before the first catalog takes the one in force at
    `otherwise_at` (the event's own instant)."""
    try:
        return catalogs.in_force(account.currency, period_start(period, account.timezone))
    except RejectedEvent:
        if otherwise_at is None:
            raise
        return catalogs.in_force(account.currency, otherwise_at)


def ahead_of_bill_run(account: Account, period: str) -> bool:
    """The period after the account's open one: its records can arrive before its bill run.
    The string comparison first: it settles almost every record at no cost."""
    return period > account.current_period and period == next_period(account.current_period)


def _renewals_since(
    account: Account, event: IncomingEvent, catalogs: CatalogHistory, plan: PlanState
) -> tuple[list[dict[str, Any]], list[Charge]]:
    """A purchase, or an instruction to continue or change, dated before bill runs but logged
    after them (T2): the renewals those bill runs would have made of `plan` (V6, V8), each
    period's with its own fee and catalog (C2), up to the account's open period. A plan that
    ends on the way (autorenew off, gone from the catalog) stops there."""
    msisdn = event.fields["msisdn"]
    renewals: list[dict[str, Any]] = []
    fees: list[Charge] = []
    for period, catalog in periods_started_since(account, catalogs, plan.current_period):
        charge_id = f"{event.event_id}:plan_fee:{period}"
        fee, change = renew_plan(account, msisdn, period, catalog, charge_id, plan)
        assert change is not None
        renewals.append({"period": period, **change})
        if fee is not None:
            fees.append(fee)
        if change["action"] == "ended":
            break
        plan = plan_from_effect(change["plan"], period)
    return renewals, fees


def plan_autorenew_changed(
    account: Account, event: IncomingEvent, catalogs: CatalogHistory
) -> Outcome:
    """V7: cancelling is autorenew off; the plan and its minutes last to the period's end (a
    yearly plan's: to its year's end, `paid_already`).

    A cancel dated before a renewal that has already happened (it reached the ledger after
    the bill run) takes effect as of its date: the renewals since that it rules out, whose
    minutes nothing has used, are reversed (fee credited, minutes withdrawn) and the plan
    ends. A renewal whose minutes were used stands: the customer took the service, and the
    plan ends at the next period start as any cancel does. A switch back on dated before the
    bill run that ended the cancelled plan renews it (`_continued`).
    """
    msisdn = event.fields["msisdn"]
    number = account.numbers[msisdn]
    enabled: bool = event.fields["enabled"]
    if number.plan is None:
        ended = _ended_after(account, number, event.occurred_at)
        if enabled and ended is not None:
            return _continued(account, event, catalogs, ended, "V7", {"autorenew": True})
        return rejected("V7", f"{msisdn} has no active plan")
    undone = [] if enabled else _ruled_out(account, number, event.occurred_at)
    if not undone:
        return applied("V7", effects={"autorenew": enabled})
    why = f"autorenew switched off at {instant_text(event.occurred_at)}"
    return charged(
        "V7",
        _reversals(account, event, catalogs, undone, "V7", why),
        {"autorenew": False, "ended": True, **_reversed(undone)},
    )


def _ruled_out(
    account: Account, number: NumberState, at: datetime
) -> list[tuple[str, str | None, str | None]]:
    """The unused renewals a cancel dated `at` rules out (V7): every one since for a monthly
    plan; for a yearly one, those from the start of its next year on, if they reach back to
    it (a month used in that year means its fee stands, and the year runs to its end)."""
    undone = unused_renewals_after(account, number, at)
    plan = number.plan
    if plan is None or plan.term != "yearly":
        return undone
    start = plan.started_period
    next_year = (months_between(start, period_of(at, account.timezone)) // 12 + 1) * 12
    ruled_out = [renewal for renewal in undone if months_between(start, renewal[0]) >= next_year]
    if ruled_out and months_between(start, ruled_out[-1][0]) == next_year:  # latest first
        return ruled_out
    return []


def _ended_after(account: Account, number: NumberState, at: datetime) -> PlanState | None:
    """The number's cancelled plan if a bill run ended it after that instant, in its last
    period: an instruction to continue dated then reached the ledger after the bill run."""
    ended = number.ended_plan
    if ended is None or period_of(at, account.timezone) != ended.current_period:
        return None
    return ended


def _continued(
    account: Account,
    event: IncomingEvent,
    catalogs: CatalogHistory,
    plan: PlanState,
    rule: str,
    effects: dict[str, Any],
) -> Outcome:
    """T2: an instruction to continue (autorenew on, V7; a change, V8) dated in the plan's
    last period, logged after the bill run that ended it because autorenew was off. The
    latest instruction was to continue, so the plan renews through every period started
    since, as those bill runs would have renewed or changed it (V6, V8): each period's fee
    and minutes, with the catalog in force at its start (C2). Usage rated while the plan
    stood ended stays as it was rated; a dispute of it counts this instruction (F1)."""
    too_late = too_late_to_renew(account, plan.current_period, rule, "an instruction")
    if too_late is not None:
        return too_late
    pending = effects.get("pending_plan_id", plan.pending_plan_id)  # a switch on keeps it
    continuing = replaced(plan, autorenew=True, pending_plan_id=pending)
    renewals, fees = _renewals_since(account, event, catalogs, continuing)
    return applied(rule, charges=tuple(fees), effects={**effects, "renewals": renewals})


def _reversals(
    account: Account,
    event: IncomingEvent,
    catalogs: CatalogHistory,
    undone: list[tuple[str, str | None, str | None]],
    rule: str,
    why: str,
) -> tuple[Charge, ...]:
    """The fee credits of renewals a fact dated before them reverses (V7, V8)."""
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    payer, msisdn = fee_payer(account), event.fields["msisdn"]
    return tuple(
        renewal_credit(
            account, event, catalog, "plan_fee", period, charge_id, fee, payer, msisdn, rule, why
        )
        for period, charge_id, fee in undone
        if charge_id is not None and fee is not None
    )


def _reversed(undone: list[tuple[str, str | None, str | None]]) -> dict[str, list[str]]:
    """The effects that withdraw reversed renewals' minutes and mark their fees credited."""
    return {
        "reversed_periods": sorted(period for period, _, _ in undone),
        "reversed_charges": sorted(charge_id for _, charge_id, _ in undone if charge_id),
    }


def unused_renewals_after(
    account: Account, number: NumberState, at: datetime
) -> list[tuple[str, str | None, str | None]]:
    """(period, fee charge id, fee) of the number's renewals made for periods after the one
    of `at` whose minutes nothing has used, latest first: a run that stops at a purchase, a
    used batch or a fee already credited."""
    since = period_of(at, account.timezone)
    undone: list[tuple[str, str | None, str | None]] = []
    for period in sorted(number.minute_batches, reverse=True):
        batch = number.minute_batches[period]
        if (
            period <= since
            or not batch.renewed
            or batch.used_seconds
            or credited_in_full(account, batch.fee_charge_id, batch.fee)
        ):
            break
        undone.append((period, batch.fee_charge_id, batch.fee))
    return undone


def credited_in_full(account: Account, charge_id: str | None, fee: str | None) -> bool:
    """Whether refunds or reversals have credited all of a renewal's fee already."""
    if charge_id is None or fee is None:
        return False  # no fee (a yearly plan's month): nothing to credit
    return account.uncredited(charge_id, rated(Decimal(fee))) <= ZERO


def renewal_credit(
    account: Account,
    event: IncomingEvent,
    catalog: CatalogVersion,
    kind: str,
    period: str,
    fee_charge_id: str,
    fee: str,
    payer: Payer,
    msisdn: str,
    rule: str,
    why: str,
) -> Charge:
    """The fee of a renewal that a fact dated before it says should not have been made (a
    cancel, a change, an unsubscribe, a port-out), credited on the renewal's own period: a
    correction of the bill run, where a refund (F1) would re-rate a charge rightly made. All
    of it, or the rest a partial refund left (`Account.credited_in_part`)."""
    charged = rated(Decimal(fee))
    amount = account.uncredited(fee_charge_id, charged)
    assert ZERO < amount <= charged, (fee_charge_id, amount, charged)
    before = (
        ""
        if amount == charged
        else f" (the rest: {money_text(charged - amount)} was credited before)"
    )
    return Charge(
        charge_id=f"{event.event_id}:reversal:{kind}:{period}",
        kind=kind,
        amount=-amount,
        rule=rule,
        catalog_version=catalog.version,
        rate=f"reverses {fee_charge_id}",
        arithmetic=f"credit {money_text(amount)} of {fee_charge_id}, the renewal for {period}"
        f"{before}: {why}, before the renewal",
        period=period,
        payer=payer,
        msisdn=msisdn,
        label=f"renewal for {period} reversed, {why}",
    )


def plan_changed(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    """V8: a change or downgrade takes effect at the next period start.

    A change is an instruction to continue, so it switches autorenew on; the latest
    instruction wins (a cancel after it ends the plan). Changing back to the plan the number
    holds withdraws the pending change: no new term starts. A change dated before bill runs
    and logged after them takes effect where they would have made it (`_changed_since`,
    `_continued`).
    """
    msisdn = event.fields["msisdn"]
    number = account.numbers[msisdn]
    new_plan_id = event.fields["plan_id"]
    plan = number.plan
    if plan is None:
        ended = _ended_after(account, number, event.occurred_at)
        if ended is None:
            return rejected("V8", f"{msisdn} has no active plan to change; purchase one instead")
        pending = None if new_plan_id == ended.plan_id else new_plan_id
        effects = {"pending_plan_id": pending, "autorenew": True}
        return _continued(account, event, catalogs, ended, "V8", effects)
    pending = None if new_plan_id == plan.plan_id else new_plan_id
    if pending is not None:
        changed = _changed_since(account, event, catalogs, number, plan, pending)
        if changed is not None:
            return changed
    return applied("V8", effects={"pending_plan_id": pending, "autorenew": True})


def _changed_since(
    account: Account,
    event: IncomingEvent,
    catalogs: CatalogHistory,
    number: NumberState,
    plan: PlanState,
    new_plan_id: str,
) -> Outcome | None:
    """V8, T2: a change dated before bill runs that renewed the plan, logged after them. The
    change takes effect at the first period start after its date, as those bill runs would
    have made it: their renewals are reversed (fees credited, minutes withdrawn) and made
    again with the new plan (its fee, V8, then its renewals, V6). Only when nothing has used
    their minutes; otherwise None: the renewals stand (the customer took the service) and
    the change waits for the next period start, as any change does."""
    since = period_of(event.occurred_at, account.timezone)
    if plan.current_period <= since:
        return None
    undone = unused_renewals_after(account, number, event.occurred_at)
    if not undone or undone[-1][0] != next_period(since):
        return None
    why = f"plan changed to {new_plan_id} at {instant_text(event.occurred_at)}"
    credits = _reversals(account, event, catalogs, undone, "V8", why)
    restart = replaced(plan, current_period=since, pending_plan_id=new_plan_id, autorenew=True)
    renewals, fees = _renewals_since(account, event, catalogs, restart)
    effects = {"pending_plan_id": None, "autorenew": True, **_reversed(undone)}
    return applied("V8", charges=(*credits, *fees), effects={**effects, "renewals": renewals})


def destination_rate(catalog: CatalogVersion, destination: str) -> Rate:
    rate = catalog.rate_for(destination)
    if rate is None:
        raise RejectedEvent(
            f"no rate for destination {destination} in catalog version {catalog.version}"
        )
    return rate


def covering_batch(account: Account, msisdn: str, country: str, period: str) -> MinuteBatch | None:
    """The period's plan minutes on the number if they cover the country (V3), late calls too."""
    batch = account.rated_number(msisdn).minute_batches.get(period)
    return batch if batch is not None and country in batch.countries else None


def minutes_for_call(
    account: Account,
    msisdn: str,
    country: str,
    period: str,
    catalogs: CatalogHistory,
    charge_id: str,
    at: datetime,
) -> tuple[Charge | None, dict[str, Any] | None, MinuteBatch | None]:
    """The plan minutes a call of `period` to `country` is taken from (V3): the period's batch,
    or the one the plan's renewal ahead of the bill run grants, with that renewal and its fee
    (`renewal_ahead`); no batch when none covers the country."""
    renewal_fee, renewal = renewal_ahead(account, msisdn, period, catalogs, charge_id, at)
    if renewal is None:
        return None, None, covering_batch(account, msisdn, country, period)
    renewed = MinuteBatch.granted(plan_from_effect(renewal["plan"], period))
    return renewal_fee, renewal, renewed if country in renewed.countries else None


def payg_amount(seconds: int, rate: Rate) -> tuple[int, Decimal]:
    billed = round_up(seconds, rate.increment_seconds)
    return billed, rated(Decimal(billed) * rate.per_minute / SECONDS_PER_MINUTE)


def call_completed(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> Outcome:
    """V3-V5: plan minutes for covered destinations, the rest PAYG at the destination's rate."""
    msisdn = event.fields["msisdn"]
    destination = event.fields["destination"]
    duration: int = event.fields["duration_seconds"]
    catalog = catalogs.in_force(account.currency, event.occurred_at)
    rate = destination_rate(catalog, destination)
    period = period_of(event.occurred_at, account.timezone)
    effects: dict[str, Any] = {"period": period, "country": rate.country}
    renewal_fee, renewal, batch = minutes_for_call(
        account,
        msisdn,
        rate.country,
        period,
        catalogs,
        f"{event.event_id}:plan_fee:{msisdn}",
        event.occurred_at,
    )
    if renewal is not None:
        effects["renewal"] = renewal

    plan_seconds = 0
    payg_seconds = duration
    if batch is not None and batch.remaining_seconds > 0 and duration > 0:
        wanted = round_up(duration, batch.increment_seconds)
        if wanted <= batch.remaining_seconds:
            plan_seconds, payg_seconds = wanted, 0
        else:  # the minutes run out during the call (V4)
            plan_seconds, payg_seconds = batch.remaining_seconds, duration - batch.remaining_seconds
        effects["plan_seconds"] = plan_seconds
        effects["plan_id"] = batch.plan_id
        effects["plan_arithmetic"] = (
            f"{duration} s to {rate.country} covered by plan {batch.plan_id}: "
            f"{plan_seconds} s taken in {batch.increment_seconds} s increments from "
            f"{batch.remaining_seconds} s left in {period}"
            + (f"; minutes ran out, {payg_seconds} s go PAYG" if payg_seconds else "")
        )

    charges: tuple[Charge, ...] = () if renewal_fee is None else (renewal_fee,)
    if payg_seconds > 0:
        billed, amount = payg_amount(payg_seconds, rate)
        payer = usage_payer(account)
        if batch is None:
            why = f"no plan minutes for {rate.country} in {period}"
        elif plan_seconds == 0:
            why = f"plan {batch.plan_id} minutes for {period} used up"
        else:
            why = "rest of the call after the plan minutes ran out"
        charges += (
            Charge(
                charge_id=f"{event.event_id}:payg",
                kind="payg_call",
                amount=amount,
                rule="V4" if plan_seconds else "V5",
                catalog_version=catalog.version,
                rate=f"{rate.per_minute}/min, {rate.increment_seconds} s increments, "
                f"prefix {rate.prefix} ({rate.country})",
                arithmetic=f"{payg_seconds} s PAYG ({why}) -> {billed} s billed = "
                f"{billed}/60 min x {rate.per_minute} = {amount}",
                period=period,
                payer=payer,
                msisdn=msisdn,
            ),
        )
    rule = "V3" if plan_seconds and not payg_seconds else ("V4" if plan_seconds else "V5")
    return charged(rule, charges, effects)


def renew_plans(
    account: Account, event: IncomingEvent, period: str, catalog: CatalogVersion
) -> tuple[list[Charge], dict[str, dict[str, Any]]]:
    """V6, V8: at a period start each plan renews (fee, new minutes), changes, or ends."""
    charges: list[Charge] = []
    changes: dict[str, dict[str, Any]] = {}
    for msisdn in sorted(account.numbers):
        charge, change = renew_plan(
            account, msisdn, period, catalog, f"{event.event_id}:plan_fee:{msisdn}"
        )
        if charge is not None:
            charges.append(charge)
        if change is not None:
            changes[msisdn] = change
    return charges, changes


def renew_plan(
    account: Account,
    msisdn: str,
    period: str,
    catalog: CatalogVersion,
    charge_id: str,
    plan: PlanState | None = None,
) -> tuple[Charge | None, dict[str, Any] | None]:
    """What the start of `period` does to the number's plan (or to `plan`, one not on the
    number yet) (V6, V8): renews it, changes it or ends it, with the fee it charges; (None,
    None) when it holds no plan or one that already reached that period. A renewal or change
    records its fee charge, which a cancel dated before it may reverse."""
    if plan is None:
        plan = account.numbers[msisdn].plan
    if plan is None or plan.current_period >= period:
        return None, None
    payer = fee_payer(account)
    if not plan.autorenew and not paid_already(plan, period):
        return None, {"action": "ended", "reason": ENDED_AUTORENEW_OFF}
    # A change waits for a plan that goes on: a cancel after it wins, the latest instruction.
    if (
        plan.autorenew
        and plan.pending_plan_id is not None
        and plan.pending_plan_id in catalog.plans
    ):
        new = catalog.plan(plan.pending_plan_id)
        why = f"changed from {plan.plan_id} at the start of {period}"
        charge = plan_fee_charge(charge_id, new, catalog, period, msisdn, payer, why, "V8")
        return charge, {
            "action": "changed",
            "plan": plan_document(new, True, plan.channel, period),
            **_renewal_fee(charge),
        }
    if plan.plan_id not in catalog.plans:
        return None, {
            "action": "ended",
            "reason": f"plan {plan.plan_id} is no longer in catalog {catalog.version}",
        }
    renewed = catalog.plan(plan.plan_id)
    months = months_between(plan.started_period, period)
    fee: Charge | None = None
    if renewed.term == "monthly" or months % 12 == 0:
        why = f"renewal for {period}" + (
            f", the start of year {months // 12 + 1} of the yearly plan"
            if renewed.term == "yearly"
            else ""
        )
        fee = plan_fee_charge(charge_id, renewed, catalog, period, msisdn, payer, why, "V6")
    return fee, {
        "action": "renewed",
        "plan": plan_document(renewed, plan.autorenew, plan.channel, plan.started_period),
        **_renewal_fee(fee),
    }


def paid_already(plan: PlanState, period: str) -> bool:
    """Whether the plan's fee already paid for `period`: any month of a yearly plan's year but
    the first, whose renewal charges the fee (V2). Cancelled, a yearly plan still runs to its
    year's end: the customer paid for the year, and a cancel takes effect at the end of the
    billing cycle (seed 001)."""
    return plan.term == "yearly" and months_between(plan.started_period, period) % 12 != 0


def renewal_ahead(
    account: Account,
    msisdn: str,
    period: str,
    catalogs: CatalogHistory,
    charge_id: str,
    at: datetime,
) -> tuple[Charge | None, dict[str, Any] | None]:
    """A call of the period after the account's open one, arriving before that period's bill
    run: the number's plan renews for it now, as the bill run would (V6, V8), so the call is
    taken from the minutes the customer pays for, not rated PAYG; the bill run then finds the
    plan renewed and leaves it. A plan that will not renew (autorenew off, gone from the
    catalog) is left to the bill run to end. (None, None): nothing renews, nor on a number
    ported out since (P2: its billing stopped)."""
    number = account.numbers.get(msisdn)
    plan = None if number is None else number.plan
    if (
        plan is None
        or not ahead_of_bill_run(account, period)
        or plan.current_period != account.current_period
    ):
        return None, None
    catalog = renewal_catalog(account, catalogs, period, at)
    charge, change = renew_plan(account, msisdn, period, catalog, charge_id)
    if change is None or change["action"] == "ended":
        return None, None
    return charge, change


def _renewal_fee(charge: Charge | None) -> dict[str, str]:
    """The fee a renewal charged, for its minute batch (`MinuteBatch.fee_charge_id`)."""
    if charge is None:
        return {}
    return {"fee_charge_id": charge.charge_id, "fee": money_text(charge.amount)}


@dataclass(frozen=True)
class Authorization:
    """V9: may this number call that destination now, and for how long."""

    allowed: bool
    seconds: int | None  # None: no limit (postpaid PAYG goes on the invoice)
    plan_seconds: int
    payg_seconds: int | None
    country: str
    reason: str

    def document(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "seconds": self.seconds,
            "plan_seconds": self.plan_seconds,
            "payg_seconds": self.payg_seconds,
            "country": self.country,
            "reason": self.reason,
        }


def authorize(
    account: Account, msisdn: str, destination: str, at: datetime, catalogs: CatalogHistory
) -> Authorization:
    """Plan minutes left (if the destination is covered) plus what the balance buys (V9)."""
    if msisdn not in account.numbers:
        raise RejectedEvent(f"unknown number {msisdn} on account {account.account_id}")
    catalog = catalogs.in_force(account.currency, at)
    rate = destination_rate(catalog, destination)
    if account.blocked:
        return Authorization(False, 0, 0, 0, rate.country, "account is blocked (B2)")
    period = period_of(at, account.timezone)
    # Between a period's start and its bill run the plan's renewal is counted as the call
    # record would make it: its fee goes to the payment method or invoice, never the balance.
    _, _, batch = minutes_for_call(account, msisdn, rate.country, period, catalogs, "authorize", at)
    plan_seconds = batch.remaining_seconds if batch is not None else 0
    if account.billing_mode == "postpaid":
        return Authorization(
            True,
            None,
            plan_seconds,
            None,
            rate.country,
            "postpaid: PAYG goes on the invoice"
            + (f" after {plan_seconds} s of plan minutes" if plan_seconds else ""),
        )
    payg_seconds = 0
    if account.balance > ZERO:
        if rate.per_minute == ZERO:
            payg_seconds = MAX_AUTHORIZED_SECONDS
        else:
            per_increment = rate.per_minute * rate.increment_seconds / SECONDS_PER_MINUTE
            increments = int(account.balance / per_increment)
            payg_seconds = increments * rate.increment_seconds
    seconds = min(plan_seconds + payg_seconds, MAX_AUTHORIZED_SECONDS)
    if seconds <= 0:
        reason = (
            f"balance {account.balance} and no plan minutes for {rate.country}"
            if account.balance <= ZERO
            else f"balance {account.balance} buys less than one "
            f"{rate.increment_seconds} s increment"
        )
        return Authorization(False, 0, 0, 0, rate.country, f"refused: {reason}")
    return Authorization(
        True,
        seconds,
        plan_seconds,
        payg_seconds,
        rate.country,
        f"{plan_seconds} s of plan minutes + {payg_seconds} s the balance buys at "
        f"{rate.per_minute}/min",
    )
