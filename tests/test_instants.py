"""Instants and billing periods (T1): the shortcuts billing takes give what the long way gives.

`period_of` remembers each zone's latest period and answers from its bounds; `instant_text`
skips the conversion for an instant already in UTC; `parse_instant` cuts digits past the
microsecond from the match it made. Each is held here against the plain computation.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import instants
from ledger.instants import (
    instant_text,
    next_period,
    parse_instant,
    period_end,
    period_end_text,
    period_of,
    period_start,
    previous_period,
    written_as_instant_text,
)

ZONES = sorted(available_timezones() - {"Factory", "localtime"})
INSTANTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


def _local_period(instant: datetime, timezone_name: str) -> str:
    local = instant.astimezone(ZoneInfo(timezone_name))
    return f"{local.year:04d}-{local.month:02d}"


@settings(max_examples=400, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    walk=st.lists(INSTANTS, min_size=1, max_size=12),
    spread=st.lists(st.integers(-3 * 86400, 3 * 86400), min_size=1, max_size=12),
)
def test_T1_a_period_is_the_one_whose_bounds_hold_the_instant_whatever_came_before(
    zone_name: str, walk: list[datetime], spread: list[int]
) -> None:
    # Instants near each other and far apart, so the remembered period is hit and missed.
    seen = walk + [walk[0] + timedelta(seconds=s) for s in spread]
    for instant in seen:
        period = period_of(instant, zone_name)
        assert period_start(period, zone_name) <= instant < period_end(period, zone_name)
        instants._latest_periods.clear()
        assert period_of(instant, zone_name) == period  # remembered or not, the same answer


@settings(max_examples=300, deadline=None)
@given(zone_name=st.sampled_from(ZONES), instant=INSTANTS)
def test_T1_a_period_is_the_calendar_month_of_the_local_time(
    zone_name: str, instant: datetime
) -> None:
    local = _local_period(instant, zone_name)
    period = period_of(instant, zone_name)
    # They differ only inside a fall-back across midnight on a month's first day, where the
    # local time goes back into the month before; the bounds keep periods in order there.
    if period != local:
        assert period == next_period(local)
        assert instant.astimezone(ZoneInfo(zone_name)).day >= 28


def test_T1_months_change_at_local_midnight_in_a_zone_ahead_of_and_one_behind_utc() -> None:
    for zone_name, last_instant in [
        ("Asia/Kolkata", datetime(2026, 11, 30, 18, 29, 59, 999999, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 12, 1, 4, 59, 59, 999999, tzinfo=UTC)),
    ]:
        assert period_of(last_instant, zone_name) == "2026-11"
        assert period_of(last_instant + timedelta(microseconds=1), zone_name) == "2026-12"
        assert period_of(last_instant, zone_name) == "2026-11"  # back again, remembered or not


def test_an_instant_with_an_offset_finds_its_period_as_the_same_instant_in_utc() -> None:
    at = datetime(2026, 12, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))  # 23:30 UTC, Nov 30
    assert period_of(at, "UTC") == "2026-11"
    assert period_of(at.astimezone(UTC), "UTC") == "2026-11"
    assert period_of(at, "Europe/Paris") == "2026-12"


def test_periods_step_back_and_forth_across_years() -> None:
    assert previous_period("2026-01") == "2025-12"
    assert previous_period("2026-03") == "2026-02"
    assert previous_period("2026-12") == "2026-11"
    for period in ["2025-12", "2026-01", "2026-06", "2026-12"]:
        assert previous_period(next_period(period)) == period


def test_the_zones_remembered_are_limited() -> None:
    instants._latest_periods.clear()
    at = datetime(2026, 11, 21, tzinfo=UTC)
    for zone_name in ZONES[: instants.MAX_ZONES_REMEMBERED + 5]:
        assert period_of(at, zone_name) == _local_period(at, zone_name)
    assert len(instants._latest_periods) <= instants.MAX_ZONES_REMEMBERED


@settings(max_examples=300)
@given(instant=INSTANTS, offset_minutes=st.integers(-23 * 60, 23 * 60))
def test_the_text_of_an_instant_is_utc_whatever_its_offset(
    instant: datetime, offset_minutes: int
) -> None:
    expected = instant.replace(tzinfo=None).isoformat() + "Z"
    assert instant_text(instant) == expected
    shifted = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert instant_text(shifted) == expected
    assert parse_instant(expected, "at") == instant


@st.composite
def written_timestamps(draw: st.DrawFn) -> str:
    """Timestamps as producers may write them: either separator, any number of fraction
    digits (all zero too), "Z" in either case or an offset."""
    at = draw(INSTANTS)
    separator = draw(st.sampled_from("Tt "))
    digits = draw(st.integers(min_value=0, max_value=9))
    zeros = draw(st.booleans())
    fraction = ""
    if digits:
        fraction = "." + (
            "0" * digits if zeros else f"{at.microsecond:06d}"[:digits].ljust(digits, "7")
        )
    suffix = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00", "+05:30", "-08:00"]))
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}{separator}"
        f"{at.hour:02d}:{at.minute:02d}:{at.second:02d}{fraction}{suffix}"
    )


@settings(max_examples=500)
@given(written_timestamps())
def test_a_timestamp_is_known_to_be_written_as_the_ledger_writes_it_exactly_when_it_is(
    written: str,
) -> None:
    """The consumer keeps the producer's text of an instant only where it is the ledger's own
    (round 14); every other text is written again."""
    assert written_as_instant_text(written) == (
        instant_text(parse_instant(written, "at")) == written
    )


def _outcome(parse: Callable[[str, str], datetime], text: str) -> tuple[object, str]:
    try:
        instant = parse(text, "at")
    except ValueError as error:
        return None, str(error)
    return (instant, instant.tzinfo), ""


# Characters a canonical text might hold in the wrong place: other digits (Unicode's too, which
# the pattern's \d takes), other separators, the letters of week dates and lower case.
_NEAR = "0123456789" + "-:T.Z" + "zt +,W" + "\u0663\uff15"


@st.composite
def near_canonical_texts(draw: st.DrawFn) -> str:
    """`instant_text`'s shapes (20 and 27 characters), with a few characters changed."""
    at = draw(INSTANTS)
    text = instant_text(at.replace(microsecond=draw(st.sampled_from([0, at.microsecond or 1]))))
    characters = list(text)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        where = draw(st.integers(min_value=0, max_value=len(characters) - 1))
        characters[where] = draw(st.sampled_from(_NEAR))
    return "".join(characters)


