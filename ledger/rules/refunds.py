"""Refund disputes (F1, F2): replay to the charge, re-rate its source event, decide.

The application gathers the evidence from the account's stream (the charge, its source event,
the account just before it, an earlier charge for the same call); this rule only decides.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.account import Account
from ledger.catalog import CatalogHistory
from ledger.contract import IncomingEvent
from ledger.errors import LedgerError, RejectedEvent
from ledger.instants import period_of
from ledger.money import ZERO, money_text
from ledger.outcome import Charge, Outcome, applied, charged
from ledger.policy import CLAUSE_FOR_KIND, CLAUSES
from ledger.rerate import corrected_history, decide_again

STORE_CHANNELS = frozenset({"app_store", "google_play"})


@dataclass(frozen=True)
class DisputeEvidence:
    """What the stream says about the disputed charge."""

    charge: Charge
    source_fact: dict[str, Any]
    before: Account  # the account just before the source event was applied
    duplicate_of: str | None  # an earlier charge for the same call, if any
    credited_by: str | None  # the refund event that already credited this charge
    channel: str | None  # where the plan was bought, for plan fees


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
    base: dict[str, Any] = {"charge_id": charge.charge_id, "charged": money_text(charge.amount)}
    if evidence.credited_by is not None:
        return _denied(
            base,
            "one_time_and_recurring",
            f"charge {charge.charge_id} was already credited by {evidence.credited_by}",
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
    if evidence.duplicate_of is not None and charge.amount > ZERO:
        return _credit(
            account,
            event,
            evidence,
            charge.amount,
            f"charge {charge.charge_id} duplicates {evidence.duplicate_of} for the same call "
            f"(call_id {evidence.source_fact.get('call_id')})",
            base,
        )
    rerated, under = _rerate(evidence, catalogs)
    base["rerated"] = None if rerated is None else money_text(rerated)
    if rerated is not None and rerated < charge.amount:
        return _credit(
            account,
            event,
            evidence,
            charge.amount - rerated,
            f"re-rated under catalog {under}: {money_text(rerated)} instead of "
            f"{money_text(charge.amount)} under {charge.catalog_version}",
            base,
        )
    clause = "aup_blocks" if evidence.before.blocked else CLAUSE_FOR_KIND.get(charge.kind)
    why = (
        f"re-rated under catalog {under}: {money_text(rerated)}, as charged"
        if rerated is not None
        else "the source event cannot be re-rated"
    )
    return _denied(base, clause or "one_time_and_recurring", why)


def _rerate(evidence: DisputeEvidence, catalogs: CatalogHistory) -> tuple[Decimal | None, str]:
    """The charge's amount when its source event is rated again (C4 corrections applied)."""
    try:
        again = decide_again(evidence.before, evidence.source_fact, corrected_history(catalogs))
    except LedgerError:
        return None, "-"
    for charge in again.charges:
        if charge.charge_id == evidence.charge.charge_id:
            return charge.amount, charge.catalog_version
    return ZERO, "-"  # rated again, the event makes no such charge at all


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
) -> Outcome:
    original = evidence.charge
    credit = Charge(
        charge_id=f"{event.event_id}:refund",
        kind="refund_credit",
        amount=-amount,
        rule="F1",
        catalog_version=original.catalog_version,
        rate=original.rate,
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
