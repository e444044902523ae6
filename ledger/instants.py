"""Timezone-aware instants and billing periods (T1)."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# RFC 3339 demands an offset: "Z" or +hh:mm / -hh:mm. A bare local time is invalid input (T1).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_instant(value: object, field: str) -> datetime:
    """Parse an RFC 3339 timestamp with an offset into an aware datetime.

    Raises ValueError naming the field when the value is not a string, has no offset,
    or is not a real date and time.
    """
    if not isinstance(value, str):
        raise ValueError(
            f"{field} must be an RFC 3339 timestamp string, got {type(value).__name__}"
        )
    if not _RFC3339.match(value):
        if re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?$", value):
            raise ValueError(
                f"{field} has no UTC offset: {value!r} (write e.g. {value}Z or {value}+02:00)"
            )
        raise ValueError(f"{field} is not an RFC 3339 timestamp with an offset: {value!r}")
    text = value
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:
        # Python keeps microseconds; finer digits are cut, never rounded into the next second.
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6], 1)
    try:
        instant = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{field} is not a real date and time: {value!r}") from None
    return instant


def instant_text(instant: datetime) -> str:
    """The canonical text of an instant: UTC, RFC 3339, 'Z' suffix (deterministic output, R1)."""
    if instant.tzinfo is None:
        raise ValueError("naive datetimes have no place in the ledger (T1)")
    # isoformat, not strftime: a third of the time, and a four-digit year before 1000 too.
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name; ValueError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone: {name!r}") from None


def period_of(instant: datetime, timezone_name: str) -> str:
    """The billing period `YYYY-MM` an instant belongs to in the account's time zone (T1)."""
    local = instant.astimezone(zone(timezone_name))
    return f"{local.year:04d}-{local.month:02d}"


def parse_period(value: object, field: str) -> str:
    """Check a `YYYY-MM` period name and return it."""
    if not isinstance(value, str) or not _PERIOD.match(value):
        raise ValueError(f"{field} must be a period named YYYY-MM, got {value!r}")
    return value


def next_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def months_between(earlier: str, later: str) -> int:
    """Whole periods from `earlier` to `later` (2026-01 -> 2027-01 is 12)."""
    return (int(later[:4]) - int(earlier[:4])) * 12 + int(later[5:7]) - int(earlier[5:7])


def period_start(period: str, timezone_name: str) -> datetime:
    """The first instant of a period in the account's time zone."""
    return datetime(int(period[:4]), int(period[5:7]), 1, tzinfo=zone(timezone_name))


def period_end(period: str, timezone_name: str) -> datetime:
    """The instant the period ends (exclusive): the first instant of the next period."""
    return period_start(next_period(period), timezone_name)
