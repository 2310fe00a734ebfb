"""intake's reading of one inbound email (services/intake/inbound.py): real clients' replies, charsets, HTML-only
mail, attachments, automatic mail, ticket references, malformed MIME, and never an exception on any bytes."""

from __future__ import annotations

import base64
import hashlib
import random
import tracemalloc
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake import inbound, inbound_headers, inbound_text
from services.intake.inbound import OWN_MESSAGE_DOMAIN, InboundMail, parse

PERSON = "ana.ruiz@example.com"  # the envelope sender of a person's mail, unless a test says otherwise


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\n", b"\r\n")


def make_mail(body: str = "The VPN drops every hour.", **headers: str) -> EmailMessage:
    """A person's plain-text mail; keyword arguments add or replace headers (underscores become dashes)."""
    message = EmailMessage()
    defaults = {"From": f"Ana Ruiz <{PERSON}>", "To": "help@help.example.com", "Subject": "VPN drops"}
    defaults["Message-ID"] = "<m1@example.com>"
    for name, value in {**defaults, **{key.replace("_", "-"): value for key, value in headers.items()}}.items():
        message[name] = value
    message.set_content(body)
    return message


def read(message: EmailMessage | bytes, envelope_sender: str = PERSON, **kwargs) -> InboundMail:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    return parse(raw, envelope_sender=envelope_sender, **kwargs)


# --- Real clients' replies, as raw bytes ---------------------------------------------------------------------------

GMAIL_REPLY = crlf(b"""\
Return-Path: <ana.ruiz@gmail.com>
Received: from mail-ed1-f41.google.com (mail-ed1-f41.google.com [209.85.208.41])
\tby mx.help.example.com with ESMTPS id 4Zx7; Tue, 24 Nov 2026 10:15:02 +0000
MIME-Version: 1.0
References: <ticket-t42@ticketflow> <n7+t42@ticketflow>
In-Reply-To: <n7+t42@ticketflow>
From: Ana Ruiz <Ana.Ruiz@gmail.com>
Date: Tue, 24 Nov 2026 11:14:51 +0100
Message-ID: <CAJ8x=2Vb+qZ3mK-Lw@mail.gmail.com>
Subject: Re: [#100042] VPN drops every hour
To: Help Desk <help@help.example.com>
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6"

--000000000000a1b2c3d4e5f6
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

Thanks, restarting the client fixed it =E2=80=93 the tunnel has been up for=
 two hours now.

Ana

On Tue, Nov 24, 2026 at 10:03=E2=80=AFAM Help Desk via ticketflow <
help@help.example.com> wrote:

> Please restart the VPN client and tell us if the drops continue.
>
> -- Jane, Network team
>

--000000000000a1b2c3d4e5f6
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Thanks, restarting the client fixed it =E2=80=93 the tunnel=
 has been up for two hours now.<div><br></div><div>Ana</div></div><br><div c=
lass=3D"gmail_quote"><div dir=3D"ltr" class=3D"gmail_attr">On Tue, Nov 24, 2=
026 at 10:03=E2=80=AFAM Help Desk &lt;help@help.example.com&gt; wrote:<br></=
div><blockquote class=3D"gmail_quote">Please restart the VPN client.</blockq=
uote></div>

--000000000000a1b2c3d4e5f6--
""")

OUTLOOK_HTML = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" '
    'content="text/html; charset=Windows-1252"><style><!-- p.MsoNormal {margin:0cm; font-family:"Calibri"} -->'
    '</style></head><body lang="EN-US"><div class="WordSection1"><p class="MsoNormal">Hi,<o:p></o:p></p>'
    '<p class="MsoNormal">The printer still shows =93offline=94 after the restart.<o:p></o:p></p>'
    '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
    '<p class="MsoNormal"><b>From:</b> Help Desk &lt;help@help.example.com&gt;<br><b>Sent:</b> Tuesday, '
    "November 24, 2026 10:03 AM<br><b>To:</b> Smith, Bob &lt;Bob.Smith@contoso.example&gt;<br><b>Subject:</b> "
    "[#100043] Printer on 3rd floor offline<o:p></o:p></p></div>"
    '<p class="MsoNormal">Could you restart it and tell us what the display shows?<o:p></o:p></p></div></body></html>'
)

OUTLOOK_REPLY = crlf(
    b"""\
Received: from AM6PR02MB1234.eurprd02.prod.outlook.com (2603:10a6:20b:e0::17)
From: "Smith, Bob" <Bob.Smith@contoso.example>
To: "help@help.example.com" <help@help.example.com>
Subject: RE: [#100043] Printer on 3rd floor offline
Thread-Topic: [#100043] Printer on 3rd floor offline
Thread-Index: AQHZ1a2b3c4d5e6f7g8h9i0jAAABBBCCC==
Date: Tue, 24 Nov 2026 10:20:11 +0000
Message-ID:
\t<AM6PR02MB12345678ABCDEF@AM6PR02MB1234.eurprd02.prod.outlook.com>
References: <n9+t43@ticketflow>
In-Reply-To: <n9+t43@ticketflow>
Content-Language: en-US
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
Content-Type: multipart/alternative;
\tboundary="_000_AM6PR02MB12345678ABCDEF_"
MIME-Version: 1.0

--_000_AM6PR02MB12345678ABCDEF_
Content-Type: text/plain; charset="Windows-1252"
Content-Transfer-Encoding: quoted-printable

Hi,

The printer still shows =93offline=94 after the restart.

Best regards,
Bob Smith
Facilities

From: Help Desk <help@help.example.com>
Sent: Tuesday, November 24, 2026 10:03 AM
To: Smith, Bob <Bob.Smith@contoso.example>
Subject: [#100043] Printer on 3rd floor offline

Could you restart it and tell us what the display shows?

--_000_AM6PR02MB12345678ABCDEF_
Content-Type: text/html; charset="Windows-1252"
Content-Transfer-Encoding: quoted-printable

"""
    + OUTLOOK_HTML.encode()
    + b"""

--_000_AM6PR02MB12345678ABCDEF_--
"""
)

APPLE_MAIL_REPLY = crlf(b"""\
From: Carol Jones <carol@example.org>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable
Mime-Version: 1.0 (1.0)
Subject: Re: [#100044] Laptop screen flickers
Date: Tue, 24 Nov 2026 11:40:00 +0100
Message-Id: <5F3B1C2A-7D4E-4A8B-9C1D-2E3F4A5B6C7D@example.org>
References: <ticket-t44@ticketflow>
In-Reply-To: <n11+t44@TICKETFLOW>
To: help@help.example.com
X-Mailer: iPhone Mail (22B91)

It flickers again since this morning, also on battery.

Sent from my iPhone

> On 24 Nov 2026, at 10:03, Help Desk <help@help.example.com> wrote:
>=20
> =EF=BB=BFDoes it flicker on battery too?
""")

LATIN1_MAIL = crlf(b"""\
From: =?iso-8859-1?Q?Fran=E7ois_M=FCller?= <Francois.Muller@example.fr>
To: support@help.example.com
Subject: =?iso-8859-1?Q?Probl=E8me_d'acc=E8s_=E0_l'imprimante?=
Message-ID: <20261124.1234@example.fr>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: 8bit

Bonjour,

Je n'arrive pas \xe0 imprimer depuis ce matin. Merci d'avance.

Fran\xe7ois
""")

HTML_ONLY = crlf(b"""\
From: Dan Brook <dan@example.com>
To: help@help.example.com
Subject: Software request
Message-ID: <html-only-1@example.com>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><head><title>Newsletter template</title><style>body { font-family: Arial; } .x { color: red }</style>
<script type="text/javascript">var tracking = "secret-token"; alert(tracking);</script></head>
<body><h1>Request</h1><p>Please install <b>Visio</b> on my laptop &amp; enable macros.</p>
<ul><li>Asset: LT-0042</li><li>Cost centre: 4711</li></ul><noscript>Enable JavaScript</noscript>
<!--[if mso]><xml><o:OfficeDocumentSettings>hidden</o:OfficeDocumentSettings></xml><![endif]-->
</body></html>
""")

BOUNCE = crlf(b"""\
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.help.example.com>
To: help@help.example.com
Subject: Undelivered Mail Returned to Sender
Message-Id: <20261124102001.4F2A1C0D3E@mx.help.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4F2A1C0D3E.1732443601/mx.help.example.com"

This is a MIME-encapsulated message.

--4F2A1C0D3E.1732443601/mx.help.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.help.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@example.org>: host mx.example.org said: 550 5.1.1 User unknown

--4F2A1C0D3E.1732443601/mx.help.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.help.example.com
Arrival-Date: Tue, 24 Nov 2026 10:20:00 +0000

Final-Recipient: rfc822; nobody@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: User unknown

--4F2A1C0D3E.1732443601/mx.help.example.com
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: help@help.example.com
To: nobody@example.org
Subject: [#100045] Your request was received
Message-ID: <n12+t45@ticketflow>

--4F2A1C0D3E.1732443601/mx.help.example.com--
""")

VACATION_REPLY = crlf(b"""\
From: Erik Lund <erik@example.se>
To: help@help.example.com
Subject: Auto: [#100046] Your request was received
Message-ID: <vacation-1@example.se>
Auto-Submitted: auto-replied
In-Reply-To: <n13+t46@ticketflow>
Content-Type: text/plain; charset=utf-8

I am on vacation until 1 December and will not read mail.
""")

OUTLOOK_OOF = crlf(b"""\
From: "Smith, Bob" <Bob.Smith@contoso.example>
To: help@help.example.com
Subject: Automatic reply: [#100043] Printer on 3rd floor offline
Message-ID: <oof-1@contoso.example>
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: Bob.Smith@contoso.example
Content-Type: text/plain; charset=us-ascii

I am out of the office until Monday.
""")

