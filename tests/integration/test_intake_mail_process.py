"""intake's mail process as it runs (`python -m services.intake.mail`), spoken to with smtplib as an MTA would: 250
only once a mail is stored, 451 while the store is away (the mail arrives once it is back), 552 for a mail too big,
550 for an address the help desk does not serve; two processes fed the same mail at once make one ticket."""

from __future__ import annotations

import smtplib
import uuid
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import urlsplit

import pytest

from tests.harness import TcpProxy, wait_until
from tests.mailserver import running_dovecot
from ticketflow.cli import mail_command
from ticketflow.local import free_port, port_answers

SMTP_POLICY = policy.SMTP


def start_mail(spawn, **env):
    port = free_port()
    handle = spawn(mail_command(), env={"TICKETFLOW_INBOUND_SMTP": f"127.0.0.1:{port}", **env}, name="intake-mail")
    handle.port = port
    wait_until(
        lambda: port_answers("127.0.0.1", port) or not handle.running, timeout=30, message="the mail process listens"
    )
    assert handle.running, handle.log_text()
    return handle


def new_mail(sender: str, subject: str = "VPN drops", body: str = "Since Monday.") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "help@help.example.com", subject
    message["Message-ID"] = make_msgid(domain="client.example.com")
    message.set_content(body)
    return message


