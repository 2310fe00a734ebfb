"""notify's SMTP edge: SMTP_URL parsing, the email's headers and parts, and sends to a real in-process server."""

import asyncio
import re
import smtplib
import socket
import threading
import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notify.domain import Message, SendError
from services.notify.mailer import SmtpConfig, build_email, parse_smtp_url, send_email
from shared.config import ConfigError
from shared.smtp import Sessions
from tests.harness import wait_until
from ticketflow.local import free_port

EVIL = "<script>alert(1)</script> & Co"
EVIL_HTML = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"
MESSAGE = Message(
    subject="[#100042] VPN drops every hour",
    text=f"Hello Ana,\n\n{EVIL}\n",
    html=f"<!DOCTYPE html><html><body><p>Hello Ana,</p><p>{EVIL_HTML}</p></body></html>\n",
)


def make_email(**overrides):
    args = {
        "sender": "helpdesk@example.com",
        "recipient": "ana@example.com",
        "message": MESSAGE,
        "ticket_id": "6565f0c2a1b2c3d4e5f60718",
        "notification_id": "0b7f3c9e-5d1a-4c2b-9e8f-1a2b3c4d5e6f",
        **overrides,
    }
    return build_email(**args)


# ---- SMTP_URL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:8025", SmtpConfig("127.0.0.1", 8025, "none")),
        ("smtp://mail.example.com", SmtpConfig("mail.example.com", 25, "none")),
        ("smtp://mail.example.com/", SmtpConfig("mail.example.com", 25, "none")),
        ("smtp://u:p@mail.example.com:587?starttls=true", SmtpConfig("mail.example.com", 587, "starttls", "u", "p")),
        ("smtp://mail.example.com?starttls=false", SmtpConfig("mail.example.com", 25, "none")),
        ("smtp+starttls://mail.example.com", SmtpConfig("mail.example.com", 587, "starttls")),
        ("smtp+starttls://mail.example.com:2525", SmtpConfig("mail.example.com", 2525, "starttls")),
        ("smtps://mail.example.com", SmtpConfig("mail.example.com", 465, "tls")),
        ("smtps://bot%40example.com:p%40ss%3Aw%2Fd@mail.example.com:4650",
         SmtpConfig("mail.example.com", 4650, "tls", "bot@example.com", "p@ss:w/d")),
        ("smtp://user@mail.example.com", SmtpConfig("mail.example.com", 25, "none", "user", None)),
        ("smtp://[::1]:2525", SmtpConfig("::1", 2525, "none")),
    ],
)  # fmt: skip
def test_smtp_urls_give_host_port_security_and_decoded_credentials(url, expected):
    assert parse_smtp_url(url) == expected


def test_the_timeout_is_carried_and_the_password_is_not_shown():
    config = parse_smtp_url("smtps://u:secret@mail.example.com", timeout=2.5)

    assert config.timeout == 2.5 and "secret" not in repr(config)


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "mail.example.com:25",
        "smtp://",
        "smtp://:25",
        "smtp://mail.example.com:abc",
        "smtp://mail.example.com:0",
        "smtp://mail.example.com:70000",
        "smtp://mail.example.com/inbox",
        "smtp://mail.example.com?starttls=maybe",
        "smtp://mail.example.com?tls=true",
        "smtps://mail.example.com?starttls=true",
    ],
)
def test_unusable_smtp_urls_stop_with_a_configuration_error(url):
    with pytest.raises(ConfigError, match="SMTP_URL"):
        parse_smtp_url(url)


def test_a_configuration_error_does_not_print_the_password():
    with pytest.raises(ConfigError) as raised:
        parse_smtp_url("smtp://bot:hunter2@mail.example.com:x")

    assert "hunter2" not in str(raised.value) and "bot:***@" in str(raised.value)


# ---- the email --------------------------------------------------------------------------------------


def test_the_email_threads_under_its_ticket_with_a_stable_message_id():
    email = make_email()

    assert email["From"] == "helpdesk@example.com" and email["To"] == "ana@example.com"
    assert email["Subject"] == "[#100042] VPN drops every hour"
    assert email["Message-ID"] == "<0b7f3c9e-5d1a-4c2b-9e8f-1a2b3c4d5e6f+6565f0c2a1b2c3d4e5f60718@ticketflow>"
    assert email["References"] == email["In-Reply-To"] == "<ticket-6565f0c2a1b2c3d4e5f60718@ticketflow>"
    assert email["Date"] and email["Auto-Submitted"] == "auto-generated"
    assert make_email()["Message-ID"] == email["Message-ID"]