LIST_MAIL = crlf(b"""\
From: IT Announcements <it-announce@lists.example.com>
To: it-announce@lists.example.com
Subject: [it-announce] Maintenance window on Saturday
Message-ID: <list-1@lists.example.com>
List-Id: IT announcements <it-announce.lists.example.com>
Content-Type: text/plain; charset=utf-8

The mail servers restart on Saturday at 22:00.
""")

MISSING_BOUNDARY = crlf(b"""\
From: ana.ruiz@example.com
Subject: no boundary
Message-ID: <nb-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed

The monitor stays black after the update.
""")

TRUNCATED_BASE64 = crlf(b"""\
From: ana.ruiz@example.com
Subject: truncated
Message-ID: <tb-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain; charset=utf-8

Log attached.
--XX
Content-Type: application/octet-stream; name="vpn.log"
Content-Disposition: attachment; filename="vpn.log"
Content-Transfer-Encoding: base64

SGVsbG8gd29ybGQhIFRoaXMgaXMgdGhlIGxvZ
""")

BAD_CHARSET = crlf(b"""\
From: ana.ruiz@example.com
Subject: =?x-unknown?Q?caf=E9?= machine
Message-ID: <bc-1@example.com>
Content-Type: text/plain; charset="x-unknown"
Content-Transfer-Encoding: 8bit

The caf\xe9 machine shows error 4.
""")

RAW_MAILS = {
    "gmail": GMAIL_REPLY,
    "outlook": OUTLOOK_REPLY,
    "apple": APPLE_MAIL_REPLY,
    "latin1": LATIN1_MAIL,
    "html": HTML_ONLY,
    "bounce": BOUNCE,
    "vacation": VACATION_REPLY,
    "oof": OUTLOOK_OOF,
    "list": LIST_MAIL,
    "no boundary": MISSING_BOUNDARY,
    "truncated base64": TRUNCATED_BASE64,
    "bad charset": BAD_CHARSET,
}


def test_a_gmail_reply_gives_the_new_text_the_ticket_and_our_references():
    mail = read(GMAIL_REPLY, envelope_sender="ana.ruiz@gmail.com")
    assert mail.sender == "ana.ruiz@gmail.com"
    assert mail.sender_name == "Ana Ruiz"
    assert mail.subject == "Re: [#100042] VPN drops every hour"
    assert mail.ticket_numbers == (100042,)
    assert mail.text == "Thanks, restarting the client fixed it \u2013 the tunnel has been up for two hours now.\n\nAna"
    assert "Please restart the VPN client" in mail.full_text and mail.full_text.startswith("Thanks, restarting")
    assert "<div" not in mail.full_text  # text/plain was preferred over the HTML alternative
    assert mail.references == ("n7+t42@ticketflow", "ticket-t42@ticketflow")
    assert mail.referenced_ticket_ids == ("t42",)
    assert mail.message_id == "CAJ8x=2Vb+qZ3mK-Lw@mail.gmail.com"
    assert mail.key == hashlib.sha256(b"CAJ8x=2Vb+qZ3mK-Lw@mail.gmail.com").hexdigest()
    assert mail.recipients == ("help@help.example.com",)
    assert mail.automatic is None
    assert mail.attachments == ()
    assert mail.defects == ()


def test_an_outlook_reply_leaves_out_the_quoted_header_block_and_reads_windows_1252():
    mail = read(OUTLOOK_REPLY, envelope_sender="Bob.Smith@contoso.example")
    assert mail.sender == "bob.smith@contoso.example"
    assert mail.sender_name == "Smith, Bob"
    assert mail.message_id == "AM6PR02MB12345678ABCDEF@AM6PR02MB1234.eurprd02.prod.outlook.com"  # folded header
    signed = "Best regards,\nBob Smith\nFacilities"  # a sign-off without "-- " is the person's own words
    assert mail.text == f"Hi,\n\nThe printer still shows \u201coffline\u201d after the restart.\n\n{signed}"
    assert "Could you restart it" in mail.full_text
    assert mail.ticket_numbers == (100043,)
    assert mail.referenced_ticket_ids == ("t43",)
    assert mail.envelope_sender == "Bob.Smith@contoso.example"


def test_outlooks_html_alone_is_read_as_text_and_its_header_block_cut_too():
    message = make_mail(From="Bob <bob@contoso.example>")
    message.set_content(OUTLOOK_HTML.replace("=93", "\u201c").replace("=94", "\u201d"), subtype="html")
    mail = read(message)
    assert mail.text == "Hi,\n\nThe printer still shows \u201coffline\u201d after the restart."
    assert "Could you restart it" in mail.full_text
    assert "MsoNormal" not in mail.full_text and "Calibri" not in mail.full_text


def test_a_mail_forwarded_inline_into_a_reply_is_kept_not_cut_as_a_quote():
    """A vendor's answer or a bounce passed on is news to the desk (the requester tester lost both)."""
    gmail = make_mail(
        "Please see the vendor's answer below.\n\n---------- Forwarded message ---------\n"
        "From: Vendor <sales@vendor.example.com>\nDate: Thu, 3 Dec 2026 at 10:00\nSubject: Projector quote\n"
        "To: Nadia <nadia@example.com>\n\nThe lamp costs 120 EUR.",
        Subject="Fwd: Re: projector quote [#100107]",
    )
    assert read(gmail).text.endswith("---------- Forwarded message ---------\nFrom: Vendor <sales@vendor.example.com>"
                                     "\nDate: Thu, 3 Dec 2026 at 10:00\nSubject: Projector quote\n"
                                     "To: Nadia <nadia@example.com>\n\nThe lamp costs 120 EUR.")  # fmt: skip
    outlook = (
        "Forwarding what facilities told me.\n\n"
        + "_" * 32
        + (
            "\nFrom: Facilities <fac@example.com>\nSent: Thursday, December 3, 2026 10:00\n"
            "To: Taro <taro@example.com>\nSubject: Toner\n\nWe replaced the toner on Tuesday."
        )
    )
    assert read(make_mail(outlook, Subject="FW: [#100105] Toner")).text.endswith("We replaced the toner on Tuesday.")
    # the same block under "RE:" is the desk's mail quoted: cut, as ever
    assert read(make_mail(outlook, Subject="RE: [#100105] Toner")).text == "Forwarding what facilities told me."


def test_an_html_only_gmail_reply_leaves_out_the_quoted_mail_in_its_blockquote():
    """Gmail's HTML quotes in a blockquote: read as "> " lines, it is cut as a plain reply's quote is."""
    message = make_mail(Subject="Re: [#100108] Mailbox full")
    message.set_content(
        '<div dir="ltr">Still broken after the update.</div><br><div class="gmail_quote"><div class="gmail_attr">'
        "On Fri, Dec 4, 2026 at 11:31 AM &lt;helpdesk@localhost&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote"><p>Request #100108</p><p>New reply to your request</p>'
        '<p>Hello Zo\u00eb, <a href="http://127.0.0.1:8000/t/x">See your request</a></p>'
        "<blockquote>older</blockquote></blockquote></div>",
        subtype="html",
    )
    mail = read(message)
    assert mail.text == "Still broken after the update."
    assert "> New reply to your request" in mail.full_text and "> older" in mail.full_text  # kept whole there


def test_an_apple_mail_reply_stops_at_sent_from_my_iphone_and_reads_our_ids_in_any_case_of_the_domain():
    mail = read(APPLE_MAIL_REPLY, envelope_sender="carol@example.org")
    assert mail.text == "It flickers again since this morning, also on battery."
    assert "Does it flicker on battery too?" in mail.full_text
    assert mail.references == ("n11+t44@TICKETFLOW", "ticket-t44@ticketflow")
    assert mail.referenced_ticket_ids == ("t44",)
    assert mail.sender_name == "Carol Jones"


def test_an_iso_8859_1_mail_decodes_its_encoded_words_and_its_8bit_body():
    mail = read(LATIN1_MAIL, envelope_sender="francois.muller@example.fr")
    assert mail.subject == "Probl\u00e8me d'acc\u00e8s \u00e0 l'imprimante"
    assert mail.sender_name == "Fran\u00e7ois M\u00fcller"
    assert mail.sender == "francois.muller@example.fr"
    assert "Je n'arrive pas \u00e0 imprimer" in mail.text
    assert mail.text.endswith("Fran\u00e7ois")
    assert mail.defects == ()


def test_an_html_only_mail_becomes_readable_text_without_markup_scripts_or_styles():
    mail = read(HTML_ONLY)
    assert "Please install Visio on my laptop & enable macros." in mail.full_text
    assert "* Asset: LT-0042" in mail.full_text  # lists stay lists
    for leak in ("<", "secret-token", "font-family", "Newsletter template", "Enable JavaScript", "hidden"):
        assert leak not in mail.full_text, leak
    assert mail.text == mail.full_text


def test_a_mail_with_a_5_mib_pdf_keeps_its_bytes_and_name():
    pdf = b"%PDF-1.7\n" + random.Random(5).randbytes(5 * 1024 * 1024)
    message = make_mail("The scan is attached.")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="scan 2026-11.pdf")
    mail = read(message)
    (attachment,) = mail.attachments
    assert attachment.data == pdf
    assert (attachment.filename, attachment.content_type, attachment.inline) == (
        "scan 2026-11.pdf",
        "application/pdf",
        False,
    )
    assert mail.text == "The scan is attached."


# --- Automatic mail -----------------------------------------------------------------------------------------------


