"""Mail in, decided and stored (services/intake/inbox.py) against the real store and broker, without SMTP: a new
mail opens a ticket, a reply adds the requester's message or is kept for the agents, automatic mail does nothing,
the same mail twice has one effect. tests/integration/test_intake_mail_process.py speaks SMTP to the process."""

from __future__ import annotations

import dataclasses
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from services.intake import domain, handlers, inbox
from tests.harness import auth_header, flushed
from tests.integration.conftest import event_from

PDF = b"%PDF-1.7\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 10 + b"%%EOF\n"


@pytest.fixture
def svc(intake_app):
    """intake's handlers as its app has them (so `client` reads what they stored)."""
    intake = intake_app.extensions["ticketflow.intake"]
    intake.ensure_storage()
    return intake


def address(name: str = "ana") -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@example.com"


def mail(sender: str, subject: str, body: str, **headers) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Ana Ruiz <{sender}>"
    message["To"] = headers.pop("to", "help@help.example.com")
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", make_msgid(domain="client.example.com"))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def receive(svc, message: EmailMessage, sender: str | None = None, recipients=("help@help.example.com",)):
    envelope_sender = sender if sender is not None else message["From"].addresses[0].addr_spec
    return inbox.receive(svc, message.as_bytes(), envelope_sender, list(recipients))


def reply_to(ticket, sender: str, body: str, quoted: str = "Thank you for contacting the help desk.") -> EmailMessage:
    """A reply as mail clients make it: Re: [#N] subject, In-Reply-To notify's Message-ID, the receipt quoted."""
    receipt_id = f"<{uuid.uuid4()}+{ticket.id}@ticketflow>"
    text = f"{body}\n\nOn Mon, 30 Nov 2026 at 09:12, Help desk <helpdesk@localhost> wrote:\n> {quoted}\n> Bye\n"
    return mail(sender, f"Re: [#{ticket.number}] {ticket.subject}", text, In_Reply_To=receipt_id,
                References=f"<ticket-{ticket.id}@ticketflow> {receipt_id}")  # fmt: skip


def test_a_new_mail_opens_a_ticket_from_its_sender_subject_and_text(svc, tap):
    sender = address()
    message = mail(sender, "VPN drops every hour", "Since Monday.\n\n-- \nAna\nACME Corp")
    outcome = receive(svc, message)
    assert (outcome.kind, outcome.number) == ("ticket", svc.tickets.get(outcome.ticket_id).number)
    ticket = svc.tickets.get(outcome.ticket_id)
    assert (ticket.subject, ticket.source, ticket.topic) == ("VPN drops every hour", "email", "general")
    assert ticket.requester == {"name": "Ana Ruiz", "email": sender}
    assert ticket.description.startswith("Since Monday.")
    flushed(svc.flusher)
    (created,) = tap.envelopes(ticket_id=ticket.id, type="ticket.created")
    assert created["data"]["source"] == "email"
    assert f"<{created['data']['mail_message_id']}>" == message["Message-ID"]  # the receipt answers it


@pytest.mark.parametrize("message_id", [None, "<" + "x" * 251 + "@client.example.com>"])
def test_a_mail_whose_message_id_a_header_cannot_name_again_opens_its_ticket_without_it(svc, tap, message_id):
    message = mail(address(), "VPN drops", "Since Monday.")
    del message["Message-ID"]
    if message_id is not None:
        message["Message-ID"] = message_id
    ticket_id = receive(svc, message).ticket_id
    flushed(svc.flusher)
    (created,) = tap.envelopes(ticket_id=ticket_id, type="ticket.created")
    assert "mail_message_id" not in created["data"]


@pytest.mark.parametrize(
    ("subject", "kept"),
    [
        ("Re: Re: Printer on floor 3", "Printer on floor 3"),
        ("Fwd: Invoice 2291 rejected", "Invoice 2291 rejected"),
        ("[#999999] Old ticket question", "Old ticket question"),  # a tag of no ticket here: its receipt gets its own
        ("Re:", "Re:"),  # nothing else: as it came
    ],
)
def test_a_new_tickets_subject_loses_what_mail_clients_put_before_it(svc, subject, kept):
    outcome = receive(svc, mail(address(), subject, "The words."))
    assert outcome.kind == "ticket" and svc.tickets.get(outcome.ticket_id).subject == kept


def test_a_subject_longer_than_a_tickets_is_cut_and_kept_whole_above_the_description(svc):
    words = " ".join(f"part{n} of the printer's error on floor 3" for n in range(40))  # about 1,550 characters
    outcome = receive(svc, mail(address(), words, "It jams."))
    ticket = svc.tickets.get(outcome.ticket_id)
    assert len(ticket.subject) == 200 and ticket.subject.endswith("…") and words.startswith(ticket.subject[:-1])
    assert ticket.description.startswith(f"Subject: {words}\n\nIt jams.")  # nothing of it only in the raw mail
    short = svc.tickets.get(receive(svc, mail(address(), "Printer jams", "It jams.")).ticket_id)
    assert short.description.startswith("It jams.")
    huge = svc.tickets.get(receive(svc, mail(address(), "x" * 10_000, "It jams.")).ticket_id)
    assert huge.description == f"Subject: {'x' * 1999}…\n\nIt jams."  # the words keep their room


def test_a_follow_up_with_a_long_subject_still_says_first_what_it_follows_up(svc):
    """notify's receipt reads the description's start to say which closed ticket it follows (a review's find)."""
    sender, long = address(), "VPN drops again " + "and again " * 30
    ticket = svc.tickets.get(receive(svc, mail(sender, long, "Since Monday.")).ticket_id)
    handlers.close_ticket(svc, ticket.id, "requester", None)
    answer = reply_to(ticket, sender, "It is back.")
    del answer["Subject"]
    answer["Subject"] = f"Re: [#{ticket.number}] {long}"
    follow_up = svc.tickets.get(receive(svc, answer).ticket_id)
    assert follow_up.description == (
        f"(Follows up ticket #{ticket.number}, which was closed.)\n\nSubject: {long.strip()}\n\nIt is back."
    )


def test_the_recipient_address_picks_the_topic(svc):
    svc.settings = dataclasses.replace(svc.settings, inbound_topics=(("network@help.example.com", "network"),))
    outcome = receive(svc, mail(address(), "No VPN", "Down."), recipients=["Network@help.example.com"])
    assert svc.tickets.get(outcome.ticket_id).topic == "network"
    unknown = dataclasses.replace(svc.settings, inbound_topics=(("x@help.example.com", "no-such-topic"),))
    svc.settings = unknown
    outcome = receive(svc, mail(address(), "No VPN", "Down."), recipients=["x@help.example.com"])
    assert svc.tickets.get(outcome.ticket_id).topic == "general"
    retired = f"retired-{uuid.uuid4().hex[:8]}"
    svc.topics.put(retired, "Old topic", retired=True)
    svc.settings = dataclasses.replace(svc.settings, inbound_topics=(("old@help.example.com", retired),))
    outcome = receive(svc, mail(address(), "No VPN", "Down."), recipients=["old@help.example.com"])
    assert svc.tickets.get(outcome.ticket_id).topic == "general"  # a retired topic takes no new ticket


def test_the_same_mail_twice_and_at_once_has_one_effect(svc, intake_db, monkeypatch):
    sender = address()
    message = mail(sender, "Printer jams", "Paper everywhere.")
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: receive(svc, message), range(4)))
    assert {o.ticket_id for o in outcomes} == {outcomes[0].ticket_id}
    assert intake_db.tickets.count_documents({"requester.email": sender}) == 1
    # known by its Message-ID before its body is read (a body may cost seconds: an MTA's retries would pay again)
    monkeypatch.setattr(inbox.inbound, "parse", lambda *args, **kwargs: pytest.fail("the body was read again"))
    again = receive(svc, message)
    assert (again.kind, again.ticket_id) == ("duplicate", outcomes[0].ticket_id)
    assert intake_db.inbound_mails.count_documents({"sender": sender}) == 1