@pytest.mark.parametrize("recipient", ["ana@example.com", "Ána Núñez <ana@example.com>"])  # both ways of building
def test_a_receipt_answers_the_requesters_mail_and_still_names_its_ticket(recipient):
    long = "CAF" + "x" * 230 + "@mail.gmail.com"  # no encoded words, no folding inside an id
    for answered in ("1234.5678@client.example.com", long):
        email = message_from_bytes(
            make_email(recipient=recipient, replying_to=answered).as_bytes(), policy=policy.default
        )
        assert email["In-Reply-To"] == f"<{answered}>"
        assert email["References"].split() == [f"<{answered}>", "<ticket-6565f0c2a1b2c3d4e5f60718@ticketflow>"]


@pytest.mark.parametrize("recipient", ["ana@example.com", "Ána Núñez <ana@example.com>"])
def test_the_emails_after_the_receipt_name_the_requesters_mail_first_and_answer_the_tickets_thread(recipient):
    email = make_email(recipient=recipient, replying_to="1234.5678@client.example.com", answers=False)
    email = message_from_bytes(email.as_bytes(), policy=policy.default)
    assert email["In-Reply-To"] == "<ticket-6565f0c2a1b2c3d4e5f60718@ticketflow>"
    assert email["References"].split() == ["<1234.5678@client.example.com>", email["In-Reply-To"]]


@pytest.mark.parametrize("answered", [None, "", "two words@x", "a<b>@x", "x\r\nBcc: eve@x", "é@x", "x" * 251])
def test_a_message_id_a_header_cannot_carry_is_left_out(answered):
    email = make_email(recipient="Ána <ana@example.com>", replying_to=answered)
    assert email["References"] == email["In-Reply-To"] == "<ticket-6565f0c2a1b2c3d4e5f60718@ticketflow>"


def test_the_email_has_the_text_then_the_html_in_utf8():
    email = make_email(message=Message("[#7] Grüße", "Grüße\n", "<p>Grüße</p>\n"))
    parsed = message_from_bytes(email.as_bytes(), policy=policy.default)

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in parts)
    assert [part.get_content() for part in parts] == ["Grüße\n", "<p>Grüße</p>\n"]
    assert parsed["Subject"] == "[#7] Grüße"


@pytest.mark.parametrize(
    "sender",
    [
        "helpdesk@example.com",  # the plain build
        "Hélp Désk <helpdesk@example.com>",  # a name to encode: the modern one
        '"Help Desk of the Third Floor, Building C, Main Campus" <helpdesk-third-floor@example.com>',
    ],
)
def test_names_and_subjects_beyond_ascii_or_a_line_are_encoded_folded_and_read_back_as_written(sender):
    subject = "[#7] Grüße: the printer on the third floor jams whenever anyone prints on both sides"
    text = "Grüße\n" + "x" * 1500 + "\nend"  # a line longer than a relay takes as it is
    raw = make_email(sender=sender, message=Message(subject, text, "<p>ok</p>")).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    head = raw.decode().split("\n\n", 1)[0]

    assert raw.isascii() and max(len(line) for line in raw.splitlines()) <= 998  # 7-bit clean for any relay
    assert str(parsed["From"]) == sender and str(parsed["Subject"]) == subject
    assert _header_lines(head, "Subject")[0].startswith("Subject: [#7] ")  # the number readable as it is
    for name in ("From", "Subject"):  # folded within RFC 5322's 78 (an encoded word within RFC 2047's 75)
        assert all(len(line) <= 78 for line in _header_lines(head, name)), name
    assert [part.get_content() for part in parsed.iter_parts()] == [text + "\n", "<p>ok</p>\n"]