def test_a_bounce_is_automatic_and_keeps_its_report_as_attachments():
    mail = read(BOUNCE, envelope_sender="")
    assert mail.automatic is not None and "bounce" in mail.automatic
    assert "could not\nbe delivered" in mail.full_text
    assert [a.content_type for a in mail.attachments] == ["message/delivery-status", "text/rfc822-headers"]
    assert b"Status: 5.1.1" in mail.attachments[0].data
    assert mail.referenced_ticket_ids == ("t45",)  # the returned mail is notify's, about ticket t45: its page shows it
    assert "a bounce" in read(BOUNCE, envelope_sender="bounces@mx.example.com").automatic  # a delivery report
    read_report = BOUNCE.replace(b"report-type=delivery-status", b"report-type=disposition-notification").replace(
        b"Mail Delivery System <MAILER-DAEMON@mx.help.example.com>", b"Ana <ana@example.org>"
    )
    assert read(read_report, envelope_sender="ana@example.org").automatic == "a read report (multipart/report)"
    other = BOUNCE.replace(b"<n12+t45@ticketflow>", b"<abc@mail.example.org>")
    assert read(other, envelope_sender="").referenced_ticket_ids == ()  # someone else's mail bounced: no ticket


@pytest.mark.parametrize(
    ("raw", "envelope", "reason"),
    [
        (BOUNCE, "", "a bounce"),  # the null sender
        (BOUNCE, "bounces@mx.help.example.com", "a bounce from mailer-daemon@mx.help.example.com"),
        (BOUNCE.replace(b"MAILER-DAEMON@", b"notices@"), "notices@example.com", "multipart/report"),
        (BOUNCE.replace(b"MAILER-DAEMON@", b"postmaster@"), "x@example.com", "a bounce from postmaster@"),
        (VACATION_REPLY, "erik@example.se", "Auto-Submitted: auto-replied"),
        (OUTLOOK_OOF, "bob.smith@contoso.example", "X-Auto-Response-Suppress: All"),
        (LIST_MAIL, "bounce-it@lists.example.com", "a mailing list (List-Id)"),
    ],
)
def test_automatic_mail_says_why(raw, envelope, reason):
    mail = read(raw, envelope_sender=envelope)
    assert mail.automatic is not None and reason in mail.automatic


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-generated"}, "Auto-Submitted: auto-generated"),
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"Precedence": " Junk "}, "Precedence: junk"),
        ({"Precedence": "list"}, "Precedence: list"),
        ({"Precedence": "auto_reply"}, "Precedence: auto_reply"),
        ({"X-Autoreply": "yes"}, "X-Autoreply"),
        ({"X-Autorespond": "Out of office"}, "X-Autorespond"),
        ({"X-Auto-Response-Suppress": "DR, OOF"}, "OOF"),
        ({"X-Auto-Response-Suppress": "AutoReply"}, "AutoReply"),
        ({"List-Unsubscribe": "<mailto:leave@lists.example.com>"}, "List-Unsubscribe"),
        ({"From": "Notify <Help@Help.Example.com>"}, "our own address help@help.example.com"),
    ],
)
def test_each_sign_of_automatic_mail_is_enough(headers, reason):
    mail = read(make_mail(**headers), own_addresses=["help@help.example.com"])
    assert mail.automatic is not None and reason in mail.automatic


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: [#100043] Printer",
        "Out of Office AutoReply: [#100043] Printer",  # older Exchange (a tester's: posted as a message)
        "Resposta automática: [#100043] Impressora",  # Portuguese (the same)
        "Abwesenheitsnotiz: [#100043] Drucker",
    ],
)
def test_a_reply_to_a_ticket_titled_as_an_auto_reply_is_one(subject):
    assert inbound_headers.auto_reply_by_subject(subject).startswith("an auto-reply by its subject")
    assert inbound_headers.auto_reply_by_subject("Re: [#100043] Out of office printers") is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "no"},
        {"Auto-Submitted": "No ; comment"},
        {"Precedence": "first-class"},
        {"X-Auto-Response-Suppress": "DR, RN, NRN"},
    ],
)
def test_a_persons_mail_is_not_automatic(headers):
    assert read(make_mail(**headers), own_addresses=["help@help.example.com"]).automatic is None


def test_our_own_envelope_sender_is_a_loop_too():
    mail = read(
        make_mail(), envelope_sender="<Help@help.example.com>", own_addresses=["Help Desk <help@help.example.com>"]
    )
    assert mail.automatic == "from our own address help@help.example.com (a mail loop)"
    assert mail.envelope_sender == "Help@help.example.com"


def test_the_null_sender_is_given_as_empty_or_as_angle_brackets():
    assert read(make_mail(), envelope_sender="<>").envelope_sender == ""
    assert "empty" in read(make_mail(), envelope_sender="<>").automatic
    assert read(make_mail(), envelope_sender=PERSON).automatic is None


# --- Charsets and headers -----------------------------------------------------------------------------------------


def test_encoded_word_subjects_in_any_charset_and_folded():
    japanese = "\u30d7\u30ea\u30f3\u30bf\u30fc\u304c\u52d5\u304d\u307e\u305b\u3093"
    encoded = base64.b64encode(japanese.encode("iso2022_jp")).decode()
    subjects = {
        "=?UTF-8?B?TcO8bmNoZW46IERydWNrZXIga2FwdXR0?=": "M\u00fcnchen: Drucker kaputt",
        "=?iso-8859-1?Q?Caf=E9_machine?=": "Caf\u00e9 machine",
        "=?windows-1252?Q?=93Broken=94_screen?=": "\u201cBroken\u201d screen",
        f"=?ISO-2022-JP?B?{encoded}?=": japanese,
        "Re: =?UTF-8?Q?VPN_f=C3=A4llt?=\r\n =?UTF-8?Q?_aus?=   [#123]": "Re: VPN f\u00e4llt aus [#123]",
        "Line\r\n\tfolded\r\n  twice": "Line folded twice",
        # a character cut between two words: UTF-8 once joined (a tester's came out "GrÃ¼ÃŸe")
        "=?UTF-8?B?R3LD?= =?UTF-8?B?vMOfZQ==?= aus K\u00f6ln": "Gr\u00fc\u00dfe aus K\u00f6ln",
        "=?UTF-8?Q?Gr=C3?=\r\n =?UTF-8?Q?=BC=C3=9Fe?=": "Gr\u00fc\u00dfe",
        "=?UTF-8?Q?Caf=E9?= =?UTF-8?Q?_ok?=": "Caf\u00e9 ok",  # windows-1252 said to be UTF-8, joined or not
        # and beside a word in another charset (a reviewer's: each UTF-8 half was mended alone again)
        "=?UTF-8?B?R3LD?= =?UTF-8?B?vMOfZQ==?= =?iso-8859-1?Q?_caf=E9?=": "Gr\u00fc\u00dfe caf\u00e9",
        # gb2312 holding GBK's characters, read in the larger set as a body is (a reviewer's: U+FFFD)
        "=?gb2312?B?" + base64.b64encode("\u5f20\u5586".encode("gbk")).decode() + "?=": "\u5f20\u5586",
    }
    for header, expected in subjects.items():
        raw = crlf(b"From: a@example.com\nMessage-ID: <s@x>\nSubject: ") + header.encode() + crlf(b"\n\nbody\n")
        assert read(raw).subject == expected, header


def test_an_iso_2022_jp_body():
    text = "\u30d7\u30ea\u30f3\u30bf\u30fc\u304c\u52d5\u304d\u307e\u305b\u3093\u3002"
    raw = crlf(b"From: a@example.jp\nSubject: x\nContent-Type: text/plain; charset=ISO-2022-JP\n\n")
    assert read(raw + text.encode("iso2022_jp") + b"\r\n").text == text


def test_windows_1252_and_utf8_bodies_and_undeclared_8bit():
    for body, charset in (("\u201cQuoted\u201d \u20ac5", "windows-1252"), ("Gr\u00fc\u00dfe \u2603", "utf-8")):
        raw = crlf(f"From: a@example.com\nContent-Type: text/plain; charset={charset}\n\n".encode()) + body.encode(
            charset
        )
        assert read(raw).text == body
    undeclared = crlf(b"From: a@example.com\nSubject: x\n\n") + "na\u00efve".encode()
    assert read(undeclared).text == "na\u00efve"  # no charset: UTF-8 first
    assert read(crlf(b"From: a@example.com\n\nna\xefve")).text == "na\u00efve"  # else windows-1252


def test_8bit_bytes_in_headers_are_read_as_utf8_and_noted():
    raw = crlf("From: J\u00fcrgen <j@example.de>\nSubject: \u00dcberweisung fehlt\n\nbody\n".encode())
    mail = read(raw)
    assert (mail.subject, mail.sender_name) == ("\u00dcberweisung fehlt", "J\u00fcrgen")
    assert any("8-bit bytes" in defect for defect in mail.defects)


def test_the_sender_name_falls_back_to_the_local_part_and_a_missing_from_gives_empty_strings():
    assert read(make_mail(From="Printer.Room@Example.com")).sender_name == "Printer Room"


@pytest.mark.parametrize(
    ("sender", "address"),
    [("Ana Ruiz <ana@example.com>", "ana@example.com"), ('"ana@example.com" <evil@attacker.example>',
     "evil@attacker.example"), ("John Smith john@x.example <John@X.example>", "john@x.example"),
     ("ana@example.com <evil@attacker.example>", ""), ("a@x.example, b@y.example", ""),
     ("Kai <\u212aai@\u212apmg.example>", ""), ("ana@example.com (<evil@attacker.example>)", ""),
     ('"Support <help@bank.example>" <evil@attacker.example>', "")],
)  # fmt: skip
def test_from_names_one_sender_beyond_doubt_or_none(sender, address):
    """A DMARC check reads the address in angle brackets; the stdlib, from a broken From, the first it finds: two
    addresses there, or several in From, or one a case fold turns into another (the Kelvin sign K into k), name
    nobody, so that no mail is posted as a requester whose domain no check saw."""
    raw = crlf(f"From: {sender}\nTo: help@help.example.com\nSubject: VPN\n\nbody\n".encode())
    mail = read(raw)
    assert mail.sender == address
    assert (not address) == any("no sender is believed" in defect for defect in mail.defects)


def test_two_from_headers_that_differ_name_nobody():
    two = crlf(b"From: ana@example.com\nFrom: evil@attacker.example\nTo: help@help.example.com\n\nbody\n")
    assert read(two).sender == ""
    same = crlf(b"From: ana@example.com\nFrom: ANA@example.com\nTo: help@help.example.com\n\nbody\n")
    assert read(same).sender == "ana@example.com"


