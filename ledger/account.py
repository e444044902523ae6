"""The Account aggregate: one stream per account, one stored event per applied incoming event.

Each stored event carries the incoming fact (canonical document), the outcome the rules
decided, and the hash-chain link over both. Evolving state reads only the stored event, never
the catalog, so replay needs nothing but the log (C1, R1).
"""

from decimal import Decimal
from typing import Any

from eventsourcing.domain import Aggregate

from ledger.chain import GENESIS, link
from ledger.money import ZERO
from ledger.outcome import Outcome

# An explicit limit on one account's numbers: a business account with more is a data error.
MAX_NUMBERS_PER_ACCOUNT = 10_000


class Account(Aggregate):
    """State the rules need to decide; views are kept elsewhere (projections)."""

    class Opened(Aggregate.Created):
        fact: dict[str, Any]
        chain: str

    class FactApplied(Aggregate.Event):
        fact: dict[str, Any]
        outcome: dict[str, Any]
        chain: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Account)
            aggregate.evolve(self.fact, Outcome.from_document(self.outcome), self.chain)

    def __init__(self, fact: dict[str, Any], chain: str) -> None:
        self.account_id: str = fact["account_id"]
        self.billing_mode: str = fact["billing_mode"]
        self.currency: str = fact["currency"]
        self.timezone: str = fact.get("timezone", "UTC")
        self.opened_at: str = fact["occurred_at"]
        self.numbers: set[str] = set()
        self.balance: Decimal = ZERO
        self.seen_event_ids: set[str] = {fact["event_id"]}
        self.chain_head: str = chain
        self.applied_events = 1

    @classmethod
    def open(cls, stream_id: Any, fact: dict[str, Any]) -> "Account":
        account: Account = cls._create(
            cls.Opened, id=stream_id, fact=fact, chain=link(GENESIS, fact, None)
        )
        return account

    def has_seen(self, event_id: str) -> bool:
        return event_id in self.seen_event_ids

    def record(self, fact: dict[str, Any], outcome: Outcome) -> None:
        """Append the decided outcome of one incoming fact to the stream."""
        outcome_doc = outcome.document()
        self.trigger_event(
            self.FactApplied,
            fact=fact,
            outcome=outcome_doc,
            chain=link(self.chain_head, fact, outcome_doc),
        )

    def evolve(self, fact: dict[str, Any], outcome: Outcome, chain: str) -> None:
        self.seen_event_ids.add(fact["event_id"])
        self.chain_head = chain
        self.applied_events += 1
        if outcome.status != "applied":
            return
        self.balance += outcome.balance_delta
        if fact["type"] == "number.added":
            self.numbers.add(fact["msisdn"])
            assert len(self.numbers) <= MAX_NUMBERS_PER_ACCOUNT
