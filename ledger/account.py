"""The Account aggregate: one stream per account, one stored event per applied incoming event.

Each stored event carries the incoming fact (canonical document), the outcome the rules
decided, and the hash-chain link over both. Evolving state reads only the stored event, never
the catalog, so replay needs nothing but the log (C1, R1).
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, MutableOrImmutableAggregate, Snapshot
from eventsourcing.utils import get_topic

from ledger.chain import GENESIS, link
from ledger.frozen import built
from ledger.instants import parse_instant, period_of
from ledger.money import ZERO, money_text
from ledger.outcome import Outcome, rated_msisdn
from ledger.state import ENDED_AUTORENEW_OFF, NumberState, PackageState, PlanState

# An explicit limit on one account's numbers: a business account with more is a data error.
MAX_NUMBERS_PER_ACCOUNT = 10_000
# Numbers ported out of an account kept aside for their late usage records (P2, T2): the most
# recent ones. A record of a number dropped from them is dead-lettered as an unknown number.
MAX_PORTED_OUT_KEPT = 8
# Temporary numbers port-ins replaced, kept for their late usage records (P1, T2): the most
# recent ones. A record of a number dropped from them is dead-lettered as an unknown number.
MAX_PORTED_IN_KEPT = 8

# What a number that left the account leaves aside (`_set_aside`).
Kept = TypeVar("Kept")

# The layout of `Account.snapshot_document`. A change to it takes a new number: a process loads
# an account from its events alone when its latest snapshot has another. 2: without the ids of
# the events it applied, which the store keeps (ledger.applied_ids). 3: with each number's
# cancelled plan (`ended_plan`) and the temporary numbers port-ins replaced (`ported_in`): an
# account loaded from an older snapshot would decide a late switch-on or a late record of a
# temporary number otherwise than its events do. 4: with what partial refunds credited of each
# charge (`credited_in_part`) and the data each package took over (`carried_bytes`): a late
# port-out or cancel reverses the rest of a partly credited renewal, a late record of a
# replaced package uses the data carried over once.
SNAPSHOT_FORMAT = 4

# What an account holds besides the library's own fields: each has a place in its snapshot.
_STATE_FIELDS = frozenset(
    {
        "account_id",
        "billing_mode",
        "currency",
        "timezone",
        "opened_at",
        "current_period",
        "last_cycle_period",
        "blocked",
        "numbers",
        "ported_out",
        "ported_in",
        "balance",
        "credited_charges",
        "credited_in_part",
        "chain_head",
    }
)


class Account(Aggregate):
    """State the rules need to decide; views are kept elsewhere (projections). Its size does
    not grow with its history: the ids of the events it applied are kept in the store
    (ledger.applied_ids), its invoices in the views."""

    class Opened(Aggregate.Created):
        fact: dict[str, Any]
        chain: str

    class FactApplied(Aggregate.Event):
        fact: dict[str, Any]
        outcome: dict[str, Any]
        chain: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Account)
            aggregate.evolve(self.fact, self.outcome, self.chain)

    def __init__(self, fact: dict[str, Any], chain: str) -> None:
        self.account_id: str = fact["account_id"]
        self.billing_mode: str = fact["billing_mode"]
        self.currency: str = fact["currency"]
        self.timezone: str = fact.get("timezone", "UTC")
        self.opened_at: str = fact["occurred_at"]
        self.current_period: str = period_of(
            parse_instant(fact["occurred_at"], "occurred_at"), self.timezone
        )
        self.last_cycle_period: str | None = None
        self.blocked = False
        self.numbers: dict[str, NumberState] = {}
        self.ported_out: dict[str, NumberState] = {}  # oldest port-out first
        # A port-in's temporary number -> (the ported number, when it replaced it), oldest first.
        self.ported_in: dict[str, tuple[str, str]] = {}
        self.balance: Decimal = ZERO
        self.credited_charges: dict[str, str] = {}  # charge id -> the refund that credited it
        # Of those, the ones credited in part so far (a price correction's difference): charge
        # id -> the amount credited. Every other credited charge was credited in full.
        self.credited_in_part: dict[str, str] = {}
        self.chain_head: str = chain

    @classmethod
    def open(cls, stream_id: Any, fact: dict[str, Any]) -> "Account":
        account: Account = cls._create(
            cls.Opened, id=stream_id, fact=fact, chain=link(GENESIS, fact, None)
        )
        return account

    def snapshot_document(self) -> dict[str, Any]:
        """The account's state as plain JSON values; `from_snapshot_document` gives it back."""
        own = {name for name in vars(self) if not name.startswith("_")}
        assert own == _STATE_FIELDS, f"Account fields without a place in its snapshot: {own}"
        return {
            "format": SNAPSHOT_FORMAT,
            "created_on": self.created_on.isoformat(),
            "modified_on": self.modified_on.isoformat(),
            "account_id": self.account_id,
            "billing_mode": self.billing_mode,
            "currency": self.currency,
            "timezone": self.timezone,
            "opened_at": self.opened_at,
            "current_period": self.current_period,
            "last_cycle_period": self.last_cycle_period,
            "blocked": self.blocked,
            "numbers": {msisdn: number.document() for msisdn, number in self.numbers.items()},
            "ported_out": {msisdn: gone.document() for msisdn, gone in self.ported_out.items()},
            "ported_in": {temporary: list(port) for temporary, port in self.ported_in.items()},
            "balance": str(self.balance),
            "credited_charges": dict(self.credited_charges),
            "credited_in_part": dict(self.credited_in_part),
            "chain_head": self.chain_head,
        }

    @classmethod
    def from_snapshot_document(
        cls, stream_id: UUID, version: int, doc: dict[str, Any]
    ) -> "Account":
        account = object.__new__(cls)
        # The library's own fields, as its Snapshot.mutate sets them.
        account.__dict__.update(
            _id=stream_id,
            _version=version,
            _created_on=datetime.fromisoformat(doc["created_on"]),
            _modified_on=datetime.fromisoformat(doc["modified_on"]),
            _pending_events=[],
        )
        account.account_id = doc["account_id"]
        account.billing_mode = doc["billing_mode"]
        account.currency = doc["currency"]
        account.timezone = doc["timezone"]
        account.opened_at = doc["opened_at"]
        account.current_period = doc["current_period"]
        account.last_cycle_period = doc["last_cycle_period"]
        account.blocked = doc["blocked"]
        account.numbers = {
            msisdn: NumberState.from_document(number) for msisdn, number in doc["numbers"].items()
        }
        account.ported_out = {
            msisdn: NumberState.from_document(gone) for msisdn, gone in doc["ported_out"].items()
        }
        account.ported_in = {
            temporary: (ported, completed_at)
            for temporary, (ported, completed_at) in doc["ported_in"].items()
        }
        account.balance = Decimal(doc["balance"])
        account.credited_charges = dict(doc["credited_charges"])
        account.credited_in_part = dict(doc["credited_in_part"])
        account.chain_head = doc["chain_head"]
        return account

    def record(self, fact: dict[str, Any], outcome: Outcome) -> None:
        """Append the decided outcome of one incoming fact to the stream."""
        outcome_doc = outcome.document()
        chain = link(self.chain_head, fact, outcome_doc)
        version, timestamp = self._version + 1, self.FactApplied.create_timestamp()
        # The library's trigger_event and the event's mutate, without what they do for any
        # event of any aggregate: checks of the class, of the id and of the version (this
        # account's next, by construction), a copy of the arguments, the frozen dataclass's
        # __init__ and four properties. In the library's order: moved, then pending.
        event = built(
            self.FactApplied,
            {
                "originator_id": self._id,
                "originator_version": version,
                "timestamp": timestamp,
                "fact": fact,
                "outcome": outcome_doc,
                "chain": chain,
            },
        )
        self.evolve(fact, outcome_doc, chain)
        self._version, self._modified_on = version, timestamp
        self._pending_events.append(event)

    def rated_again(self, fact: dict[str, Any], outcome: dict[str, Any]) -> None:
        """Move the state by one fact as `record` moves it, making no event: an account rated
        again (ledger.rerate) is never stored, so it needs neither the event nor its chain
        link (docs/PERFORMANCE.md, session 44). Its chain head stays where its opening left it."""
        self.evolve(fact, outcome, self.chain_head)
        self._version += 1

    def ported_out_after(self, msisdn: str, at: datetime) -> NumberState | None:
        """The number if it was ported out of the account after `at`: a usage record dated
        `at` that reached the ledger after the port-out is still rated on it (P2)."""
        gone = self.ported_out.get(msisdn)
        if gone is None or gone.ported_out_at is None:
            return None
        return gone if at < parse_instant(gone.ported_out_at, "ported_out_at") else None

    def ported_in_as(self, msisdn: str, at: datetime) -> str | None:
        """The ported number that replaced `msisdn`, a port-in's temporary number, if that was
        after `at`: a usage record dated `at` that reached the ledger after the completion is
        rated on it, the same line of service under its new number (P1)."""
        port = self.ported_in.get(msisdn)
        if port is None:
            return None
        ported, completed_at = port
        return ported if at < parse_instant(completed_at, "completed_at") else None

    def uncredited(self, charge_id: str, amount: Decimal) -> Decimal:
        """What of the charge of that id, which charged `amount`, no refund or reversal has
        credited yet: all of it, the rest after a partial refund, or nothing."""
        if charge_id not in self.credited_charges:
            return amount
        part = self.credited_in_part.get(charge_id)
        return ZERO if part is None else amount - Decimal(part)

    def rated_number(self, msisdn: str) -> NumberState:
        """The number a usage record is rated on: the account's own, or one ported out of it
        since (`ported_out_after` admitted the record). A record of a port-in's temporary
        number is rated on the ported number: the rules pass that (`ported_in_as`), the
        evolvers find it with `rated_msisdn`."""
        number = self.numbers.get(msisdn)
        return self.ported_out[msisdn] if number is None else number

    def collect_events(self) -> list[Any]:
        """The pending events, handed over whole: the library's way pops them one by one,
        and a batch collects after each event it records."""
        collected, self._pending_events = self._pending_events, []
        return collected

    def evolve(self, fact: dict[str, Any], outcome: dict[str, Any], chain: str) -> None:
        # From the outcome's document: state moves by the balance delta and the effects, so
        # its charges are not parsed again for every event recorded or loaded.
        self.chain_head = chain
        if outcome["status"] != "applied":
            return
        self.balance += Decimal(outcome["balance_delta"])
        evolver = _EVOLVERS.get(fact["type"])
        if evolver is not None:
            evolver(self, fact, outcome.get("effects", {}))