@pytest.mark.parametrize(
    ("local", "name"),
    [("noah.fischer", "Noah Fischer"), ("hélène.dupont", "Hélène Dupont"), ("Hélène.Dupont", "Hélène Dupont"),
     ("jean-luc_picard", "Jean-Luc Picard"), ("ana.maria.de.souza", "Ana Maria De Souza"), ("jsmith", "jsmith"),
     ("it-support2", "it-support2"), ("j.r.r.r.tolkien", "j.r.r.r.tolkien"), ("noah..fischer", "noah..fischer"),
     ("x.1", "x.1"), ("first.last+tag", "first.last+tag")],
)  # fmt: skip
def test_a_name_is_read_from_an_address_of_words_and_nothing_else(local, name):
    """The mail gives no name: "Hello noah.fischer," reads badly, "Hello Noah Fischer," as the person expects;
    an address that is not words between dots stays as it is."""
    assert inbound_headers.name_of_address(local) == name
    no_from = crlf(b"To: help@help.example.com\nSubject: hi\n\nbody\n")
    assert (read(no_from).sender, read(no_from).sender_name) == ("", "")
    assert read(crlf(b"From: not an address\nSubject: hi\n\nbody\n")).sender == ""
    assert read(crlf(b"From: <<>>@@\nSubject: hi\n\nbody\n")).sender == ""


def test_recipients_are_the_envelopes_lowercased_else_to_and_cc():
    message = make_mail(To="Help <Help@Help.Example.com>, other@example.com", Cc="Boss <BOSS@example.com>")
    assert read(message).recipients == ("help@help.example.com", "other@example.com", "boss@example.com")
    given = read(message, recipients=["<Network@Help.Example.com>", "network@help.example.com "])
    assert given.recipients == ("network@help.example.com",)


def test_message_id_is_normalised_and_keys_the_mail():
    first = read(make_mail(Message_ID="  <abc.123@example.com>  "))
    again = read(make_mail("other bytes, same message", Message_ID="<abc.123@example.com>"))
    assert first.message_id == "abc.123@example.com"
    assert first.key == again.key == hashlib.sha256(b"abc.123@example.com").hexdigest()
    for empty in ("<>", " "):
        raw = crlf(f"From: a@example.com\nMessage-ID: {empty}\n\nbody\n".encode())
        assert read(raw).message_id is None
        assert read(raw).key == hashlib.sha256(raw).hexdigest()
    no_id = make_mail()
    del no_id["Message-ID"]
    assert read(no_id).key == hashlib.sha256(no_id.as_bytes()).hexdigest()


def test_ticket_numbers_are_every_bracketed_one_in_the_subjects_order():
    assert read(make_mail(Subject="Re: [#100076] Re: [#100063] VPN")).ticket_numbers == (100076, 100063)
    assert read(make_mail(Subject="Fwd: [#100001] and [#100001] again")).ticket_numbers == (100001,)
    assert read(make_mail(Subject="[#12a] not a number, #100003 neither")).ticket_numbers == ()
    assert read(make_mail(Subject="[#" + "9" * 5000 + "]")).ticket_numbers == ()  # no 5000-digit int


def test_references_are_in_order_without_duplicates_and_name_our_tickets():
    message = make_mail(
        In_Reply_To="<n3+t-9.x_Y@TicketFlow>",
        References=f"<ticket-t1@{OWN_MESSAGE_DOMAIN}> <other@example.com> <n3+t-9.x_Y@TicketFlow> <n1@ticketflow>"
        " <ticket-t1@ticketflow> <x+t2@ticketflow.example.com> <ticket-bad id@ticketflow>",
    )
    mail = read(message)
    assert mail.references == (
        "n3+t-9.x_Y@TicketFlow",
        "ticket-t1@ticketflow",
        "other@example.com",
        "n1@ticketflow",
        "x+t2@ticketflow.example.com",
    )
    assert mail.referenced_ticket_ids == ("t-9.x_Y", "t1")  # not n1 (an old notification id alone)


# --- Quoted text and signatures -----------------------------------------------------------------------------------

REPLIES = {
    "thunderbird": "Here are the logs.\n\nOn 24/11/2026 10:03, Help Desk wrote:\n> Please send the logs.\n",
    "french": "Merci, cela fonctionne.\n\nLe mar. 24 nov. 2026 \u00e0 10:03, Help Desk <help@help.example.com> a "
    "\u00e9crit :\n> Red\u00e9marrez le client.\n",
    "german": "Danke, es geht wieder.\n\nAm Di., 24. Nov. 2026 um 10:03 Uhr schrieb Help Desk <help@help.example.com>"
    ":\n> Bitte starten Sie den Client neu.\n",
    "spanish": "Gracias, ya funciona.\n\nEl mar, 24 nov 2026 a las 10:03, Help Desk (<help@help.example.com>) "
    "escribi\u00f3:\n> Reinicie el cliente.\n",
    "original message": "Still broken.\n\n-----Original Message-----\nFrom: Help Desk\nSent: Tuesday\n\nRestart it.\n",
    "underscores": "Still broken.\n\n________________________________\nFrom: Help Desk <help@help.example.com>\n"
    "Sent: Tuesday, November 24, 2026 10:03 AM\nSubject: RE: x\n\nRestart it.\n",
    "outlook german": "Geht nicht.\n\nVon: Help Desk <help@help.example.com>\nGesendet: Dienstag, 24. November 2026\n"
    "An: Bob\nBetreff: AW: [#1] Drucker\n\nBitte neu starten.\n",
    "signature": "The screen flickers when docked.\n- since Monday\n- left monitor only\n\n-- \nCarol Jones\nFinance\n",
    "android": "Done.\n\nSent from my Android phone with Gmail\n",
    "bare wrote": "Done.\n\nHelp Desk wrote:\n> Is it done?\n",
    "interleaved": "> Which version?\nVersion 5.2\n> Which OS?\nWindows 11\n",
    "name under a quote": "Thanks, it works now.\n\n> Try restarting it.\n> Bye\n\nJohn\n",
    "written below the quote": "On 04/12/2026 08:07, helpdesk@localhost wrote:\n> Hello Maria, which model is it?"
    "\n> The help desk\n\nThe model is HP LaserJet M507, bought in 2022.\n",
    "below a wrapped intro, signed": "On Fri, 4 Dec 2026 at 08:00, Help Desk <\nhelpdesk@localhost> wrote:\n"
    "> Which floor?\n> > On Thu, Ana wrote:\n> > It jams.\n\nThe third.\n\n-- \nAna Ruiz\nFinance\n",
    "answered between, under gmail's intro": "The asset tag is PRN-3F-0042.\n\nOn Fri, 4 Dec 2026 at 08:00, Help "
    "Desk <helpdesk@localhost> wrote:\n> Where is the printer?\n> At the front?\nIt is on the left side, not the "
    "front.\n> Which tray jams?\nTray 2.\n> Kind regards,\n> The help desk\n",
    "answered between, signed off under the footer": "On Fri, 4 Dec 2026 at 08:00, Help Desk <helpdesk@localhost> "
    "wrote:\n> Hello Igor,\n>\n> The help desk has replied to your request:\n>\n> 1. Which cable is it?\nThe blue "
    "one.\n> 2. Which port?\nPort 3.\n>\n> Reply to this email to answer.\n> The help desk\n\nThanks,\nIgor\n",
    "answered between, the last answer short": "> Hello Igor,\n>\n> Which port?\nPort 3.\n> Anything else?\nThanks\n",
    "answered between empty quote lines": ">\nPort 3.\n>\nThanks,\nIgor\n",  # no quoted words at all
    # Yahoo's HTML quote read as text: the intro, then the desk's mail without "> " (a tester's: it was posted)
    "yahoo": "It still shows black.\n\nOn Sunday, December 6, 2026 at 05:31:22 AM GMT+1, helpdesk@localhost "
    "<helpdesk@localhost> wrote:\n\n\nHello Hana,\n\nThe help desk has replied to your request.\n\nThe help desk\n",
}
EXPECTED = {
    "thunderbird": "Here are the logs.",
    "french": "Merci, cela fonctionne.",
    "german": "Danke, es geht wieder.",
    "spanish": "Gracias, ya funciona.",
    "original message": "Still broken.",
    "underscores": "Still broken.",
    "outlook german": "Geht nicht.",
    "signature": "The screen flickers when docked.\n- since Monday\n- left monitor only",
    "android": "Done.",
    "bare wrote": "Done.",
    "interleaved": "> Which version?\nVersion 5.2\n> Which OS?\nWindows 11",  # the answers with their questions
    "name under a quote": "Thanks, it works now.\n\nJohn",  # one quoted passage: not answered in between
    "written below the quote": "The model is HP LaserJet M507, bought in 2022.",  # bottom-posted: theirs
    "below a wrapped intro, signed": "The third.",  # a quoted "On ... wrote:" inside is the quote's, not a cut
    "answered between, under gmail's intro": "The asset tag is PRN-3F-0042.\n\n> Where is the printer?\n> At the "
    "front?\nIt is on the left side, not the front.\n> Which tray jams?\nTray 2.",  # the quote after the last goes
    # the help desk's greeting above the first question, and its footer above the sign-off, go
    "answered between, signed off under the footer": "> 1. Which cable is it?\nThe blue one.\n> 2. Which port?\n"
    "Port 3.\n\nThanks,\nIgor",
    "answered between, the last answer short": "> Which port?\nPort 3.\n> Anything else?\nThanks",  # an answer
    "answered between empty quote lines": "Port 3.\n\nThanks,\nIgor",
    "yahoo": "It still shows black.",
}


@pytest.mark.parametrize("name", REPLIES)
def test_the_reply_leaves_out_quotes_and_signatures(name):
    mail = read(make_mail(REPLIES[name]))
    assert mail.text == EXPECTED[name]
    assert mail.full_text == REPLIES[name].strip()


