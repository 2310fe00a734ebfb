"""SLA policies (with their versions and a what-if of a draft) and business calendars, all sla's."""

from __future__ import annotations

import functools
import re

from services.portal.admin import in_words, number, path_id, refusal, require_id, unchanged_since_opened, words
from services.portal.client import Refused
from services.portal.console import actor
from services.portal.handlers import Portal, UserError
from shared.clock import zone_names

PRIORITIES = ("emergency", "high", "normal", "low")
MINUTES = ("first_response_minutes", "next_response_minutes", "resolution_minutes")
DAYS = (("mon", "Monday"), ("tue", "Tuesday"), ("wed", "Wednesday"), ("thu", "Thursday"),
        ("fri", "Friday"), ("sat", "Saturday"), ("sun", "Sunday"))  # fmt: skip
SHOWN_CHANGES = 100  # changed tickets listed (newest first) by number and subject; older ones are counted


def policies(svc: Portal, session: dict) -> list[dict]:
    return svc.services.get("sla", "/policies", actor(session))["items"]


def policy(svc: Portal, session: dict, priority: str) -> dict:
    """The priority's policy, every version of it (newest first) and the calendars it may count in."""
    who, path = actor(session), f"/policies/{path_id(priority)}"
    return {
        "policy": svc.services.get("sla", path, who),
        "versions": svc.services.get("sla", f"{path}/versions", who)["items"],
        "calendars": calendars(svc, session),
    }


def policy_form(policy: dict) -> dict:
    """A policy as its form's fields show it."""
    form = {name: f"{policy[name]:g}" for name in MINUTES}
    return {
        **form,
        "warn_at_percent": ", ".join(str(p) for p in policy["warn_at_percent"]),
        "calendar": policy["calendar"],
    }


def policy_body(form: dict) -> dict:
    """The draft policy as sla takes it (what does not fit goes as typed: sla says why)."""
    body = {name: number(form.get(name)) for name in MINUTES}
    body["warn_at_percent"] = [number(item) for item in words(form.get("warn_at_percent"))]
    return {**body, "calendar": form.get("calendar", "")}


def put_policy(svc: Portal, session: dict, priority: str, form: dict) -> tuple[dict, bool]:
    """(the policy, whether it changed): sla keeps the version when the terms are the ones it has."""
    path = f"/policies/{path_id(priority)}"
    before = svc.services.get("sla", path, actor(session)).get("version")
    unchanged_since_opened(form, {"version": before}, "policy")
    try:
        saved = svc.services.call("sla", "PUT", path, actor(session), json=policy_body(form))
    except Refused as refused:
        raise refusal(refused) from None
    return saved, saved.get("version") != before


def what_if(svc: Portal, session: dict, priority: str, form: dict) -> dict:
    """What the draft would have done to the last 30 days (sla's answer), its changed tickets by number and subject."""
    try:
        answer = svc.services.post("sla", f"/policies/{path_id(priority)}/what-if", actor(session), policy_body(form))
    except Refused as refused:
        raise refusal(refused) from None
    changed = answer["changed"][::-1]  # newest first: sla lists them oldest first; the latest are what people know
    names = _tickets(svc, session, {change["ticket_id"] for change in changed[:SHOWN_CHANGES]})
    answer["changed"] = [change | {"ticket": names.get(change["ticket_id"])} for change in changed[:SHOWN_CHANGES]]
    answer["not_shown"] = max(0, len(changed) - SHOWN_CHANGES)
    return answer


def _tickets(svc: Portal, session: dict, ticket_ids: set[str]) -> dict[str, dict]:
    """Number and subject of each ticket intake still has (one it no longer shows is left out)."""
    who, found = actor(session), {}
    for ticket_id in sorted(ticket_ids):
        try:
            ticket = svc.services.get("intake", f"/tickets/{path_id(ticket_id)}", who)
        except Refused:
            continue
        found[ticket_id] = {"number": ticket.get("number"), "subject": ticket.get("subject", "")}
    return found


def calendars(svc: Portal, session: dict) -> list[dict]:
    return svc.services.get("sla", "/calendars", actor(session))["items"]


def calendar(svc: Portal, session: dict, calendar_id: str) -> dict:
    return svc.services.get("sla", f"/calendars/{path_id(calendar_id)}", actor(session))


def calendar_form(calendar: dict) -> dict:
    """A calendar as its form's fields show it: one field of periods per day, one of holidays."""
    form = {"calendar_id": calendar.get("id", ""), "timezone": calendar.get("timezone", "")}
    for day, _ in DAYS:
        form[f"hours-{day}"] = ", ".join(f"{start}-{end}" for start, end in calendar.get("hours", {}).get(day, []))
    return {**form, "holidays": "\n".join(calendar.get("holidays", []))}


