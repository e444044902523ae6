"""Rating rules: pure functions from (account state, incoming event, catalogs) to an Outcome.

No I/O here. A rule either returns an Outcome (applied, rejected with a reason, or recorded
as not yet rated) or raises RejectedEvent when the event does not fit the ledger's state at
all (unknown number, plan or destination): the pipeline dead-letters those (G2).
One module per family of rules; this one dispatches by event type.
"""

from collections.abc import Callable

from ledger.account import Account
from ledger.catalog import CatalogHistory
from ledger.contract import IncomingEvent
from ledger.errors import RejectedEvent
from ledger.frozen import replaced
from ledger.instants import period_of
from ledger.outcome import Outcome, not_yet_rated
from ledger.rules import accounts, cycle, data, fees, ports, refunds, voice
from ledger.rules.refunds import DisputeEvidence

# Types whose msisdn introduces a number rather than naming one the account holds.
_INTRODUCES_NUMBER = frozenset({"number.added", "port_in.requested"})
# Usage records: rated on a number ported out since, when they are dated before (P2, T2).
_USAGE = frozenset({"call.completed", "data.used"})
# What a number ran up while it was on the account, still the account's when it arrives after
# the number left (P1, P2, T2): its usage, and a carrier's surcharge on it (S1).
_RAN_UP_ON_NUMBER = _USAGE | {"surcharge.applied"}

Rule = Callable[[Account, IncomingEvent, CatalogHistory], Outcome]

RULES: dict[str, Rule] = {
    "number.added": accounts.number_added,
    "balance.recharged": accounts.balance_recharged,
    "account.blocked": accounts.account_blocked,
    "account.unblocked": accounts.account_unblocked,
    "plan.purchased": voice.plan_purchased,
    "plan.autorenew_changed": voice.plan_autorenew_changed,
    "plan.changed": voice.plan_changed,
    "call.completed": voice.call_completed,
    "package.subscribed": data.package_subscribed,
    "package.changed": data.package_changed,
    "package.unsubscribed": data.package_unsubscribed,
    "data.used": data.data_used,
    "cycle.started": cycle.cycle_started,
    "port_in.requested": ports.port_in_requested,
    "port_in.completed": ports.port_in_completed,
    "port_in.failed": ports.port_in_failed,
    "port_out.requested": ports.port_out_requested,
    "port_out.completed": ports.port_out_completed,
    "surcharge.applied": fees.surcharge_applied,
    "adjustment.posted": fees.adjustment_posted,
}


def check_references(account: Account, event: IncomingEvent, catalogs: CatalogHistory) -> None:
    """Dead-letter what names a number, plan or package the ledger does not know (G2)."""
    msisdn = event.fields.get("msisdn")
    if (
        msisdn is not None
        and event.type not in _INTRODUCES_NUMBER
        and msisdn not in account.numbers
        and (
            event.type not in _RAN_UP_ON_NUMBER
            or account.ported_out_after(msisdn, event.occurred_at) is None
        )
    ):
        port = account.ported_in.get(msisdn)
        if port is not None:
            raise RejectedEvent(
                f"number {msisdn} was replaced by the ported number {port[0]} at {port[1]}: "
                "only its usage and surcharges dated before that are still rated"
            )
        gone = account.ported_out.get(msisdn)
        if gone is not None:
            raise RejectedEvent(
                f"number {msisdn} was ported out of account {account.account_id} at "
                f"{gone.ported_out_at}: only its usage and surcharges dated before that are still "
                "rated"
            )
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


def decide(
    account: Account,
    event: IncomingEvent,
    catalogs: CatalogHistory,
    evidence: DisputeEvidence | None = None,
) -> Outcome:
    """The outcome of one event for one account (never called for account.opened).

    A refund request is decided on the evidence the application found in the stream (F1).
    """
    ported_in_as = _ported_in_as(account, event) if account.ported_in else None
    if ported_in_as is not None:
        # Rated on the number that replaced the temporary one: it holds the plan, minutes and
        # package the record used. The stored fact keeps the number it names.
        event = replaced(event, fields={**event.fields, "msisdn": ported_in_as}, decoded=None)
    check_references(account, event, catalogs)
    if event.type == "refund.requested":
        outcome = refunds.refund_requested(account, event, catalogs, evidence)
    else:
        rule = RULES.get(event.type)
        if rule is None:
            return not_yet_rated(event.type)
        outcome = rule(account, event, catalogs)
    if event.type in _USAGE and event.fields["msisdn"] not in account.numbers:
        # Rated on a number ported out since: its views left the account with it (P2).
        gone = account.ported_out[event.fields["msisdn"]]
        outcome = replaced(
            outcome, effects={**outcome.effects, "ported_out_at": gone.ported_out_at}
        )
    if ported_in_as is not None and outcome.status == "applied":
        outcome = replaced(outcome, effects={**outcome.effects, "ported_in_as": ported_in_as})
    return bill(account, event, outcome) if outcome.status == "applied" else outcome


def _ported_in_as(account: Account, event: IncomingEvent) -> str | None:
    """The ported number a usage record or surcharge of a port-in's temporary number is rated
    on: one dated before the completion that reached the ledger after it (P1, T2)."""
    if event.type not in _RAN_UP_ON_NUMBER:
        return None
    msisdn: str | None = event.fields.get("msisdn")  # optional on a surcharge
    if msisdn is None or msisdn in account.numbers:
        return None
    return account.ported_in_as(msisdn, event.occurred_at)


def bill(account: Account, event: IncomingEvent, outcome: Outcome) -> Outcome:
    """Which invoice or statement the outcome's money lands on (I1, I2, B3).

    Its own period's, while that is open; once the bill run has closed it (the account's
    current period is later), the next open one: the account's current period.
    """
    open_period = account.current_period
    own_period = period_of(event.occurred_at, account.timezone)
    charges = outcome.charges
    if charges:  # half the events have none (a call on the plan, data from a package)
        ids = [charge.charge_id for charge in charges]
        # A charge id names one charge for ever (lines, exports and disputes refer to it).
        assert len(set(ids)) == len(ids), f"charge ids repeat in one outcome: {ids}"
        charges = tuple(charge.billed_on(max(charge.period, open_period)) for charge in charges)
    return outcome.billed_on(max(own_period, open_period), charges)
