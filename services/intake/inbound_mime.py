"""The MIME side of an inbound email: the stdlib's parser kept from raising or crawling, headers read safely, and
the parts sorted into body text and attachments. Every function here takes whatever arrives and never raises.
"""

from __future__ import annotations

import base64
import codecs
import functools
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import errors, policy
from email.header import decode_header
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from urllib.parse import unquote_to_bytes

MAX_PARTS = 1000  # real mail has a few dozen; the stdlib's parser takes about 1 ms a part
MAX_BOUNDARIES = 50  # nesting: past some hundreds the stdlib's parser recurses out, slower and slower on the way
MAX_STRUCTURED_HEADER = 2048  # the stdlib's parser of addresses and parameters is quadratic on floods of quotes
MAX_UNSTRUCTURED_HEADER = 16384
_UNSAFE_CODECS = frozenset({"punycode", "idna", "undefined"})  # quadratic, or no text encoding of mail at all
_ENCODED_WORD = re.compile(r"=\?([^?*\s]+)((?:\*[^?\s]*)?\?[qQbB]\?[^?\s]*\?=)")
# boundary="x", and RFC 2231's boundary*=''x (percent-encoded) and boundary*0="x" (continued): the stdlib reads all
_BOUNDARY = re.compile(rb'boundary(\*(?:\d+\*?)?)?\s*=\s*"?(?:[\w.-]*\'[\w-]*\')?([^"\s;]{1,200})', re.IGNORECASE)
# Lone surrogates: the parser's stand-ins for bytes it could not decode. Read them as latin-1, as the rest fails.
_SURROGATES = {code: chr(code - 0xDC00) for code in range(0xDC80, 0xDD00)} | {
    code: "\ufffd" for code in (*range(0xD800, 0xDC80), *range(0xDD00, 0xE000))
}
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]+")


class _Unparsed(str):
    """A header the stdlib's parser raised on: its raw text, unparsed (str is all a Message's own methods need)."""

    def __new__(cls, name: str, value: str) -> _Unparsed:
        header = super().__new__(cls, value)
        header.name = name
        header.defects = (errors.HeaderDefect("could not be parsed"),)
        return header


class _BoundedHeaders(HeaderRegistry):
    """policy.default's headers, with each value cut to a length the parser handles fast, and no exception out.

    Parsed once per value: a Message parses a header again at each look-up (the parser several times per part).
    """

    def __init__(self) -> None:
        super().__init__()
        self._parsed = functools.lru_cache(maxsize=256)(self._parse)

    def __call__(self, name: str, value: str):
        unstructured = issubclass(self[name], UnstructuredHeader)
        return self._parsed(name, value[: MAX_UNSTRUCTURED_HEADER if unstructured else MAX_STRUCTURED_HEADER])

    def _parse(self, name: str, value: str):
        try:
            return super().__call__(name, value)
        except Exception:  # AttributeError, RecursionError...: the stdlib's header parser has such bugs
            return _Unparsed(name, value)


POLICY = policy.default.clone(header_factory=_BoundedHeaders())


def clean(text: str) -> str:
    """A str safe to store: undecodable bytes read as latin-1, other lone surrogates replaced."""
    return text.translate(_SURROGATES)


def one_line(text: str) -> str:
    """Controls out, whitespace collapsed: for subjects, names, file names."""
    return " ".join(_CONTROLS.sub(" ", clean(text)).split())


def safe_codec(charset: str | None) -> str | None:
    """The Python codec for a declared charset, or None when unknown or unfit to decode mail with."""
    try:
        info = codecs.lookup(charset.strip().strip('"').strip())
    except Exception:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _UNSAFE_CODECS:
        return None
    return _SUPERSETS.get(info.name, info.name)


# labels mail programs write for text they encode in a larger set (as browsers read them, WHATWG's Encoding): a body
# said to be gb2312 holding GBK's characters came out with U+FFFD in it (a tester's)
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "euc_kr": "cp949", "big5": "big5hkscs"}


# surrogateescape's stand-in for each byte UTF-8 refuses (U+DC80..U+DCFF) -> that byte read as windows-1252
_ESCAPED_AS_CP1252 = {0xDC00 + byte: bytes([byte]).decode("cp1252", errors="replace") for byte in range(0x80, 0x100)}


def utf8_mended(data: bytes) -> str:
    """UTF-8 bytes with the bytes UTF-8 refuses read as windows-1252 (one in neither: U+FFFD). str.translate does
    it in C: a Python error handler, called for each such byte, took 20 s for 10 MB of them."""
    return data.decode("utf-8", errors="surrogateescape").translate(_ESCAPED_AS_CP1252)


