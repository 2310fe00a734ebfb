"""intake's use cases for mail in: what one inbound mail becomes (a ticket, a requester's message, or a record kept
with its reason), stored with the same outbox as every other write.

One path for both sources, the SMTP listener and the IMAP poller (services/intake/mail.py). `receive` returns only
once the mail's effect is stored, so the listener can answer 250 (and the poller mark the mail seen); a store that
cannot be reached raises, so the sending MTA keeps the mail and tries again.

Every step is idempotent, keyed by the mail (its Message-ID, or its bytes when it has none): the ticket's id, the
message's id and the attachments' ids are derived from that key. So the same mail delivered twice, or fed to two
mail processes at once, has one effect; a process that died half-way is completed by the next delivery.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase

from marshmallow import ValidationError

from services.intake import files, inbound
from services.intake.domain import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENTS_MAX_BYTES,
    DEFAULT_TOPIC,
    ThreadFull,
    Ticket,
    TicketClosed,
    follows_up_words,
    mib,
    over_the_limits,
)
from services.intake.handlers import RATE_WINDOW, Intake, change_ticket, get_ticket, open_new, within_rate_limit
from services.intake.inbound_headers import answers_our_mail, auto_reply_by_subject
from services.intake.inbound_parts import GENERATED_NAME, MAILS
from services.intake.schemas import TicketCreateSchema
from shared import events
from shared.access import same_email
from shared.auth import Principal
from shared.clock import now
from shared.errors import NotFound, TooManyRequests
from shared.redact import redact_tokens
from shared.saving import NO_CHANGE
from shared.schemas import files_sent, named_files

log = logging.getLogger(__name__)

RAW_MAX_BYTES = 35 * 1024 * 1024  # a mail as received: 25 MiB of attachments, base64-encoded, and its text
# and its lines: 25 MiB of attachments in base64's 76-character lines are 460,000; the parser keeps some 100 bytes
# a line, so 35 MiB of three-byte lines would take gigabytes
RAW_MAX_LINES = 1_000_000
SUBJECT_MAX, TEXT_MAX = 200, 20000  # as the API takes them
LONG_SUBJECT_MAX = 2000  # of a subject cut to SUBJECT_MAX, what the description keeps above the mail's words
TRUNCATED = "\n\n[Cut here: the mail was longer than a message holds. The help desk keeps the whole mail.]"
MAX_NUMBERS = 5  # "[#n]"s of a subject looked up (a subject of thousands would cost a read each)


class MailRefused(Exception):
    """A mail refused for good (SMTP 5xx): too big, or for an address this help desk does not serve."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class Outcome:
    """What a mail became: `ticket` (a new ticket), `message` (added to a ticket), `kept` (stored with a reason for
    the agents or an admin to read), `ignored` (automatic mail: stored, nothing done); `duplicate` when it was
    received before."""

    kind: str
    reason: str
    ticket_id: str | None = None
    number: int | None = None


def ticket_mail(svc: Intake, ticket_id: str, principal: Principal | None) -> list[dict]:
    """The mails about a ticket, oldest first, for the agents who see it (replies from others among them)."""
    get_ticket(svc, ticket_id, principal)  # 404 for a ticket the principal may not see
    return [_view(record) for record in svc.mails.of_ticket(ticket_id)]


def raw_mail(svc: Intake, ticket_id: str, mail_id: str, principal: Principal | None) -> tuple[dict, bytes]:
    """One mail about the ticket as it came, every byte (its text in the thread may have been cut at TEXT_MAX),
    for the agents who see the ticket; NotFound for another ticket's mail or one whose bytes are not kept."""
    record = _kept_mail(svc, ticket_id, mail_id, principal)
    return record, _bytes_of(svc, record)


