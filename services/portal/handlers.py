"""The portal's use cases for requesters, sign-in and accounts: load, decide (domain), call the APIs, save.

The agents' console is in console.py. Each use case takes the `Portal` container built by `bootstrap`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.portal import attachments, devices, domain, mailing
from services.portal.client import PORTAL, Actor, Refused, Services, Unreachable, path_id
from services.portal.store import AccountExists, PortalStore, digest
from shared import links, mongo
from shared.access import same_email
from shared.clock import now
from shared.config import SERVICE_PORTS, Settings
from shared.schemas import files_sent, one_line

log = logging.getLogger(__name__)
SERVICE = "portal"
AGENT_SESSION = timedelta(hours=12)  # a signed-in agent signs in again after this long
IDLE_LIMIT = timedelta(hours=2)  # ... or after this long without a request
REQUESTER_SESSION = timedelta(days=7)  # a requester's session, from a link or a new ticket
PASSWORD_LINK_LIFE = timedelta(days=3)
# check-status requests per hour, checked in this order and each counted only once the ones before it passed:
# per client address, per email and number (links to one request), per email (all its requests). So a stranger's
# wrong numbers use up their own address's twenty, never the owner's five for their request.
STATUS_LIMITS = (("client", 20), ("request", 5), ("email", 30))
# without a number, an email with a link to each of the address's requests: anyone may ask for any address, and
# each mails it, so two an hour (then the per-email thirty, shared with the numbered ones)
ALL_LINKS_LIMITS = (("client", 20), ("request", 2), ("email", 30))
NUMBER = re.compile(r"#?[0-9]{1,15}")  # a ticket number as people quote it (ASCII digits only)
# what a Chinese or Japanese keyboard types for them: full-width digits and "＃" (not "²" or other scripts' digits)
FULL_WIDTH = {0xFF10 + n: ord("0") + n for n in range(10)} | {0xFF03: ord("#")}
FIELD_NAMES = {"requester.name": "name", "requester.email": "email"}  # intake's fields -> the form's


class UserError(Exception):
    """Something the person can fix, with field errors for a form (or none)."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.message, self.errors, self.status = message, errors or {}, status


@dataclass
class Portal:
    settings: Settings
    store: PortalStore
    services: Services
    secret: str
    hasher: PasswordHasher
    kept: dict = field(default_factory=dict)  # what this process keeps a while (console.agent_names)

    def ensure_storage(self) -> None:
        self.store.ensure_indexes()


def api_urls(env: dict) -> dict[str, str]:
    """Each API's base URL: TICKETFLOW_<SERVICE>_URL, else 127.0.0.1 at the service's port."""
    return {
        service: (env.get(f"TICKETFLOW_{service.upper()}_URL") or f"http://127.0.0.1:{port}").rstrip("/")
        for service, port in SERVICE_PORTS.items()
    }


def bootstrap(settings: Settings, urls: dict[str, str] | None = None) -> Portal:
    import os

    secret = settings.require_secret()
    return Portal(
        settings=settings,
        store=PortalStore(mongo.database(settings, SERVICE)),
        services=Services(urls or api_urls(os.environ), secret),
        secret=secret,
        hasher=PasswordHasher(),  # argon2id with the library's current parameters
    )


# sessions
def start_session(
    svc: Portal, account: dict | None = None, grant: dict | None = None, csrf: str | None = None
) -> tuple[str, dict]:
    """A new session (a new id: never one a browser brought along); its token is what the cookie holds.

    `csrf`: the forms' token the browser had without a session, kept by a requester's session, so that a form
    open in another tab (a new request being written) still sends once a link opened a request. A sign-in
    never keeps one (a new token with the new rights).
    """
    token, at = secrets.token_urlsafe(32), now()
    session = {
        "csrf": csrf if csrf and account is None else secrets.token_urlsafe(32),
        "created_at": at,
        "last_seen": at,
        "expires_at": at + (IDLE_LIMIT if account else REQUESTER_SESSION),
        "ends_at": at + (AGENT_SESSION if account else REQUESTER_SESSION),
        "tickets": [grant] if grant else [],
    }
    if account:
        session.update(account_id=account["_id"], role=account["role"], agent_id=account.get("agent_id"))
        session["email"] = account["email"]
    svc.store.add_session(token, session)
    return token, {**session, "_id": digest(token)}


