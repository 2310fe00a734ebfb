"""notify webhooks: registration rules, pattern matching, signatures, and delivery against a real local server."""

import hashlib
import hmac
import json
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.notify import webhook_sender
from services.notify.domain import SendError
from services.notify.webhooks import (
    WEBHOOK_EVENT_TYPES,
    address_problem,
    matches,
    signature,
    timed_signature,
    validate_webhook,
)
from shared.config import ConfigError, load_settings
from shared.errors import Invalid
from shared.events import EVENT_TYPES

SECRET = "s3cret-s3cret-s3cret"
LOOPBACK = load_settings({"TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}).webhook_allowed_networks


def deliver(url: str, body: bytes, headers: dict, timeout: float, allowed=LOOPBACK) -> int:
    """The sender, allowed to reach this test's receivers on 127.0.0.1."""
    return webhook_sender.deliver(url, body, headers, timeout, allowed)


def body(**overrides) -> dict:
    return {"url": "https://hooks.example.com/ticketflow", "events": ["ticket.*"], "secret": SECRET, **overrides}


def problems(raw: object) -> dict:
    with pytest.raises(Invalid) as caught:
        validate_webhook(raw)
    assert caught.value.status == 422
    return caught.value.errors


# --- what a webhook may hear ---------------------------------------------------------------------------


def test_webhooks_hear_every_ticket_and_sla_event_but_never_notifications_nor_a_mail_kept_for_the_agents():
    expected = {t for t in EVENT_TYPES if t.startswith(("ticket.", "sla."))} - {"ticket.mail_kept"}
    assert set(WEBHOOK_EVENT_TYPES) == expected  # a kept mail: a third party's address and words
    assert "sla.breached" in WEBHOOK_EVENT_TYPES and "ticket.created" in WEBHOOK_EVENT_TYPES
    assert "agent.updated" not in WEBHOOK_EVENT_TYPES  # who is in which team is not a ticket's news


# --- validate_webhook: good bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/ticketflow",
        "http://example.com",
        "HTTP://Example.COM:8080/a/b?x=1&y=%20",
        "http://localhost:9000/hook",
        "http://notify-sink/hook",
        "http://127.0.0.1:1/",
        "http://[::1]:65535/hook",
        "https://[2001:db8::1]/",
        "https://example.com./fqdn",
        "http://" + ".".join(["a" * 63] * 3) + "/",
    ],
)
def test_good_urls_are_kept_as_given(url):
    assert validate_webhook(body(url=url))["url"] == url


def test_a_good_body_is_normalised_with_patterns_deduplicated_in_order():
    raw = body(events=["sla.breached", "ticket.*", "sla.breached", "*", "ticket.*"])
    assert validate_webhook(raw) == {
        "url": "https://hooks.example.com/ticketflow",
        "events": ["sla.breached", "ticket.*", "*"],
        "secret": SECRET,
    }
    assert raw["events"] == ["sla.breached", "ticket.*", "sla.breached", "*", "ticket.*"]  # input untouched


@pytest.mark.parametrize("secret", ["x" * 16, "y" * 256, "with spaces and ünïcödé!"])
def test_secrets_of_16_to_256_characters_are_accepted(secret):
    assert validate_webhook(body(secret=secret))["secret"] == secret


# --- validate_webhook: each field's problems --------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, [], "url", 3, True])
def test_a_body_that_is_not_an_object_is_refused(raw):
    assert "_schema" in problems(raw)


def test_unknown_and_missing_fields_are_each_named():
    errors = problems({"URL": "http://x.com", "extra": 1})
    assert set(errors) == {"URL", "extra", "url", "events", "secret"}
    assert errors["extra"] == ["Unknown field."]
    assert errors["url"] == ["Missing data for required field."]


@pytest.mark.parametrize("field", ["url", "secret"])
@pytest.mark.parametrize("value", [None, True, 42, ["http://x.com"], {"a": "b"}])
def test_url_and_secret_must_be_strings(field, value):
    assert set(problems(body(**{field: value}))) == {field}


