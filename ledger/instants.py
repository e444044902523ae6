"""Timezone-aware instants and billing periods (T1)."""

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# RFC 3339 demands an offset: "Z" or +hh:mm / -hh:mm. A bare local time is invalid input (T1).
# ASCII digits only: `\d` would take full-width and other Unicode digits too.
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
# The years the ledger dates and bills in. Python's datetime holds 0001 to 9999, but a period's
# bounds and the next period's are worked out in any time zone: an instant in year 1 or 9999
# would step off the calendar (a "forever" 9999-12-31 has no next month).
FIRST_YEAR, LAST_YEAR = 2, 9998
_OUT_OF_RANGE = f"outside the years the ledger bills in ({FIRST_YEAR:04d} to {LAST_YEAR:04d})"
# The months an instant of those years falls in, in a zone up to 14 hours from UTC.
FIRST_PERIOD, LAST_PERIOD = f"{FIRST_YEAR - 1:04d}-12", f"{LAST_YEAR + 1:04d}-01"
_PERIOD = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_LOCAL_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?$")


def parse_instant(value: object, field: str) -> datetime:
    """Parse an RFC 3339 timestamp with an offset into an aware datetime.

    Raises ValueError naming the field when the value is not a string, has no offset,
    is not a real date and time, or falls outside the years the ledger bills in.
    """
    if not isinstance(value, str):
        raise ValueError(
            f"{field} must be an RFC 3339 timestamp string, got {type(value).__name__}"
        )
    if _in_instant_text_shape(value):
        # As most producers and the ledger's state write it: the pattern below costs three
        # times what parsing does, and `fromisoformat` reads this shape's digits strictly.
        # Anything it refuses goes the long way, which says why.
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return _in_range(instant, value, field)
    return _parsed_by_pattern(value, field)


def _in_range(instant: datetime, value: str, field: str) -> datetime:
    if not FIRST_YEAR <= instant.year <= LAST_YEAR:
        raise ValueError(f"{field} {value!r} is {_OUT_OF_RANGE}")
    return instant


def _in_instant_text_shape(value: str) -> bool:
    """Whether the text has the separators and length of what `instant_text` writes:
    "2026-11-22T13:30:05Z", or with a fraction of six digits before the "Z"."""
    size = len(value)
    # The separators are every third character from the fifth.
    if size == 20:
        return value[4::3] == "--T::Z"
    return size == 27 and value[4:20:3] == "--T::." and value[26] == "Z" and value[20:26].isdigit()


def _parsed_by_pattern(value: str, field: str) -> datetime:
    """`parse_instant` of any text, checked against RFC 3339's pattern first."""
    shape = _RFC3339.match(value)
    if shape is None:
        if _LOCAL_TIME.match(value):
            raise ValueError(
                f"{field} has no UTC offset: {value!r} (write e.g. {value}Z or {value}+02:00)"
            )
        raise ValueError(f"{field} is not an RFC 3339 timestamp with an offset: {value!r}")
    text = value
    fraction = shape.group(1)
    if fraction is not None and len(fraction) > 7:
        # Python keeps microseconds; finer digits are cut, never rounded into the next second.
        text = text.replace(fraction, fraction[:7], 1)
    try:
        instant = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{field} is not a real date and time: {value!r}") from None
    return _in_range(instant, value, field)


def instant_text(instant: datetime) -> str:
    """The canonical text of an instant: UTC, RFC 3339, 'Z' suffix (deterministic output, R1)."""
    if instant.tzinfo is None:
        raise ValueError("naive datetimes have no place in the ledger (T1)")
    # isoformat, not strftime: a third of the time, and a four-digit year before 1000 too.
    if instant.tzinfo is UTC:  # as parsed from "Z" or "+00:00": no conversion to make
        return instant.isoformat()[:-6] + "Z"
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def written_as_instant_text(value: str) -> bool:
    """Whether a timestamp `parse_instant` read is already the text `instant_text` writes of
    it: "T" between date and time, "Z" for UTC, and no fraction or six digits of one, not all
    zero. Most producers write that; a consumer then keeps their text instead of formatting
    the instant again (`isoformat` is about 2% of consuming an event, docs/PERFORMANCE.md
    round 14)."""
    # `instant_text` writes no fraction for a whole second.
    return _in_instant_text_shape(value) and value[20:26] != "000000"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name; ValueError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone: {name!r}") from None


