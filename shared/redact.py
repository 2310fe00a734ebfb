"""URLs without their secrets, for what people read (timelines, notification records). No I/O here.

A webhook URL may carry credentials (https://user:pass@host/...) or a token in its query string
(https://hooks.example.com/x?token=...): neither belongs in a summary or an API answer.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


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
