"""Sending a webhook delivery: POST the signed body, no redirects followed, every failure a short SendError."""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.request

from services.notify.domain import SendError
from services.notify.webhooks import url_problems

USER_AGENT = "ticketflow-notify/1"
_MAX_ERROR_BODY = 4096  # bytes of an error response read for last_error


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer, not a success: urllib would otherwise re-send a POST as a GET elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the default error handler then raises HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


def deliver(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST the body as JSON; the status when 2xx, else SendError with a short reason. Raises nothing else."""
    all_headers = {**headers, "Content-Type": "application/json", "User-Agent": USER_AGENT}
    if problems := url_problems(url):  # also keeps urllib's ftp:, file: and data: handlers out of reach
        raise SendError(f"invalid URL: {' '.join(problems)}"[:300])
    try:
        request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
        with _OPENER.open(request, timeout=timeout) as response:  # timeout: connect, and each read
            return response.status
    except urllib.error.HTTPError as err:
        with err:
            raise SendError(_http_error(err)) from None
    except urllib.error.URLError as err:  # failures before a response: the cause is in .reason
        raise SendError(_reason(err.reason, timeout)) from None
    except Exception as err:  # whatever else happens (reset, bad status line...), a failed send is a SendError
        raise SendError(_reason(err, timeout)) from None


def _http_error(err: urllib.error.HTTPError) -> str:
    reason = f"HTTP {err.code}"
    if 300 <= err.code < 400:
        return f"{reason} (redirects are not followed)"
    try:  # one read (read1), so a server that drips its body cannot hold us beyond one timeout
        read = getattr(err.fp, "read1", err.read)
        snippet = " ".join(read(_MAX_ERROR_BODY).decode("utf-8", "replace").split())[:200]
    except Exception:  # the status is the reason; the body is a bonus
        snippet = ""
    return f"{reason}: {snippet}" if snippet else reason


def _reason(err: object, timeout: float) -> str:
    """A short, stable reason for last_error."""
    if isinstance(err, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, socket.gaierror):
        return f"host not found: {err.strerror or err}"
    if isinstance(err, ssl.SSLError):
        return f"TLS error: {err.reason or err}"
    if isinstance(err, ValueError | http.client.InvalidURL):  # control characters, unencodable header...
        return f"invalid URL or header: {err}"[:300]
    if isinstance(err, http.client.HTTPException):  # bad status line, remote closed, too many headers...
        return f"bad HTTP response: {type(err).__name__}"
    if isinstance(err, OSError):
        return f"connection failed: {err.strerror or err}"
    return f"failed: {type(err).__name__}: {err}"[:300]