@pytest.mark.parametrize("sender", ["helpdesk@example.com", "Hélp Désk <helpdesk@example.com>"])
@pytest.mark.parametrize(
    "subject",
    [
        '[#100025] VPN drops every hour <b>bold</b> & "quotes" 🚀',  # an empty encoded word before the emoji once
        '[#7] xaj z=🚀&b中i=mñ🚀>exhc<<k_da ?ñeyé=mxykeñkii🚀n"a>ze<bibeffd "hy>bhh> cicéh🚀??🚀>li<niy=aeb',
        "[#7]  Grüße  aus  Köln, the  printer  on  the  third  floor  jams  again  and  again  and  again  ünd",
        "[#7] a subject that says =?utf-8?q?x?= as its requester typed it",  # ASCII, but it reads as an encoded word
        "Grüße " + "x" * 100 + " ñ",
        "[#181720] Outlook, three again; printer) laptop the, open - Outlook drive;",  # folded after "Subject:" once
        "[#7] the printer on the third floor jams again  and  again  and  again  when  anyone  prints  both sides",
        "[#7] " + "x" * 100 + " and the rest of a subject that needs a line of its own",
    ],
)
def test_a_subject_is_read_back_exactly_as_written_every_space_kept_no_encoded_word_empty(sender, subject):
    """The modern policy's folding dropped the space at each fold between encoded words and could write an empty
    encoded word (`=?utf-8?q??=`, which some clients show as it is); the subject as its ticket has it comes back."""
    raw = make_email(sender=sender, message=Message(subject, "ok", "<p>ok</p>")).as_bytes()
    head = raw.decode().split("\n\n", 1)[0]
    lines = _header_lines(head, "Subject")

    assert str(message_from_bytes(raw, policy=policy.default)["Subject"]) == subject
    assert "??=" not in head and raw.isascii()
    assert all(len(line.rstrip("\r")) <= 78 or " " not in line.strip() for line in lines)  # a word longer stays whole
    assert lines[0] != "Subject:" and all(line.strip() for line in lines)  # no line of only spaces
    if subject.startswith("[#"):
        assert re.match(rf"Subject: {re.escape(subject.split(' ')[0])}( |$)", lines[0])  # the number as it is


def _header_lines(head: str, name: str) -> list[str]:
    """The header's lines as written: its first and the continuation lines after it."""
    lines = head.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}: "))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith((" ", "\t"))), len(lines))
    return lines[start:end]


class EnvelopeOnly(smtplib.SMTP):
    """smtplib's send_message up to the envelope it works out: (from, to, options), nothing sent."""

    def __init__(self):
        super().__init__()  # no host: no connection
        self.ehlo_resp, self.does_esmtp, self.esmtp_features = b"ok", True, {"smtputf8": ""}  # as after EHLO

    def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        self.envelope = (from_addr, list(to_addrs), list(mail_options))
        return {}


@pytest.mark.parametrize(
    ("sender", "recipient", "expected"),
    [
        ("helpdesk@example.com", "ana@example.com", ("helpdesk@example.com", ["ana@example.com"], [])),
        ('"Doe, J" <j@example.com>', "ana@example.com", ("j@example.com", ["ana@example.com"], [])),
        ('"Desk, Help Desk, Help Desk, Help Desk, Help Desk, Help" <x@example.com>', "a@example.com",
         ("x@example.com", ["a@example.com"], [])),
        ("x@example.com (Hélp, Désk)", "a@example.com", ("x@example.com", ["a@example.com"], [])),
        ("helpdesk@example.com", "jürgen@exämple.com",
         ("helpdesk@example.com", ["jürgen@exämple.com"], ["SMTPUTF8", "BODY=8BITMIME"])),
    ],
)  # fmt: skip
def test_the_envelope_names_the_addresses_themselves_whatever_the_names_around_them(sender, recipient, expected):
    smtp = EnvelopeOnly()
    smtp.send_message(make_email(sender=sender, recipient=recipient))

    assert smtp.envelope == expected


def test_every_line_stays_within_998_whatever_breaks_the_text():
    raw = make_email(message=Message("[#1] s", "x" * 600 + "\f" + "y" * 600, "<p>ok</p>")).as_bytes()

    assert max(len(line) for line in raw.split(b"\n")) <= 998