RENEWED_ID_LASTS = timedelta(minutes=1)  # a renewed session's old id, for what the browser sent with it meanwhile


def renew_session(svc: Portal, session: dict, email: str, keep_forms_token: bool) -> tuple[str, dict] | None:
    """The session under a new id and token, for a session about to be given a request of `email`: a browser may
    have brought an id that someone else knows (a cookie planted by a sibling host over http), who would read what
    it is given. The new one keeps the rights (an agent stays signed in) and the requests of that address alone
    (not ones of another address that the planter holds, and the victim would take for theirs), and gets a forms'
    token of its own unless `keep_forms_token` (over https, where no other host sets the cookie). The old id lasts
    a minute more, as it is (the request given goes to the new one only): the browser's other requests sent with it
    meanwhile find their session. None when the session ended meanwhile."""
    token = secrets.token_urlsafe(32)
    grants = [grant for grant in session.get("tickets") or [] if same_email(grant.get("email"), email)]
    changes = {"tickets": grants, **({} if keep_forms_token else {"csrf": secrets.token_urlsafe(32)})}
    renewed = svc.store.renew_session(session["_id"], token, changes, now() + RENEWED_ID_LASTS)
    return None if renewed is None else (token, renewed)


def load_session(svc: Portal, token: str | None) -> dict | None:
    """The live session of a cookie; idle sessions of agents slide forward (at most once a minute)."""
    if not token:
        return None
    session = svc.store.session(token, now())
    if session is None:
        return None
    if session.get("account_id") and now() - session["last_seen"] > timedelta(minutes=1):
        account = svc.store.account(session["account_id"])
        changed = account.get("password_changed_at") if account else None
        if account is None or account.get("disabled_at") or (changed and session["created_at"] < changed):
            # disabled while it signed in, or a sign-in with the password just changed: ended here at the latest
            svc.store.end_session(session["_id"])
            return None
        expires = min(now() + IDLE_LIMIT, session["ends_at"])
        svc.store.touch_session(session["_id"], now(), expires)
    return session


def end_session(svc: Portal, session: dict | None) -> None:
    if session:
        svc.store.end_session(session["_id"])


FORM_KEYS_KEPT = timedelta(hours=48)  # as long as intake keeps an Idempotency-Key


def forget_requests(svc: Portal, session: dict | None) -> bool:
    """A requester on a shared computer: this browser opens none of the requests it had any more. A signed-in
    agent's session stays signed in and only loses them; anyone else's session ends. Whether the session ends.

    The forms it sent are forgotten too: sent again (Back to a form page, then Send or a reload), intake would
    answer the same ticket for the same key, and the next person at the computer would read it."""
    if not session:
        return True
    svc.store.forget_form_keys(session.get("form_keys") or [], now() + FORM_KEYS_KEPT)
    if session.get("account_id"):
        svc.store.forget_grants(session["_id"])
        return False
    svc.store.end_session(session["_id"])
    return True


# sign-in and accounts
def sign_in(svc: Portal, email: str, password: str, device: str | None = None, client: str = "") -> dict:
    """The account for these credentials; UserError (the same for an unknown email and a wrong password).

    The attempt counts as a failure before the password is checked: parallel guesses cannot slip past the limit.
    `device`: the browser's device cookie for this email (services/portal/devices.py); a browser that signed in to
    the account before counts its failures apart, so that guesses from elsewhere do not lock its person out.
    `client`: the client's network (pages.client_network): its failures, whatever the emails, are limited too
    (`portal_failed_sign_ins_per_client_hour`), before any password is checked: one password tried against
    every account, or attempts that keep the processes busy with argon2, end there. A known browser passes.
    """
    email = email.strip().lower()
    if not domain.email_ok(email):  # no account has such an address: nothing to count (nor a key to reach)
        raise UserError("The email or password is not right.", status=401)
    account = svc.store.account_by_email(email)
    or_else = " Or choose a new password with “Forgot your password?”: that ends the wait."
    counted = failures_key(svc, email, account, device)
    # a known browser passes; so does a client of no known address (a unix socket): one count for all would lock all
    from_client = _count_client_attempt(svc, client) if counted[0] == email and client else None
    count_attempt(svc, counted, "Too many failed sign-ins for this email.", or_else)
    matches = password_matches(svc, account and account.get("password_hash"), password)  # an unknown email too
    if account is None or not matches:
        raise UserError("The email or password is not right.", status=401)
    if from_client is not None:
        svc.store.uncount_hit(*from_client)  # it counts failures: this one was not
    svc.store.clear_failure(counted[0])  # a known browser's own count: a lock others made on the email stays
    if account.get("disabled_at"):  # said only to whoever knows the password
        raise UserError("This account is disabled. Ask an admin to enable it again.", status=403)
    return account