def test_a_reply_from_the_requester_adds_a_message_without_the_quoted_receipt(svc, tap):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    outcome = receive(svc, reply_to(ticket, sender, "It dropped again at 10:00."))
    assert (outcome.kind, outcome.ticket_id) == ("message", ticket.id)
    (entry,) = svc.tickets.get(ticket.id).thread
    assert entry["kind"] == "message" and entry["body"] == "It dropped again at 10:00."
    flushed(svc.flusher)
    (added,) = tap.envelopes(ticket_id=ticket.id, type="ticket.message_added")
    assert added["data"]["body"] == "It dropped again at 10:00."
    assert receive(svc, reply_to(ticket, sender, "x")).kind == "message"  # another reply: another message


def test_a_reply_with_files_names_them_in_its_event_as_they_are_stored(svc, tap, client):
    """The agent's email of the requester's mailed reply says which files came with it."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    reply = reply_to(ticket, sender, "The log and a screenshot.")
    reply.add_attachment(b"line 1\n", maintype="text", subtype="plain", filename="vpn.log")
    reply.add_attachment(b"\x89PNG\r\n\x1a\n", maintype="image", subtype="png", filename="../screen\u202e.png")
    assert receive(svc, reply).kind == "message"
    flushed(svc.flusher)
    (added,) = tap.envelopes(ticket_id=ticket.id, type="ticket.message_added")
    listed = client.get(f"/tickets/{ticket.id}/attachments", headers=auth_header("admin")).get_json()["items"]
    assert added["data"]["files"] == [item["filename"] for item in listed] == ["vpn.log", "screen.png"]


def test_a_reply_of_only_the_quoted_mail_and_a_photo_is_a_message_naming_the_photo(svc, tap):
    """A phone's "reply with a photo": nothing typed above the quote. The photo goes, with a message that names it
    (as the portal's); the quoted mail is not posted as the requester's words."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    photo = reply_to(ticket, sender, "", quoted="See http://help.example.com/t/eyJhbGciOi.abc.def")
    photo.add_attachment(b"\xff\xd8\xff\xe0jpeg", maintype="image", subtype="jpeg", filename="IMG_0042.jpg")
    assert receive(svc, photo).kind == "message"
    (entry,) = svc.tickets.get(ticket.id).thread
    assert entry["body"] == "Sent a file: IMG_0042.jpg"
    flushed(svc.flusher)
    (added,) = tap.envelopes(ticket_id=ticket.id, type="ticket.message_added")
    assert added["data"]["files"] == ["IMG_0042.jpg"]


def test_a_vendors_answer_forwarded_into_a_reply_is_in_the_message_the_quote_is_not(svc):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "Printer broken", "Tray 2 jams.")).ticket_id)
    vendor = mail("rma@vendor.example.com", "RMA 77 approved", "Your RMA 77 is approved: send the unit back.")
    words = reply_to(ticket, sender, "The vendor answered, see attached.")
    words.add_attachment(vendor)
    only = reply_to(ticket, sender, "")  # forwarded with nothing typed above the quote
    only.add_attachment(vendor)

    assert receive(svc, words).kind == receive(svc, only).kind == "message"

    first, second = (entry["body"] for entry in svc.tickets.get(ticket.id).thread)
    forwarded = "---------- Forwarded message ----------\nFrom: Ana Ruiz <rma@vendor.example.com>"
    assert first.startswith(f"The vendor answered, see attached.\n\n{forwarded}")
    assert second.startswith(forwarded)
    assert all("Your RMA 77 is approved" in body and "Thank you for contacting" not in body for body in (first, second))


def test_the_mail_answered_attached_whole_is_not_the_requesters_words(svc):
    """Outlook's "attach original message": the help desk's own mail comes back attached. Like a quote, it is not
    posted as the requester's: a reply of only that is kept, one with words is those words."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    ours = mail("helpdesk@localhost", f"[#{ticket.number}] VPN drops", "Thank you for contacting the help desk.",
                message_id=f"<{uuid.uuid4()}+{ticket.id}@ticketflow>")  # fmt: skip
    bare = reply_to(ticket, sender, "")
    bare.add_attachment(ours)
    worded = reply_to(ticket, sender, "Still down this morning.")
    worded.add_attachment(ours)

    assert receive(svc, bare).kind == "kept"
    assert receive(svc, worded).kind == "message"
    assert [entry["body"] for entry in svc.tickets.get(ticket.id).thread] == ["Still down this morning."]
    # nor a file of the ticket: ours holds the requester's link, and every agent downloads a ticket's files
    assert svc.attachments.list(ticket.id) == []


def test_a_reply_of_only_the_quoted_mail_is_kept_not_posted(svc, tap):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    outcome = receive(svc, reply_to(ticket, sender, ""))
    assert (outcome.kind, outcome.ticket_id) == ("kept", ticket.id)
    assert "no words of its own" in outcome.reason
    assert svc.tickets.get(ticket.id).thread == []
    flushed(svc.flusher)
    assert tap.envelopes(ticket_id=ticket.id, type="ticket.message_added") == []


def test_a_subject_longer_than_a_tickets_is_cut_with_an_ellipsis(svc):
    subject = "Printer on floor 3 " + "and then it jams again " * 20
    outcome = receive(svc, mail(address(), subject, "It jams."))
    kept = svc.tickets.get(outcome.ticket_id).subject
    assert len(kept) == 200 and kept.endswith("…") and subject.startswith(kept[:-1])


def test_a_reply_found_by_its_subjects_number_alone(svc):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    outcome = receive(svc, mail(sender.upper(), f"RE: [#{ticket.number}] VPN drops", "Still down."))
    assert (outcome.kind, outcome.ticket_id) == ("message", ticket.id)


def test_a_reply_keeping_a_follow_ups_subject_joins_the_follow_up_not_a_third_ticket(svc):
    """The follow-up's receipt reads "[#new] Re: [#old] ..."; a reply keeping that subject (no headers of ours, as
    from webmail) belongs to the open follow-up, whichever number comes first."""
    sender = address()
    closed = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    handlers.close_ticket(svc, closed.id, "requester", None)
    follow_up = svc.tickets.get(receive(svc, reply_to(closed, sender, "It is back.")).ticket_id)
    for subject in (f"Re: [#{follow_up.number}] Re: [#{closed.number}] VPN drops",
                    f"Re: [#{closed.number}] VPN drops, see [#{follow_up.number}]"):  # fmt: skip
        outcome = receive(svc, mail(sender, subject, f"Which ticket? {subject}"))
        assert (outcome.kind, outcome.ticket_id) == ("message", follow_up.id)


def test_among_a_subjects_numbers_the_senders_own_ticket_comes_first(svc):
    sender, other = address(), address()
    theirs = svc.tickets.get(receive(svc, mail(other, "Printer", "Jams.")).ticket_id)
    mine = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    outcome = receive(svc, mail(sender, f"Re: [#{theirs.number}] and [#{mine.number}]", "Same as my colleague."))
    assert (outcome.kind, outcome.ticket_id) == ("message", mine.id)


def test_a_reply_to_a_resolved_ticket_reopens_it(svc, tap):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    handlers.record_and_apply(
        svc, event_from("assignment", "ticket.resolved", ticket.id, {"agent_id": None, "resolution": "Fixed."})
    )
    assert svc.tickets.get(ticket.id).status == "resolved"
    assert receive(svc, reply_to(ticket, sender, "No, it is not fixed.")).kind == "message"
    assert svc.tickets.get(ticket.id).status == "new"
    flushed(svc.flusher)
    assert tap.envelopes(ticket_id=ticket.id, type="ticket.reopened")


def test_a_reply_to_a_merged_duplicates_emails_goes_to_the_request_kept_and_reopens_neither(svc, tap):
    """Its resolve's email says it went into the other request: a reply to it (or, days later, to its close's) is
    about that request, where the agents working on it read it."""
    sender = address()
    kept = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    duplicate = svc.tickets.get(receive(svc, mail(sender, "VPN again", "Still dropping.")).ticket_id)
    merged = {"agent_id": None, "resolution": f"Merged into your request #{kept.number}.", "merged_into": kept.number}
    handlers.record_and_apply(svc, event_from("assignment", "ticket.resolved", duplicate.id, merged))

    outcome = receive(svc, reply_to(duplicate, sender, "OK. It also drops on my home Wi-Fi."))

    assert (outcome.kind, outcome.ticket_id, outcome.number) == ("message", kept.id, kept.number)
    assert svc.tickets.get(kept.id).thread[-1]["body"] == "OK. It also drops on my home Wi-Fi."
    assert svc.tickets.get(duplicate.id).status == "resolved"  # not reopened: nothing to do there
    flushed(svc.flusher)
    assert not tap.envelopes(ticket_id=duplicate.id, type="ticket.reopened")
    assert not tap.envelopes(ticket_id=kept.id, type="ticket.reopened")  # it was open

    handlers.close_ticket(svc, duplicate.id, "auto", None)  # days later
    later = receive(svc, reply_to(duplicate, sender, "And at the office now."))
    assert (later.kind, later.ticket_id) == ("message", kept.id)  # no follow-up of the duplicate

    other = address("bo")  # a merge's number naming another requester's request is not followed
    stranger = svc.tickets.get(receive(svc, mail(other, "Printer", "Jammed.")).ticket_id)
    wrong = {**merged, "merged_into": stranger.number}
    lone = svc.tickets.get(receive(svc, mail(sender, "Monitor", "Flickers.")).ticket_id)
    handlers.record_and_apply(svc, event_from("assignment", "ticket.resolved", lone.id, wrong))
    assert receive(svc, reply_to(lone, sender, "Still flickers.")).ticket_id == lone.id  # reopens its own
    assert svc.tickets.get(lone.id).status == "new"


def test_a_reply_to_a_duplicate_merged_into_a_web_request_is_never_sent_there(svc):
    """Anyone may have opened the web request under the requester's address, and read it from that browser: the
    requester's mail never goes there (a merge made through the API, or before the portal refused such a one)."""
    sender = address()
    request = {"subject": "VPN", "description": "Drops.", "requester": {"name": "Ana", "email": sender},
               "topic": "general", "priority": "normal", "source": "web"}  # fmt: skip
    planted, _ = handlers.create_ticket(svc, request, None, None)
    duplicate = svc.tickets.get(receive(svc, mail(sender, "VPN again", "Still dropping.")).ticket_id)
    merged = {"agent_id": None, "resolution": f"Merged into #{planted.number}.", "merged_into": planted.number}
    handlers.record_and_apply(svc, event_from("assignment", "ticket.resolved", duplicate.id, merged))

    outcome = receive(svc, reply_to(duplicate, sender, "My payslip is attached."))

    assert outcome.ticket_id == duplicate.id and svc.tickets.get(planted.id).thread == []
    assert svc.tickets.get(duplicate.id).status == "new"  # reopened, as a reply to it always did