@settings(max_examples=1000)
@given(near_canonical_texts())
def test_the_short_way_for_the_ledger_s_own_shape_reads_what_the_pattern_reads(text: str) -> None:
    """`parse_instant` skips the RFC 3339 pattern for texts shaped as `instant_text` writes
    them; it gives the same instant, or the same reason, as the pattern's way."""
    assert _outcome(parse_instant, text) == _outcome(instants._parsed_by_pattern, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-02T09:24:00.1234567Z", datetime(2026, 11, 2, 9, 24, 0, 123456, tzinfo=UTC)),
        ("2026-11-02T09:24:00.999999999z", datetime(2026, 11, 2, 9, 24, 0, 999999, tzinfo=UTC)),
        ("2026-11-02T09:24:00.5+01:00", datetime(2026, 11, 2, 8, 24, 0, 500000, tzinfo=UTC)),
        ("2026-11-02 09:24:00Z", datetime(2026, 11, 2, 9, 24, tzinfo=UTC)),
    ],
)
def test_digits_past_the_microsecond_are_cut_not_rounded(text: str, expected: datetime) -> None:
    assert parse_instant(text, "occurred_at") == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-11-02T09:24:00", "occurred_at has no UTC offset"),
        ("2026-11-02T09:24:00.1234567890Z", "not an RFC 3339 timestamp with an offset"),
        ("2026-02-30T09:24:00Z", "occurred_at is not a real date and time"),
    ],
)
def test_a_timestamp_that_is_not_one_says_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_instant(text, "occurred_at")


def test_a_period_whose_local_midnight_never_happens_starts_when_the_clocks_jump() -> None:
    # Asia/Tomsk went from UTC+7 to UTC+8 at midnight on 1 April 1984: 00:00 never happened.
    start = period_start("1984-04", "Asia/Tomsk")
    assert start.isoformat() == "1984-04-01T01:00:00+08:00"
    assert start == datetime(1984, 3, 31, 17, tzinfo=UTC)
    assert period_end_text("1984-03", "Asia/Tomsk") == "1984-03-31T17:00:00Z"
    assert period_of(datetime(1984, 3, 31, 16, 59, 59, tzinfo=UTC), "Asia/Tomsk") == "1984-03"
    assert period_of(start, "Asia/Tomsk") == "1984-04"


@settings(max_examples=300, deadline=None)
@given(zone_name=st.sampled_from(ZONES), instant=INSTANTS)
def test_a_period_s_end_as_text_is_the_first_instant_of_the_next_period_in_utc(
    zone_name: str, instant: datetime
) -> None:
    period = period_of(instant, zone_name)
    end = period_start(next_period(period), zone_name)
    for _ in range(2):  # worked out, then remembered
        assert period_end_text(period, zone_name) == instant_text(end)
        # In UTC: Python never finds an ambiguous local time (a midnight the clocks go back
        # across, as in Cuba on 1 November 2093) equal to one in another zone.
        assert parse_instant(period_end_text(period, zone_name), "end") == end.astimezone(UTC)