def send(port: int, message: EmailMessage, to: str = "help@help.example.com") -> tuple[int, bytes]:
    """(code, text) of the server's answer to the mail's DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo()
        code, answer = smtp.mail(message["From"])
        assert code == 250, answer
        code, answer = smtp.rcpt(to)
        if code != 250:
            return code, answer
        return smtp.data(message.as_bytes(policy=SMTP_POLICY))  # CRLF line ends, as MTAs send


def sender() -> str:
    return f"ana.{uuid.uuid4().hex[:8]}@example.com"


def test_a_mail_is_answered_250_once_its_ticket_is_stored(spawn, intake_db):
    mail = start_mail(spawn)
    address = sender()
    code, answer = send(mail.port, new_mail(address))
    assert code == 250 and b"Stored: ticket #" in answer
    (ticket,) = intake_db.tickets.find({"requester.email": address})  # already there: no wait
    assert answer.endswith(f"#{ticket['number']}".encode()) and ticket["source"] == "email"
    # any address is taken (no TICKETFLOW_INBOUND_ADDRESSES), but only an address: not <> or a bare word
    assert [send(mail.port, new_mail(sender()), to=to)[0] for to in ("", "not-an-address")] == [550, 550]
    assert send(mail.port, new_mail(sender()), to="Postmaster")[0] == 250  # RFC 5321's, domain or none


def test_an_address_the_help_desk_does_not_serve_is_refused_550(spawn):
    mail = start_mail(spawn, TICKETFLOW_INBOUND_ADDRESSES="*@help.example.com")
    assert send(mail.port, new_mail(sender()), to="ceo@example.org")[0] == 550
    assert send(mail.port, new_mail(sender()), to="network@help.example.com")[0] == 250


def test_a_30_mib_attachment_is_refused_552_and_a_5_mib_pdf_is_taken(spawn, intake_db):
    mail = start_mail(spawn)
    address = sender()
    big = new_mail(address, "Scan")
    big.add_attachment(bytes(30 * 1024 * 1024), maintype="application", subtype="pdf", filename="scan.pdf")
    assert send(mail.port, big)[0] == 552
    assert intake_db.tickets.count_documents({"requester.email": address}) == 0
    document = new_mail(address, "Invoice")
    document.add_attachment(b"%PDF-1.7\n" + bytes(5 * 1024 * 1024), maintype="application", subtype="pdf",
                            filename="invoice.pdf")  # fmt: skip
    assert mail.running and send(mail.port, document)[0] == 250  # 5 MiB: taken, the same process
    (ticket,) = intake_db.tickets.find({"requester.email": address})
    (stored,) = intake_db.attachments.find({"ticket_id": ticket["_id"]})
    assert (stored["filename"], stored["size"]) == ("invoice.pdf", 5 * 1024 * 1024 + 9)


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def send_raw(port: int, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        smtp.ehlo()
        assert smtp.mail("flood@example.com")[0] == 250 and smtp.rcpt("help@help.example.com")[0] == 250
        return smtp.data(raw)


def test_a_mail_of_millions_of_short_lines_is_refused_552_without_the_memory_they_would_take(spawn, intake_db):
    """aiosmtpd kept each line as an object of its own (some 90 bytes): 33 MiB of three-byte lines took 1.9 GB, and
    the parser as much again. The process gathers DATA into one buffer and refuses more than RAW_MAX_LINES lines."""
    from services.intake.inbox import RAW_MAX_LINES

    mail = start_mail(spawn)
    before = peak_rss_mb(mail.proc.pid)
    head = b"From: flood@example.com\r\nTo: help@help.example.com\r\nSubject: lines\r\n\r\n"
    code, answer = send_raw(mail.port, head + b"a\r\n" * (3 * RAW_MAX_LINES))
    assert code == 552 and peak_rss_mb(mail.proc.pid) - before < 100  # aiosmtpd's own way: about 270 MB more
    assert answer == f"5.3.4 The mail has more than {RAW_MAX_LINES:,} lines".encode()
    assert intake_db.tickets.count_documents({"requester.email": "flood@example.com"}) == 0

    address = sender()  # within the limit, dot-stuffed lines as they were written, and the next mail is taken
    body = "Line one.\r\n.Starts with a dot.\r\n..two dots\r\n"
    code, _ = send_raw(
        mail.port, f"From: {address}\r\nTo: help@help.example.com\r\nSubject: dots\r\n\r\n{body}".encode()
    )
    assert code == 250 and mail.running
    (ticket,) = intake_db.tickets.find({"requester.email": address})
    assert ticket["description"] == "Line one.\n.Starts with a dot.\n..two dots"


def test_two_mail_processes_fed_the_same_mail_at_once_make_one_ticket(spawn, intake_db):
    first, second = start_mail(spawn), start_mail(spawn)
    address = sender()
    message = new_mail(address)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda port: send(port, message), [first.port, second.port] * 2))
    assert [code for code, _ in answers] == [250] * 4
    assert intake_db.tickets.count_documents({"requester.email": address}) == 1


def test_while_the_store_is_away_mail_gets_451_and_arrives_once_it_is_back(spawn, infra, intake_db):
    target = urlsplit(infra.mongo_url)
    with TcpProxy(target.hostname, target.port) as proxy:
        mail = start_mail(spawn, MONGO_URL=proxy.rewrite(infra.mongo_url), TICKETFLOW_MONGO_TIMEOUT_MS="1000")
        address = sender()
        message = new_mail(address)
        proxy.stop()
        code, answer = send(mail.port, message)
        assert code == 451, answer
        proxy.start()
        # the sending MTA tries again later: until the store answers, each try is 451 (never 250 without storing)
        wait_until(lambda: send(mail.port, message)[0] == 250, timeout=60, interval=0.5)
    assert intake_db.tickets.count_documents({"requester.email": address}) == 1


def test_sigterm_stops_the_process_cleanly(spawn):
    mail = start_mail(spawn)
    assert mail.stop(timeout=20) == 0
    assert "mail in: stopped" in mail.log_text()


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    with running_dovecot(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


def test_mail_in_a_polled_imap_mailbox_opens_a_ticket_once_and_is_then_seen(spawn, dovecot, intake_db):
    """Dovecot's INBOX polled by the mail process; the same mail also relayed over SMTP makes one ticket."""
    mail = start_mail(spawn, TICKETFLOW_IMAP_URL=dovecot.imap_url, TICKETFLOW_IMAP_POLL_SECONDS="1")
    address = sender()
    message = new_mail(address, "Printer on floor 2")
    message["Return-Path"] = f"<{address}>"
    dovecot.append(message.as_bytes(policy=SMTP_POLICY))
    ticket = wait_until(lambda: intake_db.tickets.find_one({"requester.email": address}), timeout=30)
    assert (ticket["subject"], ticket["source"]) == ("Printer on floor 2", "email")
    wait_until(lambda: any("\\Seen" in flags and address.encode() in raw for flags, raw in dovecot.messages("INBOX")),
               timeout=30, message="the polled mail is marked seen once stored")  # fmt: skip
    assert send(mail.port, message)[0] == 250  # the same Message-ID over SMTP: received before
    assert intake_db.tickets.count_documents({"requester.email": address}) == 1