def test_a_reply_to_a_closed_ticket_opens_a_new_one_that_says_so(svc):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    handlers.close_ticket(svc, ticket.id, "requester", None)
    outcome = receive(svc, reply_to(ticket, sender, "It is back."))
    assert outcome.kind == "ticket" and outcome.ticket_id != ticket.id
    follow_up = svc.tickets.get(outcome.ticket_id)
    assert follow_up.description == f"(Follows up ticket #{ticket.number}, which was closed.)\n\nIt is back."
    assert follow_up.subject == "VPN drops"  # not "Re: [#n] VPN drops": its receipt gets a number of its own


def test_a_follow_up_keeps_the_closed_tickets_topic_so_its_team_has_it(svc):
    """The requester answers an email of a closed network ticket, sent to the general address: the follow-up is a
    network ticket too (its receipt says the agents see both), not the general team's."""
    svc.settings = dataclasses.replace(svc.settings, inbound_topics=(("network@help.example.com", "network"),))
    sender = address()
    opened = receive(svc, mail(sender, "VPN drops", "Since Monday."), recipients=("network@help.example.com",))
    closed = svc.tickets.get(opened.ticket_id)
    handlers.close_ticket(svc, closed.id, "requester", None)

    outcome = receive(svc, reply_to(closed, sender, "It is back."), recipients=("help@help.example.com",))

    assert outcome.kind == "ticket" and svc.tickets.get(outcome.ticket_id).topic == "network"


def test_more_replies_to_a_closed_tickets_old_emails_join_its_open_follow_up(svc):
    """A requester answers an old email of the closed ticket again: the follow-up the first answer opened takes
    it, while it is open; once that one is closed too, another follow-up opens."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    handlers.close_ticket(svc, ticket.id, "requester", None)
    first = receive(svc, reply_to(ticket, sender, "It is back."))

    again = receive(svc, reply_to(ticket, sender.upper(), "And again this morning."))

    assert (again.kind, again.ticket_id) == ("message", first.ticket_id)
    assert [entry["body"] for entry in svc.tickets.get(first.ticket_id).thread] == ["And again this morning."]
    other = address("someone")  # another requester's answer to the same email opens nothing of theirs here
    assert receive(svc, reply_to(ticket, other, "Me too.")).kind == "kept"

    handlers.close_ticket(svc, first.ticket_id, "requester", None)
    third = receive(svc, reply_to(ticket, sender, "Still."))
    assert third.kind == "ticket" and third.ticket_id not in (ticket.id, first.ticket_id)


def test_a_ticket_opened_on_the_web_with_a_follow_ups_words_never_receives_the_requesters_mail(svc):
    """Anyone may open a ticket on the web form under the requester's address, and read it from that browser until
    the requester confirms: written as mail in writes a follow-up, it must not take the requester's next answer to
    the closed ticket's emails (only mail in marks its follow-ups)."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    handlers.close_ticket(svc, ticket.id, "requester", None)
    words = f"(Follows up ticket #{ticket.number}, which was closed.)"
    request = {"subject": "re", "description": words, "requester": {"name": "Ana", "email": sender},
               "topic": "general", "priority": "normal", "source": "web"}  # fmt: skip
    planted, _ = handlers.create_ticket(svc, request, None, None)

    outcome = receive(svc, reply_to(ticket, sender, "My payslip is attached."))

    assert outcome.kind == "ticket" and outcome.ticket_id not in (ticket.id, planted.id)  # a follow-up of its own
    assert outcome.reason == f"opened a follow-up to #{ticket.number}, which is closed"  # the admins' "Mail in" page
    assert svc.tickets.get(planted.id).thread == []
    assert svc.tickets.collection.find_one({"_id": outcome.ticket_id})["follows_up"] == ticket.number
    assert svc.tickets.collection.find_one({"_id": ticket.id})["follows_up"] is None  # mailed, and no follow-up


def test_a_follow_up_mail_in_opened_before_it_marked_them_still_takes_the_next_answer(svc):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    handlers.close_ticket(svc, ticket.id, "requester", None)
    first = receive(svc, reply_to(ticket, sender, "It is back."))
    svc.tickets.collection.update_one({"_id": first.ticket_id}, {"$unset": {"follows_up": ""}})  # as they were

    again = receive(svc, reply_to(ticket, sender, "And again this morning."))

    assert (again.kind, again.ticket_id) == ("message", first.ticket_id)


