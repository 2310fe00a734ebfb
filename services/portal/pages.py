"""The portal's web plumbing for pages: the session cookie, CSRF tokens, security headers, error pages.

The browser holds only an opaque session cookie; the session lives in the portal's database.
Every state-changing request of a page carries a CSRF token (a form field or the X-CSRF-Token header
htmx sends): the session's own, or, before there is a session, one tied to a random cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache, wraps
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Flask, Request, Response, current_app, g, redirect, render_template, request, url_for
from markupsafe import Markup
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import HTTPException

from services.portal import attachments, devices, domain, handlers
from services.portal.admin import edit_stamp
from services.portal.client import Refused, Unreachable
from shared import mongo
from shared.clock import now
from shared.events import parse_time
from shared.redact import link_parts
from shared.web import problem, too_many_parts

log = logging.getLogger(__name__)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
JSON_PREFIXES = ("/api/", "/openapi.json", "/docs", "/healthz", "/readyz", "/metrics")


def portal() -> handlers.Portal:
    return current_app.extensions["ticketflow.portal"]


def is_page(path: str) -> bool:
    return not path.startswith(JSON_PREFIXES)


def cookie_names(secure: bool) -> tuple[str, str]:
    """__Host- cookies (https only) are bound to this host and path /: no subdomain can set them."""
    prefix = "__Host-" if secure else ""
    return f"{prefix}tf_session", f"{prefix}tf_csrf"


class FormRequest(Request):
    """A page's request whose form fields hold line breaks as "\n": a browser sends a textarea's as CRLF (HTML's
    rule for forms), and the services, their emails and search keep "\n"."""

    def _load_form_data(self) -> None:
        super()._load_form_data()
        form = self.__dict__.get("form")
        if form and any("\r" in value for _, value in form.items(multi=True)):
            self.__dict__["form"] = self.parameter_storage_class(
                [(name, value.replace("\r\n", "\n").replace("\r", "\n")) for name, value in form.items(multi=True)]
            )


def install(app: Flask) -> None:
    app.request_class = FormRequest
    secure = app.extensions["ticketflow.settings"].portal_url.startswith("https://")
    session_cookie, csrf_cookie = cookie_names(secure)
    csrf_key = hmac.new(app.extensions["ticketflow.secret"].encode(), b"ticketflow portal csrf", "sha256").digest()

    def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="Lax")

    @app.before_request
    def load():
        g.began = time.monotonic()  # name_of: names asked for since are this request's
        g.new_cookies = {}
        g.session = None
        if not is_page(request.path) or request.path.startswith("/static/"):
            return None  # no session for the JSON API or the static files: no database read per stylesheet
        g.session = handlers.load_session(portal(), request.cookies.get(session_cookie))
        if request.method in UNSAFE_METHODS and not _csrf_ok(request.form.get("csrf_token")):
            # what was written is shown back to copy (nothing of the form was used), to a form of this site only:
            # a page elsewhere that posts here gets no words of its choosing shown on this site's own page
            same_site = request.headers.get("Sec-Fetch-Site") == "same-origin"  # a browser that does not say: not
            kept = request.form.get("body") or request.form.get("resolution") or request.form.get("description")
            kept = kept if same_site else None
            if staff_page(request.path) and not (g.session and g.session.get("account_id")):
                # the staff session ended under the open form (signed out in another tab, disabled, expired)
                return error_page(403, "You are signed out", SIGNED_OUT, kept, sign_in_again(page_of(request.path)))
            if again := EXPIRED_FORMS.get(request.endpoint or ""):  # its form again: nothing was sent
                return again(same_site)
            return error_page(403, "This form has expired", FORM_EXPIRED, kept)
        return None

    def _csrf_ok(sent: str | None) -> bool:
        sent = sent or request.headers.get("X-CSRF-Token") or ""
        expected = csrf_token()
        return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())  # any text: bytes compare

    def csrf_token() -> str:
        session = getattr(g, "session", None)
        if session:
            return session["csrf"]
        new_cookies = g.setdefault("new_cookies", {})  # unset when a request was refused before `load` (413)
        seed = request.cookies.get(csrf_cookie) or new_cookies.get(csrf_cookie)
        if not seed:
            seed = new_cookies[csrf_cookie] = secrets.token_urlsafe(24)
        return hmac.new(csrf_key, seed.encode(), hashlib.sha256).hexdigest()

    app.extensions["ticketflow.forms_token"] = csrf_token if secure else None  # see kept_forms_token
    app.jinja_env.globals.update(
        csrf_token=csrf_token,
        conversation=conversation,
        htmx_file=vendored("htmx.org"),
        max_file_bytes=domain.ATTACHMENT_MAX_BYTES,
        max_total_bytes=domain.ATTACHMENTS_MAX_BYTES,
        query_max=domain.QUERY_MAX,  # a search box takes no more (a longer address meets gunicorn's own refusal)
        # the longest each requester's field takes, said in its hint before anyone types past it
        longest={**{name: most for name, _, most in domain.TICKET_FIELDS}, "message": domain.MESSAGE_MAX},
    )
    app.jinja_env.globals["requester_status"] = lambda ticket: domain.requester_status_words(ticket)[0]
    app.jinja_env.globals["is_merged"] = domain.merged
    app.jinja_env.globals["shown_status"] = domain.shown_status
    app.jinja_env.globals["edit_stamp"] = edit_stamp  # an admin form's `seen` (services.portal.admin)
    app.jinja_env.globals["unstaffed_words"] = domain.unstaffed_words
    app.jinja_env.globals["assigned_words"] = domain.assigned_words
    app.jinja_env.globals["load_word"] = domain.load_word
    app.jinja_env.globals["team_takers"] = domain.team_takers  # the admin's team pages: who takes its tickets
    app.jinja_env.globals["odd_digest"] = domain.oddities_digest  # what a policy's "Save anyway" confirms
    app.jinja_env.globals["ratable"] = domain.ratable  # whether the requester is asked how it was handled
    app.jinja_env.globals["rated_earlier"] = domain.rated_earlier  # a rating of a resolution before the latest
    app.jinja_env.filters["when"] = when
    # a sentence's first letter raised, the rest as written (Jinja's capitalize lowers every other letter: a
    # subject, an address or a header quoted in a kept mail's reason came out as "x-auto-response-suppress")
    app.jinja_env.filters["sentence"] = lambda text: text[:1].upper() + text[1:] if text else text
    app.jinja_env.filters["why"] = why
    app.jinja_env.filters["linked"] = linked
    app.jinja_env.filters["isolated"] = isolated
    app.jinja_env.filters["agent_name"] = lambda agent_id: agent_names().get(agent_id) or agent_id
    app.jinja_env.filters["holder"] = holder
    app.jinja_env.filters["team_name"] = lambda team_id: name_of("team_names", team_id)
    app.jinja_env.filters["topic_name"] = lambda topic: name_of("topic_names", topic)

    @app.after_request
    def headers(response: Response):
        for name, value in getattr(g, "new_cookies", {}).items():
            set_cookie(response, name, value)
        if "device_cookie" in g:
            name, value = g.device_cookie
            set_cookie(response, name, value, max_age=int(devices.LIFE.total_seconds()))
            for dropped in g.get("device_cookies_dropped", ()):
                response.delete_cookie(dropped, path="/", secure=secure, httponly=True, samesite="Lax")
        if "session_cookie" in g:
            token = g.session_cookie
            if token:
                # a requester's session outlives the browser's (days); an agent's ends with it
                requester = not (g.session or {}).get("account_id")
                lifetime = int(handlers.REQUESTER_SESSION.total_seconds()) if requester else None
                set_cookie(response, session_cookie, token, max_age=lifetime)
            else:
                response.delete_cookie(session_cookie, path="/", secure=secure, httponly=True, samesite="Lax")
        if "Content-Security-Policy" not in response.headers:  # a download keeps intake's (sandbox)
            response.headers["Content-Security-Policy"] = CSP
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if is_page(request.path) and not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    shared_handler = app.error_handler_spec[None][None].get(Exception)
    shared_storage_handler = app.error_handler_spec[None][None].get(ConnectionFailure)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        """A page never shows a stack trace: a page that says what to do; the JSON API keeps problem+json."""
        if not is_page(request.path) or isinstance(exc, HTTPException):
            return shared_handler(exc)
        rule = request.url_rule.rule if request.url_rule else "unmatched"  # never the path: it may hold a link
        log.exception("unhandled error on %s %s", request.method, rule)
        return error_page(500, "Something went wrong on our side", "It has been logged. Please try again shortly.")

    @app.errorhandler(Refused)
    def refused(exc: Refused):
        """A refusal no view turned into a message on its page: a page with the service's reason (for the JSON
        API, problem+json: 502, since the refusal was of the portal's own call, not of the client's request)."""
        if not is_page(request.path):
            log.warning("a service refused the portal's call: %s", exc)
            return problem(502, "Bad gateway", f"A service refused the portal's call: {exc.detail or exc.title}")
        if exc.status == 404:
            return error_page(404, "Not found", "It does not exist, or it is not yours to see.")
        return error_page(exc.status, "That did not work", exc.detail or exc.title)

    @app.errorhandler(ConnectionFailure)
    def storage_down(exc: ConnectionFailure):
        if not is_page(request.path):
            return shared_storage_handler(exc)
        mongo.note_failure(current_app.extensions["ticketflow.settings"], exc)
        if not isinstance(exc, mongo.StorageDown):
            log.warning("storage unavailable: %r", exc)
        page = error_page(503, "The help desk is busy", "Please try again in a minute. Nothing you sent was lost.")
        page.headers["Retry-After"] = "2"
        return page

    @app.errorhandler(Unreachable)
    def unreachable(exc: Unreachable):
        log.warning("a service did not answer: %s", exc)
        if not is_page(request.path):  # the JSON API: problem+json, nothing done
            detail = f"The {exc.service} service did not answer. Try again in a minute."
            return problem(503, "Service unavailable", detail, headers={"Retry-After": "5"})
        if request.method != "POST":
            said = "Please try again in a minute. Nothing you sent was lost."
        elif request.path.startswith(("/console", "/admin")):  # the service may have done it, its answer lost
            said = "Please try again in a minute. It may have gone through before the answer was lost: look first."
        else:  # a requester's request opens once however often it is sent; a message may have gone
            said = "Please try again in a minute. If what you sent went through meanwhile, its page shows it."
        return error_page(503, "We cannot reach the help desk right now", said)


def linked(text: str) -> Markup:
    """A message's text, escaped, with each web address in it a link that opens in a new tab and tells the site
    nothing of the page it came from (a requester's links reach agents and the other way round)."""
    return Markup("").join(
        Markup(
            '<a href="{0}" rel="noopener noreferrer nofollow" target="_blank">{0}'
            '<span class="visually-hidden"> (opens in a new tab)</span></a>'
        ).format(piece)
        if is_link
        else piece
        for piece, is_link in link_parts(text)
    )


def when(value: str | datetime | None) -> str:
    """An RFC 3339 time (or a datetime of the portal's own store) as people read it: 29 Nov 2026, 09:30 UTC."""
    if not value:
        return ""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        try:
            moment = parse_time(value)
        except (TypeError, ValueError):
            return str(value)
    return moment.strftime("%-d %b %Y, %H:%M UTC")


def isolated(sentence: str, *pieces: str | None) -> Markup:
    """A sentence the services wrote (a timeline's summary) with the people's words in it (`pieces`: a subject, a
    name, a resolution; the agents' and teams' names always) each in <bdi>, where it stands as words of its own: a
    right-to-left subject in an English sentence keeps the sentence's order, and its own. Found in the sentence as
    written, longest first, then every part escaped (an escape's letters are never matched)."""
    kept = g.setdefault("isolating", {})  # the pattern of these pieces, made once a page (a timeline: one each entry)
    if pieces not in kept:
        words = {*pieces, *agent_names().values(), *_names("team_names").values()}
        longest_first = sorted({w for w in words if w and len(w.strip()) > 1}, key=len, reverse=True)
        either = "|".join(map(re.escape, longest_first))
        kept[pieces] = re.compile(rf"(?<!\w)(?:{either})(?!\w)") if longest_first else None
    found = kept[pieces]
    if found is None:
        return _timed(sentence)
    out, at = [], 0
    for match in found.finditer(sentence):
        out += [_timed(sentence[at : match.start()]), Markup("<bdi>%s</bdi>") % match.group(0)]
        at = match.end()
    return Markup("").join([*out, _timed(sentence[at:])])


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WRITTEN_UTC = re.compile(rf"\b(\d{{1,2}}) ({'|'.join(_MONTHS)}) (\d{{4}}), (\d\d):(\d\d) UTC\b")


def _timed(text: str) -> Markup:
    """Escaped text whose times as the services write them ("4 Dec 2026, 22:16 UTC") are each a <time>, which
    portal.js shows in the reader's own time zone as it does the pages' own times."""
    out, at = [], 0
    for match in _WRITTEN_UTC.finditer(text):
        day, month, year, hour, minute = match.groups()
        moment = f"{year}-{_MONTHS.index(month) + 1:02d}-{int(day):02d}T{hour}:{minute}:00Z"
        out += [Markup.escape(text[at : match.start()]), Markup('<time datetime="%s">%s</time>') % (moment, match[0])]
        at = match.end()
    return Markup("").join([*out, Markup.escape(text[at:])])


def holder(agent_id: str) -> Markup:
    """The agent who has a ticket, by name, and "(account disabled)" when nobody signs in as it any more: someone
    who left, whose tickets wait for a lead or an admin to hand them on."""
    name = Markup.escape(agent_names().get(agent_id) or agent_id)
    if "disabled_agents" not in g:
        g.disabled_agents = portal().store.disabled_agent_ids()
    if why := g.disabled_agents.get(agent_id):
        return name + Markup(' <span class="badge badge--warn">account %s</span>') % why
    return name


def agent_names() -> dict[str, str]:
    """The agents' names by id for this request's pages (a signed-in person's; none for anyone else)."""
    return _names("agent_names")


def _names(kind: str, fresh: bool = False) -> dict[str, str]:
    if kind not in g or fresh:
        from services.portal import console  # console's use cases build on pages' helpers, not the reverse

        signed_in = g.get("session") and g.session.get("account_id")
        setattr(g, kind, getattr(console, kind)(portal(), g.session, fresh=fresh) if signed_in else {})
    return g.get(kind)


def why(entry: dict) -> str:
    """The heading of an automatic assignment's reasons, its agent and team by name."""
    team = (entry.get("decision") or {}).get("team")
    return domain.decision_words(entry, agent_names(), {team: name_of("team_names", team)} if team else None)


def name_of(kind: str, key: str | None) -> str | None:
    """A team's or a topic's name (`kind`: "team_names", "topic_names"), else its id. The names an api process
    keeps may be older than the id: one not among them is asked for again, unless this request asked already
    (answered or not: a service that does not answer is waited for once a request)."""
    if not key:
        return key
    names = _names(kind)
    if key not in names:
        from services.portal import console

        what = kind.removesuffix("_names") + "s"
        if console.names_asked_at(portal(), what) < g.get("began", float("inf")):
            names = _names(kind, fresh=True)
    return names.get(key) or key


def conversation(ticket: dict, work: dict, attachments: list[dict] | None = None) -> list[dict]:
    """The requester's first words, the thread and the agents' internal notes, oldest first; each with the files
    that came with it (`files`: the opening's with the first words)."""
    requester = ticket.get("requester") or {}
    files = domain.attachments_by_entry(ticket, attachments or [])
    entries = [
        {
            "id": "opening",
            "kind": "requester",
            "author": requester.get("name"),
            "role": "requester",
            "body": ticket.get("description"),
            "at": ticket.get("created_at"),
            "files": files.get(None, []),
        }
    ]
    for entry in ticket.get("thread") or []:
        author = entry.get("author") or {}
        kind = "requester" if author.get("type") == "requester" else "agent"
        role = "requester" if kind == "requester" else "public reply"
        entries.append(
            {
                "id": entry.get("id"),
                "kind": kind,
                "author": author.get("name"),
                "role": role,
                "body": entry.get("body"),
                "at": entry.get("created_at"),
                "files": files.get(entry.get("id"), []),
            }
        )
    for note in work.get("notes") or []:
        entries.append(
            {
                "id": note.get("id"),
                "kind": "note",
                "author": note.get("by_name") or domain.who_words(note.get("by"), agent_names()),
                "role": "internal note",
                "body": note.get("body"),
                "at": note.get("at"),
            }
        )
    return sorted(entries, key=lambda entry: entry["at"] or "")


@cache
def vendored(package: str) -> str:
    """The file name of a vendored package in static/vendor (its manifest records version and checksum)."""
    manifest = json.loads((Path(__file__).parent / "static" / "vendor" / "manifest.json").read_text())
    return next(item["path"] for item in manifest["files"] if item["package"] == package)


def client_network() -> str:
    """Whom the per-client limits count: the client's address, or its /64 for IPv6 (one machine or home holds a
    whole /64 and may use any address of it)."""
    address = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:1.2.3.4 (a server bound to [::]): the IPv4 client itself
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


def set_session(token: str | None) -> None:
    """Send this session's cookie with the response (None: remove it)."""
    g.session_cookie = token


def device_cookie(email: str) -> str | None:
    """The device token this browser brings for the email (services/portal/devices.py), if any."""
    return request.cookies.get(devices.cookie_name(portal().secret, email, _secure()))


def set_device(account: dict, nonce: str | None = None) -> None:
    """Send a device token for the account with the response (a new device id, or `nonce`, the browser's own):
    this browser is known at its next sign-in. The oldest past devices.KEPT go."""
    name = devices.cookie_name(portal().secret, account["email"], _secure())
    g.device_cookie = (name, devices.token(portal().secret, account, now(), nonce))
    others = {key: value for key, value in request.cookies.items() if key != name}
    g.device_cookies_dropped = devices.oldest_beyond(others, devices.KEPT - 1)


def _secure() -> bool:
    return current_app.extensions["ticketflow.settings"].portal_url.startswith("https://")


def served_over_https() -> bool:
    """Whether the portal's cookies are `__Host-` ones (its URL is https): no other host can set them."""
    return _secure()


FORM_EXPIRED = (
    "Nothing was sent: the form came from a page that is out of date (opened before this browser signed in or "
    "out, or before its session ended, or sent already). Open the page again and send it from there; for a request "
    "of yours, open it from the link in one of our emails about it."
)
SIGNED_OUT = (
    "Nothing was sent: your session ended (signed out in another tab, by an admin, or after a while). "
    "Sign in again to go back to where you were."
)


def kept_forms_token() -> str | None:
    """The forms' token of this browser while it has no session, for a requester's session a link starts to keep
    (a request half written in another tab still sends). Only over https, whose `__Host-` cookie no other site
    can set: elsewhere the new session has a token of its own, and such a form comes back filled in instead."""
    token = current_app.extensions.get("ticketflow.forms_token")
    return token() if token else None


def error_page(
    status: int,
    title: str,
    detail: str,
    kept: str | None = None,
    sign_in: str | None = None,
    back: tuple[str, str] | None = None,
) -> Response:
    """A page that says what went wrong; `kept`: what the person wrote, which was not sent, to copy; `sign_in`:
    the sign-in page's address that leads back, for a person whose session ended; `back`: (words, address) of
    the page to go back to (a list whose item is gone)."""
    page = render_template(
        "error.html", status=status, title=title, detail=detail, kept=kept, sign_in=sign_in, back=back
    )
    response = Response(page, status=status)
    response.mimetype = "text/html"
    return response


# a form that comes back filled in when its token is out of date, by its endpoint: the page to answer with, given
# whether the form was this site's (only then may what it holds be shown; nothing of it is used either way)
EXPIRED_FORMS: dict[str, Callable[[bool], object]] = {}

# a form's address whose page is not the address above it
FORM_PAGES = {
    "/admin/topics": "/admin/teams",
    "/admin/accounts": "/admin/",
    "/account/sessions/others": "/account/password",
}


def form_page(path: str) -> str | None:
    """The page a form's address belongs to, for that address opened with GET (the bar after the form answered
    with an error, a bookmark): the nearest address above it that is a page, or the one FORM_PAGES names."""
    if path in FORM_PAGES:
        return FORM_PAGES[path]
    adapter = current_app.url_map.bind("")
    parts = path.rstrip("/").split("/")
    for end in range(len(parts) - 1, 0, -1):
        above = "/".join(parts[:end]) or "/"
        if above in FORM_PAGES:  # a topic's retire form: its page is Teams and topics
            return FORM_PAGES[above]
        for candidate in (above, above + "/"):
            try:
                adapter.match(candidate, method="GET")
            except HTTPException:
                continue
            return FORM_PAGES.get(candidate, candidate)
    return None


def page_error(error: HTTPException) -> Response:
    """An HTTP error of a page as a page: what happened and what the person can do. A form's address opened
    with GET leads to the form's page instead (a 405 would be a dead end)."""
    if error.code == 405 and request.method in ("GET", "HEAD"):
        page = form_page(request.path)
        if page is not None:
            return redirect(page, 303)
    titles = {
        404: ("Page not found", "Check the address, or start again from the home page."),
        405: ("That did not work", "Go back and use the page's buttons and forms."),
        413: ("That is too much text", "Shorten what you wrote (at most 1 MB) and send it again."),
    }
    if error.code == 413 and too_many_parts(request):
        titles[413] = (
            "That is too many files",
            f"A form may carry at most {request.max_form_parts:,} files and fields. Go back and choose fewer files; "
            "send the others with a reply.",
        )
    elif error.code == 413 and takes_files(request.method, request.path):
        titles[413] = (
            "Those files are too large",
            f"A file may have {domain.size_words(domain.ATTACHMENT_MAX_BYTES)} and the files of one form "
            f"{domain.size_words(domain.ATTACHMENTS_MAX_BYTES)} together. Go back and choose fewer or smaller files.",
        )
    title, detail = titles.get(error.code or 500, (error.name, error.description or ""))
    return error_page(error.code or 500, title, detail)


# the requester's new request and reply, and an agent's reply
FORMS_WITH_FILES = re.compile(r"/tickets(/[^/]+/messages)?|/console/tickets/[^/]+/(reply|insert)")  # fullmatch
FORM_WITH_FILES_MAX = 40 * 1024 * 1024  # room for files past the limits, so they are answered next to the field


def takes_files(method: str, path: str) -> bool:
    return method == "POST" and FORMS_WITH_FILES.fullmatch(path) is not None


def passed_on(upstream) -> Response:
    """intake's download streamed on as it comes, with intake's headers (attachment, checked type, sandbox)."""
    headers = {name: upstream.headers[name] for name in attachments.PASSED_ON if name in upstream.headers}
    response = Response(upstream.iter_content(64 * 1024), status=200, headers=headers)
    response.call_on_close(upstream.close)
    return response


# the staff pages' prefixes, each with the page a person whose session ended goes back to after signing in
STAFF_PAGES = {"/console": "/console/", "/admin": "/admin/", "/reports": "/reports", "/account": "/account/password"}


def staff_page(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in STAFF_PAGES)


def page_of(path: str) -> str:
    """The page a form of `path` was on, to come back to after signing in again: a ticket's action, its ticket;
    another form of the console, the queue; of the admin pages, the reports or the account, their first page."""
    if match := re.fullmatch(r"(/console/tickets/[^/]+)(?:/.*)?", path):
        return match.group(1)
    return next((page for prefix, page in STAFF_PAGES.items() if path == prefix or path.startswith(prefix + "/")), "/")


def sign_in_again(where: str) -> str:
    """The sign-in page for a person whose session ended under an open page: it says so, then goes back there."""
    return url_for("auth.login", next=where, notice="session-ended")


def agent_required(view):
    """A signed-in agent or admin; without a session, a redirect to the sign-in page, which comes back here."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not (g.session and g.session.get("account_id")):
            if request.headers.get("HX-Request"):  # a part of a page refreshing: the whole page goes to sign-in
                shown = urlsplit(request.headers.get("HX-Current-URL", ""))  # the page the browser shows
                query = urlencode([(k, v) for k, v in parse_qsl(shown.query) if k != "notice"])  # said once
                where = shown.path + (f"?{query}" if query else "") if staff_page(shown.path) else ""
                return Response(status=204, headers={"HX-Redirect": sign_in_again(where or page_of(request.path))})
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    @wraps(view)
    @agent_required
    def wrapper(*args, **kwargs):
        if g.session.get("role") != "admin":
            return error_page(403, "Admins only", "This part of the help desk is for admins. Ask one for access.")
        return view(*args, **kwargs)

    return wrapper