def _kept_mail(svc: Intake, ticket_id: str, mail_id: str, principal: Principal | None) -> dict:
    """The record of a mail about the ticket whose bytes are kept; NotFound for another's, or the principal's
    ticket it is not."""
    get_ticket(svc, ticket_id, principal)  # 404 for a ticket the principal may not see
    record = svc.mails.find(mail_id)
    if not (record and record.get("ticket_id") == ticket_id and record.get("raw_blob")):
        raise NotFound(f"No mail {mail_id} about ticket {ticket_id}.")
    return record


def _bytes_of(svc: Intake, record: dict) -> bytes:
    data = svc.blobs.read(record["raw_blob"])
    if data is None:  # its record written, its bytes not (yet): as good as no mail
        raise NotFound(f"No mail {record['_id']} about ticket {record.get('ticket_id')}.")
    return data


def mail_text(svc: Intake, ticket_id: str, mail_id: str, principal: Principal | None) -> tuple[dict, str]:
    """One mail about the ticket as its text reads whole (what it quotes, the mails it carries, never cut), read
    from its bytes the first time and kept beside them, with portal links and tokens hidden as in the thread: for
    the agents who see the ticket (the bytes themselves are admins', `raw_mail`). NotFound as `raw_mail`."""
    record = _kept_mail(svc, ticket_id, mail_id, principal)
    text_blob = f"{record['raw_blob']}.{TEXT_VERSION}"  # read once (a large HTML mail takes seconds of CPU), kept
    kept = svc.blobs.read(text_blob)
    if kept is not None:
        return record, kept.decode("utf-8")
    text = redact_tokens(inbound.parse(_bytes_of(svc, record), record.get("sender") or "").full_text)
    svc.blobs.put(text_blob, text.encode("utf-8"), {"kind": "mail-text", "message_id": record.get("message_id")})
    return record, text


def mail_file(svc: Intake, ticket_id: str, mail_id: str, n: int, principal: Principal | None) -> tuple[str, str, bytes]:
    """The n-th file (from 1, as the mail's record lists them) of a mail about the ticket, read from its bytes:
    (its file name, the Content-Type to serve it with, its bytes), for the agents who see the ticket. A mail kept
    for the agents keeps its files only there (a ticket's own files are the requester's too). A file that may hold
    the requester's link (`_may_hold_a_link`: a mail carried whole, a text with a token) is the admins' (the mail's
    whole text has it with links hidden). NotFound as `raw_mail`, for a file the mail does not have, and for one
    that is not the one the record names (read otherwise since: the page's link would give another)."""
    record = _kept_mail(svc, ticket_id, mail_id, principal)
    found = inbound.files_of(_bytes_of(svc, record))
    listed = record.get("attachments") or []
    if not 1 <= n <= min(len(found), len(listed)):
        raise NotFound(f"Mail {mail_id} has no file {n}.")
    attachment, named = found[n - 1], listed[n - 1]
    if (_named_as_then(attachment.filename, named.get("filename")), attachment.content_type, len(attachment.data)) != (
        named.get("filename"),
        named.get("content_type"),
        named.get("size"),
    ):
        raise NotFound(f"File {n} of mail {mail_id} reads otherwise now than when the mail came.")
    if _may_hold_a_link(attachment) and (principal is None or principal.role != "admin"):
        raise NotFound(f"File {n} of mail {mail_id} may hold the requester's link: its text is in the mail's text.")
    name, data = files.clean_filename(attachment.filename), attachment.data
    return name, files.served_type(attachment.content_type, data), data


def _named_as_then(name: str, listed: str | None) -> str:
    """A file's name as the mail's record lists it: an unnamed part was "attachment-N.bin" before its type gave it
    an extension ("attachment-N.ics"); the same part still."""
    stem, _, _ = name.rpartition(".")
    return listed if listed == f"{stem}.bin" and GENERATED_NAME.fullmatch(name) else name


MAIL_FILE_NAMES = (".eml", ".emlx", ".msg", ".mht", ".mhtml")
_HEADERS = re.compile(rb"(?:Return-Path|Received|From|To|Date|Subject|Message-ID|MIME-Version|Delivered-To):", re.I)