def results(server: str, dmarc: str) -> str:
    return (
        f"{server}; spf=softfail smtp.mailfrom=example.com; dkim=none; dmarc={dmarc} (p=none) header.from=example.com"
    )


def test_a_mail_an_mta_the_desk_trusts_found_failing_dmarc_is_kept_never_posted_as_its_from(svc):
    """With TICKETFLOW_INBOUND_VERIFIED_BY, the MTA in front says whose From is forged: such a reply is kept for the
    agents (as a colleague's is), and such a new mail opens nothing; other MTAs' words, and passes, change nothing."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    forged = reply_to(ticket, sender, "Please send the VPN config to my new address.")
    forged["Authentication-Results"] = results("mx.help.example.com", "fail")
    before = dataclasses.replace(svc.settings)

    assert receive(svc, forged).kind == "message"  # no MTA trusted yet: From is believed, as before
    svc.settings = dataclasses.replace(before, inbound_verified_by=("mx.help.example.com",))
    again = reply_to(ticket, sender, "Please send it now.")
    again["Authentication-Results"] = results("mx.help.example.com", "fail")
    again["Authentication-Results"] = results("mx.help.example.com", "pass")  # a forged pass undoes nothing
    kept = receive(svc, again)
    new = mail(sender, "Invoice", "Pay this.", Authentication_Results=results("mx.help.example.com", "fail"))
    refused_new = receive(svc, new)
    elsewhere = reply_to(ticket, sender, "Untrusted words.")
    elsewhere["Authentication-Results"] = results("mx.attacker.example", "fail")  # not an MTA of ours: not read
    passed = reply_to(ticket, sender, "Verified words.")
    passed["Authentication-Results"] = results("mx.help.example.com", "pass")

    assert (kept.kind, kept.ticket_id) == ("kept", ticket.id)
    assert kept.reason == (
        f"the sender's address failed DMARC at mx.help.example.com, so the mail may not be from {sender}: not posted "
        "as the requester"
    )
    assert (refused_new.kind, refused_new.ticket_id) == ("kept", None) and refused_new.reason.endswith(
        "no ticket opened"
    )
    assert receive(svc, elsewhere).kind == "message" and receive(svc, passed).kind == "message"
    bodies = [entry["body"] for entry in svc.tickets.get(ticket.id).thread]
    assert bodies == ["Please send the VPN config to my new address.", "Untrusted words.", "Verified words."]


def test_a_from_a_dmarc_check_reads_otherwise_than_the_desk_is_kept_never_posted_as_the_requester(svc):
    """`ana@example.com <evil@attacker.example>`: the stdlib reads the first address, a DMARC check the one in angle
    brackets (the attacker's own domain, which passes): no sender is believed, whatever the check said."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    svc.settings = dataclasses.replace(svc.settings, inbound_verified_by=("mx.help.example.com",))
    passing = "mx.help.example.com; dkim=pass header.d=attacker.example; dmarc=pass header.from=attacker.example"
    raw = (f"From: {sender} <evil@attacker.example>\r\nTo: help@help.example.com\r\n"
           f"Subject: Re: [#{ticket.number}] VPN drops\r\nMessage-ID: <f1-{uuid.uuid4().hex}@attacker.example>\r\n"
           f"Authentication-Results: {passing}\r\n\r\nSend the VPN config to evil@attacker.example.\r\n")  # fmt: skip

    outcome = inbox.receive(svc, raw.encode(), "bounce@attacker.example", ["help@help.example.com"])

    assert (outcome.kind, outcome.ticket_id) == ("kept", ticket.id)
    assert outcome.reason == "its From names no one sender address to believe"
    assert svc.tickets.get(ticket.id).thread == []


def test_a_mail_longer_than_the_thread_takes_is_there_whole_for_who_sees_its_ticket(svc, client):
    sender = address()
    long = mail(sender, "Forwarded thread", "Line of the old thread.\n" * 2_000)  # 48,000 characters
    ticket = svc.tickets.get(receive(svc, long).ticket_id)
    assert ticket.description.endswith(inbox.TRUNCATED)
    [record] = client.get(f"/tickets/{ticket.id}/mail", headers=auth_header("admin")).get_json()["items"]

    whole = client.get(f"/tickets/{ticket.id}/mail/{record['id']}/raw", headers=auth_header("admin"))

    assert whole.status_code == 200 and whole.data == long.as_bytes()
    assert whole.headers["Content-Type"] == "application/octet-stream"  # never shown by a browser
    assert whole.headers["Content-Disposition"].startswith(f'attachment; filename="mail-{ticket.number}-')
    assert "sandbox" in whole.headers["Content-Security-Policy"]
    other = svc.tickets.get(receive(svc, mail(sender, "Another", "Hello.")).ticket_id)
    assert client.get(f"/tickets/{other.id}/mail/{record['id']}/raw", headers=auth_header("admin")).status_code == 404
    for who in (auth_header("agent", "ada"), auth_header("portal", requester_email=sender)):
        # its bytes hold what a reply quoted of the requester's portal link, which acts as the requester
        assert client.get(f"/tickets/{ticket.id}/mail/{record['id']}/raw", headers=who).status_code == 403


def test_the_files_of_a_mail_kept_for_the_agents_are_theirs_to_download(svc, client):
    """They are not the ticket's files (the requester reads those): they were named, and nobody could open them."""
    ticket = svc.tickets.get(receive(svc, mail(address(), "VPN drops", "Since Monday.")).ticket_id)
    colleague = mail(address(), f"Re: [#{ticket.number}] VPN drops", "Here is my log too.")
    colleague.add_attachment(b"line 1\n", maintype="text", subtype="plain", filename="../other.log")
    colleague.add_attachment(mail(address(), "the receipt", "Your request: http://x/t/eyJhbGciOi.eyJ0.c2ln"))
    colleague.add_attachment(
        b"See http://x/t/eyJhbGciOi.eyJ0.c2ln\n", maintype="text", subtype="plain", filename="notes.txt"
    )  # a text with the requester's link in it
    colleague.add_attachment(
        b"Received: from x\r\nFrom: a@b\r\n\r\nhi", maintype="application", subtype="octet-stream", filename="fwd.bin"
    )  # a mail, by its first bytes
    assert receive(svc, colleague).kind == "kept"
    [kept] = [m for m in client.get(f"/tickets/{ticket.id}/mail", headers=auth_header("admin")).get_json()["items"]
              if m["outcome"] == "kept"]  # fmt: skip
    path = f"/tickets/{ticket.id}/mail/{kept['id']}/files"
    assert [a["filename"] for a in kept["attachments"]][0] == "other.log" and svc.attachments.list(ticket.id) == []
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    assigned = {"agent_id": agent, "agent_name": "Sofia", "agent_email": f"{agent}@example.com", "team": "network",
                "reason": "auto"}  # fmt: skip
    handlers.record_and_apply(svc, event_from("assignment", "ticket.assigned", ticket.id, assigned))
    known = {"agent_id": agent, "name": "Sofia", "email": f"{agent}@example.com", "teams": ["network"], "lead_of": [],
             "available": True}  # fmt: skip
    handlers.HANDLERS["agent.updated"](svc, event_from("assignment", "agent.updated", agent, known))

    log = client.get(f"{path}/1", headers=auth_header("agent", agent))

    assert log.status_code == 200 and log.get_data() == b"line 1\n"
    assert log.headers["Content-Disposition"].startswith('attachment; filename="other.log"')
    assert log.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in log.headers["Content-Security-Policy"]
    assert client.get(f"{path}/1", headers=auth_header("agent", "nobody")).status_code == 404
    assert client.get(f"{path}/2", headers=auth_header("agent", agent)).status_code == 404
    assert b"eyJ0" in client.get(f"{path}/2", headers=auth_header("admin")).get_data()  # a mail: the admins'
    for admins in (3, 4):
        assert client.get(f"{path}/{admins}", headers=auth_header("agent", agent)).status_code == 404
        assert client.get(f"{path}/{admins}", headers=auth_header("admin")).status_code == 200
    assert client.get(f"{path}/5", headers=auth_header("admin")).status_code == 404
    record = svc.mails.find(kept["id"])  # a file that reads otherwise now than the record says: not given for it
    svc.mails.collection.update_one({"_id": kept["id"]}, {"$set": {"attachments.0.size": 8}})
    assert client.get(f"{path}/1", headers=auth_header("admin")).status_code == 404
    svc.mails.collection.update_one({"_id": kept["id"]}, {"$set": {"attachments": record["attachments"]}})
    assert client.get(f"{path}/1", headers=auth_header("portal")).status_code == 403


def test_a_mails_whole_text_is_read_again_from_its_bytes_with_links_hidden(svc, client):
    """What the thread cuts (past 20,000 characters) and leaves out (the quote of a reply), as text: for agents,
    who may not have the bytes (they hold the requester's link as it came)."""
    sender = address()
    link = "http://127.0.0.1:8000/t/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    long = reply_to(ticket, sender, "Still down. " * 2_000, quoted=f"Your request: {link}")  # 24,000 characters
    assert receive(svc, long).kind == "message"
    [record] = [m for m in client.get(f"/tickets/{ticket.id}/mail", headers=auth_header("admin")).get_json()["items"]
                if m["outcome"] == "message"]  # fmt: skip
    path = f"/tickets/{ticket.id}/mail/{record['id']}/text"

    read = client.get(path, headers=auth_header("admin"))

    assert read.status_code == 200 and read.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert read.headers["Content-Disposition"].startswith(f'inline; filename="mail-{ticket.number}-')
    assert read.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in read.headers["Content-Security-Policy"]
    whole = read.get_data(as_text=True)
    assert whole.count("Still down.") == 2_000 and "> Your request: http://127.0.0.1:8000/t/(hidden)" in whole
    assert "eyJ" not in whole
    kept = svc.mails.find(record["id"])["raw_blob"] + "." + inbox.TEXT_VERSION  # read from the bytes once, then kept
    assert svc.blobs.read(kept).decode() == whole
    assert client.get(path, headers=auth_header("admin")).get_data(as_text=True) == whole
    assert client.get(path, headers=auth_header("portal", requester_email=sender)).status_code == 403
    assert client.get(path, headers=auth_header("agent", "nobody-here")).status_code == 404  # not in its teams
    other = svc.tickets.get(receive(svc, mail(sender, "Another", "Hello.")).ticket_id)
    assert client.get(f"/tickets/{other.id}/mail/{record['id']}/text", headers=auth_header("admin")).status_code == 404


def test_a_reply_from_another_address_is_kept_for_the_agents_not_posted_as_the_requester(svc, client):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    colleague = address("bob")
    outcome = receive(svc, reply_to(ticket, colleague, "Same for me."))
    assert (outcome.kind, outcome.ticket_id) == ("kept", ticket.id) and colleague in outcome.reason
    assert svc.tickets.get(ticket.id).thread == []
    answer = client.get(f"/tickets/{ticket.id}/mail", headers=auth_header("admin"))
    kept = [m for m in answer.get_json()["items"] if m["outcome"] == "kept"]
    assert [(m["sender"], m["text"]) for m in kept] == [(colleague, "Same for me.")]
    requester = auth_header("portal", requester_email=sender)
    assert client.get(f"/tickets/{ticket.id}/mail", headers=requester).status_code == 403
    listed = client.get("/mail", query_string={"outcome": "kept"}, headers=auth_header("admin")).get_json()["items"]
    assert any(m["sender"] == colleague for m in listed)


def test_a_signatures_logo_comes_with_every_mail_and_is_kept_once(svc, client):
    """Outlook sends the logo of a signature inside each mail (image001.png, shown in the HTML): the ticket keeps
    it once, and a later reply neither stores it again nor names it among its files; a real file still comes."""
    logo = b"\x89PNG\r\n\x1a\n" + b"logo" * 700
    sender = address()

    def with_logo(message: EmailMessage, text: str) -> EmailMessage:
        message.add_alternative(f"<p>{text}</p><p>--<br>ACME <img src='cid:logo1'></p>", subtype="html")
        message.get_payload()[1].add_related(logo, maintype="image", subtype="png", cid="<logo1>",
                                              filename="image001.png", disposition="inline")  # fmt: skip
        return message

    ticket = svc.tickets.get(receive(svc, with_logo(mail(sender, "VPN drops", "Since Monday."), "Since Monday."))
                             .ticket_id)  # fmt: skip
    reply = with_logo(reply_to(ticket, sender, "Here is the log."), "Here is the log.")
    reply.add_attachment(b"line 1\nline 2\n", maintype="text", subtype="plain", filename="vpn.log")
    assert receive(svc, reply).kind == "message"
    again = with_logo(reply_to(ticket, sender, "And again today."), "And again today.")
    assert receive(svc, again).kind == "message"

    files = client.get(f"/tickets/{ticket.id}/attachments", headers=auth_header("admin")).get_json()["items"]
    assert sorted(item["filename"] for item in files) == ["image001.png", "vpn.log"]
    thread = svc.tickets.get(ticket.id).thread
    assert [entry["body"] for entry in thread] == ["Here is the log.", "And again today."]  # nothing named alone


def test_a_mail_kept_for_the_agents_tells_them_once_and_never_the_requester(svc, client, tap):
    """A colleague's reply is kept off the conversation, and its `ticket.mail_kept` emails the agent (notify): once,
    however often the mail comes; the requester's timeline never shows it. A reply of theirs with nothing of their
    own (only the quote) tells nobody."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    colleague = address("bob")
    reply = reply_to(ticket, colleague, "Same for me since the update.")
    receive(svc, reply)
    svc.mails.collection.delete_many({"ticket_id": ticket.id, "outcome": "kept"})  # died before its record was kept
    assert receive(svc, reply).kind == "kept"
    assert receive(svc, reply_to(ticket, address("carl"), "")).kind == "kept"  # the quote alone: nothing to tell
    flushed(svc.flusher)

    (kept,) = tap.envelopes(ticket_id=ticket.id, type="ticket.mail_kept")
    record = svc.mails.collection.find_one({"ticket_id": ticket.id, "sender": colleague})
    assert kept["producer"] == "intake" and kept["data"] == {
        "mail_id": record["_id"],
        "why": "another_sender",
        "sender": {"name": "Ana Ruiz", "email": colleague},  # the mail's From name (this test's mails all say it)
        "subject": f"Re: [#{ticket.number}] VPN drops",
        "body": "Same for me since the update.",
    }
    for envelope in (*tap.envelopes(ticket_id=ticket.id, type="ticket.created"), kept):
        handlers.record_and_apply(svc, envelope)  # intake's worker puts them on the timeline
    path = f"/tickets/{ticket.id}/timeline"
    staff = [e["summary"] for e in client.get(path, headers=auth_header("admin")).get_json()["items"]]
    assert f"Mail from Ana Ruiz <{colleague}> kept for the agents, not added to the conversation: they are not the " \
           "requester" in staff  # fmt: skip
    requester = client.get(path, headers=auth_header("portal", requester_email=sender)).get_json()["items"]
    assert requester and not [e for e in requester if e["type"] == "ticket.mail_kept" or colleague in e["summary"]]


def test_mails_kept_on_one_ticket_email_its_agent_a_few_times_an_hour_whoever_sends_them(svc, tap):
    """Anyone can write a ticket's number in a subject, from a new address each time: past
    MAIL_KEPT_ANNOUNCED_PER_HOUR the mails are still kept on the ticket's page, and its agent is not emailed."""
    ticket = svc.tickets.get(receive(svc, mail(address(), "VPN drops", "Since Monday.")).ticket_id)
    most = inbox.MAIL_KEPT_ANNOUNCED_PER_HOUR
    outcomes = [receive(svc, reply_to(ticket, address(f"x{n}"), f"Buy now {n}.")) for n in range(most + 1)]
    assert [outcome.kind for outcome in outcomes] == ["kept"] * (most + 1)
    assert f"more than {most} mails were kept on this ticket this hour" in outcomes[-1].reason
    flushed(svc.flusher)
    assert len(tap.envelopes(ticket_id=ticket.id, type="ticket.mail_kept")) == most


def test_a_requesters_reply_a_full_thread_cannot_take_tells_the_agent(svc, tap):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    svc.tickets.collection.update_one(
        {"_id": ticket.id},
        {"$set": {"thread": [{"id": uuid.uuid4().hex, "kind": "message", "author": {"type": "requester", "name": "A"},
                              "body": "x", "created_at": handlers.now()} for _ in range(domain.MAX_THREAD_ENTRIES)]}},
    )  # fmt: skip
    outcome = receive(svc, reply_to(ticket, sender, "Still down."))
    assert outcome.kind == "kept" and "maximum of 500 entries" in outcome.reason
    flushed(svc.flusher)
    (kept,) = tap.envelopes(ticket_id=ticket.id, type="ticket.mail_kept")
    assert (kept["data"]["why"], kept["data"]["body"], kept["data"]["sender"]["email"]) == (
        "thread_full", "Still down.", sender
    )  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "envelope_sender"),
    [
        ({"Auto_Submitted": "auto-replied"}, None),
        ({"X_Auto_Response_Suppress": "All"}, None),
        ({"Precedence": "bulk"}, None),
        ({}, ""),  # the null sender of a bounce
    ],
    ids=["auto-submitted", "outlook-oof", "precedence-bulk", "null-sender"],
)
def test_automatic_mail_to_a_ticket_makes_no_message_and_no_event(svc, tap, headers, envelope_sender):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    flushed(svc.flusher)
    before = len(tap.envelopes(ticket_id=ticket.id))
    automatic = mail(sender, f"Re: [#{ticket.number}] VPN drops", "I am away until Monday.", **headers)
    outcome = receive(svc, automatic, sender=envelope_sender)
    assert outcome.kind == "ignored" and outcome.ticket_id == ticket.id
    assert svc.tickets.get(ticket.id).thread == []
    flushed(svc.flusher)
    assert len(tap.envelopes(ticket_id=ticket.id)) == before  # ticket.created only


