"""Re-rating for finance (C4, F1, R2): the account's facts rated again, nothing stored.

The stored outcomes stay as they were; re-rating builds a fresh Account in memory from the
account's facts and decides each one again under a catalog history in which every corrected
version is replaced by its final correction (and, for a what-if, an extra version).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from itertools import repeat
from typing import Any

from ledger.account import Account
from ledger.catalog import CatalogHistory, CatalogVersion
from ledger.contract import parse_document
from ledger.errors import LedgerError
from ledger.ids import account_stream_id
from ledger.instants import parse_instant
from ledger.money import ZERO, money_text
from ledger.outcome import Outcome, rejected


def corrected_history(
    catalogs: CatalogHistory, extra: CatalogVersion | None = None
) -> CatalogHistory:
    """The catalogs finance re-rates with (C4): each corrected version is replaced by its final
    correction, in force from the corrected version's `effective_from`.

    `extra` (a what-if, R2) is published on top first: a new version, or a correction.
    """
    history = CatalogHistory(catalogs.versions())
    if extra is not None:
        history.add(extra)
    result = []
    for version in history.versions():
        if version.corrects is not None:
            continue  # a correction stands in for the version it corrects, below
        correction = history.final_correction_of(version.version)
        result.append(
            version
            if correction is None
            else replace(correction, effective_from=version.effective_from, corrects=None)
        )
    return CatalogHistory(result)


@dataclass(frozen=True)
class ChargeDifference:
    """One charge as stored and as re-rated (None: no such charge on that side)."""

    charge_id: str
    event_id: str
    kind: str
    charged: Decimal | None
    rerated: Decimal | None
    charged_under: str | None
    rerated_under: str | None
    rerated_arithmetic: str | None
    credited: Decimal = ZERO  # what disputes and reversals already credited of the charge

    @property
    def difference(self) -> Decimal:
        return (self.rerated or ZERO) - (self.charged or ZERO)

    @property
    def still_owed(self) -> Decimal:
        """What a dispute of the charge would credit now for this difference (F1): the
        overcharge less what was credited of it; an undercharge is never collected, so
        nothing. A dispute also counts the facts logged late (`logged_late`)."""
        return max(-self.difference - self.credited, ZERO)

    def document(self) -> dict[str, Any]:
        return {
            "charge_id": self.charge_id,
            "event_id": self.event_id,
            "kind": self.kind,
            "charged": None if self.charged is None else money_text(self.charged),
            "rerated": None if self.rerated is None else money_text(self.rerated),
            "difference": money_text(self.difference),
            "charged_under": self.charged_under,
            "rerated_under": self.rerated_under,
            "rerated_arithmetic": self.rerated_arithmetic,
            "credited": money_text(self.credited),
            "still_owed": money_text(self.still_owed),
        }


def rerate(
    stored: Iterable[object], catalogs: CatalogHistory
) -> tuple[list[ChargeDifference], list[str]]:
    """Rate an account's stored facts again from its opening; return every charge that differs
    and the facts that could not be rated at all under these catalogs (with the reason)."""
    _, differences, unrated, _ = _rate_again(stored, catalogs, compare=True)
    return differences, unrated


def rerated_account(
    stored: Iterable[object],
    catalogs: CatalogHistory,
    logged_late: Iterable[Account.FactApplied] = (),
) -> tuple[Account, tuple[Account.FactApplied, ...]]:
    """The account as its stored facts leave it when rated again under these catalogs, as
    `rerate` rates them, with each of the facts `logged_late` placed at its date: the state a
    disputed charge's source event is re-rated in (F1), from the facts before it and those
    logged late, so a dispute credits what a what-if replay shows and what the late facts
    change (a corrected plan's minutes, or a late purchase's, count for every call before the
    disputed one too). With it, the late facts it counted: a fact the rules refuse where it now
    falls changes nothing."""
    account, _, _, counted = _rate_again(stored, catalogs, logged_late)
    assert account is not None, "an account's stream starts with its opening"
    return account, counted


def logged_late(
    source_fact: dict[str, Any], later: Iterable[object]
) -> tuple[Account.FactApplied, ...]:
    """The facts among `later` (events logged after the source fact) dated before it: what the
    ledger learned late about the service the source fact used (T2), a plan switched back on,
    a purchase, a port-out, a bill run. A dispute re-rates the source fact after them (F1), so
    a call rated PAYG while a cancelled plan stood ended is re-rated on the minutes the late
    switch-on renewed. Decisions on other charges (refund requests) are not facts about the
    service, and a fact the rules rejected (a repeated bill run) changed nothing."""
    at = parse_instant(source_fact["occurred_at"], "occurred_at")
    return tuple(
        event
        for event in later
        if isinstance(event, Account.FactApplied)
        and event.outcome["status"] == "applied"
        and event.fact["type"] != "refund.requested"
        and _occurred(event) < at
    )


def later_on_number(msisdn: str | None, later: Iterable[object]) -> tuple[str, ...]:
    """The types of the applied facts among `later` that name the number, each once in log
    order: what became of a charge's number since it was charged (a port-out, a failed
    port-in, a package changed), for the policy clause a denial cites (F1). A port-in's
    temporary number is followed to the ported number that replaced it (P1)."""
    types: dict[str, None] = {}
    if msisdn is None:
        return ()
    for event in later:
        if (
            isinstance(event, Account.FactApplied)
            and event.outcome["status"] == "applied"
            and event.fact.get("msisdn") == msisdn
        ):
            types.setdefault(event.fact["type"])
            if event.fact["type"] == "port_in.completed":
                msisdn = event.fact["ported_msisdn"]  # the same line, under the ported number
    return tuple(types)


def _rate_again(
    stored: Iterable[object],
    catalogs: CatalogHistory,
    logged_late: Iterable[Account.FactApplied] = (),
    *,
    compare: bool = False,
) -> tuple[Account | None, list[ChargeDifference], list[str], tuple[Account.FactApplied, ...]]:
    """The account rated again, the charges that differ (with `compare`; a dispute needs only
    the account), the facts the catalogs cannot rate, and the late facts counted."""
    account: Account | None = None
    differences: list[ChargeDifference] = []
    unrated: list[str] = []
    counted: list[Account.FactApplied] = []  # of the facts logged late
    calls = Calls()
    credits = Credits()
    moved = False  # a fact logged late was placed before a stored one
    for event, late in _by_date_learned(stored, logged_late):
        moved = moved or late
        credits.add(event)
        if isinstance(event, Account.Opened):
            account = Account.open(account_stream_id(event.fact["account_id"]), event.fact)
            continue
        if not isinstance(event, Account.FactApplied):
            continue
        assert account is not None, "an account's stream starts with its opening"
        fact = event.fact
        if fact["type"] == "refund.requested":  # a decision on a charge, not a rating
            account.rated_again(fact, event.outcome)
            continue
        outcome: Outcome | None
        call = calls.key(fact)
        if call is not None and calls.first_record(fact) is not None:
            # F1: a second record of one call owes nothing, and takes no plan minutes a later
            # call would have used: rated again, it charges and moves nothing.
            outcome = rejected(
                "F1", f"repeats call {call[1]} on {call[0]}: a duplicate record owes nothing"
            )
        else:
            try:
                outcome = decide_again(account, fact, catalogs)
            except LedgerError as error:
                if moved:
                    # Refused where it now falls, after a fact logged late (a call of a
                    # number added after the source fact, or one a late port-out took away):
                    # in this order it changes nothing, and its stored outcome would not fit
                    # the account.
                    continue
                unrated.append(f"{fact['event_id']}: {error.reason}")
                outcome = None  # the account's state keeps moving as it did
        if late:
            counted.append(event)
        calls.add(event)
        if outcome is None:
            account.rated_again(fact, event.outcome)
            continue
        again = outcome.document()
        account.rated_again(fact, again)
        if compare:
            differences.extend(_compare(fact["event_id"], event.outcome, again))
    differences = [
        replace(d, credited=credits.of(d.charge_id, d.charged or ZERO)) for d in differences
    ]
    return account, differences, unrated, tuple(counted)


def _by_date_learned(
    stored: Iterable[object], logged_late: Iterable[Account.FactApplied]
) -> Iterator[tuple[object, bool]]:
    """The stored events in log order, each with False, and each fact logged late, with True,
    placed before the first stored fact dated after it (the rest at the end, in log order): a
    purchase learned late counts from its date, so its minutes go to the calls dated after it
    in the order they were rated, and no two disputes re-rate the same minutes as unused."""
    pending = [(_occurred(late), late) for late in logged_late]
    for event in stored:
        if pending and isinstance(event, Account.FactApplied):
            at = _occurred(event)
            due = [late for when, late in pending if when < at]
            if due:
                pending = [(when, late) for when, late in pending if when >= at]
                yield from zip(due, repeat(True))
        yield event, False
    yield from ((late, True) for _, late in pending)


def _occurred(event: Account.FactApplied) -> datetime:
    return parse_instant(event.fact["occurred_at"], "occurred_at")


class Credits:
    """What an account's stored events credited of each charge: the amounts of the refunds
    decided on it (F1), or the whole charge, a renewal reversed by a fact dated before it
    (V7, V8, D5, D6, P2)."""

    def __init__(self) -> None:
        self._by_charge: dict[str, Decimal | None] = {}  # None: in full

    def add(self, event: object) -> None:
        if not isinstance(event, Account.FactApplied):
            return
        effects = event.outcome["effects"]
        for charge_id in effects.get("reversed_charges", ()):
            self._by_charge[charge_id] = None
        if event.fact["type"] == "refund.requested" and effects.get("decision") == "credited":
            so_far = self._by_charge.get(effects["charge_id"], ZERO)
            if so_far is not None:
                self._by_charge[effects["charge_id"]] = so_far + Decimal(effects["credited"])

    def of(self, charge_id: str, charged: Decimal) -> Decimal:
        """What was credited of the charge of that id, which charged `charged`."""
        amount = self._by_charge.get(charge_id, ZERO)
        return charged if amount is None else amount


class Calls:
    """The calls an account's stored events recorded (F1): the records of one call share its
    number and call id. A port-in's completion gives the temporary number's calls to the
    ported number, so a second record of a call finds the first whichever of the two numbers
    each names (P1)."""

    def __init__(self) -> None:
        # Each call's first record: its first charge's id, or the event's, from plan minutes.
        self._first: dict[tuple[str, str], str] = {}
        self._ported_in_as: dict[str, str] = {}  # a port-in's temporary number -> ported one

    def key(self, fact: dict[str, Any]) -> tuple[str, str] | None:
        """(number, call id) of a call record; None for any other fact."""
        if fact["type"] != "call.completed":
            return None
        msisdn: str = fact["msisdn"]
        return self._ported_in_as.get(msisdn, msisdn), fact["call_id"]

    def first_record(self, fact: dict[str, Any]) -> str | None:
        """The first record of the fact's call, if an earlier event recorded it."""
        key = self.key(fact)
        return None if key is None else self._first.get(key)

    def add(self, event: object) -> None:
        if not isinstance(event, Account.FactApplied):
            return
        fact = event.fact
        key = self.key(fact)
        if key is not None:
            if key not in self._first:
                charges = event.outcome["charges"]
                self._first[key] = (
                    charges[0]["charge_id"] if charges else f"{fact['event_id']} (plan minutes)"
                )
        elif fact["type"] == "port_in.completed" and event.outcome["status"] == "applied":
            temporary, ported = fact["msisdn"], event.outcome["effects"]["replaced_by"]
            self._ported_in_as[temporary] = ported
            self._first = {
                (ported if msisdn == temporary else msisdn, call_id): first
                for (msisdn, call_id), first in self._first.items()
            }
        elif fact["type"] in ("number.added", "port_in.requested"):
            self._ported_in_as.pop(fact["msisdn"], None)  # given again: a new number