class AccountSnapshot(Snapshot):
    """An account's state at one version, stored as `Account.snapshot_document`: plain JSON,
    so it is read back without walking tagged values."""

    @property
    def readable(self) -> bool:
        """Written in the layout this code reads (SNAPSHOT_FORMAT)."""
        return bool(self.state.get("format") == SNAPSHOT_FORMAT)

    @classmethod
    def take(cls, aggregate: MutableOrImmutableAggregate[UUID]) -> "AccountSnapshot":
        assert isinstance(aggregate, Account)
        return cls(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            timestamp=cls.create_timestamp(),
            topic=get_topic(Account),
            state=aggregate.snapshot_document(),
        )

    def mutate(self, _: None) -> Account:
        return Account.from_snapshot_document(
            self.originator_id, self.originator_version, self.state
        )


Evolver = Callable[[Account, dict[str, Any], Mapping[str, Any]], None]


def plan_from_effect(doc: Mapping[str, Any], period: str) -> PlanState:
    return PlanState(
        plan_id=doc["plan_id"],
        name=doc["name"],
        term=doc["term"],
        minutes=doc["minutes"],
        countries=tuple(doc["countries"]),
        increment_seconds=doc["increment_seconds"],
        autorenew=doc["autorenew"],
        channel=doc["channel"],
        started_period=doc.get("started_period", period),
        current_period=period,
    )


