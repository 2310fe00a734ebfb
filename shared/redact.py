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
# without blanks (`{"alg":...`), so its base64url starts `eyJ`: no word of prose looks like that. Wherever it
# starts: a link a mail client rewrote (Outlook's Safe Links) has it percent-encoded after "%2F", where no word
# boundary is, and may have its dots encoded too.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+(?:\.|%2[Ee])[A-Za-z0-9_-]+(?:\.|%2[Ee])[A-Za-z0-9_-]+")
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
    return _JWT.sub(HIDDEN, text)
