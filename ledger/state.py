"""The account state the rules decide on. Plain data, changed only by Account.evolve."""

from dataclasses import asdict, dataclass, field
from typing import Any

# Explicit limit: minute batches kept per number for late calls (B3); older ones are dropped.
MINUTE_BATCHES_KEPT = 3
# Why a period start ended a plan that was cancelled (V7): only such a plan can be switched
# back on by an instruction dated before its end (T2).
ENDED_AUTORENEW_OFF = "autorenew off"


@dataclass
class MinuteBatch:
    """One period's plan minutes on a number, in seconds so any increment stays exact (V4).

    A batch keeps the terms of the plan that granted it, so a late call is taken from the
    minutes of its own period under that period's plan, whatever the number holds now (T2).
    """

    plan_id: str
    countries: tuple[str, ...]
    increment_seconds: int
    granted_seconds: int
    used_seconds: int = 0
    # Granted by a renewal (V6, V8), not a purchase: a cancel dated before it may reverse it.
    renewed: bool = False
    # The renewal's fee charge and amount, when it charged one (a yearly plan's other months
    # do not); a reversal credits exactly this.
    fee_charge_id: str | None = None
    fee: str | None = None

    @property
    def remaining_seconds(self) -> int:
        return self.granted_seconds - self.used_seconds

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "MinuteBatch":
        return cls(**{**doc, "countries": tuple(doc["countries"])})

    @classmethod
    def granted(cls, plan: "PlanState", renewal: dict[str, Any] | None = None) -> "MinuteBatch":
        """A full batch of the plan's minutes (V2, V6); `renewal`: the renewal's fee charge,
        when a renewal granted it."""
        return cls(
            plan_id=plan.plan_id,
            countries=plan.countries,
            increment_seconds=plan.increment_seconds,
            granted_seconds=plan.minutes * 60,
            renewed=renewal is not None,
            fee_charge_id=None if renewal is None else renewal.get("fee_charge_id"),
            fee=None if renewal is None else renewal.get("fee"),
        )


@dataclass
class PlanState:
    """The plan on one number (V1): what it covers, how it renews, its minute batches."""

    plan_id: str
    name: str
    term: str
    minutes: int
    countries: tuple[str, ...]
    increment_seconds: int
    autorenew: bool
    channel: str
    started_period: str
    current_period: str
    pending_plan_id: str | None = None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "PlanState":
        return cls(**{**doc, "countries": tuple(doc["countries"])})


@dataclass
class PackageState:
    """The data package on one number (D1-D9). Snapshotted whole into each outcome's effects."""

    package_id: str
    name: str
    mode: str  # the account's billing mode when subscribed: "prepaid" or "postpaid"
    unlimited: bool
    fee: str
    data_bytes: int  # the package's full allowance (0 for Data Unlimited)
    remaining_bytes: int  # what is left to use (0 for Data Unlimited)
    fup_bytes: int  # fair-use threshold (Data Unlimited only)
    fup_used_bytes: int
    throttled: bool
    throttled_since: str | None
    valid_from: str
    valid_until: str  # exclusive: the first instant it is no longer valid
    renews: bool  # postpaid: charged again at the next period start
    changed_in_period: str | None  # postpaid: one change per period (D6)
    # The fee charge of the renewal that started it (D4), which a late unsubscribe or port-out
    # dated before the renewal credits; None for a subscription or a change.
    renewal_charge_id: str | None = None
    # Of its remaining data, what it took over from the package it replaced (D6, D7) and a
    # late record of that package may still take back (T2): the same bytes are used once.
    carried_bytes: int = 0

    def document(self) -> dict[str, object]:
        doc = dict(self.__dict__)
        if not self.carried_bytes:
            del doc["carried_bytes"]  # as stored before packages kept it
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, object]) -> "PackageState":
        return cls(**doc)  # type: ignore[arg-type]


@dataclass
class NumberState:
    msisdn: str
    plan: PlanState | None = None
    package: PackageState | None = None
    # The package this one replaced, for late records of its validity (T2); one kept.
    previous_package: PackageState | None = None
    minute_batches: dict[str, MinuteBatch] = field(default_factory=dict)
    # The number a pending port-in will bring in its place (P1), if one is pending.
    porting_in: str | None = None
    # A port-out was requested and its fee charged (P2); completion removes the number.
    porting_out: bool = False
    # When its port-out completed (P2): it is kept aside, for late usage dated before that.
    ported_out_at: str | None = None
    # The plan a period start ended because autorenew was off (V7), until the number holds a
    # plan again: a switch back on dated before that end but logged after it renews it (T2).
    ended_plan: PlanState | None = None

    def document(self) -> dict[str, Any]:
        """As plain JSON values (for an account's snapshot); `from_document` gives it back."""
        return asdict(self)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "NumberState":
        plan, package, previous = doc["plan"], doc["package"], doc["previous_package"]
        ended = doc["ended_plan"]
        return cls(
            msisdn=doc["msisdn"],
            plan=None if plan is None else PlanState.from_document(plan),
            package=None if package is None else PackageState.from_document(package),
            previous_package=None if previous is None else PackageState.from_document(previous),
            minute_batches={
                period: MinuteBatch.from_document(batch)
                for period, batch in doc["minute_batches"].items()
            },
            porting_in=doc["porting_in"],
            porting_out=doc["porting_out"],
            ported_out_at=doc["ported_out_at"],
            ended_plan=None if ended is None else PlanState.from_document(ended),
        )

    def grant(self, plan: PlanState, period: str, renewal: dict[str, Any] | None = None) -> None:
        """A full batch of the plan's minutes for the period (V2, V6); `renewal`: the
        renewal's fee charge, when a renewal granted it."""
        plan.current_period = period
        self.minute_batches[period] = MinuteBatch.granted(plan, renewal)
        while len(self.minute_batches) > MINUTE_BATCHES_KEPT:
            del self.minute_batches[min(self.minute_batches)]
