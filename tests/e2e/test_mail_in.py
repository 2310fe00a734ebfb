"""Mail in through the whole system: a mail to intake's mail process opens a ticket, notify's receipt names its
number, the requester answers the receipt from a mail client (Re: [#N], In-Reply-To, the receipt quoted below) and
only the answer joins the thread; an out-of-office reply to the receipt makes no ticket and no mail."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from email.utils import make_msgid

from tests.harness import wait_until
from ticketflow import mailsend
from ticketflow.cli import mail_command
from ticketflow.local import free_port, port_answers


def test_a_mail_opens_a_ticket_and_a_reply_to_its_receipt_joins_the_thread(start_system, spawn, tmp_path):
    system = start_system()
    port = free_port()
    mail = spawn(mail_command(), env={"TICKETFLOW_INBOUND_SMTP": f"127.0.0.1:{port}"}, name="intake-mail")
    wait_until(lambda: port_answers("127.0.0.1", port), timeout=30, message="intake's mail process listens")
    requester = f"ana.{uuid.uuid4().hex[:8]}@example.com"

    first = EmailMessage()
    first["From"], first["To"], first["Subject"] = f"Ana Ruiz <{requester}>", "help@localhost", "VPN drops every hour"
    first["Message-ID"] = make_msgid(domain="client.example.com")
    first.set_content("Since Monday the VPN drops every hour.\n\n-- \nAna Ruiz\nACME Corp")
    _send(port, first)
    (ticket,) = system.ok("GET", "intake", "/tickets", params={"requester_email": requester})["items"]
    assert (ticket["subject"], ticket["source"]) == ("VPN drops every hour", "email")

    receipt = wait_until(lambda: system.emails_to(requester, ticket["number"]), timeout=30)[0]
    body = receipt.get_body(("plain",)).get_content()
    assert "reply to this email" in body and f"#{ticket['number']}" in body
    # it answers the requester's mail: their mail client shows it under the mail they sent
    assert receipt["In-Reply-To"].strip() == first["Message-ID"]
    assert receipt["References"].split() == [first["Message-ID"], f"<ticket-{ticket['id']}@ticketflow>"]
    saved = tmp_path / "receipt.eml"
    saved.write_bytes(receipt.as_bytes())
    reply = mailsend.build(requester, "help@localhost", "", "It dropped again at 10:00.", reply_to=saved)
    assert reply["Subject"] == f"Re: {receipt['Subject']}" and reply["In-Reply-To"] == receipt["Message-ID"].strip()
    _send(port, reply)
    thread = system.ok("GET", "intake", f"/tickets/{ticket['id']}")["thread"]
    assert [(e["kind"], e["body"]) for e in thread] == [("message", "It dropped again at 10:00.")]

    away = EmailMessage()
    away["From"], away["To"], away["Subject"] = requester, "help@localhost", f"Automatic reply: {receipt['Subject']}"
    away["Message-ID"], away["In-Reply-To"] = make_msgid(domain="client.example.com"), receipt["Message-ID"].strip()
    away["Auto-Submitted"] = "auto-replied"
    away.set_content("I am out of the office until Monday.")
    _send(port, away)
    assert system.ok("GET", "intake", f"/tickets/{ticket['id']}")["thread"] == thread
    assert len(system.ok("GET", "intake", "/tickets", params={"requester_email": requester})["items"]) == 1
    kept = system.ok("GET", "intake", f"/tickets/{ticket['id']}/mail")["items"]
    assert [m["outcome"] for m in kept] == ["ticket", "message", "ignored"]
    # and no mail: the requester closes the ticket; once that email is there, the receipt and it are all they got
    system.ok("POST", "intake", f"/tickets/{ticket['id']}/close", role="admin")
    wait_until(lambda: len(system.emails_to(requester, ticket["number"])) >= 2, timeout=30)
    to_requester = [m["Subject"] for m in list(system.smtp.received) if m["To"] == requester]
    assert len(to_requester) == 2, to_requester  # no receipt for the out-of-office reply, nothing about it
    assert mail.running


def _send(port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        refused = smtp.send_message(message)
    assert refused == {}