def _start_plan(
    number: NumberState,
    doc: Mapping[str, Any],
    period: str,
    renewal: Mapping[str, Any] | None = None,
) -> None:
    number.plan = plan_from_effect(doc, period)
    number.ended_plan = None
    number.grant(number.plan, period, None if renewal is None else dict(renewal))


def _end_plan(number: NumberState, reason: str) -> None:
    """Its minute batches stay, for late calls of their periods. A plan cancelled (V7) is kept
    aside, for a switch back on dated before its end and logged after it (T2)."""
    number.ended_plan = number.plan if reason == ENDED_AUTORENEW_OFF else None
    number.plan = None


def _renewals_since(number: NumberState, renewals: Iterable[Mapping[str, Any]]) -> None:
    """What the bill runs since a fact's date would have done to the plan it started or kept
    (T2): each renewal or change, or its end."""
    for renewal in renewals:
        if renewal["action"] == "ended":
            _end_plan(number, renewal["reason"])
        else:
            _start_plan(number, renewal["plan"], renewal["period"], renewal)


def _number_added(account: Account, fact: dict[str, Any], _: Mapping[str, Any]) -> None:
    account.numbers[fact["msisdn"]] = NumberState(fact["msisdn"])
    _joined(account, fact["msisdn"])
    assert len(account.numbers) <= MAX_NUMBERS_PER_ACCOUNT


