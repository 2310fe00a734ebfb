"""Business time for the sla service: deadlines and elapsed time counted in a calendar's open hours. No I/O.

Periods are local wall-clock hours in the calendar's time zone: the desk is open exactly when its clock
shows an open time, so across a DST change:
- a skipped hour inside a period makes it an hour shorter (00:00-06:00 lasts 5 h on the spring-forward
  day); a start or end inside the skipped hour means the moment the clocks jump (02:30-05:00 runs 03:00-05:00);
- a repeated hour is open on each pass where the clock shows an open time: 00:00-06:00 lasts 7 h on the
  fall-back day, 02:10-02:20 is open twice (20 min), and the gap between 00:00-02:20 and 02:40-06:00 is
  closed twice; 02:30-05:00 opens at the first 02:30, closes at the first 03:00 (the clocks go back to
  02:00), and opens again at the second 02:30;
- a period clear of the change (09:00-17:00 in Europe) lasts as long as any other day.
Holidays are dates in the calendar's zone. Everything works in microseconds on aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.clock import zone_names

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
END_OF_DAY = time(0)  # as a period's end: 24:00, the midnight that ends the day
SEARCH_DAYS = 400  # closed days in a row after which a deadline is refused rather than searched for forever
HORIZON = timedelta(days=20 * 366)  # a deadline further ahead than this is refused too (a few open minutes a week)
_FIELDS = ("timezone", "hours", "holidays")
_MISSING = object()


class InvalidFields(ValueError):
    """Invalid input; `errors` maps field paths ("timezone", "hours.mon", "holidays.0") to messages (a 422)."""

    what = "input"

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(f"invalid {self.what}: {errors}")
        self.errors = errors


class CalendarError(InvalidFields):
    what = "calendar"


@dataclass(frozen=True)
class Calendar:
    """Weekly open hours (mon..sun; a missing day is closed) in a time zone, minus holidays."""

    id: str
    timezone: str
    hours: dict[str, tuple[tuple[time, time], ...]]  # sorted, disjoint; an end of 00:00 is 24:00
    holidays: frozenset[date] = frozenset()
    # what it was before each change, oldest first: (until, the calendar in force before `until`); time before a
    # change counts in the hours then (an admin's new hours or holiday never recount time already counted)
    earlier: tuple[tuple[datetime, Calendar], ...] = ()
    # each local day's open periods in UTC, as computed (a calendar never changes: parsing makes a new one)
    _days: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def always(cls, id: str = "24x7") -> Calendar:
        """Open all day every day in UTC: business time is wall time."""
        return cls(id, "UTC", {day: ((time(0), END_OF_DAY),) for day in DAYS})

    @cached_property
    def always_open(self) -> bool:
        """Open all day every day, with no holidays: business time is wall time, in any time zone
        (across a clock change one day's midnight is the next day's, so the periods still join up)."""
        whole_day = ((time(0), END_OF_DAY),)
        always = not self.holidays and all(self.hours.get(day) == whole_day for day in DAYS)
        return always and all(before.always_open for _, before in self.earlier)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def periods_of(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The UTC (opens, closes) of the day's open time, in order, touching pieces joined."""
        periods = self._days.get(day)
        if periods is None:
            hours = () if day in self.holidays else self.hours.get(DAYS[day.weekday()], ())
            pieces = sorted(piece for a, b in hours for piece in _pieces(day, a, b, self.zone))
            joined: list[tuple[datetime, datetime]] = []
            for opens, closes in pieces:
                if joined and opens <= joined[-1][1]:
                    joined[-1] = (joined[-1][0], max(closes, joined[-1][1]))
                else:
                    joined.append((opens, closes))
            periods = self._days[day] = tuple(joined)
        return periods


# --- parsing ---------------------------------------------------------------------------------------


def parse_calendar(id: str, raw: dict, stored: bool = False) -> Calendar:
    """A Calendar from its JSON form (timezone, weekly hours, holidays); CalendarError listing every problem found.
    `stored`: one saved before (any zone this host can load is read, as it was accepted then: a zone refused since
    would turn its clocks to 24x7, a review's find)."""
    if not isinstance(raw, dict):
        raise CalendarError({"_schema": ["Must be an object."]})
    errors: dict[str, list[str]] = {str(key): ["Unknown field."] for key in raw if key not in _FIELDS}
    timezone = _parse_timezone(raw.get("timezone", _MISSING), errors, stored)
    hours = _parse_hours(raw.get("hours", _MISSING), errors)
    holidays = _parse_holidays(raw.get("holidays", []), errors)
    if hours is not None and not any(k.split(".")[0] == "hours" for k in errors) and not any(hours.values()):
        errors["hours"] = ["The calendar has no open hours."]
    if errors:
        raise CalendarError(errors)
    return Calendar(id, timezone, hours, holidays)


