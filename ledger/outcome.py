"""What the ledger decided about one incoming event: the record finance explains later (R4).

An outcome travels inside the stored domain event as plain JSON (money as decimal strings),
so the event store alone replays every view without re-running a single rule.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ledger.frozen import fields_at_once, replaced
from ledger.money import ZERO, money_text

Status = Literal["applied", "not_yet_rated", "rejected"]
# Who pays a charge (I3): the prepaid balance, the customer's payment method, or the invoice.
Payer = Literal["balance", "payment_method", "invoice"]


@fields_at_once  # built for every charge of every event: its fields set at once
@dataclass(frozen=True)
class Charge:
    """One rated amount, with everything needed to explain it (C2, R4)."""

    charge_id: str
    kind: str
    amount: Decimal
    rule: str
    catalog_version: str
    rate: str
    arithmetic: str
    period: str
    payer: Payer
    msisdn: str | None = None
    # The period of the invoice or statement the charge is billed on: its own period, or the
    # next open one when its own is already closed (late, B3). Set by `rules.decide`.
    billed_period: str | None = None
    # Text for a charge that gets an invoice line of its own (a surcharge's description,
    # an adjustment's reason); charges without one are grouped per kind and number.
    label: str | None = None

    def document(self) -> dict[str, Any]:
        return {
            "charge_id": self.charge_id,
            "kind": self.kind,
            "amount": money_text(self.amount),
            "rule": self.rule,
            "catalog_version": self.catalog_version,
            "rate": self.rate,
            "arithmetic": self.arithmetic,
            "period": self.period,
            "payer": self.payer,
            "msisdn": self.msisdn,
            "billed_period": self.billed_period,
            "label": self.label,
        }

    def billed_on(self, period: str) -> "Charge":
        """This charge on the invoice or statement of that period."""
        return replaced(self, billed_period=period)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "Charge":
        return cls(
            charge_id=doc["charge_id"],
            kind=doc["kind"],
            amount=Decimal(doc["amount"]),
            rule=doc["rule"],
            catalog_version=doc["catalog_version"],
            rate=doc["rate"],
            arithmetic=doc["arithmetic"],
            period=doc["period"],
            payer=doc["payer"],
            msisdn=doc.get("msisdn"),
            billed_period=doc.get("billed_period"),
            label=doc.get("label"),
        )


@fields_at_once  # built for every event
@dataclass(frozen=True)
class Outcome:
    """The decision for one event: its status, its money movements, charges and state changes.

    `effects` holds the state changes the rule decided (plain JSON), so evolving state and
    folding views read them instead of re-running the rule.
    """

    status: Status
    rule: str
    reason: str | None = None
    balance_delta: Decimal = ZERO
    charges: tuple[Charge, ...] = field(default_factory=tuple)
    effects: Mapping[str, Any] = field(default_factory=dict)
    # The invoice or statement period the event's money lands on (B3); set by `rules.decide`.
    billed_period: str | None = None

    def document(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rule": self.rule,
            "reason": self.reason,
            "balance_delta": money_text(self.balance_delta),
            "charges": [charge.document() for charge in self.charges],
            "effects": dict(self.effects),
            "billed_period": self.billed_period,
        }

    def billed_on(self, period: str, charges: tuple[Charge, ...]) -> "Outcome":
        """This outcome on the invoice or statement of that period, with its charges billed."""
        return replaced(self, billed_period=period, charges=charges)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "Outcome":
        return cls(
            status=doc["status"],
            rule=doc["rule"],
            reason=doc.get("reason"),
            balance_delta=Decimal(doc["balance_delta"]),
            charges=tuple(Charge.from_document(c) for c in doc["charges"]),
            effects=doc.get("effects", {}),
            billed_period=doc.get("billed_period"),
        )


def applied(
    rule: str,
    *,
    balance_delta: Decimal = ZERO,
    charges: tuple[Charge, ...] = (),
    effects: Mapping[str, Any] | None = None,
) -> Outcome:
    return Outcome(
        status="applied",
        rule=rule,
        balance_delta=balance_delta,
        charges=charges,
        effects=effects or {},
    )


def charged(
    rule: str, charges: tuple[Charge, ...], effects: Mapping[str, Any] | None = None
) -> Outcome:
    """Applied with charges: the prepaid balance moves by exactly the charges it pays (I3)."""
    paid_by_balance = sum((c.amount for c in charges if c.payer == "balance"), start=ZERO)
    return applied(rule, balance_delta=-paid_by_balance, charges=charges, effects=effects)


def not_yet_rated(event_type: str) -> Outcome:
    """Recorded, never dropped: a type whose rating rules have not landed yet."""
    return Outcome(
        status="not_yet_rated",
        rule="pending",
        reason=f"{event_type} is recorded; its rating rules are not implemented yet",
    )


def rejected(rule: str, reason: str) -> Outcome:
    """A valid command the rules refuse: recorded with its reason, nothing else moves."""
    return Outcome(status="rejected", rule=rule, reason=reason)


def rated_msisdn(fact: Mapping[str, Any], effects: Mapping[str, Any]) -> str:
    """The number an applied fact's state and views change on: the one it names, or for a
    late usage record of a port-in's temporary number, the ported number that replaced it
    (P1, T2; `rules.decide` puts it in the effects)."""
    msisdn: str = effects.get("ported_in_as", fact["msisdn"])
    return msisdn