def test_a_reply_that_opened_a_follow_up_and_comes_again_stays_one_ticket(svc, intake_db):
    """The mail server delivers the reply again (the first delivery stopped before its record was written): it
    is the follow-up it opened, not a message on it."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    handlers.close_ticket(svc, ticket.id, "requester", None)
    reply = reply_to(ticket, sender, "It is back.")
    first = receive(svc, reply)
    intake_db.inbound_mails.delete_many({"ticket_id": first.ticket_id})  # as if it stopped before the record

    again = receive(svc, reply)

    assert (again.kind, again.ticket_id) == ("ticket", first.ticket_id)
    assert svc.tickets.get(first.ticket_id).thread == []


def test_another_requesters_ticket_that_reads_like_a_follow_up_is_never_joined(svc):
    sender, other = address(), address("mallory")
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    handlers.close_ticket(svc, ticket.id, "requester", None)
    lookalike = receive(svc, mail(other, "Hi", f"(Follows up ticket #{ticket.number}, which was closed.)\n\nx"))
    assert lookalike.kind == "ticket"

    answer = receive(svc, reply_to(ticket, sender, "It is back."))

    assert answer.kind == "ticket" and answer.ticket_id != lookalike.ticket_id
    assert svc.tickets.get(lookalike.ticket_id).thread == []


@pytest.mark.parametrize("prefix", ["Out of Office:", "Automatic reply:", "AutoReply :", "Abwesenheitsnotiz:"])
def test_an_auto_reply_known_by_its_subject_alone_is_no_message(svc, prefix):
    """Some vacation responders send none of the headers above: their subject still says what they are."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    away = receive(svc, mail(sender, f"{prefix} [#{ticket.number}] VPN drops", "I am away until Monday."))
    assert (away.kind, away.ticket_id) == ("ignored", ticket.id) and "auto-reply by its subject" in away.reason
    assert svc.tickets.get(ticket.id).thread == []
    person = receive(svc, mail(address(), "Out of office replies do not work", "My vacation reply is not sent."))
    assert person.kind == "ticket"  # without the colon it is a person's subject
    asking = receive(svc, mail(address(), f"{prefix} it is not sent outside", "How do I turn it on for everyone?"))
    assert asking.kind == "ticket"  # naming no ticket: a person asking about the feature, whatever the subject


def test_an_auto_reply_to_the_portals_own_mail_opens_no_ticket(svc, intake_db):
    """The portal's sign-in and link mails name no ticket; a vacation responder answering one is known by its
    subject all the same (it answers a Message-ID of ours), and sends no receipt back."""
    sender = address()
    links_mail = "<175.28.portal@ticketflow>"  # make_msgid("portal", domain="ticketflow")
    away = mail(sender, "Automatic reply: Links to your requests", "I am away.", In_Reply_To=links_mail)
    thanks = mail(sender, "Re: Links to your requests", "Thanks, but the second one is wrong.", In_Reply_To=links_mail)
    assert receive(svc, away).kind == "ignored"
    assert receive(svc, thanks).kind == "ticket"  # a person answering it: as any new mail
    assert intake_db.tickets.count_documents({"requester.email": sender}) == 1


def test_automatic_mail_and_notifys_own_mail_open_no_ticket(svc, intake_db):
    sender = address()
    out_of_office = mail(sender, "Out of office", "Back on Monday.", Auto_Submitted="auto-replied")
    assert receive(svc, out_of_office).kind == "ignored"
    own = mail(svc.settings.notify_from, "[#1] Your request", "We have received your request.")
    assert receive(svc, own, sender=svc.settings.notify_from).kind == "ignored"
    assert intake_db.tickets.count_documents({"requester.email": {"$in": [sender, svc.settings.notify_from]}}) == 0


def test_a_bounce_report_opens_no_ticket(svc, intake_db):
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: help@help.example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <" + uuid.uuid4().hex.encode() + b"@mx>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b1\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.com.\r\n"
        b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
        b"Final-Recipient: rfc822; nobody@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n--b1--\r\n"
    )
    outcome = inbox.receive(svc, bounce, "", ["help@help.example.com"])
    assert outcome.kind == "ignored" and outcome.ticket_id is None