@pytest.mark.parametrize(
    "overrides",
    [
        {"message": Message("[#1] two\nlines", "t", "h")},
        {"message": Message("[#1] a\x0cb", "t", "h")},  # any line break, not only CR and LF
        {"message": Message("[#1] a\x0bReply-To : evil@example.com", "t", "h")},
        {"message": Message("[#1] a\u2028b", "t", "h")},
        {"recipient": "ana@example.com\r\nBcc: everyone@example.com"},
        {"recipient": "ana@example.com\n"},
        {"sender": "helpdesk@example.com\rX: y"},
        {"ticket_id": "t 1>"},
        {"notification_id": ""},
    ],
)
def test_header_injection_and_odd_ids_are_refused(overrides):
    with pytest.raises(ValueError):
        make_email(**overrides)


# ---- sending ----------------------------------------------------------------------------------------


class Recorder:
    """An aiosmtpd handler that keeps what it receives and answers DATA with `answer`."""

    def __init__(self, answer: str = "250 OK") -> None:
        self.answer = answer
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session))
        return self.answer


class RefusesRecipients(Recorder):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such user here"


@pytest.fixture
def smtp_server():
    """Start an SMTP server on a free port: `smtp_server(handler, **smtp_options) -> SmtpConfig`."""
    controllers = []

    def start(handler, **options) -> SmtpConfig:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        controllers.append(controller)
        return SmtpConfig("127.0.0.1", controller.port, timeout=5.0)

    yield start
    for controller in controllers:
        controller.stop()


def test_the_server_receives_one_message_with_the_envelope_and_the_html_escaped(smtp_server):
    handler = Recorder()
    config = smtp_server(handler)

    send_email(config, make_email())

    assert len(handler.received) == 1
    mail_from, rcpt_tos, content, _ = handler.received[0]
    assert (mail_from, rcpt_tos) == ("helpdesk@example.com", ["ana@example.com"])
    parsed = message_from_bytes(content, policy=policy.default)
    assert parsed["Message-ID"].strip() == "<0b7f3c9e-5d1a-4c2b-9e8f-1a2b3c4d5e6f+6565f0c2a1b2c3d4e5f60718@ticketflow>"
    html = parsed.get_body(("html",)).get_content()
    assert EVIL_HTML in html and "<script>" not in html
    assert EVIL in parsed.get_body(("plain",)).get_content()


def test_a_server_that_answers_451_to_data_is_a_send_error_with_its_answer(smtp_server):
    config = smtp_server(Recorder(answer="451 Try again later"))

    with pytest.raises(SendError, match="^SMTP 451: Try again later$") as exc:
        send_email(config, make_email())
    assert not exc.value.unreachable  # the relay answered: its answer is about this message


def test_a_refused_recipient_is_a_send_error_naming_the_recipient(smtp_server):
    handler = RefusesRecipients()
    config = smtp_server(handler)

    with pytest.raises(SendError, match="SMTP 550: 5.1.1 No such user here .recipient ana@example.com refused"):
        send_email(config, make_email())
    assert handler.received == []


def test_login_when_the_url_names_a_user(smtp_server):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss", handled=False)  # handled=False: aiosmtpd sends 535

    handler = Recorder()
    config = smtp_server(handler, authenticator=authenticator, auth_require_tls=False)
    url = f"smtp://bot%40example.com:p%40ss@127.0.0.1:{config.port}"

    send_email(parse_smtp_url(url), make_email())
    with pytest.raises(SendError, match="^SMTP 535"):
        send_email(parse_smtp_url(url.replace("p%40ss", "wrong")), make_email())

    assert logins[0] == (b"bot@example.com", b"p@ss")
    assert set(logins[1:]) == {(b"bot@example.com", b"wrong")}  # smtplib tries PLAIN, then LOGIN
    assert len(handler.received) == 1 and handler.received[0][3].authenticated


def test_starttls_asked_of_a_server_without_it_is_a_send_error_and_nothing_is_sent(smtp_server):
    handler = Recorder()
    config = smtp_server(handler)

    with pytest.raises(SendError, match="STARTTLS"):
        send_email(SmtpConfig("127.0.0.1", config.port, "starttls", timeout=5.0), make_email())
    assert handler.received == []


