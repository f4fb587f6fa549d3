"""Calling windows in the callee's local time and the checks before every dial, with property-based tests: a
contact outside its window, on the DNC list or without the consent its campaign needs is never cleared to dial."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from telephony.dialer.calendar import CallingCalendar, TimeSpan, parse_calendar
from telephony.dialer.policy import CAMPAIGN_KINDS, Blocker, CampaignKind, ContactState, dial_blockers, needs_consent

pytestmark = pytest.mark.unit

SHANGHAI, NEW_YORK, LONDON = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
CAL = parse_calendar(
    {
        "weekdays": {d: ["09:00-12:00", "13:30-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
        | {"sat": ["10:00-16:00"], "sun": []},
        "holidays": ["2026-10-01", "2026-10-02"],
        "workdays": ["2026-09-27"],  # a Sunday worked
    }
)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_windows_are_in_the_callees_local_time() -> None:
    # 2026-12-01 is a Tuesday. 01:30 UTC = 09:30 in Shanghai = 20:30 (Monday) in New York.
    at = utc(2026, 12, 1, 1, 30)
    assert CAL.allows(at, [SHANGHAI])
    assert not CAL.allows(at, [NEW_YORK])
    assert not CAL.allows(utc(2026, 12, 1, 4, 45), [SHANGHAI])  # 12:45, the lunch break
    assert not CAL.allows(utc(2026, 12, 1, 12, 0), [SHANGHAI])  # 20:00 exactly: the end is exclusive
    assert not CAL.allows(at, [])  # no known zone: never


def test_holidays_workdays_and_weekends() -> None:
    assert not CAL.allows(utc(2026, 10, 1, 2, 0), [SHANGHAI])  # National Day, 10:00 local
    assert CAL.allows(utc(2026, 9, 27, 2, 0), [SHANGHAI])  # a worked Sunday uses Monday's hours
    assert not CAL.allows(utc(2026, 12, 6, 2, 0), [SHANGHAI])  # an ordinary Sunday
    assert CAL.allows(utc(2026, 12, 5, 2, 0), [SHANGHAI])  # Saturday 10:00


def test_ambiguous_numbers_are_called_only_when_every_zone_allows() -> None:
    # 14:00 UTC on a Tuesday = 09:00 New York, 14:00 London: both open.
    assert CAL.allows(utc(2026, 12, 1, 14, 0), [NEW_YORK, LONDON])
    # 13:00 UTC = 08:00 New York (closed), 13:00 London (lunch? no: open 13:30) -> closed in both.
    assert not CAL.allows(utc(2026, 12, 1, 13, 0), [NEW_YORK, LONDON])
    assert CAL.next_opening(utc(2026, 12, 1, 13, 0), [NEW_YORK, LONDON]) == utc(2026, 12, 1, 14, 0)


def test_next_opening_skips_nights_weekends_and_holidays() -> None:
    # Friday 2026-09-30 21:00 Shanghai; 10-01 and 10-02 are holidays, 10-03 a Saturday.
    at = datetime(2026, 9, 30, 21, 0, tzinfo=SHANGHAI)
    assert CAL.next_opening(at, [SHANGHAI]) == datetime(2026, 10, 3, 10, 0, tzinfo=SHANGHAI)
    assert CAL.next_opening(at, [SHANGHAI], horizon_days=1) is None
    closed = CallingCalendar(weekly={})
    assert closed.next_opening(at, [SHANGHAI]) is None


def test_daylight_saving_is_followed() -> None:
    # New York leaves DST on 2026-11-01: 09:00 local is 13:00 UTC before and 14:00 UTC after.
    assert CAL.allows(utc(2026, 10, 30, 13, 0), [NEW_YORK])
    assert not CAL.allows(utc(2026, 11, 2, 13, 0), [NEW_YORK])
    assert CAL.next_opening(utc(2026, 11, 2, 13, 0), [NEW_YORK]) == utc(2026, 11, 2, 14, 0)


@pytest.mark.parametrize(
    "config",
    [
        {"weekdays": {"mon": ["9-12"]}},
        {"weekdays": {"mon": ["12:00-09:00"]}},
        {"weekdays": {"mon": ["09:00-12:00", "11:00-13:00"]}},
        {"weekdays": {"funday": []}},
        {"holidays": ["2026-13-01"]},
        {"weekdays": {"mon": "09:00-12:00"}},
        {"nights": []},
    ],
)
def test_bad_calendars_are_rejected(config: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        parse_calendar(config)


def test_blockers_name_every_reason() -> None:
    open_at = utc(2026, 12, 1, 2, 0)  # Tuesday 10:00 Shanghai
    ok = ContactState([SHANGHAI], on_dnc=False, marketing_consent=True, attempts=0)
    assert dial_blockers(ok, open_at, kind="marketing", calendar=CAL, max_attempts=3) == []
    bad = ContactState([SHANGHAI], on_dnc=True, marketing_consent=None, attempts=3, finished=True)
    assert set(dial_blockers(bad, utc(2026, 12, 1, 14, 0), kind="marketing", calendar=CAL, max_attempts=3)) == set(
        Blocker
    )
    unknown = ContactState([SHANGHAI], on_dnc=False, marketing_consent=None, attempts=0)
    assert dial_blockers(unknown, open_at, kind="collection", calendar=CAL, max_attempts=3) == []
    assert dial_blockers(unknown, open_at, kind="survey", calendar=CAL, max_attempts=3) == [Blocker.NO_CONSENT]
    assert [k for k in CAMPAIGN_KINDS if needs_consent(k)] == ["survey", "marketing"]


ZONES = [SHANGHAI, NEW_YORK, LONDON, ZoneInfo("Australia/Perth"), ZoneInfo("America/Los_Angeles")]
SPANS = st.lists(
    st.tuples(st.integers(0, 22), st.integers(1, 6)).map(lambda p: TimeSpan(time(p[0]), time(min(23, p[0] + p[1])))),
    max_size=2,
).map(lambda spans: tuple(sorted(set(spans))))


def _reference_allows(cal: CallingCalendar, at: datetime, zones: list[ZoneInfo]) -> bool:
    """An independent statement of the rule: local weekday/holiday hours in every zone."""
    if not zones:
        return False
    for tz in zones:
        local = at.astimezone(tz)
        day = local.date()
        if day in cal.holidays:
            spans = cal.holiday
        elif day in cal.workdays:
            spans = cal.weekly.get(0, ())
        else:
            spans = cal.weekly.get(local.weekday(), ())
        t = local.time().replace(tzinfo=None)
        if not any(s.start <= t < s.end for s in spans):
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    weekly=st.fixed_dictionaries(dict.fromkeys(range(7), SPANS)),
    holidays=st.frozensets(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=5),
    at=st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
    zones=st.lists(st.sampled_from(ZONES), max_size=3, unique=True),
    on_dnc=st.booleans(),
    consent=st.sampled_from([True, False, None]),
    attempts=st.integers(0, 5),
    kind=st.sampled_from(CAMPAIGN_KINDS),
)
def test_no_contact_is_cleared_outside_its_window_on_dnc_or_without_consent(
    weekly: dict[int, tuple[TimeSpan, ...]],
    holidays: frozenset[date],
    at: datetime,
    zones: list[ZoneInfo],
    on_dnc: bool,
    consent: bool | None,
    attempts: int,
    kind: CampaignKind,
) -> None:
    cal = CallingCalendar(weekly=weekly, holidays=holidays)
    contact = ContactState(zones, on_dnc=on_dnc, marketing_consent=consent, attempts=attempts)
    cleared = dial_blockers(contact, at, kind=kind, calendar=cal, max_attempts=3) == []
    if cleared:
        assert _reference_allows(cal, at, zones)
        assert not on_dnc and attempts < 3
        assert consent is True or kind not in ("marketing", "survey")
    else:
        assert (
            not _reference_allows(cal, at, zones)
            or on_dnc
            or attempts >= 3
            or (consent is not True and kind in ("marketing", "survey"))
        )


@settings(max_examples=150, deadline=None)
@given(
    weekly=st.fixed_dictionaries(dict.fromkeys(range(7), SPANS)),
    at=st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=2, unique=True),
)
def test_next_opening_is_allowed_and_nothing_earlier_is(
    weekly: dict[int, tuple[TimeSpan, ...]], at: datetime, zones: list[ZoneInfo]
) -> None:
    cal = CallingCalendar(weekly=weekly)
    found = cal.next_opening(at, zones, horizon_days=9)
    probe = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = found if found is not None else at + timedelta(days=9)
    while probe < limit:  # every whole minute before the answer is closed
        assert not _reference_allows(cal, probe, zones), probe
        probe += timedelta(minutes=15)
    if found is not None:
        assert found >= at and _reference_allows(cal, found, zones)