def test_the_bounce_of_a_tickets_email_is_on_that_tickets_page(svc, client):
    """The returned mail's headers name notify's Message-ID: the bounce is listed with the ticket's mails, where its
    agents learn that the requester's address takes no mail (a tester's was on the admins' page alone)."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: help@help.example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <" + uuid.uuid4().hex.encode() + b"@mx>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b1\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain\r\n\r\n<" + sender.encode() + b">: 550 5.1.1 User unknown\r\n"
        b"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: helpdesk@localhost\r\nTo: "
        + sender.encode()
        + b"\r\nMessage-ID: <"
        + uuid.uuid4().hex.encode()
        + b"+"
        + ticket.id.encode()
        + b"@ticketflow>\r\n--b1--\r\n"
    )
    outcome = inbox.receive(svc, bounce, "", ["help@help.example.com"])
    assert (outcome.kind, outcome.ticket_id) == ("ignored", ticket.id) and "bounce" in outcome.reason
    listed = client.get(f"/tickets/{ticket.id}/mail", headers=auth_header("admin")).get_json()["items"]
    assert [(item["outcome"], item["subject"]) for item in listed][-1] == (
        "ignored",
        "Undelivered Mail Returned to Sender",
    )
    assert svc.tickets.get(ticket.id).thread == []  # nothing posted


def test_charsets_encoded_subjects_and_html_only_mail(svc):
    latin = (
        b"From: =?iso-8859-1?q?Jos=E9_Mu=F1oz?= <jose@example.com>\r\nTo: help@help.example.com\r\n"
        b"Subject: =?iso-8859-1?q?Caf=E9_sin_conexi=F3n?=\r\nMessage-ID: <" + uuid.uuid4().hex.encode() + b"@x>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nNo hay conexi\xf3n en la cafeter\xeda.\r\n"
    )
    ticket = svc.tickets.get(inbox.receive(svc, latin, "jose@example.com", ["help@help.example.com"]).ticket_id)
    assert (ticket.subject, ticket.requester["name"]) == ("Café sin conexión", "José Muñoz")
    assert ticket.description == "No hay conexión en la cafetería."
    html = mail(address(), "=?utf-8?b?w4lwaW5nbGUg4pyT?=", "")
    html.set_content("<html><body><p>The <b>printer</b> on floor 2</p><script>alert(1)</script></body></html>",
                     subtype="html")  # fmt: skip
    ticket = svc.tickets.get(receive(svc, html).ticket_id)
    assert ticket.subject == "Épingle ✓"
    assert "printer" in ticket.description and "<" not in ticket.description and "alert" not in ticket.description


def test_a_5_mib_pdf_is_kept_and_listed_on_the_ticket(svc, client):
    message = mail(address(), "Invoice attached", "See the PDF.")
    document = PDF + bytes(5 * 1024 * 1024 - len(PDF))
    message.add_attachment(document, maintype="application", subtype="pdf", filename="invoice.pdf")
    ticket_id = receive(svc, message).ticket_id
    (item,) = client.get(f"/tickets/{ticket_id}/attachments", headers=auth_header("admin")).get_json()["items"]
    assert (item["filename"], item["content_type"], item["size"], item["message_id"]) == (
        "invoice.pdf", "application/pdf", len(document), None,
    )  # fmt: skip
    answer = client.get(f"/tickets/{ticket_id}/attachments/{item['id']}", headers=auth_header("admin"))
    assert answer.status_code == 200 and answer.data == document


def test_an_attachment_over_10_mib_refuses_the_mail_with_552_and_stores_nothing(svc, intake_db):
    sender = address()
    message = mail(sender, "Big", "Too big.")
    message.add_attachment(bytes(10 * 1024 * 1024 + 1), maintype="application", subtype="octet-stream",
                           filename="big.bin")  # fmt: skip
    with pytest.raises(inbox.MailRefused) as refused:
        receive(svc, message)
    assert refused.value.code == 552
    assert intake_db.inbound_mails.count_documents({"sender": sender}) == 0
    assert intake_db.tickets.count_documents({"requester.email": sender}) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff garbage without headers",
        b"From: a@example.com\r\nSubject: x\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all\r\n",
        b"From: b@example.com\r\nSubject: y\r\nContent-Type: text/plain; charset=x-unknown\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64===\r\n",
    ],
    ids=["empty", "garbage", "no-boundary", "bad-charset-and-base64"],
)
def test_malformed_mail_is_a_ticket_or_kept_with_a_reason_never_an_error(svc, raw):
    raw = raw.replace(b"Subject:", b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@x>\r\nSubject:", 1)
    raw += uuid.uuid4().hex.encode()  # a mail of its own on every run (the bytes are the key without a Message-ID)
    outcome = inbox.receive(svc, raw, "c@example.com", ["help@help.example.com"])
    assert outcome.kind in ("ticket", "kept") and outcome.reason
    assert svc.mails.find(inbox.inbound.parse(raw).key)["outcome"] == outcome.kind


def test_requester_links_quoted_in_a_reply_are_not_kept(svc):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    link = "http://127.0.0.1:8000/t/eyJhbGciOiJIUzI1NiJ9.eyJ0IjoiMSJ9.c2lnbmF0dXJl"
    receive(svc, reply_to(ticket, sender, f"Here: {link}", quoted=f"See your ticket: {link}"))
    (entry,) = svc.tickets.get(ticket.id).thread
    assert "eyJ" not in entry["body"] and "(hidden)" in entry["body"]


def test_a_requester_link_in_a_mails_subject_is_hidden_wherever_agents_read_it(svc, client):
    sender = address()
    link = "http://127.0.0.1:8000/t/eyJhbGciOiJIUzI1NiJ9.eyJ0IjoiMSJ9.c2lnbmF0dXJl"
    encoded = link.replace("/t/e", "/t/%65")
    ticket = svc.tickets.get(receive(svc, mail(sender, f"See {link}", f"Encoded: {encoded}")).ticket_id)
    receive(svc, mail(address(), f"Re: [#{ticket.number}] {link}", "Someone else writes."))  # kept for the agents

    items = client.get(f"/tickets/{ticket.id}/mail", headers=auth_header("admin")).get_json()["items"]
    stored = svc.tickets.get(ticket.id)
    read = [ticket.subject, ticket.description, *(item["subject"] + item["text"] for item in items)]
    assert len(items) == 2 and all("eyJ" not in text and "(hidden)" in text for text in read), read
    assert "eyJ" not in repr(stored.mail_kept) and "eyJ" not in repr(svc.tickets.get(ticket.id).thread)


def test_only_the_configured_addresses_take_mail(svc):
    svc.settings = dataclasses.replace(svc.settings, inbound_addresses=("*@help.example.com", "it@example.org"))
    assert inbox.accepts(svc, "Network@Help.Example.com") and inbox.accepts(svc, "it@example.org")
    assert not inbox.accepts(svc, "ceo@example.org")
    svc.settings = dataclasses.replace(svc.settings, inbound_addresses=())  # any address, but an address
    assert inbox.accepts(svc, "anyone@example.org")
    assert [
        word for word in ("", "not-an-address", "@example.org", "it@", "a b@example.org") if inbox.accepts(svc, word)
    ] == []


def test_mail_about_a_ticket_is_for_agents_who_see_it(svc, client):
    ticket = svc.tickets.get(receive(svc, mail(address(), "VPN drops", "Since Monday.")).ticket_id)
    assert client.get(f"/tickets/{ticket.id}/mail", headers=auth_header("agent", "nobody")).status_code == 404
    assert client.get("/mail", headers=auth_header("agent", "nobody")).status_code == 403
    assert client.get("/mail", query_string={"outcome": "lost"}, headers=auth_header("admin")).status_code == 422


def test_a_reply_with_a_file_to_a_closed_ticket_opens_a_follow_up_that_holds_the_file(svc, client, intake_db):
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    handlers.close_ticket(svc, ticket.id, "requester", None)
    reply = reply_to(ticket, sender, "It is back; the log is attached.")
    reply.add_attachment(b"line 1\n", maintype="text", subtype="plain", filename="vpn.log")
    outcome = receive(svc, reply)
    assert outcome.kind == "ticket" and outcome.ticket_id != ticket.id
    (item,) = client.get(f"/tickets/{outcome.ticket_id}/attachments", headers=auth_header("admin")).get_json()["items"]
    assert item["filename"] == "vpn.log" and intake_db.attachments.count_documents({"ticket_id": ticket.id}) == 0


def test_a_reply_stored_as_far_as_its_message_is_completed_not_doubled_once_the_ticket_closed(svc, intake_db):
    """A process died after adding the message, before recording the mail; the ticket was closed; the MTA retries."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    reply = reply_to(ticket, sender, "Still down.")
    reply.add_attachment(b"line 1\n", maintype="text", subtype="plain", filename="vpn.log")
    first = receive(svc, reply)
    intake_db.inbound_mails.delete_one({"_id": inbox.inbound.parse(reply.as_bytes(), sender).key})
    handlers.close_ticket(svc, ticket.id, "requester", None)
    again = receive(svc, reply)
    assert (first.kind, again.kind, again.ticket_id) == ("message", "message", ticket.id)
    assert len(svc.tickets.get(ticket.id).thread) == 1
    assert intake_db.tickets.count_documents({"requester.email": sender}) == 1
    assert intake_db.attachments.count_documents({"ticket_id": ticket.id}) == 1


