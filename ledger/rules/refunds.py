"""Refund disputes (F1, F2): replay to the charge, re-rate its source event, decide.

The application gathers the evidence from the account's stream (the charge, its source event,
the account's events before it, an earlier charge for the same call); this rule only decides.
"""

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from ledger.account import Account
from ledger.catalog import CatalogHistory
from ledger.contract import IncomingEvent
from ledger.errors import LedgerError, RejectedEvent
from ledger.instants import parse_instant, period_of
from ledger.money import ZERO, money_text
from ledger.outcome import Charge, Outcome, applied, charged
from ledger.policy import CLAUSE_FOR_KIND, CLAUSES
from ledger.rerate import corrected_history, decide_again, rerated_account

STORE_CHANNELS = frozenset({"app_store", "google_play"})


@dataclass(frozen=True)
class DisputeEvidence:
    """What the stream says about the disputed charge."""

    charge: Charge
    source_fact: dict[str, Any]
    before: Account  # the account just before the source event was applied
    earlier: tuple[object, ...]  # the account's events before the source event, in order
    # Facts logged after the source event and dated before it, in order (ledger.rerate)
    logged_late: tuple[Account.FactApplied, ...]
    duplicate_of: str | None  # an earlier charge for the same call, if any
    credited_by: str | None  # the last event that credited this charge, if any
    credited: Decimal  # what earlier refunds and reversals credited of it in all
    channel: str | None  # where the plan was bought, for plan fees
    # What befell the charge's number after it: the types of the applied facts naming it,
    # logged after the source event, each once in order (a port-out, a failed port-in).
    later_on_number: tuple[str, ...] = ()


def refund_requested(
    account: Account,
    event: IncomingEvent,
    catalogs: CatalogHistory,
    evidence: DisputeEvidence | None,
) -> Outcome:
    if evidence is None:
        raise RejectedEvent(
            f"unknown charge {event.fields['charge_id']} on account {account.account_id}"
        )
    charge = evidence.charge
    source = evidence.source_fact
    if event.occurred_at < parse_instant(source["occurred_at"], "occurred_at"):
        raise RejectedEvent(
            f"refund request at {event.occurred_at_text} is before charge {charge.charge_id} "
            f"(its {source['type']} occurred at {source['occurred_at']})"
        )
    base: dict[str, Any] = {"charge_id": charge.charge_id, "charged": money_text(charge.amount)}
    credited = evidence.credited
    assert ZERO <= credited <= max(charge.amount, ZERO), (charge.charge_id, credited)
    before = (
        ""
        if evidence.credited_by is None
        else f"; {money_text(credited)} already credited by {evidence.credited_by}"
    )
    if charge.kind == "plan_fee" and evidence.channel in STORE_CHANNELS:
        return applied(
            "F2",
            effects={
                **base,
                "decision": "refer_to_store",
                "clause": "store_purchases",
                "policy": CLAUSES["store_purchases"],
                "evidence": f"the plan was bought through {evidence.channel}: that store "
                "decides and pays any refund; the ledger credits nothing",
                "credited": money_text(ZERO),
            },
        )
    if evidence.before.blocked:  # B2: charged as usual, and no refunds, not even a difference
        return _denied(
            base,
            "aup_blocks",
            f"the account was blocked under the acceptable-use policy when charge "
            f"{charge.charge_id} was made: no refunds (B2)",
        )
    clause = _clause(account, evidence)
    if evidence.duplicate_of is not None and charge.amount > ZERO:
        why = (
            f"charge {charge.charge_id} duplicates {evidence.duplicate_of} for the same call "
            f"(call_id {evidence.source_fact.get('call_id')})"
        )
        if credited < charge.amount:
            return _credit(account, event, evidence, charge.amount - credited, why + before, base)
        return _denied(base, clause, f"{why}; it was already credited by {evidence.credited_by}")
    again = _rerate(evidence, catalogs)
    base["rerated"] = None if again is None else money_text(again.amount)
    if again is None:
        return _denied(base, clause, "the source event cannot be re-rated" + before)
    # What is owed back: the charge less its re-rated amount, less what was credited of it
    # before (a later correction may lower it further: only the further difference).
    owed = charge.amount - again.amount - credited
    rerated = (
        f"re-rated under catalog {again.catalog_version}{_counting(again.counted)}: "
        f"{money_text(again.amount)}{'' if again.refused is None else f' ({again.refused})'}"
    ) + (
        ", as charged"
        if again.amount == charge.amount
        else f" instead of {money_text(charge.amount)} under {charge.catalog_version}"
    )
    if owed > ZERO:
        return _credit(account, event, evidence, owed, rerated + before, base, under=again)
    if evidence.credited_by is not None:
        return _denied(
            base,
            clause,
            f"charge {charge.charge_id} was already credited by {evidence.credited_by} "
            f"({money_text(credited)}); {rerated}: nothing more is owed",
        )
    return _denied(base, clause, rerated)


# The clause a denied fee of these kinds cites once its number went through one of these facts
# (F1), the most specific first: the port's own clause over the customer's own change. (A
# plan's own clauses already speak of cancelling and downgrading.)
_SUBSCRIPTION_FEES = frozenset({"plan_fee", "package_fee"})
_CLAUSE_AFTER: tuple[tuple[frozenset[str], frozenset[str], str], ...] = (
    (_SUBSCRIPTION_FEES, frozenset({"port_in.failed"}), "port_in_failure"),
    (_SUBSCRIPTION_FEES, frozenset({"port_out.requested", "port_out.completed"}), "port_out"),
    (
        frozenset({"package_fee"}),
        frozenset({"package.changed", "package.unsubscribed"}),
        "cancel_or_downgrade",
    ),
)