@pytest.mark.parametrize(
    "body",
    [
        "On Monday I wrote the report, and it works.\nThe printer: it still jams.",
        "From: my desk, I can see the printer.\nTo: whom it may concern",
        "Here's what he wrote:\nthe screen is black",
        "-- not a signature, a dash line",
        # a mail tester's, each lost up to the end before
        "Sent from my phone the error page says 0x80070005, from the desktop it works fine.\nAnything else?",
        "Here are the flight details you asked for:\nFrom: Berlin TXL\nTo: Munich\nDate: 14 Dec 2026\nThe 9:00 one.",
        "Steps I tried:\n--\n1. restarted\n2. reinstalled\nNothing helped.",
        "Am Freitag schrieb mir Ihr Kollege, ich solle den Treiber neu installieren:\nDas habe ich gemacht.",
    ],
)
def test_the_persons_own_words_that_look_like_markers_stay(body):
    mail = read(make_mail(body))
    assert mail.text == mail.own_text == body  # (a mail cut to nothing has the whole as its text: own_text says)


def test_their_words_stay_above_a_quote_and_the_markers_of_a_signature_still_cut():
    quote = "\n\nOn Sun, Dec 6, 2026 at 5:31 AM helpdesk@localhost wrote:\n> Hello Ana,\n> The help desk\n"
    steps = "Steps I tried:\n--\n1. restarted\nNothing helped."
    assert read(make_mail(steps + quote)).text == steps
    assert read(make_mail("It works.\n--\nAna Ruiz\nFinance | Acme\n+34 600 000 000" + quote)).text == "It works."
    assert read(make_mail("It works.\n\nSent from my Samsung Galaxy smartphone." + quote)).text == "It works."
    german = "Geht nicht.\n\nAm So., 6. Dez. 2026 um 05:31 Uhr schrieb Help Desk <helpdesk@localhost>:\n> Hallo\n"
    assert read(make_mail(german)).text == "Geht nicht."
    # a reviewer's: signatures as they come, and Outlook's header in Portuguese (the desk's mail, link and all)
    signed = (
        "It works.\n--\nJane Doe\nExample Inc.\nThis email is confidential. If you are not the addressee, delete it."
    )
    assert read(make_mail(signed + quote)).text == "It works."
    blackberry = "It works.\n\nSent from my BlackBerry 10 smartphone on the Verizon Wireless 4G LTE network."
    assert read(make_mail(blackberry + quote)).text == read(make_mail(blackberry)).own_text == "It works."
    portuguese = (
        "Ainda não funciona.\n\nDe: Help Desk <helpdesk@localhost>\nEnviado: domingo, 6 de dezembro de 2026 05:31\n"
        "Para: Ana <ana@example.com>\nAssunto: [#100042] VPN\n\nOlá Ana, veja https://help.example.com/t/abc\n"
    )
    assert read(make_mail(portuguese)).text == "Ainda não funciona."
    polish = "Nadal nie działa.\n\nOd: Help Desk <helpdesk@localhost>\nWysłano: 6 grudnia 2026\nDo: Ana\nTemat: VPN\n"
    assert read(make_mail(polish)).text == "Nadal nie działa."


QUOTED = "> Hello,\n> The help desk has replied to your request.\n"  # the desk's mail as the client quotes it
DESK = "Help Desk <helpdesk@localhost>"
# Replies as the mail clients of other scripts write them (a mail-in prober's: each pasted the desk's whole mail
# into the conversation, the requester's own words first): Outlook's header block, Gmail's intro, QQ's marker
OTHER_SCRIPTS = {
    "outlook japanese": f"まだ印刷できません。\n\n差出人: {DESK}\n送信日時: 2026年12月6日 13:08\n宛先: 田中 太郎\n"
    "件名: [#100018] 印刷できません\n\nThank you for contacting the help desk.\n",
    "outlook chinese": f"打印机还是不能用。\n\n发件人: {DESK}\n发送时间: 2026年12月6日 13:08\n收件人: 王伟\n"
    "主题: [#100019] 打印机问题\n\nHello 王伟,\nThank you for contacting the help desk.\n",
    "outlook chinese, full-width colons": f"打印机还是不能用。\n\n发件人：{DESK}\n发送时间：2026年12月6日 13:08\n"
    "收件人：王伟\n主题：[#100019] 打印机问题\n\nHello 王伟,\n",
    "outlook traditional chinese": f"還是不能用。\n\n寄件者: {DESK}\n寄件日期: 2026年12月6日 13:08\n收件者: 陳\n"
    "主旨: [#100019] 印表機\n\nHello,\n",
    "outlook russian": f"Всё ещё не работает.\n\nОт: {DESK}\nОтправлено: 6 декабря 2026 г. 13:08\nКому: Иван\n"
    "Тема: [#100020] Принтер\n\nHello Иван,\n",
    "outlook korean": f"아직 안 됩니다.\n\n보낸 사람: {DESK}\n보낸 날짜: 2026년 12월 6일 13:08\n받는 사람: 김\n"
    "제목: [#100021] 프린터\n\nHello,\n",
    "qq marker": "打印机还是不能用。\n\n------------------ 原始邮件 ------------------\n"
    f"发件人: {DESK}\n发送时间: 2026年12月6日\n收件人: 王伟\n主题: [#100019]\n\nHello 王伟,\n",
    "russian marker": "Не работает.\n\n-----Исходное сообщение-----\nHello,\nThe help desk\n",
    "gmail japanese": f"まだです。\n\n2026年12月6日(日) 13:08 {DESK}:\n\n{QUOTED}",
    "gmail chinese": f"还是不行。\n\n{DESK} 于2026年12月6日周日 13:08写道：\n\n{QUOTED}",
    "gmail korean": f"아직입니다.\n\n2026년 12월 6일 (일) 오후 1:08, {DESK}님이 작성:\n\n{QUOTED}",
    "gmail russian": f"Всё ещё нет.\n\nвс, 6 дек. 2026 г. в 13:08, {DESK}:\n\n{QUOTED}",
    "gmail polish": f"Nadal nie.\n\nW dniu nd., 6 gru 2026 o 13:08 {DESK} napisał(a):\n\n{QUOTED}",
    "thunderbird polish": f"Nadal nie.\n\nW dniu 6.12.2026 o 13:08, {DESK} pisze:\n{QUOTED}",
}


@pytest.mark.parametrize("name", OTHER_SCRIPTS)
def test_replies_from_mail_clients_in_other_scripts_leave_out_what_they_quote(name):
    body = OTHER_SCRIPTS[name]
    own = body.split("\n\n", 1)[0]
    assert read(make_mail(body)).text == own


@pytest.mark.parametrize(
    "body",
    [
        "以下の通りです:\n件名: 印刷\n宛先: 3階",  # "as follows:" and two lines that look like headers, no From
        "Ответ от поддержки <support@vendor.example>:\nпопробуйте ещё раз",  # an address and a colon, no quote
        "发件人是我的同事。\n他说打印机坏了。",  # "the sender is my colleague": a From word with no colon
        # a review's: Polish lines of the person's own that begin "W" ("in") and end as an intro's verb does
        "W biurze nr 3 drukarka nie drukuje,\nwięc zadzwoniłem, a technik\npisze:\nTrzeba wymienić bęben.",
        "W dniu 5.12 dostałem maila, w którym kolega pisze:\nserwer jest wyłączony.\nCo mam zrobić?",
        "Nie mogę się zalogować.\nW poniedziałek 6.12 kierownik napisał:\nProszę zresetować hasło.",
    ],
)
def test_their_own_words_in_other_scripts_that_look_like_markers_stay(body):
    mail = read(make_mail(body))
    assert mail.text == mail.own_text == body


def test_a_mail_that_is_only_a_quote_keeps_it_all():
    body = "> Please restart the client.\n> Thanks"
    assert read(make_mail(body)).text == body


def test_text_plain_is_preferred_but_an_empty_one_gives_way_to_html():
    message = make_mail("Plain words.")
    message.add_alternative("<p>HTML words.</p>", subtype="html")
    assert read(message).text == "Plain words."
    empty_plain = make_mail("   \n")
    empty_plain.add_alternative("<p>HTML words.</p>", subtype="html")
    assert read(empty_plain).text == "HTML words."


def test_authentication_results_are_read_as_server_method_and_result():
    """RFC 8601's header as MTAs write it (folded): comments with ";" in them, quoted values, versions, several."""
    headers = crlf(
        b"Authentication-Results: MX.Help.Example.com 1;\n spf=pass smtp.mailfrom=example.net;\n"
        b' dkim/1=pass (good; 2048-bit) header.d=example.net header.b="x;y";\n'
        b" dmarc=FAIL (p=reject) header.from=example.net\n"
        b"Authentication-Results: relay.example.org; none\n"
        b"Authentication-Results: ; dmarc=pass\n"  # no server: skipped
    )

    assert read(headers + make_mail().as_bytes()).authentication == (
        ("mx.help.example.com", "spf", "pass"),
        ("mx.help.example.com", "dkim", "pass"),
        ("mx.help.example.com", "dmarc", "fail"),
    )
    assert read(make_mail()).authentication == ()


def test_an_mtas_authentication_results_below_any_number_of_the_senders_are_read():
    """An MTA may add its header below the ones a sender wrote (Exim's add_header does): 40 of the sender's above
    it do not hide it."""
    forged = b"".join(b"Authentication-Results: x%d.example; none\n" % n for n in range(40))
    raw = crlf(forged + b"Authentication-Results: mx.help.example.com; dmarc=fail header.from=example.com\n")

    assert ("mx.help.example.com", "dmarc", "fail") in read(raw + make_mail().as_bytes()).authentication


