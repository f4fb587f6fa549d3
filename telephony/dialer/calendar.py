"""Calling windows in the callee's local time: weekly hours, public holidays and worked weekend days.

A :class:`CallingCalendar` says when a campaign may *start* a call: ``allows(at, zones)`` is true only when ``at``
falls inside a window in **every** candidate time zone of the callee (a number whose zone is ambiguous, such as a
US mobile number with several zones, is called only when it is allowed everywhere it could be).
``next_opening`` finds the earliest such instant. Times are timezone-aware; windows are local wall-clock times
with the end exclusive, so ``09:00-12:00`` allows 09:00:00 up to 11:59:59.999. Pure; any thread.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import ConfigError

__all__ = ["WEEKDAYS", "CallingCalendar", "TimeSpan", "parse_calendar", "zone"]

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Config keys of the weekdays, Monday first (``date.weekday()`` order)."""
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_HORIZON_DAYS: Final = 400


@dataclass(frozen=True, order=True)
class TimeSpan:
    """Local wall-clock hours ``[start, end)`` of one day; ``start < end`` (no span crosses midnight)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ConfigError(f"a calling window must end after it starts: {self}")

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises :class:`ConfigError` for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone: {name!r}") from exc


@dataclass(frozen=True)
class CallingCalendar:
    """When calls may start, in the callee's local time."""

    weekly: Mapping[int, tuple[TimeSpan, ...]]
    """Windows per weekday (0 = Monday); a missing day has none."""
    holidays: frozenset[date] = frozenset()
    """Public holidays: the ``holiday`` windows apply instead of the weekday's."""
    holiday: tuple[TimeSpan, ...] = ()
    """Windows on a holiday (none by default: no calls)."""
    workdays: frozenset[date] = frozenset()
    """Weekend days worked in place of a holiday (调休): Monday's windows apply."""

    def spans_on(self, day: date) -> tuple[TimeSpan, ...]:
        """The windows of a local calendar day."""
        if day in self.holidays:
            return self.holiday
        if day in self.workdays:
            return tuple(self.weekly.get(0, ()))
        return tuple(self.weekly.get(day.weekday(), ()))

    def allows_in(self, at: datetime, tz: ZoneInfo) -> bool:
        """Whether ``at`` (aware) is inside a window of its local day in ``tz``."""
        local = _aware(at).astimezone(tz)
        clock = local.time().replace(tzinfo=None)
        return any(s.start <= clock < s.end for s in self.spans_on(local.date()))

    def allows(self, at: datetime, zones: Sequence[ZoneInfo]) -> bool:
        """Whether a call may start at ``at`` for a callee who may be in any of ``zones`` (all must allow)."""
        return bool(zones) and all(self.allows_in(at, tz) for tz in zones)

    def next_opening(
        self, at: datetime, zones: Sequence[ZoneInfo], *, horizon_days: int = _HORIZON_DAYS
    ) -> datetime | None:
        """The earliest instant ``≥ at`` at which :meth:`allows` holds, or ``None`` within ``horizon_days``.

        The allowed set is an intersection of windows, so its earliest point is ``at`` itself or the start of
        some window in one of the zones; those candidates are tried in time order."""
        at = _aware(at)
        if self.allows(at, zones):
            return at
        if not zones:
            return None
        until = at + timedelta(days=horizon_days)
        candidates = sorted({c for tz in zones for c in self._starts(at, until, tz)})
        return next((c for c in candidates if self.allows(c, zones)), None)

    def _starts(self, at: datetime, until: datetime, tz: ZoneInfo) -> list[datetime]:
        day = at.astimezone(tz).date()
        last = until.astimezone(tz).date()
        out: list[datetime] = []
        while day <= last:
            for span in self.spans_on(day):
                start = datetime.combine(day, span.start, tzinfo=tz).astimezone(UTC)
                if at < start <= until:
                    out.append(start)
            day += timedelta(days=1)
        return out


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("calling windows need a timezone-aware datetime")
    return at


def _span(text: str) -> TimeSpan:
    m = _SPAN.match(text)
    if m is None:
        raise ConfigError(f"a calling window is HH:MM-HH:MM, not {text!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h2 == 24 and m2 == 0:
        h2, m2 = 23, 59  # "-24:00": to the end of the day (the last minute is dropped, never a problem)
    try:
        return TimeSpan(time(h1, m1), time(h2, m2))
    except ValueError as exc:
        raise ConfigError(f"not a time of day in {text!r}") from exc


def _dates(values: Sequence[object], key: str) -> frozenset[date]:
    out: set[date] = set()
    for v in values:
        if isinstance(v, date):
            out.add(v)
            continue
        try:
            out.add(date.fromisoformat(str(v)))
        except ValueError as exc:
            raise ConfigError(f"{key}: {v!r} is not a date YYYY-MM-DD") from exc
    return frozenset(out)


def parse_calendar(config: Mapping[str, object]) -> CallingCalendar:
    """A calendar from its YAML form::

        weekdays: {mon: ["09:00-12:00", "13:30-20:00"], …, sat: ["10:00-18:00"], sun: []}
        holidays: ["2026-10-01", …]
        holiday_windows: []          # optional
        workdays: ["2026-09-28"]     # optional: weekend days worked

    Raises :class:`ConfigError` naming the bad key."""
    unknown = set(config) - {"weekdays", "holidays", "holiday_windows", "workdays"}
    if unknown:
        raise ConfigError(f"unknown calendar keys: {sorted(unknown)}")
    days = config.get("weekdays") or {}
    if not isinstance(days, Mapping):
        raise ConfigError("calendar weekdays must map mon…sun to lists of HH:MM-HH:MM")
    bad_days = set(days) - set(WEEKDAYS)
    if bad_days:
        raise ConfigError(f"unknown weekdays: {sorted(bad_days)}")
    weekly: dict[int, tuple[TimeSpan, ...]] = {}
    for index, name in enumerate(WEEKDAYS):
        spans = sorted(_span(str(s)) for s in _list(days.get(name), f"weekdays.{name}"))
        for a, b in itertools.pairwise(spans):
            if b.start < a.end:
                raise ConfigError(f"weekdays.{name}: windows {a} and {b} overlap")
        weekly[index] = tuple(spans)
    return CallingCalendar(
        weekly=weekly,
        holidays=_dates(_list(config.get("holidays"), "holidays"), "holidays"),
        holiday=tuple(sorted(_span(str(s)) for s in _list(config.get("holiday_windows"), "holiday_windows"))),
        workdays=_dates(_list(config.get("workdays"), "workdays"), "workdays"),
    )


def _list(value: object, key: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list")
    return value