def decode_bytes(data: bytes, charset: str | None, where: str, defects: list[str]) -> str:
    """Text from a part's bytes: its charset, else UTF-8 then windows-1252; unknown charsets read as latin-1."""
    codec = safe_codec(charset) if charset else None
    if charset and codec is None:
        defects.append(f"{where}: unknown charset {one_line(charset)[:40]!r}, read as latin-1")
        return data.decode("latin-1")
    if codec in (None, "ascii", "iso8859-1", "cp1252"):  # undeclared or 8-bit mislabelled as ASCII, or Latin-1
        for attempt in ("utf-8", "cp1252") if codec in (None, "ascii") else ("cp1252",):
            try:
                return data.decode(attempt)
            except UnicodeDecodeError:
                continue
        return data.decode("latin-1")
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        if codec == "utf-8":  # a client that says UTF-8 and writes windows-1252 ("Café" as one byte é), or a relay
            # that appended a Latin-1 footer to a UTF-8 body: the invalid bytes alone read as windows-1252
            defects.append(f"{where}: bytes not valid in utf-8, those read as windows-1252")
            return utf8_mended(data)
        defects.append(f"{where}: bytes not valid in {codec}, replaced")
    except Exception:  # a codec's own failure (they exist): the bytes, as latin-1
        return data.decode("latin-1")
    return data.decode(codec, errors="replace")


def parse_bytes(raw: bytes, defects: list[str]) -> EmailMessage:
    """The parsed message; only its headers (and the body as one text) when its structure would cost too much."""
    parser = BytesParser(policy=POLICY)
    reason = _too_costly(raw)
    if reason is None:
        try:
            return parser.parsebytes(raw)
        except Exception as exc:  # RecursionError and the like, from the stdlib's parser
            reason = f"the MIME structure could not be parsed ({type(exc).__name__})"
    defects.append(f"{reason}: the body is kept as text, without attachments")
    try:
        return parser.parsebytes(raw, headersonly=True)
    except Exception:
        message = EmailMessage(policy=POLICY)
        message.set_payload(raw.decode("ascii", "surrogateescape"))
        return message


def _too_costly(raw: bytes) -> str | None:
    """Why the full parse would take too long (too many parts, nested too deep), from a cheap count of the bytes."""
    # a line starts after a LF or after a lone CR, which the stdlib's parser takes for a line end too
    starts = (b"\n--", b"\r--")
    if sum(map(raw.count, starts)) <= MAX_PARTS and raw.lower().count(b"boundary") <= MAX_BOUNDARIES:
        return None
    boundaries = {unquote_to_bytes(value) if star else value for star, value in _BOUNDARY.findall(raw)}
    if len(boundaries) > MAX_BOUNDARIES:
        return f"over {MAX_BOUNDARIES} MIME boundaries"
    if sum(raw.count(start + boundary) for boundary in boundaries for start in starts) > MAX_PARTS:
        return f"over {MAX_PARTS} MIME parts"
    return None


def raw_headers(message: Message) -> dict[str, list[str]]:
    """Each header's raw values by lowercase name, in order (raw_items never parses, so never raises)."""
    found: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        found.setdefault(str(name).lower(), []).append(str(value))
    return found