def _count_client_attempt(svc: Portal, client: str) -> tuple[str, datetime]:
    """Count a sign-in from `client` as failed before its password is checked; UserError 429 past the hour's limit
    (that attempt taken back: it checks nothing). The hit's (key, window), for a sign-in that succeeds to take back."""
    at = now()
    window = at.replace(minute=0, second=0, microsecond=0)
    key = f"sign-in:client:{client}"
    if svc.store.count_hit(key, window, timedelta(hours=1)) > svc.settings.portal_failed_sign_ins_per_client_hour:
        svc.store.uncount_hit(key, window)
        wait = _rest_of_hour(window, at)
        raise UserError(f"Too many failed sign-ins from your network. Try again in {wait}.", status=429)
    return key, window


def failures_key(svc: Portal, email: str, account: dict | None, device: str | None) -> tuple[str, str]:
    """Under what an attempt's failure counts: (key, email). The email itself, or, for a browser that brings a
    good device token of the account, that device (devices.known)."""
    nonce = devices.known(svc.secret, account, device, now())
    return (f"device {nonce}" if nonce else email), email  # a space: no address has one


def count_attempt(svc: Portal, counted: tuple[str, str], too_many: str, or_else: str = "") -> None:
    """Count an attempt with a password as failed before it is checked (parallel guesses cannot slip past the
    limit); UserError 429 while its key (failures_key: the email, or a known browser of it) is locked. A right
    password clears that key's count (clear_failure); a new password every count of the email (clear_failures)."""
    key, email = counted
    at = now()
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # as stored (ms)
    before, attempt = svc.store.add_attempt(key, at, keep=domain.MAX_FAILURES * 2, email=email)
    until = domain.locked_until(before, at)
    if until is not None:
        svc.store.drop_attempt(key, attempt)
        minutes = max(1, round((until - at).total_seconds() / 60))
        if key != email:  # a browser of the account's, locked by its own failures: the email may work elsewhere
            too_many = too_many.replace("for this email", "from this browser")
        raise UserError(f"{too_many} Try again in {_minutes(minutes)}.{or_else}", status=429)


def _minutes(count: int) -> str:
    return "1 minute" if count == 1 else f"{count} minutes"


_DUMMY_HASH = PasswordHasher().hash("a password nobody has, for the time an unknown email takes")


