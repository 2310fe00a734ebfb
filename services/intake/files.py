"""What an attached file is, as far as its first bytes tell, and how it may be served. No I/O here.

A download carries the type its sender declared only when that type is one this module can check and the
bytes agree with it (a small table of signatures: pdf, png, jpeg, gif, webp, zip and the Office/OpenDocument
formats built on it, UTF-8 text). Anything else, HTML, SVG, XML and JavaScript included, is served as
application/octet-stream: no browser renders active content from a file someone mailed in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from urllib.parse import quote

from shared.schemas import clean_filename as clean_filename  # a stored file's name (the events' too)

OCTET_STREAM = "application/octet-stream"
MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # C0 controls other than tab, newlines and form feed
ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "application/x-pdf": "application/pdf",
    "application/x-zip-compressed": "application/zip",
}


def _zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive's end record


def _text(data: bytes) -> bool:
    """UTF-8 without control characters (a BOM is fine): what a browser shows as plain text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return CONTROL.search(text) is None


_OFFICE = "application/vnd.openxmlformats-officedocument."
_OPEN_DOCUMENT = "application/vnd.oasis.opendocument."
SIGNATURES: dict[str, Callable[[bytes], bool]] = {
    "application/pdf": lambda data: data.startswith(b"%PDF-"),
    "image/png": lambda data: data.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": lambda data: data.startswith(b"\xff\xd8\xff"),
    "image/gif": lambda data: data[:6] in (b"GIF87a", b"GIF89a"),
    "image/webp": lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
    "application/zip": _zip,
    f"{_OFFICE}wordprocessingml.document": _zip,  # docx
    f"{_OFFICE}spreadsheetml.sheet": _zip,  # xlsx
    f"{_OFFICE}presentationml.presentation": _zip,  # pptx
    f"{_OPEN_DOCUMENT}text": _zip,
    f"{_OPEN_DOCUMENT}spreadsheet": _zip,
    f"{_OPEN_DOCUMENT}presentation": _zip,
    "text/plain": _text,
    "text/csv": _text,
}


def declared_type(value: str | None) -> str:
    """The media type a sender declared, as stored: lowercase, without parameters; octet-stream when unreadable."""
    kind = (value or "").split(";", 1)[0].strip().lower()
    kind = ALIASES.get(kind, kind)
    return kind if MEDIA_TYPE.match(kind) else OCTET_STREAM


def served_type(declared: str | None, data: bytes) -> str:
    """The Content-Type of a download: the declared type when the bytes agree with it, else octet-stream."""
    kind = declared_type(declared)
    check = SIGNATURES.get(kind)
    if check is None or not check(data):
        return OCTET_STREAM
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind


def ascii_filename(name: str) -> str:
    """A plain-ASCII stand-in for clients that do not read filename*: accents dropped, anything odd as _."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    plain = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", plain).strip()
    stem, dot, extension = plain.rpartition(".")
    if not (stem if dot else plain).strip("_. "):  # nothing of the name itself is left (all of it non-Latin)
        extension = extension.strip("_")[:16] if dot else ""
        return f"attachment.{extension}" if extension else "attachment"
    return plain


def content_disposition(name: str, shown: bool = False) -> str:
    """`attachment` (a file is never shown inline; `shown` only for text the service wrote as text/plain itself),
    with the name for every client: RFC 6266 and RFC 8187."""
    kind = "inline" if shown else "attachment"
    return f"{kind}; filename=\"{ascii_filename(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