@pytest.mark.parametrize(
    "url",
    [
        # not http(s) (the case)
        "ftp://example.com/x",
        "javascript:alert(1)",
        "mailto:ops@example.com",
        "file:///etc/passwd",
        "example.com/hook",
        "localhost:8080/hook",
        "//example.com/hook",
        "",
        # a malformed address (the case)
        "http://exa mple.com",
        "http://example.com/a b",
        " http://example.com",
        "http://example.com/\n",
        "http://example.com/\x00",
        "http://",
        "http:///path",
        "http:example.com",
        "http://[::1",
        "http://[::1]x/",
        "http://[not-an-ip]/",
        "http://[1.2.3.4]/",
        "http://999.1.1.1",
        "http://1.2.3.4.5/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://host:99999",
        "http://host:0",
        "http://host:-1",
        "http://host:8o",
        "http://host:80:80",
        "http://-bad.example.com",
        "http://bad-.example.com",
        "http://under_score.example.com",
        "http://a..b.com",
        "http://" + "a" * 64 + ".com",
        "http://" + ".".join(["a" * 63] * 4) + "/",  # 255 characters
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "http://example.com/#fragment",
        "http://example.com/#",
        "http://exämple.com/",
        "https://example.com/" + "a" * 2030,  # 2050 characters
    ],
)
def test_bad_urls_are_refused_on_the_url_field(url):
    errors = problems(body(url=url))
    assert set(errors) == {"url"}, errors
    assert errors["url"] and all(isinstance(m, str) for m in errors["url"])


@pytest.mark.parametrize(
    "events",
    [
        "ticket.*",
        [],
        ["ticket.*"] * 51,
        [3],
        [None],
        [""],
        ["Ticket.*"],
        ["ticket.?reated"],
        ["ticket.[cr]reated"],
        ["ticket created"],
        ["ticket.unknown"],
        ["notification.sent"],
        ["notification.*"],
        ["intake.*"],
        ["ticket." + "x" * 100],
    ],
)
def test_bad_event_lists_are_refused_on_the_events_field(events):
    assert set(problems(body(events=events))) == {"events"}


def test_a_pattern_that_matches_nothing_says_what_notify_forwards():
    [message] = problems(body(events=["ticket.*", "notification.*"]))["events"]
    assert "notification.*" in message and "matches no event type a webhook can get" in message
    assert "sla.breached" in message and "notification.sent" not in message


@pytest.mark.parametrize(
    "secret", ["", "x" * 15, "y" * 257, "sixteen-chars-ok\x00", "sixteen-chars-ok\n", "a\tbcdefghijklmnop"]
)
def test_bad_secrets_are_refused_on_the_secret_field(secret):
    assert set(problems(body(secret=secret))) == {"secret"}


def test_several_problems_are_all_listed_at_once():
    errors = problems({"url": "ftp://x", "events": ["ticket.*", 7, "nope.*"], "secret": "short", "active": True})
    assert set(errors) == {"url", "events", "secret", "active"}
    assert len(errors["events"]) == 2  # the bad item and the pattern that matches nothing, each named
    assert any("Item 1: not a string" in m for m in errors["events"])
    assert any(m.startswith("'nope.*' matches no event type") for m in errors["events"])  # named by what was typed
    too_short_and_control = problems(body(secret="\x01\x02"))["secret"]
    assert len(too_short_and_control) == 2


# --- matches and signature ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["ticket.*"], "ticket.created", True),
        (["ticket.*"], "sla.breached", False),
        (["sla.breached"], "sla.breached", True),
        (["sla.breached"], "sla.warning", False),
        (["*"], "ticket.status_changed", True),
        (["*.breached"], "sla.breached", True),
        (["ticket.*ed"], "ticket.status_changed", True),
        (["ticket.*ed"], "ticket.message_added", True),
        (["ticket.c*"], "ticket.created", True),
        (["ticket.c*"], "ticket.assigned", False),
        (["sla.warning", "ticket.closed"], "ticket.closed", True),
        ([], "ticket.created", False),
        (["ticket.created"], "ticket.created.extra", False),
        (["ticket.created"], "xticket.created", False),
        (["ticket?created"], "ticket.created", False),  # only * is a wildcard
        (["ticket.[c]reated"], "ticket.created", False),
        (["ticket.created"], "ticket_created", False),  # "." is literal
    ],
)
def test_matches(patterns, event_type, expected):
    assert matches(patterns, event_type) is expected


