"""The balance view: one document per account, `account_id`, `balance`, `currency` (SPEC 12)."""

from decimal import Decimal

from ledger.account import Account
from ledger.money import ZERO, ZERO_TEXT, money_text
from projections.projection import Projection, ViewChanges

VIEW = "balance"


class BalanceProjection(Projection):
    def apply(self, event: object, changes: ViewChanges) -> None:
        if isinstance(event, Account.FactApplied):
            text: str = event.outcome["balance_delta"]
            if text == ZERO_TEXT:  # most events: spares parsing it
                return
            delta = Decimal(text)
            if delta == ZERO:
                return
            account_id = event.fact["account_id"]
            doc = changes.get(VIEW, account_id)
            assert doc is not None, f"balance of {account_id} changed before it opened"
            changes.put(
                VIEW, account_id, {**doc, "balance": money_text(Decimal(doc["balance"]) + delta)}
            )
        elif isinstance(event, Account.Opened):
            account_id = event.fact["account_id"]
            changes.put(
                VIEW,
                account_id,
                {
                    "account_id": account_id,
                    "balance": money_text(ZERO),
                    "currency": event.fact["currency"],
                    "billing_mode": event.fact["billing_mode"],
                },
            )
