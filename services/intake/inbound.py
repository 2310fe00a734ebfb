"""One inbound email read into what intake needs: who wrote, about what, what they wrote now, what they attached,
whether a machine sent it, and which ticket it answers.

Pure: bytes in, an InboundMail out; no I/O. It never raises on what arrives (malformed MIME, bad base64, unknown
charsets, 8-bit headers): it reads what it can and lists what was wrong in `defects`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.utils import parseaddr

from services.intake import inbound_headers as headers_of
from services.intake.inbound_headers import OWN_MESSAGE_DOMAIN
from services.intake.inbound_mime import (
    POLICY,
    Part,
    all_parts,
    clean,
    decode_bytes,
    leaves,
    one_line,
    parse_bytes,
    raw_headers,
    safe_codec,
    unique,
    words,
)
from services.intake.inbound_parts import (
    GENERATED_NAME,
    MAILS,
    attached_mail,
    calendar_text,
    content_id,
    filename,
    is_body,
    payload,
)
from services.intake.inbound_text import FORWARD_SUBJECT, html_to_text, own_words, tidy

__all__ = ["OWN_MESSAGE_DOMAIN", "InboundAttachment", "InboundMail", "parse"]

# the HTML of one mail, every part together: it turns into text at 0.5 to 3 s of CPU a MiB (the rest is cut), so a
# mail of many large HTML parts would hold a receiving thread for minutes
MAX_HTML_CHARS = 4 * 1024 * 1024
_IMAGE_PLACE = re.compile(r"\[cid:[^\]\s]{1,200}\]")
MAX_TEXT_CHARS = 1_000_000  # of one text/plain part: what the mail's whole text shows agents, and its quote cut reads
MAX_DEFECTS = 100
_TICKET_NUMBER = re.compile(r"\[#(\d{1,18})\]")


@dataclass(frozen=True)
class InboundAttachment:
    filename: str  # decoded, path parts stripped, never empty ("attachment-1.bin" when none)
    content_type: str  # as declared, lowercased
    data: bytes  # decoded payload (the raw bytes when it could not be decoded: see defects)
    inline: bool  # has a Content-ID and is not Content-Disposition: attachment (an image in the HTML)
    content_id: str | None  # without <>
    answered: bool = False  # a copy of the mail being answered, or of one of ours, attached whole: not the person's


@dataclass(frozen=True)
class InboundMail:
    key: str  # sha256 hex of the Message-ID, or of the raw bytes when there is none: one effect per mail
    message_id: str | None  # without <>, stripped; None when missing or empty
    sender: str  # From's address, lowercased; "" when none or unparseable
    sender_name: str  # From's display name, else the local part of the address
    envelope_sender: str  # SMTP MAIL FROM as given (without <>); "" for the null sender
    recipients: tuple[str, ...]  # the envelope's RCPT TO, lowercased; To and Cc when none were given
    subject: str  # decoded, whitespace collapsed
    text: str  # what the person wrote now: no quoted earlier mail, no signature (full_text when nothing is left)
    full_text: str  # the whole text body (text/plain, else the HTML as text), quotes included, then attached mails
    ticket_numbers: tuple[int, ...]  # each "[#123456]" of the subject, in its order (the newest prefix first)
    references: tuple[str, ...]  # In-Reply-To, then References: message ids without <>, de-duplicated
    referenced_ticket_ids: tuple[str, ...]  # tickets named by our own Message-IDs among references
    automatic: str | None  # why no ticket and no receipt (auto-reply, bounce, list, loop); None for a person
    attachments: tuple[InboundAttachment, ...]
    defects: tuple[str, ...]  # what was malformed, in words, for the record
    # (authserv-id, method, result) of its Authentication-Results headers: what the MTAs in front found of it
    authentication: tuple[tuple[str, str, str], ...] = ()
    # what the person wrote now (as `text`), then the mails they attached (a vendor's answer forwarded into a reply):
    # "" when the mail holds nothing of its own, only what it quotes
    own_text: str = ""


def headers_only(raw: bytes) -> bytes:
    """The mail's header section and the blank line after it (the whole mail when it has no body)."""
    raw = bytes(raw)
    ends = [at + len(blank) for blank in (b"\r\n\r\n", b"\n\n") if (at := raw.find(blank)) >= 0]
    return raw[: min(ends)] if ends else raw


def the_desks_own(raw: bytes, own_addresses: Iterable[str] = ()) -> bool:
    """Whether a mail (a file's bytes) is one the help desk sent: a Message-ID of ours, or From one of
    `own_addresses` (notify's). Read from its header section alone."""
    try:
        headers = raw_headers(BytesParser(policy=POLICY).parsebytes(headers_only(raw), headersonly=True))
        message_id = (headers_of.message_id(headers) or "").lower()
        sender = headers_of.from_address(headers, [])[0]
    except Exception:
        return False
    own = {(parseaddr(address)[1] or address).strip().lower() for address in own_addresses} - {""}
    return message_id.endswith(f"@{OWN_MESSAGE_DOMAIN}") or sender in own