def decide_again(account: Account, fact: dict[str, Any], catalogs: CatalogHistory) -> Outcome:
    from ledger.rules import decide  # the rules import Account; imported late to avoid a cycle

    return decide(account, parse_document(fact), catalogs)


def _compare(
    event_id: str, original: dict[str, Any], again: dict[str, Any]
) -> list[ChargeDifference]:
    """The charges of a fact's stored outcome and of its outcome rated again, both documents,
    that differ in amount or stand on one side only."""
    before = {charge["charge_id"]: charge for charge in original["charges"]}
    after = {charge["charge_id"]: charge for charge in again["charges"]}
    result = []
    for charge_id in sorted(before.keys() | after.keys()):
        old, new = before.get(charge_id), after.get(charge_id)
        charged = None if old is None else Decimal(old["amount"])
        rerated = None if new is None else Decimal(new["amount"])
        if charged is not None and charged == rerated:
            continue
        either = new or old
        assert either is not None
        result.append(
            ChargeDifference(
                charge_id=charge_id,
                event_id=event_id,
                kind=either["kind"],
                charged=charged,
                rerated=rerated,
                charged_under=None if old is None else old["catalog_version"],
                rerated_under=None if new is None else new["catalog_version"],
                rerated_arithmetic=None if new is None else new["arithmetic"],
            )
        )
    return result