def password_matches(svc: Portal, stored: str | None, password: str) -> bool:
    """argon2 verify; an unknown email or an unset password costs the same time as a wrong one."""
    try:
        return svc.hasher.verify(stored or _DUMMY_HASH, password[: domain.PASSWORD_MAX]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


ACCOUNT_TAKEN = "An account with this email exists."  # the admin page adds the way to a new link to it


def create_account(
    svc: Portal, email: str, role: str, agent_id: str | None, password: str | None, *, agent_field: str | None = None
) -> tuple[dict, str | None]:
    """A new account; without a password, also a one-time token to set one (its link goes to the person).
    `agent_field`: the field that names the agent, for an agent that has an account already (agent_untaken; said
    after an email address taken: that is the account asked for again)."""
    email = (email or "").strip().lower()
    errors = domain.account_problems(email, role, agent_id)
    if password is not None and domain.password_problems(password):
        errors["password"] = domain.password_problems(password)
    if errors:
        raise UserError("The account has invalid fields.", errors)
    if agent_field and svc.store.account_by_email(email) is None:
        agent_untaken(svc, agent_id, agent_field)
    password_hash = svc.hasher.hash(password) if password is not None else None
    try:
        account = svc.store.add_account(email, role, agent_id or None, password_hash, now())
    except AccountExists:
        raise UserError(f"An account for {email} exists.", {"email": [ACCOUNT_TAKEN]}, 409) from None
    link = svc.store.new_password_link(account["_id"], now(), PASSWORD_LINK_LIFE) if password is None else None
    return account, link


def agent_untaken(svc: Portal, agent_id: str | None, field: str = "agent_id") -> None:
    """An agent is one person, with one account: a second account signing in as an agent would act in its name,
    and disabling either would stop the other. Said next to `field` (409) when an account has the agent."""
    taken = svc.store.accounts_of_agent(agent_id) if agent_id else []
    if taken:
        said = (
            f"The account {taken[0]['email']} signs in as the agent {agent_id} already: each agent has one account. "
            "Leave the agent id empty for an admin who does not work tickets, or change that account."
        )
        raise UserError(f"The agent {agent_id} has an account.", {field: [said]}, 409)


def set_disabled(svc: Portal, account_id: str, disabled: bool, by: dict | None = None) -> dict:
    """Disable an account (its sessions and password links end; it cannot sign in) or enable it again.

    `by`: the admin's own account when a person does it (an admin cannot disable themselves: the desk would
    be one admin short, or none). Idempotent: disabling a disabled account keeps its first date."""
    if by is not None and by.get("_id") == account_id and disabled:
        raise UserError("You cannot disable your own account. Ask another admin.", status=409)
    account = svc.store.account(account_id)
    if account is None:
        raise UserError("No such account.", status=404)
    if bool(account.get("disabled_at")) != disabled:
        account = svc.store.set_disabled(account_id, now() if disabled else None)
        if account is None:
            raise UserError("No such account.", status=404)
        log.info("account %s %s", account["email"], "disabled" if disabled else "enabled")
    if disabled:  # again when it was: a session that slipped past the first time ends now
        svc.store.end_sessions_of(account_id)
    svc.store.end_password_links_of(account_id)  # enabled too: a link minted as it was being disabled ends
    return shown(account)


def shown(account: dict) -> dict:
    """An account as pages and the API show it: never its password's hash."""
    return {key: value for key, value in account.items() if key != "password_hash"}


def delete_account(svc: Portal, account_id: str, by: dict | None = None) -> dict:
    """Delete a disabled account for good (a person who left: nothing of theirs is kept here; what they did stays
    in the services, under their agent id). Only a disabled one: a slip cannot delete someone still working, and
    an admin never deletes themselves."""
    if by is not None and by.get("_id") == account_id:
        raise UserError("You cannot delete your own account. Ask another admin.", status=409)
    account = svc.store.account(account_id)
    if account is None:
        raise UserError("No such account.", status=404)
    if not account.get("disabled_at"):
        raise UserError("Disable the account first: only a disabled account can be deleted.", status=409)
    if not svc.store.delete_account(account_id):
        raise UserError("No such account.", status=404)
    log.info("account %s deleted", account["email"])
    return shown(account)


# requesters
def requester(grant: dict) -> Actor:
    """A token for one requester and one ticket: intake and sla answer 404 for anything else."""
    return Actor(role="portal", sub=grant["email"], requester_email=grant["email"], ticket_id=grant["id"])


def topics(svc: Portal) -> list[dict]:
    """The topics a requester chooses from."""
    return svc.services.get("intake", "/topics", PORTAL)["items"]


def every_topic(svc: Portal, who: Actor) -> list[dict]:
    """Every topic, the retired ones too (their tickets keep them: the console's and the admin pages' lists)."""
    return svc.services.get("intake", "/topics", who, include_retired="true")["items"]


def open_ticket(
    svc: Portal,
    form: dict,
    idempotency_key: str,
    request_id: str | None,
    files: list[attachments.Chosen] | None = None,
    client: str = "",
) -> dict:
    """Open the ticket (a repeat of the same form answers the same ticket); UserError with field errors.

    The files are checked here (nothing is opened when they will not do) and sent by `attach_files`. A client
    address opens at most `portal_tickets_per_client_hour` (each mails a receipt to the address typed in).
    """
    fields = {name: (form.get(name) or "").strip() for name in ("name", "email", "topic", "subject")}
    fields["description"] = (form.get("description") or "").strip()
    errors = domain.ticket_form_problems(fields, {topic["id"] for topic in topics(svc)})
    errors |= attachments.problems(files or [])
    if errors:
        raise UserError("Some answers need another look.", errors)
    window = now().replace(minute=0, second=0, microsecond=0)
    opened = svc.store.count_hit(f"open:client:{client}", window, timedelta(hours=1))
    if opened > svc.settings.portal_tickets_per_client_hour:
        raise UserError(TOO_MANY_OPENED, status=429)
    body = {
        "subject": fields["subject"],
        "description": fields["description"],
        "requester": {"name": fields["name"], "email": fields["email"].lower()},
        "topic": fields["topic"],
        "source": "web",
    }
    actor = Actor(role="portal", sub=body["requester"]["email"], requester_email=body["requester"]["email"])
    try:
        return svc.services.post(
            "intake", "/tickets", actor, body, headers={"Idempotency-Key": idempotency_key}, request_id=request_id
        )
    except Refused as refused:
        raise _user_error(refused) from None


SAME_REQUEST_WINDOW = timedelta(minutes=10)  # the same words sent again from one browser within it: the same request


def form_digest(form: dict, files: list[attachments.Chosen] = ()) -> str:
    """What a request says (who, about what, its words, its files' names and sizes), to know it when it comes again
    (Back, then Send again: a browser keeps the words, and the person chooses the same files again)."""
    words = [" ".join((form.get(name) or "").split()).lower() for name in ("email", "topic", "subject", "description")]
    words += sorted(f"{file.name}\x1e{file.size}" for file in files)
    return hashlib.sha256("\x1f".join(words).encode()).hexdigest()


def opened_already(session: dict | None, digest_of_form: str) -> str | None:
    """The ticket this browser opened from the same words a moment ago (Back, then Send again), if any."""
    for opened in reversed((session or {}).get("opened") or []):
        if opened["digest"] == digest_of_form and opened["at"] > now() - SAME_REQUEST_WINDOW:
            return opened["ticket_id"]
    return None


def words_digest(ticket_id: str, kind: str, seen: str, body: str) -> str:
    """A message, a reply or a note to a ticket as one form sends it: its words, and `seen`, the page's own mark of
    what it showed (which changes once the words are in the conversation). The same form sent again has both."""
    return hashlib.sha256("\x1f".join((ticket_id, kind, seen, body)).encode()).hexdigest()


SEND_WAIT = 12.0  # seconds the same words sent again wait on the first send's end (under gunicorn's 30 s timeout)
SEND_POLL = 0.2  # seconds between two looks at it
SEND_ABANDONED = timedelta(seconds=60)  # a send still going after this never ended (no request lives so long)

STILL_GOING = (
    "The same words are still being sent from your earlier click. They are kept below: if they do not show in the "
    "conversation in a minute, send them again."
)


@dataclass
class Send:
    """One send of words onto a ticket, claimed for this browser before it goes (`sent_once`)."""

    svc: Portal
    session_id: str
    digest: str
    at: datetime
    goes: bool  # False: the same words went from this page a moment ago, or are still going (`pending`)
    claimed: bool
    pending: bool = False  # the same words' earlier send had not ended after SEND_WAIT: nothing known yet

    def undo(self) -> None:
        """It did not go (refused, or failed): the same words may be sent again."""
        if self.claimed:
            self.svc.store.unclaim_sent(self.session_id, self.digest, self.at)
            self.claimed = False

    def went(self) -> None:
        """It went: the same words sent again are told so."""
        if self.claimed:
            self.svc.store.sent_went(self.session_id, self.digest, self.at)


@contextmanager
def sent_once(svc: Portal, session: dict, digest_of_words: str, check: bool = True) -> Iterator[Send]:
    """Whether these words go now (`Send.goes`): not when this browser sent them from this same page a moment ago
    (Back brought the page back with them filled in, a browser may fill in again a form it left, a double click
    sends the form twice). The same words sent from a page opened since (a new question answered "Yes" again) are
    another message. The send is claimed in one write before it goes, so that of two at once one goes (a race
    hunter's double click posted both); the caller undoes it when it did not go, and so does an error out of the
    block. The second of two at once waits for the first to end (`_after_the_first`): when the first did not go, the
    second sends the words (they were lost when the second, the answer the browser shows, said they went).
    `check=False`: it goes in any case (a message with files, which are meant anew), and is noted."""
    at = now()
    since = at - SAME_REQUEST_WINDOW
    stale = [digest for digest, sent in ((session or {}).get("sends") or {}).items() if sent <= since]
    earlier = (session or {}).get("sent") or []  # as sessions kept sends before the claim (their last few, a list)
    pending = False
    if check and any(sent["digest"] == digest_of_words and sent["at"] > since for sent in earlier):
        claimed = False
    else:
        claimed = svc.store.claim_sent(
            session["_id"], digest_of_words, at, since if check else at, stale, at - SEND_ABANDONED
        )
        if not claimed and check:
            claimed_at, pending = _after_the_first(svc, session["_id"], digest_of_words, since)
            claimed, at = claimed_at is not None, claimed_at or at
    send = Send(svc, session["_id"], digest_of_words, at, claimed or not check, claimed, pending)
    try:
        yield send
    except BaseException:
        send.undo()
        raise
    send.went()


def _after_the_first(
    svc: Portal, session_id: str, digest_of_words: str, since: datetime
) -> tuple[datetime | None, bool]:
    """The same words' earlier send is claimed: wait, up to SEND_WAIT, until it went (nothing to send) or was taken
    back (then claimed for this one). When this one's claim was made (None: it does not go), and whether the first
    had not ended by then."""
    deadline = time.monotonic() + SEND_WAIT
    while True:
        state = svc.store.send_state(session_id, digest_of_words, since)
        if state == "went":
            return None, False
        if state is None:  # the first did not go: this one is sent, unless a third claimed it meanwhile
            at = now()
            if svc.store.claim_sent(session_id, digest_of_words, at, since, (), at - SEND_ABANDONED):
                return at, False
        elif time.monotonic() >= deadline:
            return None, True
        time.sleep(SEND_POLL)


TOO_MANY_OPENED = "You have sent a lot of requests in a short time. Please try again in a while."


def _user_error(refused: Refused) -> UserError:
    errors = {FIELD_NAMES.get(name, name): messages for name, messages in refused.errors.items()}
    message = refused.detail or refused.title
    if refused.status == 429:
        message = TOO_MANY_OPENED
    elif refused.status == 409:
        message = f"{refused.detail} Please reload the page and try again."
    return UserError(message, errors, refused.status)


def requester_ticket(svc: Portal, grant: dict) -> dict:
    return svc.services.get("intake", f"/tickets/{path_id(grant['id'])}", requester(grant))


def add_message(
    svc: Portal, grant: dict, body: str, request_id: str | None, files: list[attachments.Chosen] | None = None
) -> dict:
    """The requester's message (its thread entry); the files are checked here and sent by `attach_files`. Files
    without words (the screenshot an agent asked for) go with a message that names them."""
    longest = domain.MESSAGE_MAX
    names = attachments.named(files or [])
    if not body.strip() and files:
        body = files_sent(names, len(files))
    errors = {"body": ["Write your message, or attach a file."]} if not body.strip() else {}
    if len(body) > longest:
        errors["body"] = [f"Use at most {longest:,} characters (you have {len(body):,})."]
    errors |= attachments.problems(files or [])
    if errors:
        raise UserError(next(iter(errors.values()))[0], errors)
    try:
        return svc.services.post(
            "intake",
            f"/tickets/{path_id(grant['id'])}/messages",
            requester(grant),
            {"body": body, **({"files": names} if names else {})},
            request_id=request_id,
        )
    except Refused as refused:
        raise _user_error(refused) from None


def attach_files(
    svc: Portal, grant: dict, files: list[attachments.Chosen], message_id: str | None, key: str, request_id: str | None
) -> list[dict]:
    """Send the files to intake for the requester (with a message, or the ticket's opening); the same key again
    stores nothing new. UserError when intake refuses them or cannot be reached: the ticket or message is sent."""
    try:
        return attachments.send(svc.services, requester(grant), grant["id"], files, message_id, key, request_id)
    except Refused as refused:
        raise UserError(refused.detail or refused.title, {"files": [refused.detail or refused.title]}) from None
    except Unreachable:
        message = "The files could not be sent just now. Please send them again with a new message."
        raise UserError(message, {"files": [message]}, 503) from None


def requester_attachments(svc: Portal, grant: dict) -> list[dict]:
    return attachments.listed(svc.services, requester(grant), grant["id"])


def rate(svc: Portal, grant: dict, rating: str, comment: str) -> dict:
    """The requester rates how their resolved (or closed) request was handled; rating again replaces it. The
    ticket's team and agent then are kept with it, for the reports."""
    ticket = requester_ticket(svc, grant)
    comment = comment.strip()
    if problems := domain.rating_problems(rating, comment, ticket):
        raise UserError(next(iter(problems.values()))[0], problems, 422 if domain.ratable(ticket) else 409)
    assignee = ticket.get("assignee") or {}
    rated = {
        "rating": rating,
        "comment": comment,
        "rated_at": now(),
        "number": ticket.get("number"),
        "team": ticket.get("team"),
        "agent_id": assignee.get("agent_id"),
        "agent_name": assignee.get("name"),
    }
    svc.store.rate(grant["id"], rated)
    return rated


def close_ticket(svc: Portal, grant: dict, request_id: str | None) -> None:
    try:
        svc.services.post(
            "intake", f"/tickets/{path_id(grant['id'])}/close", requester(grant), {}, request_id=request_id
        )
    except Refused as refused:
        raise _user_error(refused) from None


def follow_link(svc: Portal, token: str) -> dict:
    """The grant a link gives ({"id", "email"}); links.LinkError for a tampered, foreign or expired one."""
    link = links.read_link_token(svc.settings.accepted_secrets(), token)  # the one before it too, while it changes
    return {"id": link.ticket_id, "email": link.email}


def confirm_link(svc: Portal, session: dict, grant: dict) -> None:
    """A person acts on a page that a link emailed to the ticket's address opened (its poll, a reply, a close, a
    rating): whoever followed it reads that mailbox. The first time, the sessions that had the request without a
    link (the web form's, anyone's) need one from now on. Nothing for a session that did not follow a link."""
    if grant["id"] not in session.get("links_followed", ()) or grant["id"] in session.get("links_acted", ()):
        return
    svc.store.link_acted_on(session["_id"], grant["id"])
    if svc.store.confirm_address(grant["id"], grant["email"], now()):
        # the sessions that followed a link keep it (the requester's phone and laptop); a tester's browser that had
        # acted lost its request at the next page once the link was no longer noted as followed
        svc.store.drop_grants_without_link(grant)


def proven_by_mail(svc: Portal, session: dict | None, grant: dict, ticket: dict) -> bool:
    """A request from the web form answered by mail from its address (a requester's message `via` email): whoever
    reads that mailbox wrote, so the address is proven, as by a link followed (`confirm_link`), and the sessions that
    had the request without a link lose it: whoever typed the address into the form would read what its owner
    sends. Whether this session lost it (nothing is read or written for a session that followed a link)."""
    if grant["id"] in (session or {}).get("links_followed", ()) or ticket.get("source") != "web":
        return False
    if not domain.answered_by_mail(ticket):
        return False
    svc.store.confirm_address(grant["id"], grant["email"], now())
    svc.store.drop_grants_without_link(grant)
    return True


def within_limits(svc: Portal, action: str, limits: tuple, keys: dict[str, str], at) -> None:
    """Count one more `action` under each (kind, limit) of `limits` in this clock hour, in their order, each only
    once the ones before it passed; UserError 429 with the minutes to the hour's end past one of them."""
    window = at.replace(minute=0, second=0, microsecond=0)
    for kind, limit in limits:
        if svc.store.count_hit(f"{action}:{kind}:{keys[kind]}", window, timedelta(hours=1)) > limit:
            wait = _rest_of_hour(window, at)
            raise UserError(f"Too many requests for a link. Please try again in {wait}.", status=429)


def _rest_of_hour(window: datetime, at: datetime) -> str:
    """The minutes from `at` to the end of the clock hour that began at `window`, in words (1 at least)."""
    return _minutes(max(1, math.ceil((window + timedelta(hours=1) - at).total_seconds() / 60)))


def request_status_link(svc: Portal, email: str, number: str, client: str) -> None:
    """Note the request for the worker (the page answers the same whether or not they match); limits apply. No
    number: links to every request of the address that is not closed."""
    email, number = email.strip().lower(), number.translate(FULL_WIDTH).strip()  # "＃１０００４２" as typed
    errors = {}
    if not domain.email_ok(email):
        errors["status_email"] = ["Enter the email address you used, like ana@example.com."]
    if number and not NUMBER.fullmatch(number):
        errors["number"] = ["Enter the request number from your receipt, like 100042, or leave it empty."]
    if errors:
        raise UserError("Some answers need another look.", errors)
    at = now()
    as_number = int(number.lstrip("#")) if number else None  # "0100042" is 100042, as the request stored is
    keys = {"request": f"{email}|{'all' if as_number is None else as_number}", "email": email, "client": client}
    within_limits(svc, "status", STATUS_LIMITS if as_number is not None else ALL_LINKS_LIMITS, keys, at)
    svc.store.add_status_request(email, as_number, at)


def answer_status_request(svc: Portal, request: dict) -> str:
    """Email a fresh link when the request's email and number match a ticket, or, without a number, links to the
    address's requests that are not closed (its newest ALL_LINKS): "sent", else "no-match"."""
    if request.get("number") is None:
        return _answer_with_every_link(svc, request)
    try:
        found = svc.services.get(
            "intake", "/tickets", PORTAL, requester_email=request["email"], number=request["number"], limit=1
        )["items"]
    except Refused as refused:  # intake will not look it up (a number out of its range): no match
        log.info("check-status request %s: intake refused the lookup: %s", request["_id"], refused)
        return "no-match"
    if not found:
        return "no-match"
    ticket = found[0]
    url, what = _link(svc, ticket, request["email"]), _what_a_link_does(ticket, svc.settings.portal_url)
    title = " ".join(one_line(ticket.get("subject") or "").split())[:150]  # one line, for the email's header too
    mailing.send(
        svc.settings,
        request["email"],
        f"[#{ticket['number']}] Your link to your request: {title}",
        f"Hello,\n\nYou asked for a link to your request #{ticket['number']}, “{title}”. {what}\n\n"
        f"{url}\n\nThe link works for {svc.settings.link_days:g} days. If you did not ask for it, you can ignore "
        "this email.\n",
    )
    return "sent"


ALL_LINKS = 20  # requests one "links to all my requests" email lists, newest first
ALL_LINKS_PAGES = 4  # pages of intake's list (50 each) looked through for them


def _answer_with_every_link(svc: Portal, request: dict) -> str:
    """Links to the newest ALL_LINKS requests of the address that are not closed (nor merged into another), found
    among its newest ALL_LINKS_PAGES * 50; "no-match" when there is none (or intake will not list the address)."""
    open_ones, cursor = [], None
    try:
        for _ in range(ALL_LINKS_PAGES):
            page = svc.services.get(
                "intake", "/tickets", PORTAL, requester_email=request["email"], limit=50, cursor=cursor
            )
            # a duplicate merged into another of theirs is not one to go on with: the one kept is listed
            open_ones += [t for t in page["items"] if t.get("status") != "closed" and not domain.merged(t)]
            cursor = page.get("next_cursor")
            if len(open_ones) > ALL_LINKS or not cursor:
                break
    except Refused as refused:  # an address intake does not take: nobody's requests
        log.info("check-status request %s: intake refused the lookup: %s", request["_id"], refused)
        return "no-match"
    if not open_ones:
        return "no-match"
    listed = "\n\n".join(
        f"#{t['number']} {t.get('subject', '')} ({domain.requester_status_words(t)[0]})\n"
        f"{_link(svc, t, request['email'])}"
        for t in open_ones[:ALL_LINKS]
    )
    more = (
        f"\n\nThese are your {ALL_LINKS} newest; ask with its number for an older one."
        if len(open_ones) > ALL_LINKS
        else ""
    )
    mailing.send(
        svc.settings,
        request["email"],
        "Links to your requests",
        "Hello,\n\nYou asked for links to your requests that are not closed. Open one to see its status, reply "
        f"or close it:\n\n{listed}{more}\n\nTo write about one of them, open its link (or reply to one of its own "
        "emails): a reply to this email opens a new request.\n\n"
        f"The links work for {svc.settings.link_days:g} days. If you did not ask for them, you can ignore this "
        "email.\n",
    )
    return "sent"


def _what_a_link_does(ticket: dict, portal_url: str) -> str:
    if ticket.get("status") == "closed":  # nothing to reply to or close: what is left is to read it
        return f"It is closed; open it here to read it (to ask again, open a new request at {portal_url}/):"
    return "Open it here to see its status, reply or close it:"


def _link(svc: Portal, ticket: dict, email: str) -> str:
    token = links.mint_link_token(svc.secret, ticket["id"], email, svc.settings.link_days)
    return links.link_url(svc.settings.portal_url, token)