def test_html_conversion_is_cut_at_its_limit(monkeypatch):
    monkeypatch.setattr(inbound, "MAX_HTML_CHARS", 40)
    message = make_mail()
    message.set_content("<p>" + "word " * 50 + "</p><p>LAST</p>", subtype="html")
    mail = read(message)
    assert "LAST" not in mail.full_text and mail.full_text.startswith("word word")
    assert any("HTML is over" in defect for defect in mail.defects)


def test_the_html_limit_is_the_whole_mails_not_each_parts(monkeypatch):
    """Many large HTML parts in one mail would each take seconds of CPU to turn into text: the limit is for the
    mail, and the parts past it are not read."""
    monkeypatch.setattr(inbound, "MAX_HTML_CHARS", 100)
    converted: list[int] = []
    real = inbound.html_to_text
    monkeypatch.setattr(inbound, "html_to_text", lambda html: converted.append(len(html)) or real(html))
    parts = b"".join(b"--B\nContent-Type: text/html\n\n<p>PART%d " % n + b"word " * 12 + b"</p>\n" for n in range(5))
    raw = crlf(b'From: a@example.com\nContent-Type: multipart/mixed; boundary="B"\n\n' + parts + b"--B--\n")

    mail = read(raw)

    assert sum(converted) <= 100 and "PART0" in mail.full_text and "PART2" not in mail.full_text
    assert [d for d in mail.defects if "HTML is over" in d][-1].endswith("not read as text")


# --- Attachments --------------------------------------------------------------------------------------------------


def test_attachments_inline_images_and_attached_mails():
    message = make_mail("See the screenshot.")
    message.add_alternative('<p>See <img src="cid:shot1@example.com"></p>', subtype="html")
    html = message.get_payload()[1]
    html.add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<shot1@example.com>", disposition="inline")
    message.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    message.add_attachment(make_mail("the original", Subject="Forwarded"))  # message/rfc822
    message.add_attachment("notes\n", subtype="plain", filename="notes.txt")  # text, but with a file name
    mail = read(message)
    # the attached mail is read too, as a mail program shows a mail forwarded inline (agents have no mail program)
    forwarded = "---------- Forwarded message ----------\nFrom: Ana Ruiz <ana.ruiz@example.com>\nSubject: Forwarded"
    assert mail.text == f"See the screenshot.\n\n{forwarded}\n\nthe original"
    found = [(a.filename, a.content_type, a.inline, a.content_id) for a in mail.attachments]
    assert found == [
        ("attachment-1.png", "image/png", True, "shot1@example.com"),
        ("data.csv", "text/csv", False, None),
        ("Forwarded.eml", "message/rfc822", False, None),  # named by its subject
        ("notes.txt", "text/plain", False, None),
    ]
    assert mail.attachments[0].data == b"\x89PNG fake"
    assert b"Subject: Forwarded" in mail.attachments[2].data and b"the original" in mail.attachments[2].data
    assert mail.attachments[3].data == b"notes\n"


def test_an_attached_mail_in_html_without_a_subject_is_read_and_numbered_and_one_that_will_not_parse_is_a_file():
    inner = make_mail("x", Subject="")
    del inner["Subject"]
    inner.set_content("<p>Where is <b>my order</b>?</p>", subtype="html")
    message = make_mail("Please see below.")
    message.add_attachment(inner)
    mail = read(message)
    assert mail.text.endswith("From: Ana Ruiz <ana.ruiz@example.com>\n\nWhere is my order?")
    assert [a.filename for a in mail.attachments] == ["attachment-1.eml"]

    raw = crlf(b'From: a@example.com\nContent-Type: multipart/mixed; boundary="B"\n\n--B\n'
               b"Content-Type: text/plain\n\nsee attached\n--B\nContent-Type: message/rfc822\n\n"
               b"\x00\xff not a mail at all\n--B--\n")  # fmt: skip
    broken = read(raw)
    assert broken.text.startswith("see attached") and len(broken.attachments) == 1


def test_a_forwarded_mail_says_which_files_it_carries():
    invoice = make_mail("Please find the invoice attached.", Subject="Invoice 12")
    invoice.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="inv.pdf")
    message = make_mail("fyi")
    message.add_attachment(invoice)
    assert "Subject: Invoice 12\nAttachments: inv.pdf\n\nPlease find the invoice attached." in read(message).text


def test_a_forwarded_mails_subject_names_its_file_without_what_a_file_name_may_not_hold():
    message = make_mail("fyi")
    message.add_attachment(make_mail("the original", Subject='Re: order 12/34 "urgent"?'))
    assert [a.filename for a in read(message).attachments] == ["Re- order 12-34 -urgent-.eml"]
    mislabelled = make_mail("fyi")
    mislabelled.add_attachment(make_mail("the original", Subject="placeholder"))
    raw = mislabelled.as_bytes().replace(b"Subject: placeholder", b"Subject: =?utf-8?q?caf=E9_order?=")
    assert [a.filename for a in read(raw).attachments] == ["caf\u00e9 order.eml"]  # read as the mail's own subject


def test_an_encoded_subject_said_to_be_utf8_in_windows_1252_is_read_as_written():
    subject = b"=?utf-8?q?broken_=E9ncoding_=C3=A9t=C3=A9?= =?UTF-8?B?Y2Fmw6k=?="  # one byte of windows-1252 amid UTF-8
    raw = crlf(b"From: a@example.com\nSubject: " + subject + b"\n\nhi\n")
    mail = read(raw)
    assert mail.subject == "broken \u00e9ncoding \u00e9t\u00e9caf\u00e9"  # adjacent encoded words join (RFC 2047)
    assert any("read as windows-1252" in defect for defect in mail.defects)


def test_file_names_are_decoded_and_stripped_of_folders():
    names = {
        "filename*=UTF-8''%E2%82%AC%20rates.pdf": "\u20ac rates.pdf",  # RFC 2231
        'filename="=?UTF-8?B?w6TDtsO8LnBuZw==?="': "\u00e4\u00f6\u00fc.png",  # an encoded word (Outlook, Gmail)
        'filename="=?iso-8859-1?Q?r=E9sum=E9.doc?="': "r\u00e9sum\u00e9.doc",
        'filename="..\\\\..\\\\Windows\\\\evil.exe"': "evil.exe",
        'filename="/etc/passwd"': "passwd",
        'filename=".."': "attachment-1.bin",
        'filename="a\tb\x01.txt"': "a b .txt",
        'filename="' + "x" * 300 + '.pdf"': "x" * 251 + ".pdf",
        "filename*=utf-8''invoice%E2%80%AEfdp.exe": "invoicefdp.exe",  # no right-to-left override: not "...exe.pdf"
        "filename*=utf-8''a%E2%80%8Bb.txt": "ab.txt",  # nor a zero-width space
    }
    for parameter, expected in names.items():
        raw = crlf(
            b'From: a@example.com\nContent-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nhi\n'
            b"--B\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
            + parameter.encode("latin-1")
            + b"\n\nDATA\n--B--\n"
        )
        (attachment,) = read(raw).attachments
        assert attachment.filename == expected, parameter
        assert attachment.data == b"DATA"


# --- Malformed mail -----------------------------------------------------------------------------------------------


def test_a_multipart_without_boundary_keeps_its_text():
    mail = read(MISSING_BOUNDARY)
    assert "The monitor stays black after the update." in mail.text
    assert any("boundary" in defect.lower() for defect in mail.defects)


def test_truncated_base64_is_kept_raw_with_a_defect():
    mail = read(TRUNCATED_BASE64)
    (attachment,) = mail.attachments
    assert attachment.filename == "vpn.log"
    assert attachment.data == b"SGVsbG8gd29ybGQhIFRoaXMgaXMgdGhlIGxvZ"  # cannot be decoded: the raw bytes
    assert "part 2 (application/octet-stream): base64 could not be decoded, kept as raw bytes" in mail.defects
    assert mail.text == "Log attached."


def test_base64_cut_at_a_padding_boundary_decodes_what_is_there_and_notes_it():
    mail = read(TRUNCATED_BASE64.replace(b"GxvZ\r\n", b"GxvZy\r\n"))
    assert mail.attachments[0].data == b"Hello world! This is the log"
    assert "part 2 (application/octet-stream): base64 encoded sequence had an incorrect length" in mail.defects


def test_an_unknown_charset_is_read_as_latin1_and_noted():
    mail = read(BAD_CHARSET)
    assert mail.subject == "caf\u00e9 machine"
    assert mail.text == "The caf\u00e9 machine shows error 4."
    assert "message: unknown charset 'x-unknown', read as latin-1" in mail.defects
    assert "Subject header: unknown charset 'x-unknown', read as latin-1" in mail.defects


@pytest.mark.parametrize("charset", [b"ISO-885\x009", b"punycode", b"idna", b"zlib_codec", b"undefined", b"utf-8\x00"])
@pytest.mark.timeout(120)  # a quadratic crawl takes minutes; a linear parse, milliseconds
def test_odd_charsets_on_8bit_text_are_read_as_latin1_and_fast(charset):
    body = b"caf\xe9 " * 200_000  # punycode decodes in quadratic time; a NUL in a codec name raises ValueError
    raw = crlf(b"From: a@example.com\nContent-Type: text/plain; charset=") + charset + crlf(b"\n\n") + body
    mail = read(raw)
    assert mail.text.startswith("caf\u00e9 caf\u00e9")
    assert any("unknown charset" in defect for defect in mail.defects)
    outer = crlf(b'From: a@example.com\nContent-Type: multipart/mixed; boundary="B"\n\n--B\n')
    outer += crlf(b"Content-Type: text/plain\n\nsee attached\n--B\nContent-Type: message/rfc822\n\n")
    outer += raw + crlf(b"\n--B--\n")
    (eml,) = read(outer).attachments
    assert body[:100] in eml.data  # written back as the bytes it came as, never decoded by that charset


