"""The period a report covers (the last 7, 30 or 90 days, or from one date to another) and its weeks. Pure.

Days are UTC days. The last N days run from the start of the day N-1 days ago up to now (no end is sent to
sla); two dates run from the start of the first to the end of the last (sla's `until` is the next midnight).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from shared.events import format_time

PRESETS = {"7": "the last 7 days", "30": "the last 30 days", "90": "the last 90 days"}
DEFAULT = "30"
MAX_DAYS = 366  # one call to sla's /stats per week: at most 53 of them
CLOCK_CHOICES = {"": "All clocks", "first_response": "First response", "next_response": "Next response",
                 "resolution": "Resolution"}  # fmt: skip
FORM_LABELS = {"period": "Period", "from": "First day", "to": "Last day", "clock": "Weekly compliance of"}


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime | None  # None: up to now
    label: str

    def query(self) -> dict[str, str]:
        """since (and until) as sla's /stats and /breaches take them."""
        return {"since": format_time(self.since), **({"until": format_time(self.until)} if self.until else {})}

    def weeks(self, now: datetime) -> list[tuple[datetime, datetime | None]]:
        """Seven-day windows from `since` on; the last one ends at `until` (or is open, up to now)."""
        end = self.until or now
        starts = []
        at = self.since
        while at < end or not starts:
            starts.append(at)
            at += timedelta(days=7)
        ends: list[datetime | None] = [*starts[1:], self.until]
        return list(zip(starts, ends, strict=True))


def parse(args, now: datetime) -> tuple[Period | None, dict, dict[str, list[str]]]:
    """(the period, or None when the form has errors; the form as typed; errors per field)."""
    form = {name: (args.get(name) or "").strip() for name in ("period", "from", "to", "clock")}
    if form["period"] not in (*PRESETS, "dates"):  # a link with dates alone means those dates
        form["period"] = "dates" if form["from"] or form["to"] else DEFAULT
    form["clock"] = form["clock"] if form["clock"] in CLOCK_CHOICES else ""
    today = now.astimezone(UTC).date()
    if form["period"] in PRESETS:
        days = int(form["period"])
        return Period(_midnight(today - timedelta(days=days - 1)), None, PRESETS[form["period"]]), form, {}
    if form["from"] and not form["to"]:  # no last day: up to today, shown in its field
        form["to"] = today.isoformat()
    first, last = _date(form["from"]), _date(form["to"])
    errors = _date_problems(first, last, today)
    if not form["from"]:
        errors["from"] = ["Enter the first day."]
        if not form["to"]:
            errors.pop("to", None)  # an empty last day means today: only the first day is missing
    if errors:
        return None, form, errors
    label = f"{_day(first)} to {_day(last)}"
    return Period(_midnight(first), _midnight(last + timedelta(days=1)), label), form, {}


def _day(day: date) -> str:
    """ "1 Nov 2026"; the year in four digits always ("1 Jan 0001", where strftime's %Y would write "1")."""
    return f"{day.day} {day:%b} {day.year:04d}"


def _date_problems(first: date | None, last: date | None, today: date) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if first is None:
        errors["from"] = ["Enter the first day as a date (year, month, day: 2026-11-01)."]
    elif first > today:
        errors["from"] = ["The first day cannot be in the future."]
    if last is None:
        errors["to"] = ["Enter the last day as a date (year, month, day: 2026-11-30)."]
    elif first is not None and first <= today and last < first:  # a first day in the future is said alone
        errors["to"] = ["The last day must be the same as or after the first day."]
    elif first is not None and (last - first).days >= MAX_DAYS:
        errors["to"] = [f"Choose at most {MAX_DAYS} days."]
    return errors


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
