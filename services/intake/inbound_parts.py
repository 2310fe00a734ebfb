"""The parts of an inbound email: which are its body, and each other one as an attachment with a safe file name."""

from __future__ import annotations

import os
import re
import unicodedata
from email import errors, policy
from email.message import Message

from services.intake.inbound_mime import POLICY, one_line, unfold_8bit

MAX_FILENAME = 255  # what file systems take, and plenty for a list on a ticket
MAILS = frozenset({"message/rfc822", "message/global"})


def is_body(part: Message) -> bool:
    """A text/plain or text/html part with no file name and not marked attachment: text the person wrote.

    A multipart leaf is a container the parser left closed (a headers-only parse): its text is the body too.
    """
    maintype, subtype = part.get_content_maintype(), part.get_content_subtype()
    if maintype == "multipart":
        return True
    if maintype != "text" or subtype not in ("plain", "html") or part.get_content_disposition() == "attachment":
        return False
    return not _declared_filename(part)


def payload(part: Message, where: str, defects: list[str]) -> bytes:
    """The part's content as bytes: transfer encoding undone; an attached mail as it would be saved (.eml)."""
    if part.get_content_maintype() == "message":
        return _serialized(part, where, defects)
    try:
        data = part.get_payload(decode=True)  # base64 it cannot decode comes back raw, with a defect on the part
    except Exception as exc:
        defects.append(f"{where}: payload could not be decoded ({type(exc).__name__}), kept as raw bytes")
        data = None
    if any(isinstance(defect, errors.InvalidBase64LengthDefect) for defect in part.defects):
        defects.append(f"{where}: base64 could not be decoded, kept as raw bytes")
    return data if isinstance(data, bytes) else b""


def _serialized(part: Message, where: str, defects: list[str]) -> bytes:
    """An attached mail (or report block) as bytes again; compat32 writes the headers back as they came."""
    try:
        if not part.is_multipart():  # not parsed as a mail: its bytes (never get_payload(): it decodes by charset)
            data = part.get_payload(decode=True)
            return data if isinstance(data, bytes) else b""
        blocks = [block for block in part.get_payload() if isinstance(block, Message)]
        return b"".join(block.as_bytes(policy=policy.compat32) for block in blocks)
    except Exception as exc:
        defects.append(f"{where}: the attached mail could not be written back ({type(exc).__name__})")
        return b""


def _declared_filename(part: Message) -> str:
    try:
        return part.get_filename() or ""
    except Exception:
        return ""


def filename(part: Message, index: int, content_type: str, subject: str = "") -> str:
    """The declared name decoded, without folders or controls, at most 255 characters; else, for an attached mail,
    its `subject` + .eml; else attachment-N.bin."""
    name = _declared_filename(part)
    if "=?" in name:  # an encoded word inside a quoted parameter (Outlook, Gmail): decode it as a header would
        name = str(POLICY.header_factory("subject", unfold_8bit(name)))
    name = re.split(r"[/\\]", one_line(name))[-1]
    # no format characters: a right-to-left override would show `invoice<RLO>fdp.exe` as "invoiceexe.pdf"
    name = "".join(char for char in name if unicodedata.category(char) != "Cf").strip()
    if name in ("", ".", "..") and content_type in MAILS:  # a forwarded mail: by its subject, as mail programs do
        subject = _UNSAFE_IN_NAME.sub("-", subject)[: MAX_FILENAME - 4].strip(" .")
        name = f"{subject}.eml" if subject else ""
    if name in ("", ".", ".."):
        return f"attachment-{index}{'.eml' if content_type in MAILS else EXTENSIONS.get(content_type, '.bin')}"
    if len(name) > MAX_FILENAME:
        stem, extension = os.path.splitext(name)
        name = stem[: MAX_FILENAME - len(extension)] + extension if len(extension) < 16 else name[:MAX_FILENAME]
    return name


_UNSAFE_IN_NAME = re.compile(r'[/\\:*?"<>|]+')  # what a file name may not hold on some systems
GENERATED_NAME = re.compile(r"attachment-\d+\.\w+")  # `filename`'s name for a part that gave none
# an unnamed part's extension by its type, so that the file opens in its program once downloaded (a calendar
# invite was "attachment-1.bin"); a fixed list, not the system's mime.types, which differs between machines
EXTENSIONS = {
    "text/calendar": ".ics", "text/plain": ".txt", "text/csv": ".csv", "text/html": ".html", "application/pdf": ".pdf",
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp", "image/heic": ".heic",
    "application/zip": ".zip", "application/ms-tnef": ".dat", "message/delivery-status": ".txt",
    "text/rfc822-headers": ".txt", "message/disposition-notification": ".txt",
}  # fmt: skip


def calendar_text(data: bytes, charset: str | None = None) -> str:
    """What a calendar invite (text/calendar) says, as a person reads it: its summary, when, where, who invites and
    its description; "" when it holds none of those. For a mail that is only an invite (no text of its own)."""
    unfolded = re.sub(rb"\r?\n[ \t]", b"", data[:200_000])  # RFC 5545's folding, undone on the bytes: it may cut a
    try:  # character in two
        text = unfolded.decode(charset or "utf-8", errors="replace")
    except LookupError:
        text = unfolded.decode("utf-8", errors="replace")
    lines = text.replace("\r\n", "\n").split("\n")
    found: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        key = name.split(";", 1)[0].strip().upper()
        if key in _CALENDAR_WORDS and key not in found and value.strip():
            zone = re.search(r";TZID=([^;:]+)", name, re.IGNORECASE)
            value = value.strip().replace("\\n", "\n").replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")
            if key in ("DTSTART", "DTEND"):
                value = _calendar_time(value) + (f" ({zone.group(1)})" if zone else "")
            if key == "ORGANIZER":
                value = value.removeprefix("mailto:").removeprefix("MAILTO:")
            found[key] = one_line(value) if key != "DESCRIPTION" else value.strip()
    said = [f"{_CALENDAR_WORDS[key]}: {found[key]}" for key in _CALENDAR_WORDS if key in found and key != "DESCRIPTION"]
    if not said and "DESCRIPTION" not in found:
        return ""
    return "\n".join(["A calendar invitation.", *said, *(["", found["DESCRIPTION"]] if "DESCRIPTION" in found else [])])


_CALENDAR_WORDS = {"SUMMARY": "What", "DTSTART": "Starts", "DTEND": "Ends", "LOCATION": "Where",
                   "ORGANIZER": "Invited by", "DESCRIPTION": "Description"}  # fmt: skip


def _calendar_time(value: str) -> str:
    """20261207T100000Z as 2026-12-07 10:00 UTC, 20261207 as 2026-12-07; anything else as it is."""
    found = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})\d{2}(Z?))?", value)
    if not found:
        return value
    year, month, day, hour, minute, utc = found.groups()
    return f"{year}-{month}-{day}" + (f" {hour}:{minute}" if hour else "") + (" UTC" if utc else "")


def attached_mail(part: Message) -> Message | None:
    """The mail a message/rfc822 (or message/global) part carries, parsed; None when the parser made none."""
    inner = part.get_payload()
    inner = inner[0] if isinstance(inner, list) and inner else None
    return inner if isinstance(inner, Message) else None


def content_id(part: Message) -> str | None:
    value = part.get("content-id")
    found = "".join(one_line(str(value)).split()).strip("<>") if value is not None else ""
    return found[:998] or None