def test_a_body_said_to_be_utf8_in_windows_1252_is_read_as_written_and_noted():
    """A client that declares UTF-8 and writes windows-1252: "Café crème", not "Caf� cr�me"; a byte that is in
    neither is replaced. A UTF-8 body with a Latin-1 footer a relay appended keeps its UTF-8 as it is."""
    raw = crlf(b"From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\nCaf\xe9 cr\xe8me \x81\n")
    mail = read(raw)
    assert mail.text == "Caf\u00e9 cr\u00e8me \ufffd"
    assert any("not valid in utf-8, those read as windows-1252" in defect for defect in mail.defects)
    mixed = "Gr\u00fc\u00dfe, \u65e5\u672c\u8a9e \u2014 ok".encode() + b"\n-- \nVertraulich: f\xfcr Sie\n"
    raw = crlf(b"From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\n") + mixed
    assert read(raw).full_text == "Gr\u00fc\u00dfe, \u65e5\u672c\u8a9e \u2014 ok\n-- \nVertraulich: f\u00fcr Sie"


def test_a_start_boundary_never_found_and_a_nul_in_a_header():
    raw = crlf(b'From: a@example.com\nSubject: a\x00b\nContent-Type: multipart/mixed; boundary="NEVER"\n\nJust text.\n')
    mail = read(raw)
    assert mail.subject == "a b"
    assert "Just text." in mail.full_text
    assert mail.defects


@pytest.mark.parametrize("raw", [b"", b"\n", b"\r\n\r\n", b"no headers at all", b"\xff\xfe\x00\x01", b"From:\n\n"])
def test_degenerate_input_gives_an_empty_but_whole_mail(raw):
    mail = parse(raw)
    assert isinstance(mail, InboundMail)
    assert mail.key == hashlib.sha256(raw).hexdigest()
    assert mail.sender == "" and mail.subject == ""


# --- Never raises, stays bounded ----------------------------------------------------------------------------------


def assert_well_formed(mail: InboundMail) -> None:
    for name in ("key", "sender", "sender_name", "envelope_sender", "subject", "text", "full_text"):
        value = getattr(mail, name)
        assert isinstance(value, str), name
        value.encode("utf-8")  # no lone surrogates: storable as it is
    assert mail.message_id is None or (isinstance(mail.message_id, str) and mail.message_id)
    assert all(isinstance(item, str) for item in (*mail.recipients, *mail.references, *mail.referenced_ticket_ids))
    assert mail.automatic is None or isinstance(mail.automatic, str)
    assert isinstance(mail.ticket_numbers, tuple) and all(isinstance(n, int) for n in mail.ticket_numbers)
    for attachment in mail.attachments:
        assert attachment.filename and "/" not in attachment.filename and "\\" not in attachment.filename
        assert attachment.content_type == attachment.content_type.lower()
        assert isinstance(attachment.data, bytes)
    assert all(isinstance(defect, str) for defect in mail.defects)
    assert not any(defect.startswith("the mail could not be parsed") for defect in mail.defects)  # no fallback


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(raw):
    mail = parse(raw)
    assert_well_formed(mail)
    assert inbound.key_of(raw) == mail.key


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace", "truncate", "header"]),
        st.floats(min_value=0, max_value=1),
        st.binary(min_size=1, max_size=40)
        | st.sampled_from([b"\r\n", b"\r\n\r\n", b"--", b"=?", b"?=", b"\x00", b'"', b"(", b"=\r\n", b"\xff\xfe"]),
    ),
    min_size=1,
    max_size=6,
)


def mutate(raw: bytes, mutations: list) -> bytes:
    for kind, where, data in mutations:
        at = int(where * len(raw))
        if kind == "insert":
            raw = raw[:at] + data + raw[at:]
        elif kind == "delete":
            raw = raw[:at] + raw[at + len(data) :]
        elif kind == "replace":
            raw = raw[:at] + data + raw[at + len(data) :]
        elif kind == "truncate":
            raw = raw[:at]
        else:  # a header line of junk somewhere
            raw = raw[:at] + b"\r\nX-Junk: " + data + b"\r\n" + raw[at:]
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(RAW_MAILS)), MUTATIONS)
def test_mutated_real_mails_never_raise(name, mutations):
    assert_well_formed(parse(mutate(RAW_MAILS[name], mutations), envelope_sender=PERSON))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(RAW_MAILS)), MUTATIONS)
def test_the_key_from_the_headers_alone_is_the_key_of_the_whole_parse(name, mutations):
    """inbox's duplicate check reads a mail's key before its body (inbound.key_of): the same key as parse's, or
    a mail received before would be parsed again, or taken for another."""
    raw = mutate(RAW_MAILS[name], mutations)
    assert inbound.key_of(raw) == parse(raw, envelope_sender=PERSON).key


MIME_JUNK = st.text(alphabet="=?<>\"'()\\;:,@ \t\r\n*%aQB-_./\x00\xe9\u20ac", max_size=200)


@settings(max_examples=300, deadline=None)
@given(MIME_JUNK, MIME_JUNK, MIME_JUNK, MIME_JUNK)
def test_junk_in_the_headers_that_are_parsed_never_raises(sender, subject, content_type, disposition):
    raw = (
        f"From: {sender}\r\nSubject: {subject}\r\nMessage-ID: {subject}\r\nReferences: {sender}\r\nTo: {sender}\r\n"
        f'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: {content_type}\r\n'
        f"Content-Disposition: {disposition}\r\n\r\nbody\r\n--B--\r\n"
    ).encode("utf-8", "surrogateescape")
    mail = parse(raw, envelope_sender=PERSON)
    assert_well_formed(mail)
    assert inbound.key_of(raw) == mail.key  # as in test_the_key_from_the_headers_alone_is_the_key_of_the_whole_parse


@pytest.mark.parametrize(
    "header",
    [
        b"From: " + b'"' * 65536,  # the stdlib's address parser is quadratic on this
        b"From: " + b"(" * 65536,  # ... and recurses out on this
        b"Content-Type: text/plain; a=" + b'"' * 65536,  # ... and its parameter parser too
        b"To: " + b"a@b, " * 20000,
        b"References: " + b"<a@b> " * 20000,
        b"Subject: =?punycode?Q?" + b"ab" * 30000 + b"?=",  # a quadratic codec, never used
    ],
    ids=["From quotes", "From parentheses", "Content-Type quotes", "long To", "long References", "punycode"],
)
@pytest.mark.timeout(120)  # a quadratic crawl takes minutes; a linear parse, milliseconds
def test_pathological_headers_are_cut_and_parse_fast(header):
    mail = parse(header + b"\r\nMessage-ID: <p@x>\r\n\r\nbody\r\n", envelope_sender=PERSON)
    assert_well_formed(mail)


@pytest.mark.timeout(120)  # a quadratic crawl takes minutes; a linear parse, milliseconds
@pytest.mark.parametrize(
    ("boundary", "end"),
    [(b'boundary="b"', b"\r\n"), (b"boundary*=''b", b"\r\n"), (b"boundary*=utf-8''%62", b"\r\n"),
     (b'boundary*0="b"', b"\r\n"), (b'boundary="b"', b"\r")],
    ids=["quoted", "RFC 2231", "RFC 2231 percent-encoded", "RFC 2231 continued", "bare CR line ends"],
)  # fmt: skip
def test_too_many_parts_keep_the_text_without_parsing_each_part(boundary, end):
    """However the boundary is given, and whatever ends the lines: the stdlib's parser reads each (a security
    review's 35 MiB of bare-CR parts took 163 s of CPU and 2 GB past a count of LF lines alone)."""
    raw = b"Content-Type: multipart/mixed; " + boundary + b"\r\nFrom: a@example.com\r\n\r\n"
    raw += (b"--b" + end + b"Content-Type: text/plain" + end + end + b"x" + end) * 5000 + b"--b--" + end
    mail = parse(raw, envelope_sender=PERSON)
    assert any("over 1000 MIME parts" in defect for defect in mail.defects)
    assert mail.sender == "a@example.com" and "x" in mail.full_text


@pytest.mark.timeout(120)  # a quadratic crawl takes minutes; a linear parse, milliseconds
def test_deep_nesting_neither_recurses_out_nor_crawls():
    depth = 3000
    raw = b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    for level in range(depth):
        raw += b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (level, level + 1)
    raw += b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" % depth
    mail = parse(raw, envelope_sender=PERSON)
    assert any("MIME boundaries" in defect for defect in mail.defects)
    assert_well_formed(mail)


@pytest.mark.slow
def test_a_large_mail_parses_in_linear_memory():
    """8 MiB of mail: quadratic copies would show as well as at 30 MiB (the listener refuses past 35), in a quarter
    of the time."""
    data = random.Random(30).randbytes(6 * 1024 * 1024)
    message = make_mail("The dump is attached.")
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename="dump.bin")
    raw = message.as_bytes()
    assert len(raw) > 8 * 1024 * 1024
    tracemalloc.start()
    try:
        mail = parse(raw, envelope_sender=PERSON)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert mail.attachments[0].data == data
    assert mail.text == "The dump is attached."
    assert peak < 12 * len(raw)  # about 8x today: copies, not squares


def html_mail_text(html: str) -> str:
    """The text mail in reads from a mail whose only body is this HTML."""
    message = make_mail()
    message.set_content(html, subtype="html")
    return read(message).full_text


def test_an_html_links_address_is_kept_beside_its_words():
    html = ('<p>The form is <a href="https://forms.example.com/vpn?id=7">here</a>; the guide is at '
            '<a href="https://wiki.example.com/vpn">https://wiki.example.com/vpn</a>.</p>')  # fmt: skip
    text = html_mail_text(html)
    assert "The form is here (https://forms.example.com/vpn?id=7);" in text  # as a plain mail says it, not Markdown
    assert "the guide is at https://wiki.example.com/vpn." in text  # an address as its own words: once


def test_an_html_mail_address_link_is_the_address_once():
    html = '<p>Write to <a href="mailto:Ana@Example.com">ana@example.com</a> or <a href="mailto:b@x.org">Bo</a>.</p>'
    assert "Write to ana@example.com or Bo (b@x.org)." in html_mail_text(html)