def period_of(instant: datetime, timezone_name: str) -> str:
    """The billing period `YYYY-MM` an instant belongs to in the account's time zone (T1):
    the one whose `period_start` is at or before it and whose `period_end` is after it."""
    known = _latest_periods.get(timezone_name)
    if known is not None and known.start <= instant < known.end:
        return known.period
    local = instant.astimezone(zone(timezone_name))
    found = _PeriodBounds.of(f"{local.year:04d}-{local.month:02d}", timezone_name)
    # Only where a zone's clocks went back across midnight on the 1st is a local time of the
    # month before after the period's start: the bounds decide, so periods never go back.
    while instant < found.start:
        found = _PeriodBounds.of(previous_period(found.period), timezone_name)
    while instant >= found.end:
        found = _PeriodBounds.of(next_period(found.period), timezone_name)
    if len(_latest_periods) >= MAX_ZONES_REMEMBERED:
        _latest_periods.clear()
    _latest_periods[timezone_name] = found
    return found.period


class _PeriodBounds(NamedTuple):
    period: str
    start: datetime  # in UTC, so comparing with an instant parsed from "Z" is plain arithmetic
    end: datetime

    @classmethod
    def of(cls, period: str, timezone_name: str) -> "_PeriodBounds":
        start = period_start(period, timezone_name).astimezone(UTC)
        return cls(period, start, period_end(period, timezone_name).astimezone(UTC))


# Each zone's latest period: an account's events come mostly in its current period, so billing
# finds the period with two comparisons instead of a conversion to local time.
MAX_ZONES_REMEMBERED = 1024
_latest_periods: dict[str, _PeriodBounds] = {}


def parse_period(value: object, field: str) -> str:
    """Check a `YYYY-MM` period name and return it."""
    if not isinstance(value, str) or not _PERIOD.match(value):
        raise ValueError(f"{field} must be a period named YYYY-MM, got {value!r}")
    if not FIRST_PERIOD <= value <= LAST_PERIOD:
        raise ValueError(
            f"{field} {value!r} is outside the periods the ledger bills in ({FIRST_PERIOD} to "
            f"{LAST_PERIOD}: those of the years {FIRST_YEAR:04d} to {LAST_YEAR:04d} in any zone)"
        )
    return value


def next_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def previous_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def months_between(earlier: str, later: str) -> int:
    """Whole periods from `earlier` to `later` (2026-01 -> 2027-01 is 12)."""
    return (int(later[:4]) - int(earlier[:4])) * 12 + int(later[5:7]) - int(earlier[5:7])


def period_start(period: str, timezone_name: str) -> datetime:
    """The first instant of a period in the account's time zone.

    Where the clocks jump forward at midnight on the 1st (Asia/Tomsk on 1 April 1984, say),
    midnight never happens: the period starts at the jump, a wall time that exists (01:00).
    As the nonexistent 00:00 it would be the same instant, but by Python's rules (PEP 495)
    equal to no datetime of another zone, not even that instant in UTC."""
    tz = zone(timezone_name)
    return datetime(int(period[:4]), int(period[5:7]), 1, tzinfo=tz).astimezone(UTC).astimezone(tz)


def period_end(period: str, timezone_name: str) -> datetime:
    """The instant the period ends (exclusive): the first instant of the next period."""
    return period_start(next_period(period), timezone_name)


@lru_cache(maxsize=MAX_ZONES_REMEMBERED)
def period_end_text(period: str, timezone_name: str) -> str:
    """`period_end` as `instant_text`: every minutes document of a period shows it, and
    working it out again each time cost a tenth of folding the minutes view."""
    return instant_text(period_end(period, timezone_name))
