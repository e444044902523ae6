"""Which stored events reach which projection (projections.projection.Projections)."""

from typing import Any

from ledger.account import Account
from projections.projection import Fact, Projection, Projections, ViewChanges
from projections.store import MemoryViewStore
from tests.test_voice import ACC, call, feed_ok, purchase, setup


class Recording(Projection):
    """Remembers what it was given to fold."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def opened(self, fact: Fact, changes: ViewChanges) -> None:
        self.seen.append(("account.opened", fact["account_id"]))

    def applied(self, fact: Fact, outcome: dict[str, Any], changes: ViewChanges) -> None:
        assert outcome["status"] == "applied", outcome
        self.seen.append((fact["type"], fact["event_id"]))


class CallsOnly(Recording):
    FACT_TYPES = frozenset({"call.completed"})


def test_each_applied_fact_reaches_the_projections_of_its_type_and_a_rejected_one_none() -> None:
    ledger = setup(recharge="10.00")
    second_plan = purchase("2026-11-07T10:00:00Z", "na-unlimited", event_id="second-plan")
    feed_ok(ledger, purchase(event_id="plan"), call("2026-11-06T10:00:00Z", 60), second_plan)
    events = list(ledger.app.stored_events())
    outcomes = {
        event.fact["event_id"]: event.outcome
        for event in events
        if isinstance(event, Account.FactApplied)
    }
    assert outcomes["second-plan"]["status"] == "rejected", outcomes["second-plan"]
    every, calls = Recording(), CallsOnly()
    projections = Projections([every, calls])
    changes = ViewChanges(MemoryViewStore())
    for event in events:  # the catalog's and the intake's events reach neither
        projections.apply(event, changes)
    applied = [
        (event.fact["type"], event.fact["event_id"])
        for event in events
        if isinstance(event, Account.FactApplied) and event.outcome["status"] == "applied"
    ]
    assert every.seen == [("account.opened", ACC), *applied]
    assert {"number.added", "balance.recharged", "plan.purchased"} < {t for t, _ in applied}
    assert ("plan.purchased", "second-plan") not in every.seen
    calls_applied = [(t, event_id) for t, event_id in applied if t == "call.completed"]
    assert len(calls_applied) == 1
    assert calls.seen == [("account.opened", ACC), *calls_applied]
