"""The balance view: one document per account, `account_id`, `balance`, `currency` (SPEC 12)."""

from decimal import Decimal
from typing import Any

from ledger.money import ZERO, ZERO_TEXT, money_text
from projections.projection import Fact, Projection, ViewChanges

VIEW = "balance"


class BalanceProjection(Projection):
    def opened(self, fact: Fact, changes: ViewChanges) -> None:
        account_id = fact["account_id"]
        changes.put(
            VIEW,
            account_id,
            {
                "account_id": account_id,
                "balance": money_text(ZERO),
                "currency": fact["currency"],
                "billing_mode": fact["billing_mode"],
            },
        )

    def applied(self, fact: Fact, outcome: dict[str, Any], changes: ViewChanges) -> None:
        text: str = outcome["balance_delta"]
        if text == ZERO_TEXT:  # most events: spares parsing it
            return
        delta = Decimal(text)
        if delta == ZERO:
            return
        account_id = fact["account_id"]
        doc = changes.get(VIEW, account_id)
        assert doc is not None, f"balance of {account_id} changed before it opened"
        changes.put(
            VIEW, account_id, {**doc, "balance": money_text(Decimal(doc["balance"]) + delta)}
        )