@pytest.mark.parametrize(
    "pattern", ["*" * 80, "*" * 12 + "sla.breached", "*" * 80 + "sla.breached", "t*" * 40, "*x" * 40]
)
def test_matching_many_stars_takes_linear_time(pattern):
    """`*` once became `.*` with no collapsing: twelve stars before sla.breached took seconds on each event type.

    The bound is far from what a linear match takes (well under a millisecond) and far below what the
    backtracking one took (seconds per type, 80 stars: longer than the universe), so a busy machine passes.
    """
    started = time.perf_counter()
    for event_type in (*WEBHOOK_EVENT_TYPES, "ticket." + "x" * 100):
        matches([pattern], event_type)
    assert time.perf_counter() - started < 2.0
    assert matches(["*" * 80], "sla.breached") and matches(["*" * 80 + "sla.breached"], "sla.breached")
    assert not matches(["*" * 80 + "sla.breached"], "sla.warning")


def test_glob_matching_agrees_with_a_regex_translation():
    rng = random.Random(7)
    for _ in range(3000):
        pattern = "".join(rng.choice("ab*.") for _ in range(rng.randint(0, 7)))
        text = "".join(rng.choice("ab.") for _ in range(rng.randint(0, 8)))
        regex = ".*".join(re.escape(part) for part in pattern.split("*"))
        assert matches([pattern], text) is bool(re.fullmatch(regex, text, re.DOTALL)), (pattern, text)


def test_the_timed_signature_covers_the_time_the_delivery_and_the_body():
    value = timed_signature(SECRET, 1_796_000_000, "d-1", PAYLOAD)
    expected = hmac.new(SECRET.encode(), b"1796000000.d-1." + PAYLOAD, hashlib.sha256).hexdigest()
    assert value == f"t=1796000000,sha256={expected}"
    others = (timed_signature(SECRET, 1_796_000_001, "d-1", PAYLOAD), timed_signature(SECRET, 1_796_000_000, "d-2",
              PAYLOAD), timed_signature(SECRET, 1_796_000_000, "d-1", PAYLOAD + b" "))  # fmt: skip
    assert all(other.split(",sha256=")[1] != expected for other in others)


def test_signature_verifies_with_the_secret_and_only_with_it():
    payload = json.dumps({"type": "ticket.created", "data": {"subject": "Ünïcode"}}, ensure_ascii=False).encode()
    expected = hmac.HMAC(SECRET.encode("utf-8"), payload, "sha256").hexdigest()
    value = signature(SECRET, payload)
    assert value.startswith("sha256=") and hmac.compare_digest(value, "sha256=" + expected)
    assert len(value.removeprefix("sha256=")) == 64
    assert value != signature(SECRET + "x", payload)
    assert value != signature(SECRET, payload + b" ")
    assert signature("key", b"The quick brown fox jumps over the lazy dog") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"  # RFC 4231-style known vector
    )
    assert hashlib.sha256(b"").hexdigest() != expected  # a keyed MAC, not a bare hash


# --- deliver against a real local server -------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    """Records each request; answers as the server's `behaviour` says."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        received = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append(("POST", self.path, self.headers, received))
        behaviour = self.server.behaviour
        if behaviour == "stall":
            self.server.release.wait(10)  # the test's teardown releases it
            self.close_connection = True
            return
        if behaviour == "garbage":
            self.wfile.write(b"NONSENSE\r\n\r\n")
            self.close_connection = True
            return
        if behaviour == "hang_up":
            self.close_connection = True
            return
        status, reply = behaviour
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", str(len(reply)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply)
        self.close_connection = True

    def do_GET(self):  # a followed redirect would arrive here
        self.server.requests.append(("GET", self.path, self.headers, b""))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):  # keep the test output clean
        pass


@pytest.fixture
def hook_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.daemon_threads = False  # so server_close joins every handler thread
    server.requests, server.behaviour, server.release = [], (200, b""), threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/ticketflow?tenant=1"
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