def _parse_timezone(value: object, errors: dict[str, list[str]], stored: bool = False) -> str:
    if value is _MISSING:
        errors["timezone"] = ["Missing data for required field."]
        return ""
    try:
        if not stored and value not in zone_names():
            raise ValueError(value)
        ZoneInfo(value)  # type: ignore[arg-type]
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):  # OSError: "Europe" is a directory
        shown = value[:60] + "…" if isinstance(value, str) and len(value) > 60 else value  # not 10,000 characters
        errors["timezone"] = [f"Unknown time zone: {shown!r}."]
    return value  # type: ignore[return-value]


def _parse_hours(value: object, errors: dict[str, list[str]]) -> dict[str, tuple[tuple[time, time], ...]] | None:
    if value is _MISSING or not isinstance(value, dict):
        errors["hours"] = ["Missing data for required field." if value is _MISSING else "Not a valid mapping."]
        return None
    hours = {}
    for day, periods in value.items():
        day_errors: list[str] = []
        if day not in DAYS:
            day_errors.append("Not a day: use mon, tue, wed, thu, fri, sat or sun.")
        elif (parsed := _parse_periods(periods, day_errors)) and not day_errors:
            hours[day] = parsed
        if day_errors:
            errors[f"hours.{day}"] = day_errors
    return hours


