"""Emails from the templates in ./templates: one .txt and one .html per (event type, audience).

`render(event_type, audience, context)` takes this context (a missing key is an error, never a blank):

    {"ticket": {"id": str, "number": int, "subject": str, "priority": str,
                "requester": {"name": str, "email": str},
                "agent": {"id": str, "name": str, "email": str} | None,
                "team": str | None, "team_name": str | None},  # its name, or its id before events named it
     "event": {"type": str, "occurred_at": datetime,
               "data": dict},        # the event's data as shared.events.load_data gives it (datetimes parsed)
     "recipient": {"name": str | None, "email": str},
     "link": str,                    # requester emails only: `requester_link(...)`, the ticket's page in the portal
     "closes_in": str,               # requester emails only: `period_words(auto_close_hours)`, a resolved one's time
     "console_link": str}            # agent and lead emails only: `console_link(...)`, the ticket in the console

The subject is `[#<number>] <ticket subject>` so that a mail client threads a ticket's emails; an SLA alert's
says what it is first (`[#100042] First response due soon: ...`, `... target missed: ...`), to stand out in an inbox.
`render` adds `time_zone` (the desk's, TICKETFLOW_TIME_ZONE) for the filter `when`.
Filters for the templates: `when(zone)` (a datetime as 27 Nov 2026, 10:30 CET in that zone), `who` (a `by_name`
mid-sentence: "the help desk" for an admin who is no agent), `percent` (80.0 -> 80%), `ahead(since)` (a deadline
as the time left from `since`: "1 hour 12 minutes"),
`words` (first_response -> first response), `follows_up` (a description -> the closed ticket's number it follows),
`unlinked` (words without their web addresses: a receipt's copy of what was sent).

Every requester template shows `link` (StrictUndefined: a requester email without one fails to render);
agent and lead templates never do, since a link acts as the requester. They show `console_link` instead: the
ticket's page in the agents' console, which asks them to sign in (it grants nothing by itself).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from services.notify.domain import AWAY_COVER, EMAIL_AUDIENCES, UNHEARD, Message
from shared.clock import written
from shared.config import Settings
from shared.events import DESK_NAME, parse_time
from shared.links import link_url, mint_link_token
from shared.redact import link_parts

TEMPLATES = Path(__file__).parent / "templates"
# Control characters and Unicode line/paragraph separators would break or inject header lines.
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def known(event_type: str, audience: str) -> bool:
    """Whether an email exists for this event type and audience (a lead's of AWAY_COVER: while the agent is away;
    the desk's of UNHEARD: when nobody else hears of it)."""
    return (
        audience in EMAIL_AUDIENCES.get(event_type, ())
        or (audience == "lead" and event_type in AWAY_COVER)
        or (audience == "desk" and event_type in UNHEARD)
    )


def render(event_type: str, audience: str, context: dict, time_zone: str = "UTC") -> Message:
    """The email for one audience of one event, its times in `time_zone`; ValueError for a pair that has no email."""
    if not known(event_type, audience):
        raise ValueError(f"no email for {event_type!r} to {audience!r}")
    env = _environment()
    name, context = f"{event_type}.{audience}", {**context, "time_zone": time_zone}
    if audience == "requester":  # words from the form or a From, mailed to an address nobody proved: no links
        context["ticket"] = {**context["ticket"], "subject": _unlinked(context["ticket"]["subject"])}
        recipient = context.get("recipient") or {}
        context["recipient"] = {**recipient, "name": _unlinked(recipient["name"]) if recipient.get("name") else None}
    return Message(
        subject=subject_line(context["ticket"]["number"], context["ticket"]["subject"], _alert(event_type, context)),
        text=env.get_template(f"{name}.txt").render(context),
        html=env.get_template(f"{name}.html").render(context),
    )


def greeted(recipient: dict) -> dict:
    """The recipient as an email's greeting names it: without a name that is only their address's part before the
    @ and no word ("hank.t63", "it-support2": mail in names a requester whose mail gave no name so, and "Hello
    hank.t63," reads as a machine's; "Hello," not). "Ana" at ana@example.com is a name: kept."""
    name, local = (recipient.get("name") or "").strip(), (recipient.get("email") or "").rpartition("@")[0]
    machine = name.casefold() == local.casefold() and not name.isalpha()
    return {**recipient, "name": None} if name and machine else recipient


def requester_link(settings: Settings, ticket_id: str, email: str) -> str:
    """The portal page of `ticket_id` for `email`, under a token minted for this email alone: the newest
    email's link then works for the full TICKETFLOW_LINK_DAYS, whenever the ticket began."""
    token = mint_link_token(settings.require_secret(), ticket_id, email, settings.link_days)
    return link_url(settings.portal_url, token)


def console_link(settings: Settings, ticket_id: str) -> str:
    """The ticket's page in the portal's console: for agents and leads, behind their own sign-in."""
    return f"{settings.portal_url.rstrip('/')}/console/tickets/{quote(ticket_id, safe='')}"


def subject_line(number: int, subject: str, alert: str = "") -> str:
    """`[#100042] VPN drops every hour`, with control characters replaced by spaces; an `alert` before the subject
    (`[#100042] First response due soon: VPN drops every hour`)."""
    return f"[#{number}] {alert + ': ' if alert else ''}{_UNSAFE_IN_HEADER.sub(' ', subject)}"


_ALERTS = {"sla.warning": "{clock} due soon", "sla.breached": "{clock} target missed"}


def _alert(event_type: str, context: dict) -> str:
    """What an SLA alert's subject says first ("" for every other email)."""
    found = _ALERTS.get(event_type)
    if found is None:
        return ""
    return found.format(clock=_words(context["event"]["data"]["clock"]).capitalize())


def format_time(value: datetime | str, time_zone: str = "UTC") -> str:
    """27 Nov 2026, 10:30 CET (shared.clock.written); a string is taken as RFC 3339."""
    return written(parse_time(value) if isinstance(value, str) else value, time_zone)


def _who(by_name: str) -> str:
    """Who acted, as the middle of a sentence says it: "the help desk" for an admin who is no agent."""
    return "the help desk" if by_name == DESK_NAME else by_name


def _percent(value: float) -> str:
    return f"{value:.0f}%"


def _words(value: str) -> str:
    return value.replace("_", " ")


def _ahead(due_at: datetime | str, since: datetime | str) -> str:
    """How long from `since` (an alert's moment) to `due_at`, in words: "48 minutes", "2 hours 5 minutes",
    "3 days 4 hours" (the largest unit and the next, the rest left out); "less than a minute" when no more is left."""
    due_at, since = (parse_time(value) if isinstance(value, str) else value for value in (due_at, since))
    minutes = int((due_at - since).total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    parts = [(minutes // 1440, "day"), (minutes % 1440 // 60, "hour"), (minutes % 60, "minute")]
    first = next(i for i, (n, _) in enumerate(parts) if n)  # the largest unit, then the next one unless it is 0
    return " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts[first : first + 2] if n)


def period_words(hours: float) -> str:
    """A setting's hours as a requester reads them: "3 days", "36 hours", "1 hour", "5 minutes"."""
    minutes = round(hours * 60)
    if minutes >= 48 * 60 and minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} days"
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes // 60} hour{'s' if minutes != 60 else ''}"
    if minutes >= 120:
        return f"about {round(minutes / 60)} hours"
    return f"{max(minutes, 1)} minute{'s' if max(minutes, 1) != 1 else ''}"


# how intake begins a follow-up's description (a mail answering a closed ticket): services/intake/domain.py
_FOLLOWS_UP = re.compile(r"\(Follows up ticket #(\d+), which was closed\.\)")


def _files_came(data: dict, what: str) -> str | None:
    """The files a message or reply came with, in a sentence ("A file came with this reply: a.pdf."); "" when its
    words are only those names ("Sent a file: a.pdf", files sent alone); None when no file came. The event names
    them (`files`); they are on the ticket's page, never in the email."""
    names = data.get("files") or []
    if not names:
        return None
    alone = _FILES_ALONE.fullmatch(data.get("body") or "")
    if alone and alone.group(1).startswith(", ".join(names)):
        return ""
    if len(names) == 1:
        return f"A file came with this {what}: {names[0]}."
    return f"{len(names)} files came with this {what}: {', '.join(names)}."


_FILES_ALONE = re.compile(r"Sent (?:a file|\d+ files): (.*)", re.DOTALL)  # shared.schemas.files_sent's words


def _follows_up(description: str) -> str | None:
    """The number of the closed ticket a new ticket follows up (its receipt says why a new ticket), or None."""
    found = _FOLLOWS_UP.match(description or "")
    return found.group(1) if found else None


def _linked(text: str | None) -> Markup:
    """Someone's words for an HTML email: escaped, each web address in them a link (as the portal's pages show
    them; the plain-text part keeps them as they are, which mail programs link themselves)."""
    link = Markup('<a href="{0}" style="color: #0052cc;">{0}</a>')
    return Markup("").join(link.format(piece) if is_link else piece for piece, is_link in link_parts(text or ""))


# a web address as mail programs make one a link: with its scheme, from "www.", a host and a path, or a host alone
# ("evil-login.com": Gmail and Outlook link those too) whose last part is a country's or a common one, not a file's
# extension ("report.pdf", "run.py"); never an email address's host. Punctuation after it stays the sentence's.
_ADDRESS_LIKE = re.compile(
    r"(?<![@\w.-])(?:(?:(?:https?|ftp)://|www\.)\S+|(?:[a-z0-9-]+\.)+[a-z]{2,24}/\S*"
    r"|(?:[a-z0-9-]+\.)+(?P<last>[a-z]{2,24})\b(?![@.\w-]))",
    re.IGNORECASE,
)
_TRAILING = re.compile(r"[.,;:!?)\]'\"]+$")
_COMMON_ENDINGS = frozenset(
    "com net org info biz io co app dev ai me tv cc xyz top site online shop store club link live tech cloud email "
    "click page pro name mobi asia edu gov int icu vip win bid loan work fun space website today news blog media "
    "digital agency services support help login host ltd inc group world center network systems solutions".split()
)
_FILE_EXTENSIONS = frozenset(
    "pdf doc docx xls xlsx xlsm ppt pptx txt csv log png jpg jpeg gif bmp tif tiff heic webp svg zip rar gz tgz exe "
    "msi dmg pkg eml msg ics vcf html htm xml json yml yaml ini cfg conf md rtf odt ods odp mp3 mp4 mov avi wav mkv "
    "iso py js ts java bat ps ps1 sh dll sys tmp bak dat old".split()
)
ADDRESS_HIDDEN = "[web address hidden]"


def _unlinked(text: str | None) -> str:
    """Words the help desk mails to an address nobody has proven (what was sent in a requester's name: a receipt's
    copy of it, the subject, the name it greets) without their web addresses: else anyone could have the desk mail
    their link to any address, signed as the desk (a security review's find). The request itself keeps them."""

    def hidden(found: re.Match) -> str:
        last = (found.group("last") or "").lower()
        if last and (last in _FILE_EXTENSIONS or (len(last) > 2 and last not in _COMMON_ENDINGS)):
            return found.group(0)
        trailing = _TRAILING.search(found.group(0))
        return ADDRESS_HIDDEN + (trailing.group(0) if trailing else "")

    return _ADDRESS_LIKE.sub(hidden, text or "")


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,  # so that {% if %} lines leave no blank lines behind in the text emails
        lstrip_blocks=True,
        auto_reload=False,  # the templates ship with the code: no stat of two files per email
    )
    env.filters.update(when=format_time, who=_who, percent=_percent, words=_words, follows_up=_follows_up,
                       files_came=_files_came, linked=_linked, ahead=_ahead, unlinked=_unlinked)  # fmt: skip
    return env