PAYLOAD = json.dumps({"type": "sla.breached", "data": {"note": "ünïcode"}}, ensure_ascii=False).encode()
HEADERS = {
    "X-Ticketflow-Signature": signature(SECRET, PAYLOAD),
    "X-Ticketflow-Event": "sla.breached",
    "X-Ticketflow-Delivery": "0d1e2f30-0000-4000-8000-000000000001",
}


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_a_2xx_is_success_and_the_receiver_gets_the_exact_body_and_headers(hook_server, status):
    hook_server.behaviour = (status, b"" if status == 204 else b'{"ok": true}')
    assert deliver(hook_server.url, PAYLOAD, HEADERS, timeout=3) == status

    [(method, path, headers, received)] = hook_server.requests
    assert (method, path, received) == ("POST", "/hooks/ticketflow?tenant=1", PAYLOAD)
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "ticketflow-notify/1"
    assert headers["Content-Length"] == str(len(PAYLOAD))
    for name, value in HEADERS.items():
        assert headers[name] == value
    # what a receiver does: recompute the HMAC of the raw body with its copy of the secret
    expected = "sha256=" + hmac.new(SECRET.encode(), received, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Ticketflow-Signature"], expected)


@pytest.mark.parametrize("status", [400, 404, 410, 500, 503])
def test_an_error_status_is_a_send_error_naming_it(hook_server, status):
    hook_server.behaviour = (status, b"<html>\n  <b>boom</b>\n</html>" + b"x" * 20000)
    with pytest.raises(SendError) as caught:
        deliver(hook_server.url, PAYLOAD, HEADERS, timeout=3)
    reason = str(caught.value)
    assert reason.startswith(f"HTTP {status}")
    assert "boom" in reason and "\n" not in reason and len(reason) < 300


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_is_not_followed(hook_server, status):
    hook_server.behaviour = (status, b"")
    with pytest.raises(SendError, match=f"^HTTP {status}"):
        deliver(hook_server.url, PAYLOAD, HEADERS, timeout=3)
    assert [r[0] for r in hook_server.requests] == ["POST"]  # no GET or second POST to /elsewhere


def test_a_receiver_that_hangs_longer_than_the_timeout_is_a_send_error_soon_after_the_timeout(hook_server):
    hook_server.behaviour = "stall"
    timeout = 0.5
    started = time.monotonic()
    with pytest.raises(SendError, match="timed out after 0.5 s"):
        deliver(hook_server.url, PAYLOAD, HEADERS, timeout=timeout)
    assert time.monotonic() - started < timeout + 2  # a bound, not a benchmark
    assert len(hook_server.requests) == 1


@pytest.mark.parametrize("behaviour", ["garbage", "hang_up"])
def test_a_nonsense_or_missing_response_is_a_send_error(hook_server, behaviour):
    hook_server.behaviour = behaviour
    with pytest.raises(SendError, match="bad HTTP response"):
        deliver(hook_server.url, PAYLOAD, HEADERS, timeout=3)


def test_a_closed_port_is_a_send_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SendError, match="connection refused"):
        deliver(f"http://127.0.0.1:{port}/hook", PAYLOAD, HEADERS, timeout=3)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "not a url",
        "http://example.com:99999/",
        "http://exa\nmple.com/",
        "",
    ],
)
def test_an_unusable_url_is_a_send_error_not_a_crash(url):
    with pytest.raises(SendError, match="invalid URL"):
        deliver(url, PAYLOAD, HEADERS, timeout=1)


def test_an_unencodable_header_is_a_send_error_not_a_crash(hook_server):
    with pytest.raises(SendError, match="invalid URL or header"):
        deliver(hook_server.url, PAYLOAD, {**HEADERS, "X-Ticketflow-Event": "snow ☃"}, timeout=3)


def test_https_to_a_plain_http_server_is_a_tls_send_error(hook_server):
    with pytest.raises(SendError, match="TLS error"):
        deliver(hook_server.url.replace("http://", "https://"), PAYLOAD, HEADERS, timeout=3)
    assert hook_server.requests == []