def key_of(raw: bytes) -> str:
    """The key `parse` gives a mail that names its Message-ID, from its headers alone (cheap: the body is not read,
    nor given to the parser), else the one of its bytes; so that a mail received before is known before its body
    costs anything."""
    try:
        message = BytesParser(policy=POLICY).parsebytes(headers_only(raw), headersonly=True)
        message_id = headers_of.message_id(raw_headers(message))
    except Exception:
        message_id = None
    return _key(message_id, bytes(raw))


def _key(message_id: str | None, raw: bytes) -> str:
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass") if message_id else raw).hexdigest()


def parse(
    raw: bytes, envelope_sender: str = "", recipients: Iterable[str] = (), own_addresses: Iterable[str] = ()
) -> InboundMail:
    """Read one mail. `envelope_sender` "" (or "<>") is the null sender of a bounce: the mail process passes the
    real one (for IMAP, the Return-Path or From). `own_addresses` are notify's: mail from them is a loop."""
    raw = bytes(raw)
    envelope = one_line(envelope_sender).strip("<>").strip()
    given = tuple(unique(one_line(address).strip("<>").strip().lower() for address in recipients))
    own = frozenset((parseaddr(address)[1] or address).strip().lower() for address in own_addresses) - {""}
    try:
        return _parse(raw, envelope, given, own)
    except Exception as exc:  # a bug of ours or the stdlib's: keep the mail as text rather than lose it
        text = tidy(raw.decode("utf-8", errors="replace"))
        return InboundMail(
            key=hashlib.sha256(raw).hexdigest(),
            message_id=None,
            sender="",
            sender_name="",
            envelope_sender=envelope,
            recipients=given,
            subject="",
            text=text,
            full_text=text,
            own_text=text,
            ticket_numbers=(),
            references=(),
            referenced_ticket_ids=(),
            automatic=None,
            attachments=(),
            defects=(f"the mail could not be parsed ({type(exc).__name__}: {one_line(str(exc))[:200]})",),
        )


def files_of(raw: bytes) -> tuple[InboundAttachment, ...]:
    """A mail's attachments as `parse` finds them, in its order, without reading its text (an HTML body costs
    seconds of CPU): each as `parse` gives it (but `answered`, which needs the text); () when it will not read."""
    defects: list[str] = []
    try:
        message = parse_bytes(bytes(raw), defects)
        numbers = {id(part): number for number, part in enumerate(all_parts(message))}
        others = [part.message for part in leaves(message) if not is_body(part.message)]
        return _distinct(
            tuple(_attachment(part, n, _where(part, numbers), defects) for n, part in enumerate(others, start=1))
        )
    except Exception:  # as `parse`: a mail that will not read has no files
        return ()


def _parse(raw: bytes, envelope: str, given: tuple[str, ...], own: frozenset[str]) -> InboundMail:
    defects: list[str] = []
    message = parse_bytes(raw, defects)
    headers = raw_headers(message)
    numbers = {id(part): number for number, part in enumerate(all_parts(message))}
    message_id = headers_of.message_id(headers)
    sender, sender_name = headers_of.from_address(headers, defects)
    subject = headers_of.subject(headers, defects)
    references = headers_of.references(headers)
    body, forwarded, attachments = _contents(message, numbers, defects)
    full_text = _joined(body, *(mail.text for mail in forwarded))
    # the person's own words (the quote cut), then the mails they attached: not the mail they answer, attached
    # (Outlook's "attach original message"), nor one of ours, which are no more their words than a quote is
    answered = {reference.lower() for reference in references}
    copies = {mail.index for mail in forwarded if mail.answered(answered, own)}
    forwards = bool(FORWARD_SUBJECT.match(subject))  # "FW:": its first quoted header is the mail passed on
    own_text = _joined(own_words(body, forwards), *(mail.text for mail in forwarded if mail.index not in copies))
    attachments = _distinct(tuple(dataclasses.replace(file, answered=True) if n in copies else file
                                  for n, file in enumerate(attachments, start=1)))  # fmt: skip
    numbered = _TICKET_NUMBER.findall(subject)
    return InboundMail(
        key=_key(message_id, raw),
        message_id=message_id,
        sender=sender,
        sender_name=sender_name,
        envelope_sender=envelope,
        recipients=given[: headers_of.MAX_RECIPIENTS] or headers_of.to_and_cc(headers),
        subject=subject,
        text=own_text or full_text,
        full_text=full_text,
        own_text=own_text,
        ticket_numbers=tuple(dict.fromkeys(int(number) for number in numbered)),
        references=references,
        referenced_ticket_ids=headers_of.ticket_ids(references) or _returned_ticket_ids(message, numbers, defects),
        automatic=headers_of.automatic(message, headers, sender, envelope, own),
        attachments=attachments,
        defects=_record(message, numbers, defects),
        authentication=headers_of.authentication_results(headers),
    )


