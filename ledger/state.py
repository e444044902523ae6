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
class NumberState:
    msisdn: str
    plan: PlanState | None = None