def unfold_8bit(value: str, where: str = "", defects: list[str] | None = None) -> str:
    """A raw header value unfolded, its 8-bit bytes read as UTF-8 (else windows-1252), encoded words in an
    unknown charset relabelled latin-1, and words said to be UTF-8 whose bytes are not relabelled windows-1252 (a
    client that says UTF-8 and writes windows-1252), so the stdlib's decoder reads them instead of replacing them."""
    noted = defects if defects is not None else []
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    if any("\udc80" <= char <= "\udcff" for char in value):
        data = value.encode("utf-8", "surrogateescape")
        for attempt in ("utf-8", "cp1252", "latin-1"):
            try:
                value = data.decode(attempt)
                noted.append(f"{where}: 8-bit bytes in a header (not encoded words), read as {attempt}")
                break
            except UnicodeDecodeError:
                continue

    def relabel(word: re.Match) -> str:
        codec = safe_codec(word.group(1))
        if codec == "utf-8" and (fixed := _utf8_mended(word.group(0))):
            noted.append(f"{where}: an encoded word not valid in utf-8, its invalid bytes read as windows-1252")
            return fixed
        if codec and codec != _codec_named(word.group(1)):  # gb2312 read as gb18030, as a body is (_SUPERSETS)
            return f"=?{codec}{word.group(2)}"
        if codec:
            return word.group(0)
        noted.append(f"{where}: unknown charset {one_line(word.group(1))[:40]!r}, read as latin-1")
        return f"=?iso-8859-1{word.group(2)}"

    def relabel_run(run: re.Match) -> str:
        """Adjacent UTF-8 words are one text (RFC 2047): a character cut between two is valid UTF-8 once they are
        joined, and the stdlib joins them; each is mended alone only when together they are not UTF-8 either (a
        tester's "Grüße" came out "GrÃ¼ÃŸe", each half read as windows-1252). A run of words in other charsets
        around them is read word by word as before."""
        text, words, pieces, done = run.group(0), list(_ENCODED_WORD.finditer(run.group(0))), [], 0
        for utf8, group in itertools.groupby(words, key=lambda word: safe_codec(word.group(1)) == "utf-8"):
            group = list(group)
            start, end = group[0].start(), group[-1].end()
            pieces.append(text[done:start])
            whole = utf8 and len(group) > 1 and _utf8_together(group)
            pieces.append(text[start:end] if whole else _ENCODED_WORD.sub(relabel, text[start:end]))
            done = end
        return "".join(pieces) + text[done:]

    return _ENCODED_WORDS.sub(relabel_run, value)


_ENCODED_WORDS = re.compile(rf"{_ENCODED_WORD.pattern}(?:[ \t]+{_ENCODED_WORD.pattern})*")  # a run, blanks between


def _codec_named(charset: str) -> str | None:
    """The codec a charset label names, as it names it (safe_codec may read it as a larger set)."""
    try:
        return codecs.lookup(charset.strip().strip('"').strip()).name
    except Exception:
        return None


def _utf8_together(words: list[re.Match]) -> bool:
    """Whether the bytes of these encoded words, joined, are UTF-8."""
    try:
        data = b"".join(part for word in words for part, _ in [decode_header(word.group(0))[0]])
        data.decode("utf-8")
        return True
    except Exception:
        return False


def _utf8_mended(word: str) -> str | None:
    """An encoded word said to be UTF-8 whose bytes are not, written again as valid UTF-8 with its invalid bytes
    read as windows-1252 (as a body's are); None when its bytes are UTF-8, or cannot be read (left to the stdlib)."""
    try:
        data = decode_header(word)[0][0]
    except Exception:
        return None
    if not isinstance(data, bytes):
        return None
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        text = utf8_mended(data)
    return f"=?utf-8?b?{base64.b64encode(text.encode('utf-8')).decode('ascii')}?="


@dataclass
class Part:
    """One leaf of the MIME tree, with where it sits among alternatives."""

    message: Message
    alternative: tuple[tuple[int, int], ...]  # (id of a multipart/alternative ancestor, index of the branch)


def leaves(message: Message, limit: int = MAX_PARTS) -> list[Part]:
    """The leaf parts in document order; message/* parts are leaves (attached mails stay whole). Iterative."""
    found: list[Part] = []
    stack: list[tuple[Message, tuple[tuple[int, int], ...]]] = [(message, ())]
    seen = 0
    while stack and seen <= limit:
        part, alternative = stack.pop()
        seen += 1
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            is_alternative = part.get_content_subtype() == "alternative"
            children = [
                (child, (*alternative, (id(part), index)) if is_alternative else alternative)
                for index, child in enumerate(part.get_payload())
                if isinstance(child, Message)
            ]
            stack.extend(reversed(children))
        else:
            found.append(Part(part, alternative))
    return found


def all_parts(message: Message, limit: int = MAX_PARTS) -> list[Message]:
    """Every part, containers too, down into attached mails (for their defects). Iterative and bounded."""
    found: list[Message] = []
    stack = [message]
    while stack and len(found) <= limit:
        part = stack.pop()
        found.append(part)
        if part.is_multipart():  # get_payload() of a leaf would decode it by its charset, whatever that is
            stack.extend(child for child in reversed(part.get_payload()) if isinstance(child, Message))
    return found


def words(defect: Exception) -> str:
    """A defect as the stdlib describes it: its message, else its class's docstring, else its class name."""
    doc = (type(defect).__doc__ or "").strip().splitlines()
    return one_line(str(defect)) or (doc[0].strip() if doc else type(defect).__name__)


def unique(items: Iterable[str]) -> list[str]:
    return [item for item in dict.fromkeys(items) if item]