def _parse_periods(value: object, errors: list[str]) -> tuple[tuple[time, time], ...]:
    """[["09:00","13:00"], ...] -> sorted (start, end) times; problems appended to `errors`."""
    if not isinstance(value, list):
        errors.append('Must be a list of ["HH:MM", "HH:MM"] periods.')
        return ()
    minutes: list[tuple[int, int, str]] = []
    for i, period in enumerate(value):
        if not (isinstance(period, list) and len(period) == 2 and all(isinstance(p, str) for p in period)):
            errors.append(f'Period {i}: must be two "HH:MM" strings.')
        elif (start := _clock(period[0])) is None or (end := _clock(period[1])) is None or start == 24 * 60:
            errors.append(f'Period {i}: times must be "HH:MM" from 00:00 to 23:59 (24:00 may end a period).')
        elif start >= end:
            errors.append(f"Period {i}: {period[0]}-{period[1]} must start before it ends (24:00 is midnight).")
        else:
            minutes.append((start, end, "-".join(period)))
    minutes.sort()
    for (_, end, first), (start, _, second) in zip(minutes, minutes[1:], strict=False):
        if start < end:
            errors.append(f"Periods {first} and {second} overlap.")
    return tuple((time(s // 60, s % 60), time(e // 60 % 24, e % 60)) for s, e, _ in minutes)


def _clock(text: str) -> int | None:
    """Minutes since midnight of "HH:MM" (up to "24:00"), or None."""
    digits = text[:2] + text[3:]
    if len(text) != 5 or text[2] != ":" or not (digits.isascii() and digits.isdigit()):  # no "9:00", no "٠٩:٠٠"
        return None
    hour, minute = int(text[:2]), int(text[3:])
    return hour * 60 + minute if minute < 60 and (hour < 24 or (hour, minute) == (24, 0)) else None


def _parse_holidays(value: object, errors: dict[str, list[str]]) -> frozenset[date]:
    if not isinstance(value, list):
        errors["holidays"] = ['Must be a list of "YYYY-MM-DD" dates.']
        return frozenset()
    days = set()
    for i, text in enumerate(value):
        try:
            if not (isinstance(text, str) and len(text) == 10 and text[4] == text[7] == "-"):
                raise ValueError(text)
            days.add(date.fromisoformat(text))
        except ValueError:
            errors[f"holidays.{i}"] = ['Not a valid date: use "YYYY-MM-DD".']
    return frozenset(days)


# --- arithmetic ------------------------------------------------------------------------------------


def add_business_minutes(calendar: Calendar, start: datetime, minutes: float) -> datetime:
    """The moment `minutes` business minutes after `start` (counting from the next opening if closed)."""
    if not 0 < minutes < float("inf"):
        raise ValueError(f"minutes must be a finite number greater than 0, not {minutes!r}")
    remaining, start = timedelta(minutes=minutes), _as_utc(start)
    try:
        if calendar.always_open and remaining <= HORIZON:
            return start + remaining
        for opens, closes in _open_periods(calendar, start):
            if remaining <= closes - opens:
                return opens + remaining
            if opens - start > HORIZON:
                break
            remaining -= closes - opens
    except OverflowError:  # past the year 9999
        pass
    raise ValueError(f"in calendar {calendar.id!r}, {minutes} business minutes end too far ahead or never")


def business_seconds_between(calendar: Calendar, a: datetime, b: datetime) -> float:
    """Business seconds elapsed from `a` to `b` (0 if b <= a)."""
    a, b = _as_utc(a), _as_utc(b)
    if calendar.always_open:
        return max(b - a, timedelta(0)).total_seconds()
    total = timedelta(0)
    for opens, closes in _open_periods(calendar, a, until=b):
        if opens >= b:
            break
        total += min(closes, b) - opens
    return total.total_seconds()


def is_open(calendar: Calendar, moment: datetime) -> bool:
    """Whether `moment` lies inside an open period (a period's end is already closed)."""
    moment = _as_utc(moment)
    return any(opens <= moment for opens, _ in _open_periods(calendar, moment, until=moment))


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"an aware datetime is needed, not the naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _open_periods(
    calendar: Calendar, since: datetime, until: datetime | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """UTC (opens, closes) of the open periods after `since`, in order, the first cut to start at `since`: each in
    the hours of the calendar as it was then (`Calendar.earlier`), cut at its changes.

    Ends after the local day of `until`, or, without `until`, after SEARCH_DAYS closed days in a row.
    """
    start = since
    for change, before in calendar.earlier:
        if change <= start:
            continue
        if until is not None and start > until:
            return
        for opens, closes in _open_periods_of(before, start, change if until is None else min(change, until)):
            if opens >= change:
                break
            yield opens, min(closes, change)
        start = change
    yield from _open_periods_of(calendar, start, until)


def _open_periods_of(
    calendar: Calendar, since: datetime, until: datetime | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """`_open_periods` in the calendar's own hours (its earlier ones aside)."""
    zone = calendar.zone
    day = since.astimezone(zone).date() - timedelta(days=1)  # a clock change at midnight can stretch yesterday's hours
    last_day = until.astimezone(zone).date() if until is not None else date.max
    previous_close, closed_days = since, 0
    while day <= last_day and (until is not None or closed_days <= SEARCH_DAYS):
        closed_days += 1
        for opens, closes in calendar.periods_of(day):
            # max(): a repeated hour can make one period's first pass precede the last one's close
            opens = max(opens, previous_close)
            if closes > opens:
                yield opens, closes
                previous_close, closed_days = closes, 0
        day += timedelta(days=1)


def _pieces(day: date, a: time, b: time, zone: ZoneInfo) -> Iterator[tuple[datetime, datetime]]:
    """The UTC spans in which the local clock shows a time of [a, b) on `day`: one span, or two when the
    UTC offset changes inside it (one change a day at most, as in every zone's rules)."""
    start = datetime.combine(day, a)
    end = datetime.combine(day + timedelta(days=1) if b == END_OF_DAY else day, b)
    before = start.replace(tzinfo=zone, fold=0).utcoffset()  # the offset on the clock at the start's first pass
    after = end.replace(tzinfo=zone, fold=1).utcoffset()  # and at the end's last
    if before == after:
        yield (start - before).replace(tzinfo=UTC), (end - before).replace(tzinfo=UTC)
        return
    change = _clock_change(start - max(before, after) - timedelta(hours=1), end - min(before, after), zone)
    change = change.replace(tzinfo=None)
    for opens, closes in ((start - before, min(end - before, change)), (max(start - after, change), end - after)):
        if closes > opens:
            yield opens.replace(tzinfo=UTC), closes.replace(tzinfo=UTC)


def _clock_change(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The instant the UTC offset changes between two naive UTC moments (a binary search to 1 µs)."""
    new_offset = after.replace(tzinfo=UTC).astimezone(zone).utcoffset()
    step = timedelta(microseconds=1)
    while after - before > step:
        middle = before + (after - before) / 2
        if middle.replace(tzinfo=UTC).astimezone(zone).utcoffset() == new_offset:
            after = middle
        else:
            before = middle
    return after.replace(tzinfo=UTC)
