"""URLs and tokens without their secrets, for what people read (timelines, notification records). No I/O here.

A webhook URL may carry credentials (https://user:pass@host/...) or a token in its query string
(https://hooks.example.com/x?token=...): neither belongs in a summary or an API answer. Nor does the
token of a requester's access link (<portal>/t/<JWT>, in every email to a requester), which acts as
the requester.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
# A JWT in compact form: base64url header, payload and signature. The header is a JSON object written
# without blanks (`{"alg":...`), so its base64url starts `eyJ`: no word of prose starts like that. It starts a run
# of base64url characters, or follows a percent-encoded "/" or "=" (a link a mail client rewrote into its own, as
# Outlook's Safe Links does, with its dots maybe encoded too), never inside a word ("surveyJS.min.js"). The
# segments are possessive and only a run's start is tried: linear in the text, whatever it holds.
_SEGMENT = r"[A-Za-z0-9_-]++"
_JWT = re.compile(
    rf"(?:(?<![A-Za-z0-9_-])|(?<=%2[Ff])|(?<=%3[Dd]))eyJ{_SEGMENT}(?:\.|%2[Ee]){_SEGMENT}(?:\.|%2[Ee]){_SEGMENT}"
)
# A run of a link's characters that holds a "%", taken from its start only (linear): a link whose token has any
# of its characters percent-encoded (/t/%65yJ...) still works, since the portal reads the path decoded, so such a
# run is read decoded too.
_ENCODED_RUN = re.compile(r"(?<![^\s\"'<>])[^\s\"'<>%]*+%[^\s\"'<>]*+")
_ESCAPE = re.compile(r"%([0-7][0-9A-Fa-f])")  # an ASCII character percent-encoded: a token has no other
HIDDEN = "(hidden)"


def redact_url(url: str) -> str:
    """The URL without credentials, query and fragment: https://u:p@h:8443/p?token=x#f -> https://h:8443/p."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "(a URL)"
    if not parts.scheme or not parts.netloc:
        return url.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_urls(text: str) -> str:
    """Free text (an error message) with every URL in it redacted."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


def redact_tokens(text: str) -> str:
    """Free text (an email's body) with every JWT in it, such as a requester link's token, replaced by (hidden).

    Any JWT, not only the portal's links: the link's address may change with TICKETFLOW_PORTAL_URL after
    the email was recorded, and a bearer token pasted into a ticket is no more for every reader's eyes.
    """
    return _ENCODED_RUN.sub(_decoded_if_it_hides_a_token, _JWT.sub(HIDDEN, text))


def _decoded_if_it_hides_a_token(run: re.Match) -> str:
    """The run as it is, but for a token that its ASCII characters decoded show: that token's own characters (as
    written, encoded or not) become (hidden), and nothing else of the run changes (what it encodes stays encoded)."""
    text = run.group(0)
    decoded, starts = [], []  # each decoded character, and where it starts in `text`
    at = 0
    for escape in _ESCAPE.finditer(text):
        for i in range(at, escape.start()):
            decoded.append(text[i])
            starts.append(i)
        decoded.append(chr(int(escape.group(1), 16)))
        starts.append(escape.start())
        at = escape.end()
    for i in range(at, len(text)):
        decoded.append(text[i])
        starts.append(i)
    starts.append(len(text))
    pieces, done = [], 0
    for token in _JWT.finditer("".join(decoded)):
        begin, end = starts[token.start()], starts[token.end()]
        pieces += [text[done:begin], HIDDEN]
        done = end
    return "".join(pieces) + text[done:] if pieces else text


# --- web addresses in a text: where each one ends, as a person reads it (the links of a page or an email) ----

_WEB_ADDRESS = re.compile(r"https?://[^\s<>\"`“”«»]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?*'’"
_PAIRS = {")": "(", "]": "[", "}": "{"}


def _trimmed(url: str) -> str:
    """The address without what ends the sentence around it; brackets counted once (linear in its length)."""
    opened = {close: url.count(close) - url.count(opening) for close, opening in _PAIRS.items()}  # closes unmatched
    end = len(url)
    while end:
        last = url[end - 1]
        if last in _URL_TAIL:
            end -= 1
        elif last in _PAIRS and opened[last] > 0:
            opened[last] -= 1
            end -= 1
        else:
            break
    return url[:end]


def link_parts(text: str) -> list[tuple[str, bool]]:
    """The text cut into (piece, is_a_link): every http(s) address written in it, as a person would read where it
    ends: not the full stop or comma after it, nor a closing bracket it did not open ("(see https://x/a)")."""
    parts: list[tuple[str, bool]] = []
    start = 0
    for found in _WEB_ADDRESS.finditer(text or ""):
        url = _trimmed(found.group())
        if len(url) <= len("https://"):
            continue
        end = found.start() + len(url)
        if found.start() > start:
            parts.append((text[start : found.start()], False))
        parts.append((url, HIDDEN not in url))  # a link whose token intake hid leads nowhere: text, not a link
        start = end
    if start < len(text or ""):
        parts.append((text[start:], False))
    return parts