def _distinct(files: tuple[InboundAttachment, ...]) -> tuple[InboundAttachment, ...]:
    """The mail's files, each of the same bytes and type once: an invite comes as the calendar part of its
    alternatives and as invite.ics beside them (a tester's ticket listed it twice). The one with a name of its own
    stays, in the first one's place."""
    kept: dict[tuple[str, str], InboundAttachment] = {}
    for file in files:
        key = (hashlib.sha256(file.data).hexdigest(), file.content_type)
        generated = GENERATED_NAME.fullmatch
        if key not in kept or (generated(kept[key].filename) and not generated(file.filename)):
            kept[key] = dataclasses.replace(file, answered=kept[key].answered or file.answered) if key in kept else file
    return tuple(kept.values())


def _returned_ticket_ids(message: Message, numbers: dict[int, int], defects: list[str]) -> tuple[str, ...]:
    """A delivery report's (multipart/report: a bounce) ticket: the one the returned mail's Message-ID names, when
    it is one of notify's; () otherwise. So that the bounce of a requester's email is on its ticket's page, where
    the agents learn that the address takes no mail (a tester's bounce was on the admins' page alone)."""
    if message.get_content_type() != "multipart/report":
        return ()
    for part in (leaf.message for leaf in leaves(message)):
        kind = part.get_content_type()
        if kind not in ("text/rfc822-headers", "message/rfc822-headers", *MAILS):
            continue
        try:
            returned = (
                attached_mail(part)
                if kind in MAILS
                else BytesParser(policy=POLICY).parsebytes(payload(part, _where(part, numbers), []), headersonly=True)
            )
            message_id = headers_of.message_id(raw_headers(returned)) if returned is not None else None
        except Exception:  # a returned part that will not read names nothing
            continue
        if found := headers_of.ticket_ids((message_id,) if message_id else ()):
            return found
    return ()


def _contents(
    message: Message, numbers: dict[int, int], defects: list[str]
) -> tuple[str, list[Forwarded], tuple[InboundAttachment, ...]]:
    """The body text (text/plain preferred, else HTML as text); the text of each mail it carries as an attachment
    (a mail forwarded "as attachment": agents read it without a mail program); every other part as an attachment
    (those mails too, whole, as .eml)."""
    html_left = [MAX_HTML_CHARS]  # for the mail and the mails it carries together: HTML costs CPU to read
    body = _text_of(message, numbers, defects, html_left)
    others = [part.message for part in leaves(message) if not is_body(part.message)]
    forwarded = [
        _forwarded(part, index, numbers, defects, html_left)
        for index, part in enumerate(others, start=1)
        if part.get_content_type() in MAILS
    ]
    attachments = tuple(
        _attachment(part, index, _where(part, numbers), defects) for index, part in enumerate(others, start=1)
    )
    return body, [mail for mail in forwarded if mail is not None], attachments


def _joined(*texts: str) -> str:
    return "\n\n".join(text for text in texts if text)


def _text_of(message: Message, numbers: dict[int, int], defects: list[str], html_left: list[int]) -> str:
    every = leaves(message)
    bodies = [part for part in every if is_body(part.message)]
    plain = _body_text(bodies, "plain", numbers, defects, html_left)
    text = plain or _body_text(bodies, "html", numbers, defects, html_left)
    if text:
        return text
    # a mail that is only a calendar invite (no words of its own): what the invite says, not "no text"
    invite = next((part.message for part in every if part.message.get_content_type() == "text/calendar"), None)
    if invite is None:
        return ""
    return calendar_text(payload(invite, _where(invite, numbers), defects), safe_codec(_charset(invite) or ""))


FORWARDED = "---------- Forwarded message ----------"  # as mail programs begin a mail forwarded inline
NO_TEXT = "(The mail had no text.)"  # what stands for the words of a mail that has none


@dataclass(frozen=True)
class Forwarded:
    """A mail attached to the mail, as text, with what tells whose it is."""

    text: str
    message_id: str | None
    sender: str
    index: int  # its place among the mail's attachments, from 1

    def answered(self, references: set[str], own: frozenset[str]) -> bool:
        """Whether it is the mail being answered (named by In-Reply-To/References) or one of the help desk's."""
        named = (self.message_id or "").lower()
        return bool(named) and (named in references or named.endswith(f"@{OWN_MESSAGE_DOMAIN}")) or self.sender in own