def test_a_polled_mail_refused_for_good_is_on_the_admins_list(svc, client):
    sender = address()
    inbox.record_refused(svc, mail(sender, "A huge scan", "Attached.").as_bytes(), sender, "Too big.")
    listed = client.get("/mail", query_string={"outcome": "refused"}, headers=auth_header("admin")).get_json()
    (record,) = [m for m in listed["items"] if m["sender"] == sender]
    assert record["subject"] == "A huge scan" and record["reason"] == "Too big. Left flagged in the mailbox."


def test_a_polled_mail_too_large_to_read_is_refused_and_recorded_from_its_headers_alone(svc, client, monkeypatch):
    """A mail of more lines than RAW_MAX_LINES (the parser keeps some 100 bytes a line) is refused before it is
    read, and the poller's record of it reads its headers only."""
    from services.intake import inbound

    sender = address()
    raw = mail(sender, "Log dump", "Attached.").as_bytes() + b"a\n" * inbox.RAW_MAX_LINES
    with pytest.raises(inbox.MailRefused) as refused:
        inbox.receive(svc, raw, sender, ["help@help.example.com"])
    assert refused.value.code == 552 and "lines" in refused.value.reason
    parsed, parse = [], inbound.parse
    monkeypatch.setattr(inbound, "parse", lambda raw, *args, **kw: parsed.append(len(raw)) or parse(raw, *args, **kw))
    inbox.record_refused(svc, raw, sender, refused.value.reason)
    assert parsed and max(parsed) < 1000
    listed = client.get("/mail", query_string={"outcome": "refused"}, headers=auth_header("admin")).get_json()
    (record,) = [m for m in listed["items"] if m["sender"] == sender]
    assert record["subject"] == "Log dump" and record["reason"].startswith("The mail has more than 1,000,000 lines")