def _may_hold_a_link(attachment: inbound.InboundAttachment) -> bool:
    """Whether a mail's file may hold the requester's link as it came: a mail (by its type, its name, or bytes
    that start as a mail's headers do), or a text in which a token stands."""
    if attachment.content_type in MAILS or attachment.filename.lower().endswith(MAIL_FILE_NAMES):
        return True
    start = attachment.data[:4096]
    if _HEADERS.match(start.lstrip()):
        return True
    text = attachment.data[: TEXT_MAX * 4].decode("utf-8", errors="replace")
    return redact_tokens(text) != text


TEXT_VERSION = "text-2"  # a mail's whole text as mail_text keeps it: a new way of reading mail is read anew


def mail_page(svc: Intake, outcome: str | None, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """Inbound mails, newest first (an admin's view: what was kept or ignored, and why)."""
    records, next_cursor = svc.mails.page(outcome, limit, cursor)
    return [_view(record) for record in records], next_cursor


def _view(record: dict) -> dict:
    return {**record, "id": record["_id"], "whole": bool(record.get("raw_blob"))}


MAILBOX = re.compile(r"[^@\s]+@[^@\s]+")  # local@domain: what a recipient must at least look like


def accepts(svc: Intake, address: str) -> bool:
    """Whether mail for `address` is taken: a mailbox's address (never `<>` or a bare word, but the bare
    `postmaster` RFC 5321 has every server take) and, when TICKETFLOW_INBOUND_ADDRESSES is set, one of its
    patterns."""
    address = address.strip().lower()
    patterns = svc.settings.inbound_addresses
    if address == "postmaster":
        return True
    if MAILBOX.fullmatch(address) is None:
        return False
    return not patterns or any(fnmatchcase(address, pattern) for pattern in patterns)


def receive(svc: Intake, raw: bytes, envelope_sender: str, recipients: list[str]) -> Outcome:
    """Store one mail's effect; MailRefused when it is refused for good; storage errors propagate (try again)."""
    if (problem := too_large(raw)) is not None:
        raise MailRefused(552, problem)
    # a mail received before (an MTA that retries, a poller that saw it twice) is known by its headers alone:
    # its body, which may cost seconds to read, is not read again
    key = inbound.key_of(raw)
    if (done := _received_before(svc, key)) is not None:
        return done
    mail = inbound.parse(raw, envelope_sender, recipients, own_addresses=[svc.settings.notify_from])
    _check_sizes(mail)
    if mail.key != key and (done := _received_before(svc, mail.key)) is not None:  # a header the parse read otherwise
        return done
    svc.blobs.put(_blob_id(mail), raw, {"kind": "mail", "message_id": mail.message_id})
    outcome = _decide_and_apply(svc, mail)
    svc.mails.finish(mail.key, _record(mail, outcome))
    log.info("mail %s from %s: %s (%s)", mail.message_id or mail.key[:12], mail.sender or "-", outcome.kind,
             outcome.reason)  # fmt: skip
    return outcome


def too_large(raw: bytes) -> str | None:
    """Why a mail is too large to read (its bytes, or its lines), in words; None when it is not."""
    if len(raw) > RAW_MAX_BYTES:
        return f"The mail is larger than {RAW_MAX_BYTES // (1024 * 1024)} MiB."
    if raw.count(b"\n") > RAW_MAX_LINES:
        return f"The mail has more than {RAW_MAX_LINES:,} lines."
    return None


def _received_before(svc: Intake, key: str) -> Outcome | None:
    done = svc.mails.find(key)
    if done is not None and done.get("outcome") and not done.get("given_up"):  # given up on: tried as new
        return Outcome("duplicate", f"received before: {done['outcome']}", done.get("ticket_id"), done.get("number"))
    return None


def record_refused(svc: Intake, raw: bytes, envelope_sender: str, reason: str, given_up: bool = False) -> None:
    """Keep a record of a mail refused for good that no sender will hear of (one polled from a mailbox): the
    admins' "Mail in" page shows it, and the mail stays flagged in the mailbox. `given_up`: refused for a fault
    that may be mended (mail.imap_deliverer): the same mail delivered again is taken as new, and its record then
    replaces this one."""
    readable = inbound.headers_only(raw) if too_large(raw) else raw  # a mail too large to read: its headers
    mail = inbound.parse(readable, envelope_sender, [], own_addresses=[svc.settings.notify_from])
    record = _record(mail, Outcome("refused", f"{reason} Left flagged in the mailbox."))
    svc.mails.finish(mail.key, {**record, "raw_blob": None, **({"given_up": True} if given_up else {})})


def _check_sizes(mail: inbound.InboundMail) -> None:
    problem = over_the_limits((attachment.filename, len(attachment.data)) for attachment in mail.attachments)
    if problem is not None:
        limit, name = problem
        if limit == "file":
            raise MailRefused(552, f"The attachment {name!r} is larger than {mib(ATTACHMENT_MAX_BYTES)}.")
        raise MailRefused(552, f"The attachments are larger than {mib(ATTACHMENTS_MAX_BYTES)} together.")


def _decide_and_apply(svc: Intake, mail: inbound.InboundMail) -> Outcome:
    ticket = _ticket_replied_to(svc, mail)
    answers = ticket is not None or answers_our_mail(mail.references)
    automatic = mail.automatic or (answers and auto_reply_by_subject(mail.subject))
    if automatic:
        return Outcome("ignored", f"automatic mail: {automatic}", ticket and ticket.id, ticket and ticket.number)
    if not mail.sender:
        where = (ticket and ticket.id, ticket and ticket.number)
        return Outcome("kept", "its From names no one sender address to believe", *where)
    if forged := forged_sender(mail, svc.settings.inbound_verified_by):
        what = "not posted as the requester" if ticket is not None else "no ticket opened"
        return Outcome("kept", f"{forged}: {what}", ticket and ticket.id, ticket and ticket.number)
    if ticket is None:
        return _open_ticket(svc, mail, follows=None)
    if not same_email(mail.sender, ticket.requester.get("email")):
        kept = f"a reply from {mail.sender}, who is not the ticket's requester: kept for the agents"
        return _keep_for_agents(svc, mail, ticket, "another_sender", kept)
    ticket = _where_it_goes_on(svc, ticket)
    message_id = _derived(mail, "message")[:32]
    if any(entry["id"] == message_id for entry in ticket.thread):  # delivered before, as far as the message
        _store_attachments(svc, mail, ticket.id, message_id)
        return Outcome("message", "added the requester's reply", ticket.id, ticket.number)
    if ticket.status == "closed":
        # a reply to an older email of a closed ticket: into the follow-up a mail opened for it, while it is open
        # (this mail's own follow-up first: a delivery again after it opened one, before its record was written)
        own = svc.tickets.find(_derived(mail, "ticket")[:32])
        words = follows_up_words(ticket.number)
        follow_up = None if own else svc.tickets.open_follow_up(mail.sender, ticket.number, words)
        if follow_up is None:
            return _open_ticket(svc, mail, follows=ticket)
        ticket = follow_up
        if any(entry["id"] == message_id for entry in ticket.thread):  # delivered before, into the follow-up
            _store_attachments(svc, mail, ticket.id, message_id)
            return Outcome("message", "added the requester's reply", ticket.id, ticket.number)
    return _add_message(svc, mail, ticket, message_id)


MERGES_FOLLOWED = 5  # a duplicate merged into one merged in its turn...: at most this many steps


def _where_it_goes_on(svc: Intake, ticket: Ticket) -> Ticket:
    """The request a reply to `ticket` goes to: the one it was merged into (its resolution and emails send the
    requester there: a reply to them is about that request, and would otherwise reopen the duplicate, away from
    those working on it), followed while that one was merged too; `ticket` itself otherwise, or when the one kept is
    not found, not the same requester's, or came from the web form (anyone may have typed the address there, and
    read the request from that browser: it never receives the requester's mail, as a follow-up never does). A
    duplicate reopened after its merge (its requester said it was not the same after all) has no `merged_into` any
    more: its replies stay there."""
    for _ in range(MERGES_FOLLOWED):
        if not ticket.merged_into or ticket.status not in ("resolved", "closed"):
            return ticket
        kept = svc.tickets.find_by_number(ticket.merged_into)
        theirs = kept is not None and same_email(kept.requester.get("email"), ticket.requester.get("email"))
        if not theirs or kept.id == ticket.id or kept.source == "web":
            return ticket
        ticket = kept
    return ticket


def forged_sender(mail: inbound.InboundMail, trusted: tuple[str, ...]) -> str | None:
    """Why the mail's From may be forged: an MTA the desk trusts (TICKETFLOW_INBOUND_VERIFIED_BY, by the authserv-id
    its Authentication-Results carry) found that it fails DMARC. None otherwise: no such MTA set, or none of
    them said so (a domain without a DMARC policy is believed, as every mail was before).

    Any trusted header that says "fail" counts: an MTA removes headers that forge its own id (RFC 8601), and a
    forged "pass" beside its "fail" would not undo it."""
    for server, method, result in mail.authentication:
        if server in trusted and method == "dmarc" and result == "fail":
            return f"the sender's address failed DMARC at {server}, so the mail may not be from {mail.sender}"
    return None


def _ticket_replied_to(svc: Intake, mail: inbound.InboundMail) -> Ticket | None:
    """The ticket a reply names: by notify's Message-IDs in In-Reply-To/References first, else by [#number].

    A subject may hold several numbers: "[#100076] Re: [#100063] VPN" is the receipt of a follow-up to closed
    #100063 opened before follow-ups lost the "Re: [#n]" (follow_up_subject), kept in a reply as it asks. The
    sender's own tickets come first, open before closed, each in the subject's order; then anyone's (kept, not
    posted: not its requester)."""
    for ticket_id in mail.referenced_ticket_ids:
        ticket = svc.tickets.find(ticket_id)
        if ticket is not None:
            return ticket
    found = [ticket for number in mail.ticket_numbers[:MAX_NUMBERS] if (ticket := svc.tickets.find_by_number(number))]
    theirs = lambda ticket: same_email(ticket.requester["email"], mail.sender)  # noqa: E731
    ranked = sorted(found, key=lambda ticket: (not theirs(ticket), ticket.status == "closed"))  # stable: in order
    return ranked[0] if ranked else None


# What a mail client puts before a subject it answers or forwards (English, German, Nordic, Dutch, French, Italian,
# Polish, Spanish...), with Outlook's count ("RE[2]:"), and ticket tags ("[#100063]").
_ANSWERED = re.compile(
    r"^(?:\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|antw|tr|rif|odp|rv|enc)\s*(?:\[\d+\])?\s*[:\uff1a]|\[#\d+\]))+\s*",
    re.IGNORECASE,
)


def follow_up_subject(subject: str, closed: str) -> str:
    """A follow-up's subject: the mail's, without the "Re:" and "[#n]" its answer put before it (the description
    says which ticket it follows, and its receipt gets its own number); the closed ticket's when nothing is left."""
    return _ANSWERED.sub("", subject) or closed


def _open_ticket(svc: Intake, mail: inbound.InboundMail, follows: Ticket | None) -> Outcome:
    body = _clip(redact_tokens(mail.full_text if follows is None else mail.text), TEXT_MAX)
    # without the "Re: Re:", "Fwd:" or a tag of a ticket we do not have ("[#999999]": its receipt gets its own)
    subject = _ANSWERED.sub("", mail.subject) or mail.subject
    if follows is not None:
        subject = follow_up_subject(subject, follows.subject)
    if len(subject) > SUBJECT_MAX:  # cut to what a ticket's subject holds: the whole above the mail's words
        whole = _clip(subject, LONG_SUBJECT_MAX, "…")  # (up to a length that leaves the words their room)
        body = _clip(f"Subject: {whole}\n\n{body.strip() or inbound.NO_TEXT}", TEXT_MAX)
    if follows is not None:  # first: notify's receipt reads the description's start to say what it follows up
        body = _clip(f"{follows_up_words(follows.number)}\n\n{body}", TEXT_MAX)
    request = {
        "subject": _clip(subject, SUBJECT_MAX, "…") or "(no subject)",
        "description": body.strip() or inbound.NO_TEXT,
        "requester": {"name": _clip(mail.sender_name, 200, "") or mail.sender, "email": mail.sender},
        "topic": _topic(svc, mail, follows),
        "priority": "normal",
        "source": "email",
    }
    try:
        request = TicketCreateSchema().load(request)
    except ValidationError as invalid:
        return Outcome("kept", f"cannot open a ticket from it: {_first_problem(invalid.messages)}")
    if mail.message_id and events.MAIL_MESSAGE_ID.fullmatch(mail.message_id):
        request["mail_message_id"] = mail.message_id  # its receipt answers this mail: the requester's thread
    ticket_id = _derived(mail, "ticket")[:32]
    existing = svc.tickets.find(ticket_id)
    if existing is not None:  # a delivery before this one opened it, then stopped short of recording the mail
        _store_attachments(svc, mail, existing.id, None)
        return Outcome("ticket", _opened(follows), existing.id, existing.number)
    if (again := _said_before(svc, mail)) is not None:
        return again
    try:
        within_rate_limit(svc, "tickets", mail.sender)
    except TooManyRequests as limited:
        return Outcome("kept", f"not opened: {limited.detail}")
    # what open_follow_up looks for; on every mailed ticket, so that only those opened before it was written are
    # known by their description
    mark = {"follows_up": follows.number if follows is not None else None}
    ticket, _ = open_new(svc, ticket_id, request, mark=mark)  # or another mail process's, opened the same moment
    _store_attachments(svc, mail, ticket.id, None)  # after the ticket: a crash before is completed on redelivery
    return Outcome("ticket", _opened(follows), ticket.id, ticket.number)


SAID_BEFORE = timedelta(hours=1)


def _said_before(svc: Intake, mail: inbound.InboundMail) -> Outcome | None:
    """Kept, not opened, when the same sender's same subject, words and files opened a ticket within the hour
    through another mail: an auto-responder that ignores Auto-Submitted and answers each receipt with a mail naming no
    ticket would otherwise open a ticket, and get a receipt, again and again (and a mail sent twice is one
    request). The first mail's claim stays its own: a redelivery of it goes on opening its ticket."""
    words = " ".join(f"{_ANSWERED.sub('', mail.subject)}\n{mail.text}".casefold().split())  # without its "Re:"
    # and its files: two scans sent with the same cover words are two requests (a tester's second was shelved)
    files = "\n".join(hashlib.sha256(file.data).hexdigest() for file in mail.attachments if not file.answered)
    digest = hashlib.sha256(f"{mail.sender}\n{words}\n{files}".encode("utf-8", "surrogatepass")).hexdigest()
    at = now()
    if svc.limits.first(f"mail-words|{digest}", mail.key, at + SAID_BEFORE) == mail.key:
        return None
    return Outcome("kept", "the same sender's same words opened a ticket less than an hour ago (an auto-responder "
                   "answering each receipt, or the mail sent again): not opened twice")  # fmt: skip


def _opened(follows: Ticket | None) -> str:
    """What a mail that opened a ticket did, for the admins' "Mail in" page (beside "Ticket #N")."""
    return "opened a ticket" if follows is None else f"opened a follow-up to #{follows.number}, which is closed"


def _add_message(svc: Intake, mail: inbound.InboundMail, ticket: Ticket, message_id: str) -> Outcome:
    """The requester's reply on the ticket, then its files (a crash between: the redelivery stores them). A reply
    with no words of its own (only the mail it answers, quoted) is a message naming its files when it has some (a
    phone's "reply with a photo"), else kept: the quoted mail is not the requester's words."""
    body, names = _words_and_files(svc, mail, ticket.id)
    if not body:
        reason = "not added: the reply has no words of its own, only the mail it answers"
        return Outcome("kept", reason, ticket.id, ticket.number)
    try:
        within_rate_limit(svc, "messages", mail.sender)
    except TooManyRequests as limited:
        return Outcome("kept", f"not added: {limited.detail}", ticket.id, ticket.number)

    def write(ticket: Ticket):
        if any(entry["id"] == message_id for entry in ticket.thread):
            return NO_CHANGE  # this mail, delivered before (or by another mail process just now)
        ticket.add_message(message_id, body, now(), names, by_mail=True)

    try:
        change_ticket(svc, ticket.id, write, None)
    except TicketClosed:  # closed between the lookup and the write
        return _open_ticket(svc, mail, follows=svc.tickets.get(ticket.id))
    except ThreadFull as full:  # its words, found and counted in the sender's hour already
        kept = f"not added: {full}"
        return _keep_for_agents(svc, mail, svc.tickets.get(ticket.id), "thread_full", kept, (body, names))
    _store_attachments(svc, mail, ticket.id, message_id)
    return Outcome("message", "added the requester's reply", ticket.id, ticket.number)


def _words_and_files(svc: Intake, mail: inbound.InboundMail, ticket_id: str) -> tuple[str, list[str]]:
    """What a reply brings of its own: its words (without what it quotes, links' tokens hidden), or, with none,
    words that name its files (a phone's "reply with a photo"); and the names of its files (not the mail it
    answers, not a logo the ticket has already: `_repeated_inline`)."""
    files = [one for one in mail.attachments if not one.answered and not _repeated_inline(svc, ticket_id, one)]
    names = named_files(attachment.filename for attachment in files)
    body = _clip(redact_tokens(mail.own_text).strip(), TEXT_MAX)
    if not body and names:
        body = _clip(files_sent(names, len(files)), TEXT_MAX)
    return body, names


MAIL_KEPT_ANNOUNCED_PER_HOUR = 5  # mails kept on one ticket that email its agent in an hour (senders may vary)


def _keep_for_agents(
    svc: Intake,
    mail: inbound.InboundMail,
    ticket: Ticket,
    why: str,
    reason: str,
    counted: tuple[str, list[str]] | None = None,
) -> Outcome:
    """A mail about the ticket kept on its page, not in the conversation; its `ticket.mail_kept` tells the agent
    (once however often the mail comes), unless it has no words of its own or files, its sender has written more
    than their hourly limit of messages (`counted`: the mail's words and files, found by a caller that counted it
    in that hour already), or the ticket has had MAIL_KEPT_ANNOUNCED_PER_HOUR such emails this hour (a loop, or a
    flood from addresses made up one by one: the page still shows each mail)."""
    outcome = Outcome("kept", reason, ticket.id, ticket.number)
    body, names = counted or _words_and_files(svc, mail, ticket.id)
    if not body:
        return outcome
    not_emailed = lambda why_not: Outcome("kept", f"{reason} (its agent not emailed: {why_not})", ticket.id,  # noqa: E731
                                          ticket.number)  # fmt: skip
    if counted is None:
        try:
            within_rate_limit(svc, "messages", mail.sender)
        except TooManyRequests:
            return not_emailed(f"{mail.sender} wrote too often this hour")
    hour = now().replace(minute=0, second=0, microsecond=0)
    if svc.limits.hit(f"mail_kept|{ticket.id}|{hour:%Y-%m-%dT%H}", hour + RATE_WINDOW) > MAIL_KEPT_ANNOUNCED_PER_HOUR:
        return not_emailed(f"more than {MAIL_KEPT_ANNOUNCED_PER_HOUR} mails were kept on this ticket this hour")
    sender = {"name": _clip(mail.sender_name or mail.sender, 200, "…"), "email": mail.sender}
    subject = _clip(mail.subject or "", 998, "…") or None
    keep = lambda t: t.keep_mail(mail.key, why, sender, subject, body, names) or NO_CHANGE  # noqa: E731
    try:
        change_ticket(svc, ticket.id, keep, None)
    except ValidationError as invalid:  # an address the events' schema refuses: the page shows the mail all the same
        log.warning("mail %s kept on ticket %s, its agent not emailed: %s", mail.key[:12], ticket.id, invalid.messages)
    return outcome


def _repeated_inline(svc: Intake, ticket_id: str, attachment: inbound.InboundAttachment) -> bool:
    """An image shown inside the mail (a signature's logo) whose very bytes the ticket has already: every mail of
    a thread brings the logo again, and each one piled up as another "image001.png" beside the real files."""
    return attachment.inline and svc.attachments.holds(ticket_id, attachment.data)


def _store_attachments(svc: Intake, mail: inbound.InboundMail, ticket_id: str, message_id: str | None) -> None:
    """The mail's files on the ticket, ids derived from the mail and the ticket: once however often it comes. An
    image shown inside the mail that the ticket has already (`_repeated_inline`) is not stored again, nor the mail
    it answers, attached whole (Outlook's "attach original message"): one of the desk's, which holds the requester's
    link (a ticket's files are every agent's to download), and no file the message names (`_words_and_files`); its
    text is in the mail's whole text, links hidden, and the mail as it came is the admins'."""
    seed = _derived(mail, f"attachment:{ticket_id}")[:24]
    for n, attachment in enumerate(mail.attachments):
        if attachment.answered or _repeated_inline(svc, ticket_id, attachment):  # (repeated: stored already)
            continue
        svc.attachments.put(
            ticket_id, f"{seed}-{n}", files.clean_filename(attachment.filename),
            files.declared_type(attachment.content_type), attachment.data, message_id, "email",
        )  # fmt: skip


def _topic(svc: Intake, mail: inbound.InboundMail, follows: Ticket | None = None) -> str:
    """A follow-up's: the closed ticket's topic while it is offered (so its team, who know the story, has it);
    else the topic of the first recipient address that names one (TICKETFLOW_INBOUND_TOPICS), if intake knows it."""
    if follows is not None and svc.topics.known(follows.topic):
        return follows.topic
    topics = dict(svc.settings.inbound_topics)
    for recipient in mail.recipients:
        topic = topics.get(recipient.strip().lower())
        if topic and svc.topics.known(topic):
            return topic
    return DEFAULT_TOPIC


def _record(mail: inbound.InboundMail, outcome: Outcome) -> dict:
    """What is kept of the mail beside its raw bytes: enough for an agent or an admin to read what happened."""
    return {
        "message_id": mail.message_id,
        "sender": mail.sender,
        "sender_name": mail.sender_name,
        "recipients": list(mail.recipients),
        "subject": redact_tokens(mail.subject) if mail.subject else mail.subject,
        "text": _clip(redact_tokens(mail.text), TEXT_MAX),
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": len(a.data)} for a in mail.attachments
        ],  # fmt: skip
        "defects": list(mail.defects),
        "outcome": outcome.kind,
        "reason": outcome.reason,
        "ticket_id": outcome.ticket_id,
        "number": outcome.number,
        "raw_blob": _blob_id(mail),
        "received_at": now(),
    }


def _blob_id(mail: inbound.InboundMail) -> str:
    return f"mail-{mail.key[:40]}"


def _derived(mail: inbound.InboundMail, what: str) -> str:
    """An id of this mail's `what`, the same on every delivery of the mail."""
    return hashlib.sha256(f"{what}:{mail.key}".encode()).hexdigest()


def _clip(text: str, limit: int, note: str = TRUNCATED) -> str:
    return text if len(text) <= limit else text[: limit - len(note)] + note


def _first_problem(messages: dict, prefix: str = "") -> str:
    for name, problem in messages.items():
        if isinstance(problem, dict):
            return _first_problem(problem, f"{prefix}{name}.")
        return f"{prefix}{name}: {' '.join(problem) if isinstance(problem, list) else problem}"
    return "invalid"