def test_implicit_tls_against_a_plain_server_is_a_send_error(smtp_server):
    config = smtp_server(Recorder())

    with pytest.raises(SendError, match="^TLS error") as exc:
        send_email(SmtpConfig("127.0.0.1", config.port, "tls", timeout=5.0), make_email())
    assert not exc.value.unreachable  # a setting to mend, not an outage to wait out


def test_nothing_listening_is_a_send_error_at_once():
    port = free_port()
    started = time.monotonic()

    with pytest.raises(SendError, match=rf"^connection refused \(127\.0\.0\.1:{port}\)$") as exc:
        send_email(SmtpConfig("127.0.0.1", port, timeout=5.0), make_email())
    assert exc.value.unreachable
    assert time.monotonic() - started < 2.0


def test_a_server_that_never_answers_is_a_send_error_after_the_timeout():
    with socket.socket() as silent:  # accepts connections (the kernel does) but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        config = SmtpConfig("127.0.0.1", silent.getsockname()[1], timeout=0.3)
        started = time.monotonic()

        with pytest.raises(SendError, match="^timed out after 0.3 s") as exc:
            send_email(config, make_email())
        assert exc.value.unreachable  # no greeting: no server judged the message
        assert time.monotonic() - started < 2.0


# ---- connections kept between messages (notify's senders) -----------------------------------------


class RefusesFirst(Recorder):
    """Answers the first DATA with 451, the others with 250."""

    async def handle_DATA(self, server, session, envelope):
        self.answer = "451 Try again later" if not self.received else "250 OK"
        return await super().handle_DATA(server, session, envelope)


def _connections(handler: Recorder) -> int:
    return len({id(session) for *_, session in handler.received})


@pytest.mark.parametrize(
    ("sessions", "connections"),
    [
        (lambda: Sessions(), 1),  # a kept connection carries the next messages
        (lambda: Sessions(idle=0.0), 3),  # one idle longer than the bound is not used again
        (lambda: Sessions(keep=0), 3),  # none is kept beyond the bound
    ],
    ids=["kept", "idle-too-long", "none-kept"],
)
def test_three_messages_over_kept_connections(smtp_server, sessions, connections):
    handler, sessions = Recorder(), sessions()
    config = smtp_server(handler)
    try:
        for number in range(3):
            send_email(config, make_email(notification_id=f"n{number}"), sessions)
    finally:
        sessions.close()
    assert len(handler.received) == 3 and _connections(handler) == connections