def _forwarded(
    part: Message, index: int, numbers: dict[int, int], defects: list[str], html_left: list[int]
) -> Forwarded | None:
    """A mail attached to this one, as a mail program shows it forwarded inline: who sent it, when, its subject,
    its text and the names of its files (those are in the .eml, not read again). None when it cannot be read."""
    inner = attached_mail(part)
    if inner is None:
        return None
    where = _where(part, numbers)
    try:
        headers = raw_headers(inner)
        said = [f"{name}: {one_line(str(inner.get(name, '')))[:300]}" for name in ("From", "Date") if inner.get(name)]
        subject = headers_of.subject(headers, [])
        text = _text_of(inner, numbers, defects, html_left)
        its_files = [leaf.message for leaf in leaves(inner) if not is_body(leaf.message)]
        files = [filename(file, n, file.get_content_type()) for n, file in enumerate(its_files, start=1)]
        sender = headers_of.from_address(headers, [])[0]
        message_id = headers_of.message_id(headers)
    except Exception as exc:  # a mail inside a mail that will not read: still the attachment it is
        defects.append(f"{where}: the attached mail could not be read as text ({type(exc).__name__})")
        return None
    said += [f"Subject: {subject}"] if subject else []
    said += [f"Attachments: {', '.join(files)}"] if files else []
    return Forwarded("\n".join([FORWARDED, *said, "", text or NO_TEXT]), message_id, sender, index)


def _attachment(part: Message, index: int, where: str, defects: list[str]) -> InboundAttachment:
    content_type = part.get_content_type()
    cid = content_id(part)
    return InboundAttachment(
        filename=filename(part, index, content_type, _subject_of(part) if content_type in MAILS else ""),
        content_type=content_type,
        data=payload(part, where, defects),
        inline=cid is not None and part.get_content_disposition() != "attachment",
        content_id=cid,
    )


def _subject_of(part: Message) -> str:
    """The subject of the mail a message/rfc822 part carries, read as the mail's own is ("" when it will not read)."""
    inner = attached_mail(part)
    try:
        return headers_of.subject(raw_headers(inner), []) if inner is not None else ""
    except Exception:  # a header the parser cannot read: the mail keeps its numbered name
        return ""


def _body_text(bodies: list[Part], kind: str, numbers: dict[int, int], defects: list[str], budget: list[int]) -> str:
    """The text of the body parts of one kind; of a multipart/alternative, the first branch that has that kind.
    `budget`: the characters of HTML still to be read as text (shared with the mails this one carries)."""
    branches: dict[int, int] = {}
    texts = []
    html_left = budget[0]
    for part in bodies:
        message = part.message
        if ("html" if message.get_content_subtype() == "html" else "plain") != kind:
            continue
        if any(branches.setdefault(group, branch) != branch for group, branch in part.alternative):
            continue
        where = _where(message, numbers)
        if kind == "html" and not html_left:
            defects.append(f"{where}: the mail's HTML is over {MAX_HTML_CHARS >> 20} MiB, not read as text")
            continue
        text = decode_bytes(payload(message, where, defects), _charset(message), where, defects)
        if kind == "plain":  # Outlook's plain alternative names each image it shows: [cid:image001.png@01DB...]
            text = _IMAGE_PLACE.sub("", text)
        if kind == "plain" and len(text) > MAX_TEXT_CHARS:  # the thread keeps 20,000; reading costs CPU and memory
            defects.append(f"{where}: the text is over {MAX_TEXT_CHARS:,} characters, only its start read")
            text = text[:MAX_TEXT_CHARS]
        if kind == "html":
            if len(text) > html_left:
                defects.append(f"{where}: the mail's HTML is over {MAX_HTML_CHARS >> 20} MiB, only its start read")
            html, html_left = text[:html_left], max(0, html_left - len(text))
            budget[0] = html_left
            text = html_to_text(html)
        texts.append(clean(text).replace("\r\n", "\n").replace("\r", "\n").strip("\n"))
    return "\n\n".join(text for text in texts if text.strip()).rstrip()


def _charset(message: Message) -> str | None:
    try:
        return message.get_content_charset()
    except Exception:
        return None


def _where(part: Message, numbers: dict[int, int]) -> str:
    number = numbers.get(id(part), 0)
    return "message" if number == 0 else f"part {number} ({part.get_content_type()})"


def _record(message: Message, numbers: dict[int, int], defects: list[str]) -> tuple[str, ...]:
    """Ours and the stdlib's defects, in words, once each, at most MAX_DEFECTS."""
    found = list(defects)
    for part in all_parts(message):
        found += [f"{_where(part, numbers)}: {words(defect)}" for defect in part.defects]
    found = unique(found)
    if len(found) > MAX_DEFECTS:
        found = [*found[: MAX_DEFECTS - 1], f"and {len(found) - MAX_DEFECTS + 1} more"]
    return tuple(found)