def _clause(account: Account, evidence: DisputeEvidence) -> str:
    """The policy clause that applies to a denied refund of the charge (F1): the one for what
    became of its number since, for a plan or package fee, else the one for its kind."""
    kind = evidence.charge.kind
    since = set(evidence.later_on_number)
    for kinds, types, clause in _CLAUSE_AFTER:
        if kind in kinds and since & types:
            return clause
    if kind == "plan_fee" and account.billing_mode == "postpaid":
        return "cancel_or_downgrade"  # "prepaid plans are non-refundable" is not theirs
    return CLAUSE_FOR_KIND.get(kind, "one_time_and_recurring")


@dataclass(frozen=True)
class _Rerated:
    """The disputed charge as its source event rates again: the amount, and the catalog version
    and rate it was rated under (C2)."""

    amount: Decimal
    catalog_version: str
    rate: str
    refused: str | None = None  # why the rules refuse the event now, if they do
    counted: tuple[Account.FactApplied, ...] = ()  # the facts logged late it was rated after


# A dispute's evidence names this many of the facts it counted that were logged late.
MAX_LATE_FACTS_NAMED = 3


def _counting(logged_late: tuple[Account.FactApplied, ...]) -> str:
    """What the re-rating counted that the charge's own rating could not: the facts dated
    before its source event and logged after it."""
    if not logged_late:
        return ""
    named = [
        f"{event.fact['event_id']} ({event.fact['type']} at {event.fact['occurred_at']})"
        for event in logged_late[:MAX_LATE_FACTS_NAMED]
    ]
    more = len(logged_late) - len(named)
    return (
        f", counting {', '.join(named)}{f' and {more} more' if more else ''}, "
        f"dated before it and logged after it"
    )


def _rerate(evidence: DisputeEvidence, catalogs: CatalogHistory) -> _Rerated | None:
    """The charge when its source event is rated again (C4 corrections applied), in the account
    as its earlier facts leave it rated again the same way, as a what-if replay rates them (R2),
    and then the facts logged after it but dated before it (T2): what the ledger knows now of
    the service the event used. None: the event cannot be rated again."""
    corrected = corrected_history(catalogs)
    state, counted = rerated_account(evidence.earlier, corrected, evidence.logged_late)
    try:
        again = _charge_in(state, evidence, corrected)
    except RejectedEvent as error:
        if not counted:
            return None
        try:
            as_logged = _charge_in(
                rerated_account(evidence.earlier, corrected)[0], evidence, corrected
            )
        except LedgerError:
            return None  # the catalogs refuse it, not only the late facts
        # A number ported out or removed before the event, as learned late: the event
        # would have been refused (T2), so none of the charge was the account's to pay.
        return _Rerated(
            ZERO,
            as_logged.catalog_version,
            "not rated when rated again",
            refused=error.reason,
            counted=counted,
        )
    except LedgerError:
        return None
    return replace(again, counted=counted)


def _charge_in(state: Account, evidence: DisputeEvidence, catalogs: CatalogHistory) -> _Rerated:
    """The disputed charge as its source event rates in that state of the account;
    LedgerError when the rules refuse the event."""
    source = evidence.source_fact
    again = decide_again(state, source, catalogs)
    for charge in again.charges:
        if charge.charge_id == evidence.charge.charge_id:
            return _Rerated(charge.amount, charge.catalog_version, charge.rate)
    # Rated again, the event makes no such charge at all (its minutes or data covered it).
    at = parse_instant(source["occurred_at"], "occurred_at")
    version = catalogs.in_force(state.currency, at).version
    return _Rerated(ZERO, version, "no charge when rated again")


def _denied(base: dict[str, Any], clause: str, why: str) -> Outcome:
    return applied(
        "F1",
        effects={
            **base,
            "decision": "denied",
            "clause": clause,
            "policy": CLAUSES[clause],
            "evidence": why,
            "credited": money_text(ZERO),
        },
    )


def _credit(
    account: Account,
    event: IncomingEvent,
    evidence: DisputeEvidence,
    amount: Decimal,
    why: str,
    base: dict[str, Any],
    under: _Rerated | None = None,
) -> Outcome:
    """A credit of `amount`; `under`: the re-rating that gave it, whose catalog version and rate
    the credit records (C2), where a duplicate's credit records the charge's own."""
    original = evidence.charge
    credit = Charge(
        charge_id=f"{event.event_id}:refund",
        kind="refund_credit",
        amount=-amount,
        rule="F1",
        catalog_version=original.catalog_version if under is None else under.catalog_version,
        rate=original.rate if under is None else under.rate,
        arithmetic=f"credit {money_text(amount)} of charge {original.charge_id}: {why}",
        period=period_of(event.occurred_at, account.timezone),
        payer=original.payer,  # back where it was paid from: balance, invoice or card
        msisdn=original.msisdn,
        label=f"refund of {original.charge_id} ({event.fields['reason']})",
    )
    return charged(
        "F1",
        (credit,),
        {**base, "decision": "credited", "evidence": why, "credited": money_text(amount)},
    )