# --- no webhook into the private network; one deadline per delivery -----------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback"),
        ("::1", "a loopback"),
        ("::ffff:127.0.0.1", "a loopback"),  # IPv4-mapped: judged as the IPv4 address a socket reaches
        ("10.0.0.1", "a private"),
        ("172.16.5.4", "a private"),
        ("192.168.1.1", "a private"),
        ("::ffff:192.168.1.1", "a private"),
        ("fc00::1", "a private"),
        ("fe80::1%eth0", "a link-local"),
        ("169.254.1.1", "a link-local"),
        ("169.254.169.254", "a cloud metadata"),
        ("fd00:ec2::254", "a cloud metadata"),
        ("100.100.100.200", "a cloud metadata"),
        ("224.0.0.1", "a multicast"),
        ("ff02::1", "a multicast"),
        ("0.0.0.0", "an unspecified"),
        ("::", "an unspecified"),
        ("240.0.0.1", "a private"),  # reserved (Python counts it private too)
        ("100.64.0.1", "a non-public"),  # carrier-grade NAT
        ("64:ff9b::a9fe:a9fe", "a cloud metadata"),  # NAT64 of 169.254.169.254
        ("2002:a00:1::1", "a private"),  # 6to4 of 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address, kind):
    assert address_problem(address) == f"{address} is {kind} address"


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_fine(address):
    assert address_problem(address) is None


def test_allowed_networks_admit_their_addresses_but_never_a_metadata_one():
    allowed = load_settings({"TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8, ::1/128,169.254.0.0/16"})
    networks = allowed.webhook_allowed_networks
    assert address_problem("127.0.0.1", networks) is None and address_problem("::ffff:127.0.0.2", networks) is None
    assert address_problem("::1", networks) is None
    assert address_problem("10.0.0.1", networks) == "10.0.0.1 is a private address"
    assert address_problem("169.254.169.254", networks) == "169.254.169.254 is a cloud metadata address"


@pytest.mark.parametrize("raw", ["127.0.0.0/33", "localhost", "10.0.0.0/8;192.168.0.0/16", "::1/129"])
def test_a_bad_allowed_network_is_a_clear_config_error(raw):
    with pytest.raises(ConfigError, match="TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS must be .* networks in CIDR"):
        load_settings({"TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS": raw})
    assert load_settings({}).webhook_allowed_networks == ()


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (["10.0.0.1"], "10.0.0.1, which is a private address"),
        (["169.254.169.254"], "169.254.169.254, which is a cloud metadata"),
    ],
)
def test_a_delivery_refuses_a_name_that_resolves_into_the_private_network(monkeypatch, answer, why):
    monkeypatch.setattr(webhook_sender, "resolve", lambda host, port: answer)
    monkeypatch.setattr(webhook_sender, "_post", lambda *args: pytest.fail("connected to a refused address"))
    with pytest.raises(SendError) as caught:
        deliver("https://hooks.example.com/x", PAYLOAD, HEADERS, timeout=1, allowed=())
    assert str(caught.value).startswith("refused: Must point to a public address: hooks.example.com resolves to ")
    assert why in str(caught.value)


def test_without_an_allowed_network_a_loopback_receiver_gets_nothing(hook_server):
    with pytest.raises(SendError, match="127.0.0.1 is a loopback address"):
        deliver(hook_server.url, PAYLOAD, HEADERS, timeout=3, allowed=())
    assert hook_server.requests == []


def test_a_delivery_connects_to_the_address_it_checked_and_names_the_host(hook_server, monkeypatch):
    """Resolved once and pinned: a second, different answer (DNS rebinding) is never asked for nor used."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    asked = []
    monkeypatch.setattr(webhook_sender, "resolve", lambda host, port: asked.append((host, port)) or next(answers))
    port = int(hook_server.url.split(":")[2].split("/")[0])

    assert deliver(f"http://hooks.example.test:{port}/hooks/x?a=1", PAYLOAD, HEADERS, timeout=3) == 200

    assert asked == [("hooks.example.test", port)]
    [(method, path, headers, received)] = hook_server.requests
    assert (method, path, headers["Host"], received) == ("POST", "/hooks/x?a=1", f"hooks.example.test:{port}", PAYLOAD)


@pytest.fixture
def dripping_server():
    """Answers every request with a status line and headers one byte every 50 ms (about 20 s in all)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 400:
                if stop.wait(0.05):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:  # the sender hung up
                    return

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_a_server_that_drips_its_headers_is_cut_off_at_the_total_deadline(dripping_server):
    started = time.monotonic()
    with pytest.raises(SendError, match="^timed out after 0.6 s$"):
        deliver(dripping_server, PAYLOAD, HEADERS, timeout=0.6)
    assert time.monotonic() - started < 0.6 + 1.5  # a bound, not a benchmark: each byte came well within 0.6 s
