"""`ticketflow send-mail`'s mail: what a requester's mail client would write, a reply threaded as clients thread."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from ticketflow import mailsend

LONG_ID = "<a20faebc-271d-5a0b-930c-d1d572b9fd89+42adb902318d4ca195924362280ab87d@ticketflow>"  # as notify's are


def test_a_reply_names_a_long_message_id_as_written_and_an_address_pasted_with_its_line_end_is_one_header(tmp_path):
    receipt = EmailMessage()
    receipt["From"], receipt["To"], receipt["Subject"] = "helpdesk@localhost", "ana@example.com", "[#100009] Outlook"
    receipt["Message-ID"], receipt["References"] = LONG_ID, "<ticket-42adb902318d4ca195924362280ab87d@ticketflow>"
    receipt.set_content("We have received your request.")
    saved = tmp_path / "receipt.eml"
    saved.write_bytes(receipt.as_bytes())

    reply = mailsend.build("ana@example.com\r", "help@localhost\n", "", "Still not syncing.", reply_to=saved)

    raw = reply.as_bytes(policy=reply.policy.clone(linesep="\r\n"))  # as smtplib sends it
    assert f"\r\nIn-Reply-To: {LONG_ID}\r\n".encode() in raw and b"=?utf-8?q?" not in raw
    read = BytesParser(policy=policy.default).parsebytes(raw)
    assert (read["From"], read["To"], read["Subject"]) == ("ana@example.com", "help@localhost", "Re: [#100009] Outlook")
    assert read["References"].split() == ["<ticket-42adb902318d4ca195924362280ab87d@ticketflow>", LONG_ID]
    assert read.get_content().startswith("Still not syncing.")