def _typed_periods(form: dict):
    """Each period typed in the form, in order: (the day's index, the day, the period as sla reads it, whether it
    is a night that goes on into the next day)."""
    for n, (day, _) in enumerate(DAYS):
        for part in (form.get(f"hours-{day}") or "").split(","):
            if part.strip():
                period = _period(part.strip())
                yield n, day, period, _night(part, period)


def _spilled(form: dict) -> dict[str, tuple[str, str]]:
    """The days that begin with the morning of the day before's night (calendar_body puts it first): day -> (the
    day before's name, that morning as sla reads it, "00:00-06:00"), for sla's refusals to name the periods as typed.
    """
    return {
        DAYS[(n + 1) % len(DAYS)][0]: (DAYS[n][1], f"00:00-{period[1]}")
        for n, _, period, night in _typed_periods(form)
        if night and period[1] != "00:00"
    }


def calendar_body(form: dict) -> dict:
    """The calendar as sla takes it: "09:00-13:00, 14:00-18:00" is two periods; an empty day is closed.

    As people type them: "9:00", "9" or "0900" is 09:00; a time zone in other letter case ("europe/madrid") is the
    one it names; a period past midnight written with its minutes ("22:00-06:00" on Monday) is the day's until 24:00
    and the next day's from 00:00, and "18:00-00:00" ends at midnight. "9-5" is not read as a night: it goes to sla
    as 09:00-05:00, which refuses it next to its day."""
    hours: dict[str, list[list[str]]] = {}
    for n, day, period, night in _typed_periods(form):
        if not night:
            hours.setdefault(day, []).append(period)
            continue
        hours.setdefault(day, []).append([period[0], "24:00"])  # the evening; "18:00-00:00" ends there
        if period[1] != "00:00":  # the next morning
            hours.setdefault(DAYS[(n + 1) % len(DAYS)][0], []).insert(0, ["00:00", period[1]])
    holidays = [day.strip() for day in re.split(r"[,;\n]+", form.get("holidays") or "") if day.strip()]  # a line each
    return {"timezone": _zone(form.get("timezone", "").strip()), "hours": hours, "holidays": holidays}


_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_TYPED_WITH_MINUTES = re.compile(r"\s*\d{1,2}:\d{2}\s*[-–]\s*\d{1,2}:\d{2}\s*")


def _night(typed: str, period: list[str]) -> bool:
    """Whether a period typed with its minutes starts in the afternoon or evening and ends before it starts the
    next morning: a night. "10:00-09:00" is rather a slip, for sla to refuse."""
    return (
        len(period) == 2
        and bool(_TYPED_WITH_MINUTES.fullmatch(typed))
        and all(_CLOCK.fullmatch(end) for end in period)
        and period[1] <= "12:00" <= period[0]
        and period[1] < period[0]
    )


def _period(text: str) -> list[str]:
    start, dash, end = text.replace("–", "-").partition("-")
    return [_time(start.strip()), _time(end.strip())] if dash else [text]  # one string: sla says what a period is


def _time(text: str) -> str:
    """ "9", "9:00" or "0900" as sla's "09:00"; anything else as typed, for sla to refuse in its words."""
    found = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?|(\d{2})(\d{2})", text)
    if not found or not text.isascii():
        return text
    hour, minute = int(found.group(1) or found.group(3)), int(found.group(2) or found.group(4) or 0)
    return f"{hour:02d}:{minute:02d}" if hour <= 24 and minute < 60 else text


@functools.cache
def _zones() -> dict[str, str]:
    return {zone.casefold(): zone for zone in zone_names()}  # sla's own rule (the database's places)


def _zone(text: str) -> str:
    """The IANA time zone named in any letter case ("europe/madrid": Europe/Madrid); anything else as typed."""
    return _zones().get(text.casefold(), text)


BUILT_IN = "24x7"  # sla's own calendar, which nobody changes


