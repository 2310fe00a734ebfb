"""Sending a webhook delivery: POST the signed body to a checked public address, within one total deadline.

The host is resolved once, every address it resolves to is checked (`webhooks.address_problem`: no loopback,
private, link-local, multicast, reserved or metadata address unless TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS admits
it), and the connection goes to that checked address, with the original name in the Host header and in TLS
(SNI and certificate check): a DNS answer that changes between the check and the connection (rebinding) is
never used. The whole delivery (resolving, connecting, TLS, sending, the answer's headers) has one deadline:
a watchdog shuts the socket when it passes, so a server that drips its answer byte by byte cannot hold a
sender longer. No redirect is followed; every failure is a short SendError.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from services.notify.domain import SendError
from services.notify.webhooks import Networks, address_problem, url_problems

USER_AGENT = "ticketflow-notify/1"
_MAX_ERROR_BODY = 4096  # bytes of an error response read for last_error
_DEFAULT_PORTS = {"http": 80, "https": 443}


def resolve(host: str, port: int) -> list[str]:
    """Every address of the host (an IP literal is its own), in the resolver's order; socket.gaierror if none.

    The one place a webhook's name is resolved: tests replace it to make a name resolve where they want.
    """
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _resolve_within(host: str, port: int, seconds: float) -> list[str]:
    """`resolve`, given up (TimeoutError) after `seconds`: getaddrinfo itself has no timeout."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["addresses"] = resolve(host, port)
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(max(seconds, 0))
    if worker.is_alive():
        raise TimeoutError(f"resolving {host}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["addresses"]


def _target(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of a URL `url_problems` accepted."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, parts.port or _DEFAULT_PORTS[parts.scheme], path


def refusal(url: str, allowed: Networks, timeout: float) -> str | None:
    """Why a webhook URL must not be registered (its host is or resolves to a non-public address), else None.

    A name that does not resolve now is accepted: every delivery resolves and checks it again. A name that is this
    machine by definition (RFC 6761: localhost and *.localhost, with or without the root's dot) is refused by name,
    whatever it resolves to here.
    """
    _, host, port, _ = _target(url)
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):  # this machine wherever it is asked (RFC 6761)
        if any(address_problem(address, allowed) for address in ("127.0.0.1", "::1")):
            return (
                f"Must point to a public address: {host} is this machine, by name "
                "(TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS admits chosen networks)."
            )
        return None
    try:
        addresses = _resolve_within(host, port, timeout)
    except (OSError, UnicodeError):  # gaierror, TimeoutError: nothing to judge yet
        return None
    return _refused(host, addresses, allowed)


def _refused(host: str, addresses: list[str], allowed: Networks) -> str | None:
    for address in addresses:
        if problem := address_problem(address, allowed):
            if not _literal(host):  # "10.0.0.1 is a private address" -> "h resolves to 10.0.0.1, which is a ..."
                problem = f"{host} resolves to " + problem.replace(" is ", ", which is ", 1)
            return (
                f"Must point to a public address: {problem} "
                "(TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS admits chosen networks)."
            )
    return None


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def deliver(url: str, body: bytes, headers: dict[str, str], timeout: float, allowed: Networks = ()) -> int:
    """POST the body as JSON; the status when 2xx, else SendError with a short reason. Raises nothing else.

    `timeout` bounds the whole delivery; `allowed` are the non-public networks it may go to.
    """
    if problems := url_problems(url):
        raise SendError(f"invalid URL: {' '.join(problems)}"[:300])
    deadline = time.monotonic() + timeout
    scheme, host, port, path = _target(url)
    try:
        addresses = _resolve_within(host, port, timeout)
    except Exception as err:
        raise SendError(_reason(err, timeout)) from None
    if not addresses:
        raise SendError(f"host not found: {host} has no address")
    if refused := _refused(host, addresses, allowed):
        raise SendError(f"refused: {refused}"[:300])
    all_headers = {**headers, "Content-Type": "application/json", "User-Agent": USER_AGENT}
    last: Exception | None = None
    for address in addresses:  # every one checked above
        try:
            return _post(scheme, host, port, path, address, body, all_headers, deadline)
        except SendError:
            raise
        except (ConnectionRefusedError, socket.gaierror) as err:  # the next address may answer
            last = err
        except Exception as err:
            raise SendError(_reason(err, timeout, deadline)) from None
    raise SendError(_reason(last, timeout, deadline)) from None


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection over a socket already connected to the checked address; Host: the URL's host."""

    def __init__(self, host: str, port: int, default_port: int, sock: socket.socket) -> None:
        super().__init__(host, port)
        self.default_port = default_port  # Host: without :443 for https
        self.sock = sock

    def connect(self) -> None:  # never opens a connection of its own
        raise http.client.NotConnected("the pinned connection is closed")


def _post(scheme, host, port, path, address, body, headers, deadline) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    held, opened = [sock], []
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0), _cut, (held,))
    watchdog.daemon = True
    watchdog.start()
    try:
        sock.settimeout(_left(deadline))
        sock.connect((address, port))
        if scheme == "https":
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
            held[0] = sock  # the watchdog now shuts the TLS socket (the plain one is detached)
            sock.settimeout(_left(deadline))
            sock.do_handshake()
        connection = _Pinned(host, port, _DEFAULT_PORTS[scheme], sock)
        sock.settimeout(_left(deadline))
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        opened.append(response)
        if 200 <= response.status < 300:
            return response.status
        raise SendError(_http_error(response))
    finally:
        watchdog.cancel()
        for closable in (*opened, held[0]):  # the response holds the socket's file: close both
            try:
                closable.close()
            except OSError:
                pass


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the delivery's deadline passed")
    return left


def _cut(held: list[socket.socket]) -> None:
    """The deadline passed: shut the socket, so whatever read or write blocks on it ends now."""
    try:
        socket.socket.shutdown(held[0], socket.SHUT_RDWR)  # the plain shutdown, for a TLS socket too
    except OSError:
        pass


def _http_error(response: http.client.HTTPResponse) -> str:
    reason = f"HTTP {response.status}"
    if 300 <= response.status < 400:
        return f"{reason} (redirects are not followed)"
    try:  # one read (read1): the body is a bonus, and the watchdog bounds it anyway
        snippet = " ".join(response.read1(_MAX_ERROR_BODY).decode("utf-8", "replace").split())[:200]
    except Exception:
        snippet = ""
    return f"{reason}: {snippet}" if snippet else reason


def _reason(err: object, timeout: float, deadline: float | None = None) -> str:
    """A short, stable reason for last_error."""
    if isinstance(err, TimeoutError) or (deadline is not None and time.monotonic() >= deadline):
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