class CountsRset(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.rsets = 0

    async def handle_RSET(self, server, session, envelope):
        self.rsets += 1
        return "250 OK"


@pytest.mark.parametrize(("fresh", "rsets"), [(3600.0, 0), (0.0, 2)], ids=["given-back-just-now", "older"])
def test_a_connection_given_back_just_now_is_used_again_without_a_round_trip(smtp_server, fresh, rsets):
    """A kept connection is checked with RSET, unless it was given back less than FRESH seconds ago and the
    server has said nothing on it since (the next emails of a busy minute)."""
    handler, sessions = CountsRset(), Sessions()
    sessions.FRESH = fresh
    config = smtp_server(handler)
    try:
        for number in range(3):
            send_email(config, make_email(notification_id=f"n{number}"), sessions)
    finally:
        sessions.close()
    assert len(handler.received) == 3 and _connections(handler) == 1 and handler.rsets == rsets


@pytest.mark.parametrize("fresh", [3600.0, 0.0], ids=["given-back-just-now", "older"])
def test_a_connection_the_server_closed_meanwhile_is_replaced_and_the_message_goes_once(fresh):
    first, second, sessions, port = Recorder(), Recorder(), Sessions(), free_port()
    sessions.FRESH = fresh  # closed: the socket says so, or RSET finds it
    config = SmtpConfig("127.0.0.1", port, timeout=5.0)
    server = Controller(first, hostname="127.0.0.1", port=port)
    server.start()
    try:
        send_email(config, make_email(notification_id="n1"), sessions)
    finally:
        server.stop()  # closes the connection kept open
    server = Controller(second, hostname="127.0.0.1", port=port)
    server.start()
    try:
        send_email(config, make_email(notification_id="n2"), sessions)
    finally:
        sessions.close()
        server.stop()
    assert [len(first.received), len(second.received)] == [1, 1]


def test_a_refused_message_closes_its_connection_and_the_next_one_goes_over_a_new_one(smtp_server):
    handler, sessions = RefusesFirst(), Sessions()
    config = smtp_server(handler)
    try:
        with pytest.raises(SendError, match="^SMTP 451"):
            send_email(config, make_email(notification_id="n1"), sessions)
        send_email(config, make_email(notification_id="n2"), sessions)
    finally:
        sessions.close()
    assert len(handler.received) == 2 and _connections(handler) == 2


def test_an_unreachable_server_is_still_told_apart_with_kept_connections():
    sessions = Sessions()
    with pytest.raises(SendError) as exc:
        send_email(SmtpConfig("127.0.0.1", free_port(), timeout=5.0), make_email(), sessions)
    assert exc.value.unreachable


# ---- a send bounded by its claim (notify's senders: `until`) ----------------------------------------


class SlowToConfirm(Recorder):
    """Takes the message at once, and says so `delay` seconds later (a relay writing it to disk, a busy machine)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return answer


@pytest.mark.parametrize("kept", [False, True], ids=["own-connection", "kept-connection"])
def test_a_server_slow_to_confirm_a_message_it_took_is_waited_for_within_the_send_s_time(smtp_server, kept):
    """Its answer to the end of the message may come after a step's timeout: given up on, the message would be
    tried again and arrive twice. It is awaited until `until`; every other step keeps the step's timeout."""
    handler = SlowToConfirm(delay=3.0)
    config = smtp_server(handler)
    step = SmtpConfig(config.host, config.port, timeout=1.0)
    sessions = Sessions() if kept else None
    try:
        send_email(step, make_email(notification_id="n1"), sessions, until=time.monotonic() + 60)
        with pytest.raises(SendError, match=r"^no answer to the end of the message within 1\.\d s") as exc:
            send_email(step, make_email(notification_id="n2"), sessions)  # no `until`: a step's wait, as before
        assert not exc.value.unreachable  # the server may have it: the attempt counts
    finally:
        if sessions is not None:
            sessions.close()
    wait_until(lambda: len(handler.received) == 2, timeout=30)  # the server had the second too: why it is waited for


@pytest.mark.parametrize("kept", [False, True], ids=["own-connection", "kept-connection"])
def test_nothing_is_sent_once_the_send_s_time_is_over(smtp_server, kept):
    """Past `until`, another sender may hold the notification: no command goes out, and the server gets nothing."""
    handler = Recorder()
    config = smtp_server(handler)
    sessions = Sessions() if kept else None
    try:
        if kept:  # a connection kept open from an earlier message
            send_email(config, make_email(notification_id="n1"), sessions, until=time.monotonic() + 60)
        with pytest.raises(SendError, match="^not sent: no time left") as exc:
            send_email(config, make_email(notification_id="n2"), sessions, until=time.monotonic() - 1)
    finally:
        if sessions is not None:
            sessions.close()
    assert len(handler.received) == (1 if kept else 0)  # the earlier message alone
    assert exc.value.unreachable  # never judged: tried again without using up a retry


@pytest.mark.parametrize("kept", [False, True], ids=["own-connection", "kept-connection"])
def test_the_message_goes_out_only_while_a_step_is_left_for_its_answer(smtp_server, kept):
    """The commands before it are quick, but less than a step's wait is left for the end's answer: sent then, a
    server slow to confirm would have it while the send counts as failed, and would get it again."""
    handler = Recorder()
    config = smtp_server(handler)
    step = SmtpConfig(config.host, config.port, timeout=30.0)
    sessions = Sessions() if kept else None
    try:
        with pytest.raises(SendError, match="^not sent: too little time left") as exc:
            send_email(step, make_email(notification_id="n1"), sessions, until=time.monotonic() + 20)
        send_email(step, make_email(notification_id="n2"), sessions, until=time.monotonic() + 60)  # room: it goes
    finally:
        if sessions is not None:
            sessions.close()
    assert exc.value.unreachable
    assert len(handler.received) == 1 and b"<n2+" in handler.received[0][2]  # its Message-ID


def test_a_wait_for_the_end_s_answer_reports_how_long_it_waited(smtp_server):
    handler = SlowToConfirm(delay=10.0)
    config = smtp_server(handler)
    step = SmtpConfig(config.host, config.port, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(SendError, match=r"^no answer to the end of the message within [2-5]\.\d s") as exc:
        send_email(step, make_email(), until=started + 5)  # longer than a step: the end's answer is waited for
    assert not exc.value.unreachable


def test_the_worker_stopping_ends_a_wait_for_the_end_s_answer_already_under_way(smtp_server):
    """A stopping worker exits TICKETFLOW_STOP_TIMEOUT after the signal: a send still waiting for the relay then
    would leave its claim to run out and the email to go again, so the stop's bound (`Sessions(bound=)`, asked
    during the wait) ends it in time to store the outcome."""
    handler = SlowToConfirm(delay=15.0)
    config = smtp_server(handler)
    step = SmtpConfig(config.host, config.port, timeout=1.0)
    bound: list[float | None] = [None]
    sessions = Sessions(bound=lambda: bound[0])

    def stop_when_the_server_has_it() -> None:
        wait_until(lambda: handler.received, timeout=30)
        bound[0] = time.monotonic() + 0.5  # the signal, while the send waits for the end's answer

    stopper = threading.Thread(target=stop_when_the_server_has_it)
    stopper.start()
    started = time.monotonic()
    try:
        with pytest.raises(SendError, match=r"^no answer to the end of the message .* \(the worker stopped\)") as exc:
            send_email(step, make_email(), sessions, until=started + 60)
    finally:
        stopper.join()
        sessions.close()
    assert time.monotonic() - started < 12  # not the server's 15 s, nor the claim's 60
    assert exc.value.unreachable  # not the message's fault: tried again without using up a retry


def test_a_step_s_timeout_holds_while_the_send_s_time_is_long():
    """`until` far away waits longer for the end's answer only: a server that never greets is given up after a
    step, and no connection is left open behind a send given up on."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(SendError, match="^timed out after 1 s") as exc:
            send_email(SmtpConfig("127.0.0.1", port, timeout=1.0), make_email(), until=started + 120)
        assert time.monotonic() - started < 30  # a step, not `until`
        assert exc.value.unreachable
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            assert conn.recv(1) == b""  # closed by the client


def test_a_greeting_cut_short_by_the_send_s_time_leaves_no_connection_open():
    """The send's time runs out while the greeting is awaited (here: the worker stops just then, 2 s in): the wait
    ends then, not after its step (30 s), the send is not held against the message, and no socket stays open."""
    started = time.monotonic()
    sessions = Sessions(bound=lambda: started + 2)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(SendError, match="^not sent: no time left") as exc:
            send_email(SmtpConfig("127.0.0.1", port, timeout=30.0), make_email(), sessions, until=started + 60)
        assert time.monotonic() - started < 20 and exc.value.unreachable
        listener.settimeout(10)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            assert conn.recv(1) == b""


class SlowToAcceptRecipients(Recorder):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await asyncio.sleep(10)
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_send_whose_time_runs_out_before_the_message_went_out_is_not_held_against_it(smtp_server):
    """The relay is slow to take the recipient and the send's time ends first: nothing of the message went out, so
    the attempt says so and uses up no retry (the relay's slowness, not the message's fault)."""
    handler = SlowToAcceptRecipients()
    config = smtp_server(handler)
    started = time.monotonic()
    with pytest.raises(SendError, match="^not sent: no time left") as exc:
        send_email(SmtpConfig(config.host, config.port, timeout=30.0), make_email(), until=started + 3)
    assert time.monotonic() - started < 20  # the send's time, not the step's 30 s
    assert exc.value.unreachable and handler.received == []


def test_a_stopping_worker_s_sends_end_one_send_timeout_before_it_exits():
    """The bound notify's worker gives its sessions: none while it runs; once it stops, its exit less the time to
    store an outcome (the database's timeout and a second)."""
    from services.notify.handlers import send_bound
    from shared.config import load_settings
    from shared.runtime import exits_at

    settings = load_settings({"TICKETFLOW_SMTP_TIMEOUT": "40", "TICKETFLOW_MONGO_TIMEOUT_MS": "2500"})
    assert exits_at() is None and send_bound(settings, exits_at()) is None
    assert send_bound(settings, 1000.0) == 996.5