def put_calendar(svc: Portal, session: dict, form: dict) -> dict:
    """Create or replace a calendar."""
    body = calendar_body(form)
    try:
        calendar_id = require_id(form.get("calendar_id", ""), "calendar_id", "calendar", 64)
    except UserError as exc:  # sla is not asked without an id: its time zone is checked here, to say both at once
        if body["timezone"] not in _zones().values():
            zone = body["timezone"]
            shown = zone[:60] + "…" if isinstance(zone, str) and len(zone) > 60 else zone  # as sla says it
            exc.errors["timezone"] = [in_words(f"Unknown time zone: {shown!r}.")]
        raise
    if not form.get("existing") and calendar_id != BUILT_IN:  # a new one's form: never over another, nor beside
        named = next(  # one of the same id in any letter case, which a policy's list would mix up
            (c["id"] for c in calendars(svc, session) if c["id"].casefold() == calendar_id.casefold()), None
        )
        if named:
            said = f"A calendar {named} exists already: change it on its page, or choose another id."
            raise UserError("This calendar exists already.", {"calendar_id": [said]}, 409)
    if form.get("existing"):  # saved as it is: no new version (sla would make one at every PUT)
        try:
            current = svc.services.get("sla", f"/calendars/{calendar_id}", actor(session))
        except Refused as refused:
            if refused.status != 404:  # not a change by someone else: said as sla says it
                raise refusal(refused) from None
            current = {}  # deleted meanwhile: said as a change, the form kept; saved again, it is made anew
        unchanged_since_opened(form, current, "calendar")
        kept_as = {**body, "holidays": sorted(set(body["holidays"]))}  # sla keeps them sorted, once each
        if current and {name: current.get(name) for name in body} == kept_as:
            return {**current, "unchanged": True}
    try:
        return svc.services.call("sla", "PUT", f"/calendars/{calendar_id}", actor(session), json=body)
    except Refused as refused:
        error = _calendar_refusal(refused, body, _spilled(form))
        if not _CALENDAR_ID.fullmatch(calendar_id):  # sla checks the id after the fields: both said at once
            error.errors.setdefault("calendar_id", [ID_WORDS])
        raise error from None


def delete_calendar(svc: Portal, session: dict, calendar_id: str) -> None:
    """Remove a calendar added by mistake (sla refuses 24x7 and one a policy ever counted in, saying which: 409)."""
    try:
        svc.services.call("sla", "DELETE", f"/calendars/{path_id(calendar_id)}", actor(session))
    except Refused as refused:
        raise refusal(refused) from None


_CALENDAR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # sla's rule for a calendar's id
ID_WORDS = "Use letters, digits, “_”, “.” or “-”, up to 64, starting with a letter or digit."


def _calendar_refusal(refused: Refused, body: dict, spilled: dict[str, tuple[str, str]] | None = None) -> UserError:
    """hours.mon is the Monday field; holidays.2 the third date of the holidays field (named in the message). A day
    that begins with the night before's morning has its periods counted as typed, that morning named as such."""
    names = {f"hours.{day}": f"hours-{day}" for day, _ in DAYS} | {"id": "calendar_id"}
    error = refusal(refused, names, conflict="calendar_id")  # 24x7's refusal: next to the id
    dates = [f"{body['holidays'][int(f.split('.')[1])]}: {' '.join(map(in_words, m))}"
             for f, m in refused.errors.items() if f.startswith("holidays.") and f.split(".")[1].isdigit()]  # fmt: skip
    if dates:
        error.errors["holidays"] = dates
    for day, (before, morning) in (spilled or {}).items():
        if messages := error.errors.get(f"hours-{day}"):
            error.errors[f"hours-{day}"] = [_counted_as_typed(said, before, morning) for said in messages]
    if "id" in refused.errors:
        error.errors["calendar_id"] = [ID_WORDS]
    return error


def _counted_as_typed(said: str, before: str, morning: str) -> str:
    """sla's words about a day whose first period is the night before's morning, as the admin typed the day."""
    found = re.match(r"Period (\d+): ", said)
    if found and found.group(1) == "1":
        return f"The morning of {before}'s night ({morning}): {said[found.end() :]}"
    if found:
        return f"Period {int(found.group(1)) - 1}: {said[found.end() :]}"
    if morning in said:
        return f"{said} ({morning} is the morning of {before}'s night.)"
    return said


def week_grid(hours: dict[str, list[list[str]]]) -> list[dict]:
    """The week as rows of hours, from the first opening to the last closing, each day open, part or closed."""
    spans = {day: [(_minutes(start), _minutes(end)) for start, end in hours.get(day, [])] for day, _ in DAYS}
    every = [span for day_spans in spans.values() for span in day_spans]
    if not every:
        return []
    first, last = min(s for s, _ in every) // 60, -(-max(e for _, e in every) // 60)
    rows = []
    for hour in range(first, last):
        covered = [sum(max(0, min(e, hour * 60 + 60) - max(s, hour * 60)) for s, e in spans[day]) for day, _ in DAYS]
        cells = ["open" if minutes >= 60 else "part" if minutes else "closed" for minutes in covered]
        rows.append({"hour": f"{hour:02d}:00", "cells": cells})
    return rows


def _minutes(text: str) -> int:
    hour, _, minute = text.partition(":")
    return int(hour) * 60 + int(minute or 0)
