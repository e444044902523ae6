"""The account state the rules decide on. Plain data, changed only by Account.evolve."""

from dataclasses import dataclass, field

# Explicit limit: minute batches kept per number for late calls (B3); older ones are dropped.
MINUTE_BATCHES_KEPT = 3


@dataclass
class MinuteBatch:
    """One period's plan minutes, in seconds so any increment stays exact (V4)."""

    granted_seconds: int
    used_seconds: int = 0

    @property
    def remaining_seconds(self) -> int:
        return self.granted_seconds - self.used_seconds


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
    batches: dict[str, MinuteBatch] = field(default_factory=dict)

    def grant(self, period: str) -> None:
        self.current_period = period
        self.batches[period] = MinuteBatch(granted_seconds=self.minutes * 60)
        while len(self.batches) > MINUTE_BATCHES_KEPT:
            del self.batches[min(self.batches)]


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

    def document(self) -> dict[str, object]:
        return dict(self.__dict__)

    @classmethod
    def from_document(cls, doc: dict[str, object]) -> "PackageState":
        return cls(**doc)  # type: ignore[arg-type]


@dataclass
class NumberState:
    msisdn: str
    plan: PlanState | None = None
    package: PackageState | None = None
