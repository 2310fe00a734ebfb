"""Webhooks, the pure part: validating a registration, matching events to its patterns, signing a delivery.

POSTing a delivery is I/O: services/notify/webhook_sender.py, next to the mailer.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

from shared.errors import Invalid
from shared.events import EVENT_TYPES

# notify forwards what it consumes; never notification.*, or a webhook for notification.sent would feed itself.
TICKET_EVENT_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t.startswith(("ticket.", "sla.")))
# a mail kept for the agents carries a third party's address and words (not the requester's): never to a webhook
AGENTS_ONLY = ("ticket.mail_kept",)
WEBHOOK_EVENT_TYPES: tuple[str, ...] = tuple(t for t in TICKET_EVENT_TYPES if t not in AGENTS_ONLY)
MAX_URL_LENGTH = 2048
MAX_PATTERNS = 50
SECRET_LENGTH = (16, 256)

_PATTERN = re.compile(r"[a-z0-9_.*]{1,100}", re.ASCII)
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.ASCII | re.IGNORECASE)
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.ASCII | re.IGNORECASE)  # WHATWG: such a host is IPv4
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)


def validate_webhook(raw: object) -> dict:
    """The body of POST /webhooks, normalised: {"url", "events" (deduplicated), "secret"}; Invalid if not."""
    if not isinstance(raw, dict):
        raise Invalid("The webhook is not valid.", {"_schema": ["A webhook is a JSON object."]})
    errors = {str(name): ["Unknown field."] for name in raw if name not in ("url", "events", "secret")}
    for name, check in (("url", url_problems), ("events", _events_problems), ("secret", _secret_problems)):
        problems = check(raw[name]) if name in raw else ["Missing data for required field."]
        if problems:
            errors[name] = problems
    if errors:
        raise Invalid("The webhook is not valid.", errors)
    return {"url": raw["url"], "events": list(dict.fromkeys(raw["events"])), "secret": raw["secret"]}


def url_problems(url: object) -> list[str]:
    """What is wrong with a webhook URL (empty when it is fine to POST to)."""
    if not isinstance(url, str):
        return ["Not a valid string."]
    if len(url) > MAX_URL_LENGTH:
        return [f"Longer than {MAX_URL_LENGTH} characters."]
    if any(c.isspace() or not c.isprintable() for c in url):  # urlsplit would silently drop some of them
        return ["Enter a web address like https://example.com/hooks: this one has spaces or control characters."]
    if not url.isascii():
        return ["Must contain only ASCII characters (percent-encode the others, punycode the host)."]
    try:
        parts = urlsplit(url)
    except ValueError as err:
        return [f"Not a valid URL: {err}."]
    if parts.scheme not in ("http", "https"):
        return ["Must be an http:// or https:// URL."]
    problems = []
    if "#" in url:
        problems.append("Must not have a fragment (#...).")
    if "@" in parts.netloc:
        problems.append("Must not contain a user name or password.")
    else:
        problems += _authority_problems(parts.netloc)
    return problems


def _authority_problems(netloc: str) -> list[str]:
    """The problems of host[:port] or [IPv6][:port]."""
    if netloc.startswith("["):
        host, bracket, rest = netloc[1:].partition("]")
        host_ok = bool(bracket) and "%" not in host and _is_ip(host, ipaddress.IPv6Address)
    else:
        host, colon, port = netloc.partition(":")
        rest = colon + port
        host_ok = _is_host(host)
    if not host:
        return ["Must have a host."]
    problems = [] if host_ok else [f"The host {host!r} is not a valid DNS name, IPv4 address or [IPv6] address."]
    if rest and (not rest.startswith(":") or not _valid_port(rest[1:])):
        problems.append("The port must be a number from 1 to 65535.")
    return problems


def _is_host(host: str) -> bool:
    name = host[:-1] if host.endswith(".") else host  # a fully qualified name may end in a dot
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # 999.1.1.1, 127.1, 0x7f.1: meant as IPv4, so must be one
        return _is_ip(host, ipaddress.IPv4Address)
    return 0 < len(name) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)


def _is_ip(host: str, kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]) -> bool:
    try:
        kind(host)
    except ValueError:
        return False
    return True


def _valid_port(port: str) -> bool:
    return port == "" or (_PORT.fullmatch(port) is not None and 1 <= int(port) <= 65535)


# --- where a webhook may point --------------------------------------------------------------------------

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
# Cloud instance metadata (AWS, ECS, GCP/Azure link-local, Alibaba, Azure's wire server, AWS IPv6): refused even
# when an allowed network holds them, since they hand out the host's credentials.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254", "169.254.170.2", "169.254.170.23", "100.100.100.200", "168.63.129.16",
        "fd00:ec2::254", "fd00:ec2::23",
    )
)  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def address_problem(address: str, allowed: Networks = ()) -> str | None:
    """Why no webhook may be sent to this IP address (None when it may): not public and not in `allowed`.

    An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is judged as the IPv4 address a socket reaches; 6to4, Teredo,
    NAT64 and IPv4-compatible addresses are judged both as themselves and as the IPv4 address they carry.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ipaddress.IPv6Address(int(ip))  # int(): without a %scope
    judged = [ip, *_carried(ip)]
    if any(one in METADATA_ADDRESSES for one in judged):
        return f"{address} is a cloud metadata address"
    for one in judged:
        kind = None if any(one in network for network in allowed) else _not_public(one)
        if kind:
            return f"{address} is {kind} address"
    return None