def test_a_requesters_reply_by_mail_says_so_in_its_thread_entry(svc, client):
    """The portal takes a reply by mail from the address as the address proven (the requester's pages)."""
    sender = address()
    ticket = svc.tickets.get(receive(svc, mail(sender, "VPN drops", "Since Monday.")).ticket_id)
    receive(svc, reply_to(ticket, sender, "Still down."))
    thread = client.get(f"/tickets/{ticket.id}", headers=auth_header("admin")).get_json()["thread"]
    assert [(entry["body"], entry.get("via")) for entry in thread] == [("Still down.", "email")]
    typed = client.post(f"/tickets/{ticket.id}/messages", json={"body": "And now?"}, headers=auth_header("admin"))
    assert typed.status_code == 201 and "via" not in typed.get_json()


def test_a_polled_mail_given_up_on_is_taken_as_new_when_it_comes_again_and_its_record_replaced(svc, intake_db):
    """Refused for a fault that may be mended (mail.imap_deliverer): marked unseen again once it is, the mail opens
    its ticket; a mail refused for good (too big) stays received before."""
    sender = address()
    message = mail(sender, "VPN drops", "Since Monday.")
    inbox.record_refused(svc, message.as_bytes(), sender, "It could not be stored in 5 tries.", given_up=True)
    again = receive(svc, message)
    assert again.kind == "ticket" and svc.tickets.get(again.ticket_id).subject == "VPN drops"
    (record,) = intake_db.inbound_mails.find({"sender": sender})
    assert (record["outcome"], record["ticket_id"], record.get("given_up")) == ("ticket", again.ticket_id, None)
    assert receive(svc, message).kind == "duplicate"

    too_big = mail(sender, "A huge scan", "Attached.")
    inbox.record_refused(svc, too_big.as_bytes(), sender, "Too big.")
    assert receive(svc, too_big).kind == "duplicate"


def test_two_processes_past_the_first_look_at_the_same_moment_still_make_one_ticket_and_one_message(
    svc, intake_db, monkeypatch
):
    """The race the concurrent tests may or may not hit, made certain: each delivery looks, finds nothing yet,
    and writes; the second write finds the first's ticket (or message) and changes nothing."""
    sender = address()
    message = mail(sender, "VPN drops", "Since Monday.")
    first = receive(svc, message)
    intake_db.inbound_mails.delete_many({"sender": sender})  # as if the first had not recorded the mail yet
    found = svc.tickets.find
    monkeypatch.setattr(svc.tickets, "find", lambda ticket_id: None)  # nor stored its ticket, to the second
    second = receive(svc, message)
    assert (second.kind, second.ticket_id) == ("ticket", first.ticket_id)
    assert intake_db.tickets.count_documents({"requester.email": sender}) == 1
    monkeypatch.setattr(svc.tickets, "find", found)

    ticket = svc.tickets.get(first.ticket_id)
    reply = reply_to(ticket, sender, "Still down.")
    receive(svc, reply)
    intake_db.inbound_mails.delete_one({"_id": inbox.inbound.parse(reply.as_bytes(), sender).key})
    monkeypatch.setattr(svc.tickets, "get", lambda ticket_id: ticket)  # the ticket as it was before the reply
    monkeypatch.setattr(svc.tickets, "find", lambda ticket_id: ticket if ticket_id == ticket.id else None)
    assert receive(svc, reply).kind == "message"
    monkeypatch.undo()
    assert len(svc.tickets.get(ticket.id).thread) == 1


def test_the_same_words_from_the_same_sender_open_one_ticket_an_hour_so_an_auto_responder_cannot_loop(svc):
    """An auto-responder that ignores Auto-Submitted answers each receipt with the same mail naming no ticket: it
    opened a ticket, and got a receipt, again and again (a security review's find)."""
    sender, other = address(), address()
    auto = "Thank you for your message. I will answer it as soon as possible."
    original = mail(sender, "Your message", auto)
    first = receive(svc, original)
    again = receive(svc, mail(sender, "RE: Your message", auto + "\n"))  # another Message-ID, the same words
    someone = receive(svc, mail(other, "Your message", auto))
    reworded = receive(svc, mail(sender, "Your message", "The printer is broken now, too."))

    assert first.kind == "ticket" and someone.kind == "ticket" and reworded.kind == "ticket"
    assert (again.kind, again.ticket_id) == ("kept", None) and "not opened twice" in again.reason
    # a redelivery of the first mail (its process stopped between the claim and the ticket) still opens it
    redelivered = inbox.inbound.parse(original.as_bytes(), sender)
    assert inbox._said_before(svc, redelivered) is None and inbox._said_before(svc, redelivered) is None


def test_the_same_cover_words_with_other_files_open_a_ticket_each(svc):
    """A scanner mailing each scan with the same subject and no words, or invoices sent with the same cover text:
    the second was shelved as said before, its file seen by nobody (a mail tester's find). The same file again is
    the same mail again."""
    sender = address()
    scans = []
    for content in (b"%PDF-1.7 first page", b"%PDF-1.7 second page", b"%PDF-1.7 first page"):
        scan = mail(sender, "Scanned document from MFP-3F", "")
        scan.add_attachment(content, maintype="application", subtype="pdf", filename="scan.pdf")
        scans.append(receive(svc, scan))
    assert [outcome.kind for outcome in scans] == ["ticket", "ticket", "kept"]
    assert scans[0].ticket_id != scans[1].ticket_id