def _joined(account: Account, msisdn: str) -> None:
    """A number (back) on the account is a new line of service: records of it are its own,
    not the one it was before (P2), and a temporary number that became it no longer names
    that (P1)."""
    account.ported_out.pop(msisdn, None)
    account.ported_in.pop(msisdn, None)
    for temporary in [t for t, (ported, _) in account.ported_in.items() if ported == msisdn]:
        del account.ported_in[temporary]


def _plan_purchased(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    number = account.numbers[fact["msisdn"]]
    _start_plan(number, effects["plan"], effects["period"])
    _renewals_since(number, effects.get("renewals", ()))


def _plan_instruction(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    """A cancel or switch on (V7), or a change (V8). One dated before bill runs and logged
    after them also corrects what they did (T2): the renewals it reverses, the renewals it
    makes instead, a cancelled plan it continues."""
    number = account.numbers[fact["msisdn"]]
    renewals = effects.get("renewals")
    if number.plan is None:  # continued, dated before the bill run that ended it
        assert renewals is not None and number.ended_plan is not None
        number.plan, number.ended_plan = number.ended_plan, None
    assert number.plan is not None
    number.plan.autorenew = effects.get("autorenew", number.plan.autorenew)
    if "pending_plan_id" in effects:
        number.plan.pending_plan_id = effects["pending_plan_id"]
    for period in effects.get("reversed_periods", ()):
        del number.minute_batches[period]
    if effects.get("ended"):
        number.plan = None
    _reversed_charges(account, fact, effects)
    _renewals_since(number, renewals or ())


def _reversed_charges(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    """Renewals a fact dated before them reversed: credited, so no dispute credits them again."""
    for charge_id in effects.get("reversed_charges", ()):
        account.credited_charges[charge_id] = fact["event_id"]
        account.credited_in_part.pop(charge_id, None)  # the rest of it: now in full


def _call_completed(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    number = account.rated_number(rated_msisdn(fact, effects))
    renewal = effects.get("renewal")
    if renewal is not None:  # a call ahead of its period's bill run renewed the plan (V6)
        _start_plan(number, renewal["plan"], effects["period"], renewal)
    used = effects.get("plan_seconds", 0)
    if not used:
        return
    batch = number.minute_batches[effects["period"]]
    batch.used_seconds += used
    # Plan minutes never go negative (V4): the rules split the call before this point.
    assert 0 <= batch.used_seconds <= batch.granted_seconds, (batch, fact["event_id"])


def _package_effect(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    """Data rules carry the number's package after the event; None when it ended (D1-D9)."""
    number = account.rated_number(rated_msisdn(fact, effects))
    if "package" in effects:
        _replace_package(number, _package_from(effects["package"]))
    if "previous_package" in effects:
        number.previous_package = _package_from(effects["previous_package"])
    if "reversed_charges" in effects:  # an unsubscribe or change dated before the renewal
        _reversed_charges(account, fact, effects)


def _replace_package(number: NumberState, package: PackageState | None) -> None:
    old = number.package
    if old is not None and (package is None or package.valid_from != old.valid_from):
        number.previous_package = old
    number.package = package


def _package_from(doc: dict[str, Any] | None) -> PackageState | None:
    if doc is None:
        return None
    package = PackageState.from_document(doc)
    assert package.remaining_bytes >= 0 and package.fup_used_bytes >= 0, package
    return package


def _cycle_started(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    period = effects["period"]
    account.current_period = period
    account.last_cycle_period = period
    for msisdn, change in effects.get("plans", {}).items():
        number = account.numbers[msisdn]
        if change["action"] == "ended":
            _end_plan(number, change["reason"])
        else:  # "renewed" or "changed": the terms of the catalog in force (C2, V8)
            _start_plan(number, change["plan"], period, change)
    for msisdn, package in effects.get("packages", {}).items():
        _replace_package(account.numbers[msisdn], _package_from(package))


def _port_in_requested(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    if effects["added"]:
        _number_added(account, fact, effects)
    account.numbers[fact["msisdn"]].porting_in = effects["porting_in"]


def _port_in_completed(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    number = account.numbers.pop(fact["msisdn"])
    number.msisdn = effects["replaced_by"]
    number.porting_in = None
    _joined(account, number.msisdn)
    account.numbers[number.msisdn] = number
    # Kept aside for its usage dated before, arriving late.
    port = (number.msisdn, fact["occurred_at"])
    _set_aside(account.ported_in, fact["msisdn"], port, MAX_PORTED_IN_KEPT)


def _port_in_failed(account: Account, fact: dict[str, Any], _: Mapping[str, Any]) -> None:
    account.numbers[fact["msisdn"]].porting_in = None


def _port_out_requested(account: Account, fact: dict[str, Any], _: Mapping[str, Any]) -> None:
    account.numbers[fact["msisdn"]].porting_out = True


def _port_out_completed(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    # Billing for it stops (P2); it is kept aside for usage dated before, arriving late.
    number = account.numbers.pop(fact["msisdn"])
    number.ported_out_at = fact["occurred_at"]
    _set_aside(account.ported_out, number.msisdn, number, MAX_PORTED_OUT_KEPT)
    _reversed_charges(account, fact, effects)  # renewals made after its date (P2)


def _set_aside(aside: dict[str, Kept], msisdn: str, kept: Kept, limit: int) -> None:
    """Keep a number that left the account aside for its late records, newest last; the
    oldest beyond the limit are dropped (their records are then unknown numbers)."""
    aside[msisdn] = kept
    while len(aside) > limit:
        del aside[next(iter(aside))]


def _refund_requested(account: Account, fact: dict[str, Any], effects: Mapping[str, Any]) -> None:
    if effects["decision"] == "credited":
        charge_id, charged = effects["charge_id"], Decimal(effects["charged"])
        rest = account.uncredited(charge_id, charged) - Decimal(effects["credited"])
        account.credited_charges[charge_id] = fact["event_id"]
        if rest > ZERO:
            account.credited_in_part[charge_id] = money_text(charged - rest)
        else:
            account.credited_in_part.pop(charge_id, None)


def _blocked(account: Account, _: dict[str, Any], effects: Mapping[str, Any]) -> None:
    account.blocked = effects["blocked"]


_EVOLVERS: dict[str, Evolver] = {
    "account.blocked": _blocked,
    "account.unblocked": _blocked,
    "number.added": _number_added,
    "plan.purchased": _plan_purchased,
    "plan.autorenew_changed": _plan_instruction,
    "plan.changed": _plan_instruction,
    "call.completed": _call_completed,
    "cycle.started": _cycle_started,
    "package.subscribed": _package_effect,
    "package.changed": _package_effect,
    "package.unsubscribed": _package_effect,
    "data.used": _package_effect,
    "port_in.requested": _port_in_requested,
    "port_in.completed": _port_in_completed,
    "port_in.failed": _port_in_failed,
    "port_out.requested": _port_out_requested,
    "port_out.completed": _port_out_completed,
    "refund.requested": _refund_requested,
}