def _carried(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 address an IPv6 transition address leads to."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    if ip.sixtofour:
        return [ip.sixtofour]
    if ip.teredo:
        return [ip.teredo[1]]
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def _not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    for kind, test in (
        ("an unspecified", ip.is_unspecified),
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a private", ip.is_private),
        ("a reserved", ip.is_reserved),
        ("a site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("a non-public", not ip.is_global),
    ):
        if test:
            return kind
    return None


def _events_problems(events: object) -> list[str]:
    if not isinstance(events, list):
        return ["Not a valid list."]
    if not events:
        return ["At least one event pattern is required."]
    if len(events) > MAX_PATTERNS:
        return [f"At most {MAX_PATTERNS} event patterns."]
    problems = []
    for index, pattern in enumerate(events):
        if not isinstance(pattern, str):
            problems.append(f"Item {index}: not a string.")
        elif not _PATTERN.fullmatch(pattern):
            problems.append(
                f"{pattern[:100]!r} is not an event type or a pattern with * (like ticket.*) "
                "of at most 100 lowercase letters, digits, '_', '.' and '*'."
            )
        elif not any(glob_match(pattern, kind) for kind in WEBHOOK_EVENT_TYPES):
            problems.append(f"{pattern!r} matches no event type a webhook can get: {', '.join(WEBHOOK_EVENT_TYPES)}.")
    return problems


def _secret_problems(secret: object) -> list[str]:
    if not isinstance(secret, str):
        return ["Not a valid string."]
    low, high = SECRET_LENGTH
    problems = [] if low <= len(secret) <= high else [f"Must be {low} to {high} characters long."]
    if any(unicodedata.category(c) == "Cc" for c in secret):
        problems.append("Must not contain control characters.")
    return problems


def glob_match(pattern: str, text: str) -> bool:
    """Whether `text` matches `pattern`, where `*` matches any run of characters (dots too); nothing else is special.

    Linear, never backtracking: the literal pieces between the stars are found left to right, each at its first
    place after the one before (the leftmost place is always as good as any later one), the first piece anchored
    at the start and the last at the end. Runs of stars count as one. A regex of `.*` runs would be exponential.
    """
    pieces = pattern.split("*")
    if len(pieces) == 1:
        return pattern == text
    head, *middle, tail = pieces
    if len(head) + len(tail) > len(text) or not text.startswith(head) or not text.endswith(tail):
        return False
    position, end = len(head), len(text) - len(tail)
    for piece in middle:
        if piece:
            found = text.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
    return True


def matches(patterns: list[str], event_type: str) -> bool:
    """Whether any of the patterns (`ticket.*`, `sla.breached`, `*`) matches the event type."""
    return any(glob_match(pattern, event_type) for pattern in patterns)


def signature(secret: str, body: bytes) -> str:
    """The X-Ticketflow-Signature value: sha256=<hex HMAC-SHA256 of the body with the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def timed_signature(secret: str, timestamp: int, delivery_id: str, body: bytes) -> str:
    """The X-Ticketflow-Signature-Timed value: t=<unix seconds of this attempt>,sha256=<hex HMAC-SHA256 of
    "<t>.<delivery id>.<body>">. The contract's signature covers the body alone, so a delivery seen once (an
    http:// webhook read on the way) verifies again when posted again later, under any delivery id (a security
    review's find); this one lets a receiver refuse an old attempt and a delivery id seen before. An addition."""
    signed = f"{timestamp}.{delivery_id}.".encode() + body
    return f"t={timestamp},sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
