"""The admin pages' use cases. Each calls a service's API with the signed-in admin's own token, so every
rule (and every field error) is the service's, which refuses what breaks it; these modules turn a form into a
request body, as the API takes it, and a refusal into a `UserError` whose field errors carry the form's names.

A few of assignment's rules are said before asking, from copies (a service never imports another's modules):
which team a topic goes to (domain.topic_routes), the teams an agent leads (domain.led_teams), the agent an
address belongs to (people.email_of_nobody_else). tests/unit/test_portal_copies_of_rules.py holds each copy to
assignment's rule, and assignment still decides.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

from services.portal.client import Refused, path_id  # noqa: F401 - path_id: the admin modules take it from here
from services.portal.handlers import UserError

SEPARATORS = re.compile(r"[,\s]+")

# What each admin edit form changes: its `seen` field holds a digest of them as the page read them, and a save
# finds them as they were or changes nothing (another tab, another admin, saved between).
EDITED = {
    "agent": ("name", "email", "teams", "capacity", "available", "lead_of"),
    "team": ("name", "topics"),
    "calendar": ("timezone", "hours", "holidays"),
    "policy": ("version",),  # every change of its terms is a new version
}


def edit_stamp(found: dict | None, kind: str) -> str:
    """The digest of what the `kind` form edits, as `found` has it (the forms' hidden `seen`)."""
    picked = {name: (found or {}).get(name) for name in EDITED[kind]}
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()[:20]


FIELD_WORDS = {"name": "Name", "email": "Email", "teams": "Teams", "capacity": "Capacity",
               "available": "Available", "lead_of": "Leads", "topics": "Topics"}  # fmt: skip


def unchanged_since_opened(form: dict, found: dict | None, kind: str, mine: dict | None = None) -> None:
    """409, nothing saved, when what the form edits changed since its page was read (a form without `seen`, as
    an old page's, is not checked). The form loses its `seen`: drawn again, it carries the new one, so that saving
    the same words again replaces what the other saved. Read, then write: two saves in the same instant both
    pass (the services take no version with a change); it catches a tab left open, which is what loses work.

    `mine`: the form's values as the service takes them; the message names each field where what is saved now
    differs from them (saved, and yours), so that saving again does not undo a change nobody saw."""
    seen = form.get("seen") or ""
    if seen and seen != edit_stamp(found, kind):
        form.pop("seen", None)
        differ = _differences(found or {}, mine or {})
        said = f" Saved now, and different from yours: {differ}." if differ else ""
        raise UserError(
            f"Someone changed this {kind} since you opened it. Your changes are below and not saved.{said} Save "
            "them to replace theirs, or open the page again to see theirs.",
            {},
            409,
        )


def _differences(saved: dict, mine: dict) -> str:
    said = []
    for name, value in mine.items():
        if name in FIELD_WORDS and name in saved and _shown(saved[name]) != _shown(value):
            said.append(f"{FIELD_WORDS[name]} {_shown(saved[name])} (yours: {_shown(value)})")
    return "; ".join(said)


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(sorted(str(item) for item in value)) or "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value) if value is not None else "none"
    return text if len(text) <= 80 else text[:80] + "…"


def refusal(refused: Refused, names: dict[str, str] | None = None, conflict: str | None = None) -> UserError:
    """A service's refusal with its field errors under the form's field names (`teams.0` counts as `teams`), in
    words for a person (the services word theirs for API clients: "Not a valid integer."). `conflict`: the field
    a 409 is about when the service names none (an id taken: "An agent omar exists already.")."""
    names = names or {}
    errors: dict[str, list[str]] = {}
    if conflict and refused.status == 409 and not refused.errors:
        return UserError(refused.detail or refused.title, {conflict: [refused.detail or refused.title]}, 409)
    for field, messages in refused.errors.items():
        name = names.get(field) or names.get(field.split(".")[0]) or field.split(".")[0]
        said = messages if isinstance(messages, list) else [str(messages)]
        errors.setdefault(name, []).extend(in_words(str(message)) for message in said)
    for words_said in errors.values():  # an empty field breaks two rules: "Write 1 to 200 characters." says it
        if any(word.startswith("Write 1 to ") for word in words_said):
            words_said[:] = [word for word in words_said if word != "Must not be blank."]
        words_said[:] = list(dict.fromkeys(words_said))  # and a message said twice (two items of a list) once
    return UserError(refused.detail or refused.title, errors, refused.status)


PLAIN_WORDS = (  # the validation library's words -> a person's
    (
        re.compile(r"^(Must point to a public address: .*) \(TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS admits [^)]*\)\.$"),
        lambda m: (
            f"{m.group(1)}. Webhooks go to addresses outside your network; one inside it works once whoever "
            "runs the help desk allows its network (the setting TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS)."
        ),
    ),
    (re.compile(r"^Not a valid integer\.$"), lambda m: "Enter a whole number, like 10."),
    (re.compile(r"^Not a valid number\.$"), lambda m: "Enter a number, like 60."),
    (re.compile(r"^Shorter than minimum length 1\.$"), lambda m: "Choose at least one."),
    (re.compile(r"^Missing data for required field\.$"), lambda m: "This is needed."),
    (re.compile(r"^Field may not be null\.$"), lambda m: "This is needed."),
    (re.compile(r"^Not a valid email address\.$"), lambda m: "Enter an email address like jane@example.com."),
    (
        re.compile(r"^Length must be between 1 and (\d+)\.(?: Must not be blank\.)?$"),
        lambda m: f"Write 1 to {m.group(1)} characters.",
    ),
    (
        re.compile(r"^Must be greater than or equal to (\d+) and less than or equal to (\d+)\.$"),
        lambda m: f"Enter a whole number from {m.group(1)} to {m.group(2)}.",
    ),
    (
        re.compile(r"^Must be a finite number greater than 0 and at most (\d+)\.$"),
        lambda m: f"Enter a number of minutes above 0, like 60 (at most {int(m.group(1)) // 1440} days).",
    ),
    (
        re.compile(r'^Not a valid date: use "YYYY-MM-DD"\.?$'),
        lambda m: "Not a day of the calendar: use YYYY-MM-DD, like 2026-12-25.",
    ),
    (
        re.compile(r'^Period (\d+): must be two "HH:MM" strings\.$'),
        lambda m: (
            f"Period {int(m.group(1)) + 1}: write a start and an end, like 09:00-17:00 (periods apart by commas)."
        ),
    ),
    (
        re.compile(r'^Period (\d+): times must be "HH:MM" from 00:00 to 23:59 \(24:00 may end a period\)\.$'),
        lambda m: (
            f"Period {int(m.group(1)) + 1}: write times like 09:00 or 9:30, from 00:00 to 24:00, and the periods "
            "of a day apart by commas, like 09:00-13:00, 14:00-18:00."
        ),
    ),
    (
        re.compile(r"^Period (\d+): (\S+) must start before it ends \(24:00 is midnight\)\.$"),
        lambda m: (
            f"Period {int(m.group(1)) + 1}: {m.group(2)} ends when it starts: give it some time, like 09:00-17:00."
            if len(set(m.group(2).split("-"))) == 1
            else f"Period {int(m.group(1)) + 1}: {m.group(2)} ends before it starts. Write the afternoon as 17:00, "
            "or a night with its minutes, like 22:00-06:00."
        ),
    ),
    (re.compile(r"^Unknown time zone: ''\.$"), lambda m: "Enter a time zone, like Europe/Madrid or America/New_York."),
    (re.compile(r"^(Item|Period) (\d+): "), lambda m: f"{m.group(1)} {int(m.group(2)) + 1}: "),  # counted from 1
)


def in_words(message: str) -> str:
    for pattern, words_for in PLAIN_WORDS:
        if found := pattern.search(message):
            return message[: found.start()] + words_for(found) + message[found.end() :]
    return message


DECIMAL = re.compile(r"-?(?P<whole>[0-9]+)?(?:\.(?P<part>[0-9]+))?")  # ASCII digits: no 1e3, no ٣٠٠, no 1_000


def number(text: str | None) -> int | float | str:
    """A number typed in a form, as JSON carries it: digits with at most one decimal point (Python's int() and
    float() would also read "1e3", "٣٠٠", "1_000" and "nan"); anything else as typed, for the service to refuse."""
    text = (text or "").strip()
    found = DECIMAL.fullmatch(text)
    if not found or not (found["whole"] or found["part"]):
        return text
    try:
        value = float(text) if found["part"] is not None else int(text)
        return value if math.isfinite(value) else text
    except (ValueError, OverflowError):  # more digits than int() reads (4,300), or than a float holds
        return text


def words(text: str | None) -> list[str]:
    """Items typed in one field, separated by commas, spaces or new lines."""
    return [item for item in SEPARATORS.split(text or "") if item]


def require_id(text: str, field: str, what: str, longest: int) -> str:
    """The id for a path; a field error when there is none (a service cannot be asked about an empty one), or when
    it is longer than `longest`, the service's own bound (a path of thousands is refused before it is read)."""
    if not text.strip():
        raise UserError(f"Enter the {what}'s id.", {field: [f"Enter the {what}'s id."]})
    if len(text.strip()) > longest:
        said = f"A {what}'s id has at most {longest} characters; this one has {len(text.strip()):,}."
        raise UserError(said, {field: [said]})
    # what no service's id can be, and no path can carry as one part: said here (the service would never see it)
    if "/" in text or text.strip() in (".", ".."):
        said = f"A {what}'s id cannot hold “/”, or be “.” or “..”."
        raise UserError(said, {field: [said]})
    return path_id(text)