def test_every_kind_of_html_link_reads_as_a_plain_mail_says_it_never_as_markdown():
    html = (
        '<p>See <a href="https://en.wikipedia.org/wiki/Printer_(computing)">the printer article</a> please.</p>'
        '<p>Social: <a href="https://twitter.com/acme"><img src="https://x/t.png" alt=""></a></p>'
        '<p><a href="https://example.com/two">first line<br>second line</a></p>'
        '<p><a href="https://example.com/x_(y)">the [beta] page</a>, <a href="#top">top</a>, '
        '<a href="javascript:alert(1)">this</a></p>'
    )
    text = html_mail_text(html)
    assert "the printer article (https://en.wikipedia.org/wiki/Printer_(computing)) please." in text
    assert "Social: https://twitter.com/acme" in text  # a linked image without words: its address
    assert "second line (https://example.com/two)" in text
    assert "the [beta] page (https://example.com/x_(y)), top, this" in text  # no address for # or a script
    assert "](" not in text


def test_a_mail_the_parser_fails_on_is_kept_as_text(monkeypatch):
    """The safety net: a bug of ours or the stdlib's keeps the mail (as its raw text), never loses it."""

    def broken(*args, **kwargs):
        raise RuntimeError("a parser bug")

    monkeypatch.setattr(inbound, "_parse", broken)
    mail = parse(crlf(b"From: ana@example.com\nSubject: [#100042] VPN\n\nStill down.\n"))
    assert "Still down." in mail.full_text and mail.ticket_numbers == ()
    assert mail.defects == ("the mail could not be parsed (RuntimeError: a parser bug)",)


def test_a_hidden_link_hides_its_address_and_an_empty_address_adds_nothing():
    html = ('<p>Hi<a style="display:none" href="https://track.example.com/p">x</a>. '
            '<a href="mailto:?subject=hello">Write to us</a>.</p>')  # fmt: skip
    text = html_mail_text(html)
    assert "track.example.com" not in text and "Write to us." in text and "()" not in text


def test_a_small_table_is_laid_out_as_a_table_and_a_costly_one_is_read_as_lines():
    """inscriptis pads each row to its columns' widest cells: an invoice keeps its columns, and a table whose
    layout would take millions of characters (one long cell beside thousands of rows) or a row of thousands of
    cells above thousands of rows (CPU) is read row by row instead."""
    invoice = "<table><tr><th>Item</th><th>Price</th></tr><tr><td>Dock</td><td>120 EUR</td></tr></table>"
    lines = [line.rstrip() for line in inbound_text.html_to_text(invoice).splitlines()]
    assert lines == ["Item  Price", "Dock  120 EUR"]  # in columns

    wide = "<table><tr><td>" + "x" * 10_000 + "</td><td>y</td></tr>" + "<tr><td></td><td>z</td></tr>" * 600
    grid = "<table><tr>" + "<td>a</td>" * 2_000 + "</tr>" + "<tr><td>b</td></tr>" * 2_000 + "</table>"
    tall = "<table><tr><td>" + "z<br>" * 1_000 + "</td><td>" + "x" * 10_000 + "</td></tr></table>"  # lines, not rows
    for html, words in ((wide + "</table>", ("x" * 10_000, "y", "z")), (grid, ("a a a", "b")), (tall, ("z", "xxx"))):
        text = inbound_text.html_to_text(html)
        assert len(text) < len(html) and all(word in text for word in words)  # as tables: 6, 8 and 10 million


def test_a_flood_of_recipients_keeps_the_first_hundred():
    """A polled mail names its recipients in To and Cc; 400 To headers of thousands of addresses made a record
    too large to store, and the poller read the mail again every round."""
    to = b"".join(
        b"To: " + b", ".join(b"r%d.%d@example.com" % (h, n) for n in range(300)) + b"\r\n" for h in range(400)
    )
    mail = parse(b"From: a@example.com\r\n" + to + b"Subject: x\r\n\r\nbody\r\n", envelope_sender=PERSON)
    assert len(mail.recipients) == 100 and mail.recipients[0] == "r0.0@example.com"
    given = parse(b"From: a@example.com\r\n\r\nbody\r\n", PERSON, [f"d{n}@help.example.com" for n in range(500)])
    assert len(given.recipients) == 100


def test_a_text_over_a_million_characters_is_read_up_to_there_and_says_so():
    """A text/plain body of 23 million characters cost 20 s of CPU and gigabytes to cut its quotes (a security
    review's mail): only its first MAX_TEXT_CHARS are read; the thread keeps 20,000 of them anyway."""
    message = make_mail()
    message.set_content("Hello.\n" + "a\n" * inbound.MAX_TEXT_CHARS)
    mail = read(message)
    assert mail.full_text.startswith("Hello.\na\na") and len(mail.full_text) <= inbound.MAX_TEXT_CHARS
    assert any(f"over {inbound.MAX_TEXT_CHARS:,} characters, only its start read" in d for d in mail.defects)


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (b"From: a@b.c\r\nSubject: x\r\n\r\nbody\r\n\r\nmore", b"From: a@b.c\r\nSubject: x\r\n\r\n"),
        (b"From: a@b.c\nSubject: x\n\nbody\n\nmore", b"From: a@b.c\nSubject: x\n\n"),
        (b"From: a@b.c\nSubject: x\n\nbody\r\n\r\n", b"From: a@b.c\nSubject: x\n\n"),  # the first blank line
        (b"From: a@b.c\r\nSubject: x\r\n", b"From: a@b.c\r\nSubject: x\r\n"),  # no body: all of it
    ],
)
def test_headers_only_is_the_header_section_and_its_blank_line(raw, headers):
    assert inbound.headers_only(raw) == headers


def test_a_mail_too_large_to_read_is_known_by_its_bytes_or_its_lines():
    from services.intake.inbox import RAW_MAX_BYTES, RAW_MAX_LINES, too_large

    head = b"From: a@b.c\r\nSubject: x\r\n\r\n"
    assert too_large(head + b"a\r\n" * 1000) is None
    assert too_large(head + b"a\r\n" * RAW_MAX_LINES) == f"The mail has more than {RAW_MAX_LINES:,} lines."
    assert too_large(head + bytes(RAW_MAX_BYTES)) == "The mail is larger than 35 MiB."


INVITE = (
    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Printer training\\, floor 3\r\n"
    "DTSTART;TZID=Europe/Berlin:20261207T100000\r\nDTEND;TZID=Europe/Berlin:20261207T110000\r\n"
    "LOCATION:Room 3.14\r\nORGANIZER;CN=Ana Ruiz:mailto:ana.ruiz@example.com\r\n"
    "DESCRIPTION:Bring the new toner.\\nThe old one is\r\n  empty.\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_a_mail_that_is_only_a_calendar_invite_reads_as_what_the_invite_says_and_keeps_it_as_an_ics():
    """A tester's invite-only mail read "(The mail had no text.)", its file "attachment-1.bin"."""
    message = make_mail()
    message.set_content(INVITE, subtype="calendar", params={"method": "REQUEST"})
    mail = read(message)
    assert mail.text == (
        "A calendar invitation.\nWhat: Printer training, floor 3\nStarts: 2026-12-07 10:00 (Europe/Berlin)\n"
        "Ends: 2026-12-07 11:00 (Europe/Berlin)\nWhere: Room 3.14\nInvited by: ana.ruiz@example.com\n\n"
        "Bring the new toner.\nThe old one is empty."
    )
    assert [(file.filename, file.content_type) for file in mail.attachments] == [("attachment-1.ics", "text/calendar")]

    worded = make_mail("Can you come to this?")  # with words of its own: those, and the invite as a file
    worded.add_alternative(INVITE.encode(), maintype="text", subtype="calendar")
    worded.add_attachment(INVITE.encode(), maintype="text", subtype="calendar", filename="invite.ics")
    assert read(worded).text == "Can you come to this?"
    # the same invite as an alternative and as invite.ics beside it: one file, by its own name (a tester saw two)
    assert [file.filename for file in read(worded).attachments] == ["invite.ics"]
    assert [file.filename for file in inbound.files_of(worded.as_bytes())] == ["invite.ics"]
    assert inbound.calendar_text(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") == ""
    folded = "SUMMARY:Gr\u00fc\u00dfe".encode()  # a fold inside the two bytes of ü (RFC 5545 folds bytes)
    assert "What: Gr\u00fc\u00dfe" in inbound.calendar_text(folded[:11] + b"\r\n " + folded[11:])
    assert "What: Caf\u00e9" in inbound.calendar_text("SUMMARY:Caf\u00e9".encode("latin-1"), "iso8859-1")


def test_a_kept_mails_unnamed_file_listed_before_it_had_its_types_extension_is_the_same_file():
    from services.intake.inbox import _named_as_then

    assert _named_as_then("attachment-1.png", "attachment-1.bin") == "attachment-1.bin"  # as listed then: served
    assert _named_as_then("attachment-2.ics", "attachment-1.bin") == "attachment-2.ics"  # another part: refused
    assert _named_as_then("scan.pdf", "scan.pdf") == "scan.pdf" and _named_as_then("a.png", "a.bin") == "a.png"


def test_a_body_said_to_be_gb2312_reads_gbks_characters_and_outlooks_image_places_go():
    text = "\u5f20\u5586\u7684\u6253\u5370\u673a\u574f\u4e86"  # 喆 is GBK's, not GB2312's: read as browsers read it
    raw = crlf(b"From: a@example.cn\nSubject: x\nContent-Type: text/plain; charset=gb2312\n\n")
    mail = read(raw + text.encode("gbk") + b"\r\n")
    assert mail.text == text and not any("replaced" in defect for defect in mail.defects)
    outlook = make_mail("See the screen:\n[cid:image001.png@01DB4C2A.5E1C7F10]\nIt is black.")
    assert read(outlook).text == "See the screen:\n\nIt is black."
