"""notify's emails: every (event, audience) renders from its template pair; user text is escaped in HTML;
every requester email links to the ticket's page in the portal, no agent email does."""

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from jinja2 import UndefinedError

from services.intake.domain import follows_up_words
from services.notify import messages
from services.notify.domain import AWAY_COVER, EMAIL_AUDIENCES, UNHEARD
from shared.config import ConfigError, load_settings
from shared.events import DESK_NAME
from shared.links import read_link_token

DUE = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
BREACHED = datetime(2026, 11, 27, 9, 30, 12, tzinfo=UTC)
EVIL = "<script>alert(1)</script> & Co"
EVIL_HTML = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"

DATA = {
    "ticket.created": {
        "number": 100042,
        "subject": "VPN drops every hour",
        "description": "Since Monday the VPN drops every hour.",
        "requester": {"name": "Ana Ruiz", "email": "ana@example.com"},
        "topic": "network",
        "priority": "high",
        "source": "web",
    },
    "ticket.replied": {
        "reply_id": "r1",
        "agent_id": "agent-7",
        "agent_name": "Bo Lind",
        "body": "Please restart the client.\nDoes it still drop?",
        "first_response": True,
    },
    "ticket.resolved": {"agent_id": "agent-7", "resolution": "Replaced the VPN profile."},
    "ticket.closed": {"by": "auto", "previous_status": "resolved"},
    "ticket.mail_kept": {
        "mail_id": "3f1c",
        "why": "another_sender",
        "sender": {"name": "Bo Lind", "email": "bo@example.com"},
        "body": "Same here since Monday.",
    },
    "ticket.assigned": {
        "agent_id": "agent-7",
        "agent_name": "Bo Lind",
        "agent_email": "bo@example.com",
        "team": "network",
        "team_name": "Network & VPN",
        "team_lead_email": "lead@example.com",
        "previous_agent_id": None,
        "reason": "auto",
        "decision": {"rule": "least_loaded", "candidates": []},
    },
    "ticket.message_added": {
        "message_id": "m1",
        "body": "It dropped again at 10:00.",
        "author": {"type": "requester", "name": "Ana Ruiz", "email": "ana@example.com"},
    },
    "ticket.reopened": {"reason": "It still drops every hour."},
    "sla.warning": {
        "clock": "first_response",
        "instance": 0,
        "due_at": DUE,
        "percent": 80.0,
        "priority": "high",
        "policy_version": 1,
    },
    "sla.breached": {
        "clock": "resolution",
        "instance": 0,
        "due_at": DUE,
        "breached_at": BREACHED,
        "priority": "high",
        "policy_version": 1,
    },
}
PAIRS = [(event_type, audience) for event_type, audiences in EMAIL_AUDIENCES.items() for audience in audiences]
PAIRS += [(event_type, "lead") for event_type in AWAY_COVER]  # while the agent is away
PAIRS += [(event_type, "desk") for event_type in UNHEARD]  # when nobody else hears of it
REQUESTER_PAIRS = [(event_type, audience) for event_type, audience in PAIRS if audience == "requester"]
AGENT_PAIRS = [(event_type, audience) for event_type, audience in PAIRS if audience != "requester"]
PORTAL = "https://help.example.com/desk"
LINK_SETTINGS = load_settings({"TICKETFLOW_PORTAL_URL": f"{PORTAL}/", "TICKETFLOW_JWT_SECRET": "s" * 32})
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def make_context(event_type: str, data: dict | None = None, **ticket) -> dict:
    return {
        "ticket": {
            "id": "t-1",
            "number": 100042,
            "subject": "VPN drops every hour",
            "priority": "high",
            "requester": {"name": "Ana Ruiz", "email": "ana@example.com"},
            "agent": {"id": "agent-7", "name": "Bo Lind", "email": "bo@example.com"},
            "team": "network",
            "team_name": "Network & VPN",
            **ticket,
        },
        "event": {"type": event_type, "occurred_at": DUE, "data": {**DATA[event_type], **(data or {})}},
        "recipient": {"name": "Ana Ruiz", "email": "ana@example.com"},
        "link": "https://help.example.com/t/a-token",  # what handlers add for a requester's email only
        "closes_in": "3 days",
        "console_link": f"{PORTAL}/console/tickets/t-1",  # what handlers add for an agent's or a lead's only
    }


@pytest.mark.parametrize(("event_type", "audience"), PAIRS)
def test_every_event_and_audience_renders_with_the_ticket_number_in_the_subject(event_type, audience):
    message = messages.render(event_type, audience, make_context(event_type))

    alerts = {"sla.warning": "First response due soon: ", "sla.breached": "Resolution target missed: "}
    alert = alerts.get(event_type, "")
    assert message.subject == f"[#100042] {alert}VPN drops every hour"  # an SLA alert says so first, in an inbox
    assert "#100042" in message.text and "#100042" in message.html
    assert message.text.strip() and "<" not in message.text.split("\n")[0]
    assert message.html.lstrip().startswith("<!DOCTYPE html>") and message.html.rstrip().endswith("</html>")


def test_the_templates_folder_holds_exactly_one_pair_per_event_and_audience_and_the_shared_parts():
    shared_parts = {"_layout.html", "_away.html", "_away.txt", "_breach.html"}
    expected = {f"{e}.{a}.{ext}" for e, a in PAIRS for ext in ("txt", "html")} | shared_parts
    assert {path.name for path in messages.TEMPLATES.iterdir()} == expected
    assert all(messages.known(e, a) for e, a in PAIRS)


def test_user_text_is_escaped_in_html_and_plain_in_text():
    context = make_context("ticket.replied", data={"body": EVIL, "agent_name": "Bo <b>"}, subject="VPN")
    context["recipient"]["name"] = EVIL

    message = messages.render("ticket.replied", "requester", context)

    assert EVIL_HTML in message.html and "<script>" not in message.html and "Bo &lt;b&gt;" in message.html
    assert f"Hello {EVIL}," in message.text and f"\n{EVIL}\n" in message.text and "&lt;" not in message.text


@pytest.mark.parametrize(
    ("event_type", "audience", "field"),
    [
        ("ticket.replied", "requester", "body"),
        ("ticket.resolved", "requester", "resolution"),
        ("ticket.message_added", "agent", "body"),
    ],
)  # fmt: skip (a kept mail's words: no links, nobody checked them)
def test_web_addresses_in_someones_words_are_links_in_the_html_and_as_written_in_the_text(event_type, audience, field):
    words = 'See https://kb.example.com/vpn?a=1&b=2. Or "javascript:alert(1)" <b>now</b>.'
    message = messages.render(event_type, audience, make_context(event_type, data={field: words}))
    link = '<a href="https://kb.example.com/vpn?a=1&amp;b=2" style="color: #0052cc;">https://kb.example.com/vpn?a=1&amp;b=2</a>'
    assert f"See {link}. Or &#34;javascript:alert(1)&#34; &lt;b&gt;now&lt;/b&gt;." in message.html
    assert words in message.text  # the plain part as written: mail programs link it themselves


def test_a_requester_name_with_script_arrives_escaped_in_the_agents_html():
    context = make_context("ticket.assigned", requester={"name": EVIL, "email": "ana@example.com"})

    message = messages.render("ticket.assigned", "agent", context)

    assert EVIL_HTML in message.html and "<script>" not in message.html
    assert EVIL in message.text


def test_control_characters_in_the_ticket_subject_become_spaces_in_the_subject():
    context = make_context("ticket.created", subject="VPN\r\nBcc: everyone@example.com\x00\u2028drops")

    message = messages.render("ticket.created", "requester", context)

    assert message.subject == "[#100042] VPN  Bcc: everyone@example.com  drops"


def test_the_receipt_carries_the_ticket_number_and_the_subject():
    message = messages.render("ticket.created", "requester", make_context("ticket.created"))

    assert "Its number is #100042." in message.text and "<strong>#100042</strong>" in message.html
    assert "VPN drops every hour" in message.text


def test_the_receipt_repeats_what_was_written_and_one_from_the_form_says_what_to_do_if_it_was_not_them():
    """Anyone may type an address into the web form: its owner reads what was sent in their name, and that a reply
    by mail takes the request from the browser that sent it (the portal's proven_by_mail)."""
    typed = {"description": "It drops <b>every</b> hour.\n" + "And more. " * 200, "source": "web"}
    web = messages.render("ticket.created", "requester", make_context("ticket.created", typed))
    assert "What was sent with the form on our website:" in web.text and "It drops <b>every</b> hour." in web.text
    assert "It drops &lt;b&gt;every&lt;/b&gt; hour." in web.html and "<b>every" not in web.html
    assert "And more. " * 90 in web.text and "And more. " * 110 not in web.text and "…" in web.text  # 1,000 at most
    assert "Not sent by you? Reply to this email to tell us" in web.text and "Not sent by you?" in web.html
    mailed = messages.render(
        "ticket.created", "requester", make_context("ticket.created", {**typed, "source": "email"})
    )
    assert "What you wrote:" in mailed.text and "Not sent by you?" not in mailed.text + mailed.html


def test_the_receipts_copy_of_what_was_sent_has_no_web_address_in_it():
    """The form sends a receipt to any address typed in, and mail in to a forged From: a copy of the words with
    their links would let anyone have the desk mail "your mailbox is full: https://evil.example/login" to anyone,
    signed as the desk (a security review's find). The request keeps them; the receipt says they were there."""
    typed = {
        "description": "Your mailbox is full. Log in at https://evil.example/login?u=1 or www.evil.example now,\n"
        "or evil.example/reset. Attached: report.pdf, see outlook.com too.",
        "source": "web",
    }
    message = messages.render("ticket.created", "requester", make_context("ticket.created", typed))
    for part in (message.text, message.html):
        assert "evil.example" not in part and part.count("[web address hidden]") == 4
        assert "[web address hidden]. Attached: report.pdf, see [web address hidden] too." in part  # a file's name
    assert "https://" in message.text  # the request's own link, from the desk

    # the subject and the name come from the same form: hidden in every email to the requester (not the agents')
    context = make_context("ticket.replied")
    context["ticket"] = {**context["ticket"], "subject": "Mailbox full: log in at evil-login.com"}
    context["recipient"] = {**context["recipient"], "name": "see https://evil.example/x"}
    replied = messages.render("ticket.replied", "requester", context)
    for part in (replied.subject, replied.text, replied.html):
        assert "evil" not in part, part
    assert replied.subject.endswith("Mailbox full: log in at [web address hidden]")
    agent = messages.render("ticket.assigned", "agent", make_context("ticket.assigned") | {"ticket": context["ticket"]})
    assert "evil-login.com" in agent.subject  # the agents read the request as it was written


def test_a_follow_ups_receipt_says_it_answered_a_closed_ticket():
    """A mail answering a closed ticket opens a new one (intake's follow-up); its receipt says why."""
    follow_up = {"description": f"{follows_up_words(100031)}\n\nIt is broken again.", "source": "email"}
    message = messages.render("ticket.created", "requester", make_context("ticket.created", follow_up))
    typed = make_context("ticket.created", {**follow_up, "source": "web"})  # the same words typed on the web form
    assert "answered request" not in messages.render("ticket.created", "requester", typed).text

    assert "Your email answered request #100031, which is closed, so it\nopened this new one." in message.text
    assert "Your email answered request #100031, which is closed" in message.html
    plain = messages.render("ticket.created", "requester", make_context("ticket.created"))
    assert "answered request" not in plain.text and "answered request" not in plain.html
    quoted = make_context(
        "ticket.created", {"description": f"About this: {follows_up_words(100031)}", "source": "email"}
    )
    assert "answered request" not in messages.render("ticket.created", "requester", quoted).text  # at its start only


def test_the_leads_breach_message_is_an_escalation_naming_the_assigned_agent():
    message = messages.render("sla.breached", "lead", make_context("sla.breached"))

    assert "Escalation" in message.text and "Bo Lind <bo@example.com>" in message.text
    assert "Bo Lind" in message.html and "resolution target" in message.text
    assert "27 Nov 2026, 09:30 UTC" in message.text and "27 Nov 2026, 09:30 UTC" in message.html


def test_the_leads_breach_message_says_when_nobody_is_assigned():
    message = messages.render("sla.breached", "lead", make_context("sla.breached", agent=None))

    assert "Nobody is assigned to it yet; it is waiting in the Network & VPN queue." in message.text
    assert "waiting in the Network &amp; VPN queue" in message.html
    assert "as the lead of the Network &amp; VPN team" in message.html


def test_the_desk_s_breach_message_says_nobody_else_was_told_and_why():
    queued = messages.render("sla.breached", "desk", make_context("sla.breached", agent=None))
    assert "Escalation: ticket #" in queued.text and "nobody else was told" in queued.text
    assert "it waits in the Network & VPN queue, whose team has no lead." in queued.text
    assert "whose team has no lead" in queued.html and "escalation address (NOTIFY_ESCALATION_EMAIL)" in queued.html
    assert queued.subject.endswith("Resolution target missed: " + make_context("sla.breached")["ticket"]["subject"])
    assert messages.known("sla.breached", "desk") and not messages.known("sla.warning", "desk")


def test_the_escalation_address_is_one_address_or_none():
    assert load_settings({}).notify_escalation_email == ""
    assert load_settings({"NOTIFY_ESCALATION_EMAIL": " it-desk@example.com "}).notify_escalation_email == (
        "it-desk@example.com"
    )
    for wrong in ("it-desk", "a@example.com, b@example.com", "Desk <desk@example.com>"):
        with pytest.raises(ConfigError, match="NOTIFY_ESCALATION_EMAIL must be one email address"):
            load_settings({"NOTIFY_ESCALATION_EMAIL": wrong})


def test_the_agents_assignment_email_says_who_moved_it_where():
    moved = {"reason": "transfer", "by_name": "Tess <Lead>"}
    transfer = messages.render("ticket.assigned", "agent", make_context("ticket.assigned", moved))
    assert "It was moved to Network & VPN by Tess <Lead>, and given to you there." in transfer.text
    assert "by Tess &lt;Lead&gt;, and given to you there." in transfer.html
    back = make_context(
        "ticket.assigned", {**moved, "team": "network", "previous_team": "network", "previous_agent_id": "bo"}
    )  # from its agent into its own team
    handed = messages.render("ticket.assigned", "agent", back)
    assert "It was handed back to its team, Network & VPN, by Tess <Lead>, and given to you." in handed.text
    assert "handed back to its team, Network &amp; VPN, by Tess &lt;Lead&gt;, and given to you." in handed.html
    assert "moved" not in handed.text
    elsewhere = make_context("ticket.assigned", {**moved, "team": "network", "previous_team": "desk"})
    assert "It was moved to Network & VPN" in messages.render("ticket.assigned", "agent", elsewhere).text
    manual = messages.render("ticket.assigned", "agent", make_context("ticket.assigned", {"reason": "manual"}))
    assert "It was assigned to you by a lead or an admin." in manual.text  # an event from before by_name
    named = make_context("ticket.assigned", {"reason": "manual", "by_name": "Tess Lead"})
    assert "It was assigned to you by Tess Lead." in messages.render("ticket.assigned", "agent", named).text
    for reason, said in (("manual", "It was assigned to you by the help desk."), ("transfer", "by the help desk, and")):
        desk = make_context("ticket.assigned", {"reason": reason, "by_name": DESK_NAME})  # an admin who is no agent
        email = messages.render("ticket.assigned", "agent", desk)
        assert said in email.text and said in email.html and DESK_NAME not in email.text


def test_the_agents_assignment_email_names_the_team_or_its_id_when_the_event_did_not():
    named = messages.render("ticket.assigned", "agent", make_context("ticket.assigned"))
    older = messages.render("ticket.assigned", "agent", make_context("ticket.assigned", {"team_name": None}))
    del (unnamed := make_context("ticket.assigned"))["event"]["data"]["team_name"]

    assert "Team:      Network & VPN" in named.text and "Network &amp; VPN" in named.html
    assert "Team:      network" in older.text
    assert "Team:      network" in messages.render("ticket.assigned", "agent", unnamed).text


def test_the_sla_warning_gives_the_clock_the_percent_and_the_time_in_the_desk_s_zone():
    message = messages.render("sla.warning", "agent", make_context("sla.warning"))

    assert "first response target" in message.text and "80% of the time" in message.text
    assert "Due at:   27 Nov 2026, 09:30 UTC" in message.text  # no zone set: UTC
    paris = messages.render("sla.warning", "agent", make_context("sla.warning"), "Europe/Paris")
    assert "Due at:   27 Nov 2026, 10:30 CET" in paris.text and "27 Nov 2026, 10:30 CET" in paris.html
    breach = messages.render("sla.breached", "lead", make_context("sla.breached"), "America/New_York")
    assert "27 Nov 2026, 04:30 EST" in breach.text and "UTC" not in breach.text


def test_the_sla_warning_says_how_long_is_left_from_the_warning_to_the_deadline():
    context = make_context("sla.warning")
    context["event"]["occurred_at"] = DUE - timedelta(hours=1, minutes=12, seconds=30)

    message = messages.render("sla.warning", "agent", context)

    assert "Due at:   27 Nov 2026, 09:30 UTC, 1 hour 12 minutes after this warning" in message.text
    assert "1 hour 12 minutes after this warning" in message.html
    assert "1 hour 12 minutes after this warning" in messages.render("sla.warning", "lead", context).text


@pytest.mark.parametrize(
    ("left", "said"),
    [
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(minutes=48, seconds=59), "48 minutes"),
        (timedelta(hours=2), "2 hours"),
        (timedelta(hours=2, minutes=5), "2 hours 5 minutes"),
        (timedelta(days=1, minutes=5), "1 day"),  # the largest unit and the next: no hours, so no more
        (timedelta(days=3, hours=4, minutes=59), "3 days 4 hours"),
        (-timedelta(minutes=5), "less than a minute"),
    ],
)
def test_the_time_left_is_said_in_its_two_largest_units(left, said):
    assert messages._ahead(DUE + left, DUE) == said
    assert messages._ahead((DUE + left).isoformat(), DUE.isoformat()) == said


def test_a_reopening_says_who_reopened_it_and_a_requesters_message_in_words_not_its_code():
    by_message = make_context("ticket.reopened", {"reason": "requester replied", "message_id": "m-1"})
    for body in (rendered := messages.render("ticket.reopened", "agent", by_message)).text, rendered.html:
        assert "Reason:" not in body and "requester replied" not in body
        assert "Ana Ruiz wrote a new message to it after it was resolved" in body
        assert "and in the email about the message" in body
    late = make_context("ticket.reopened", {"reason": "requester replied"})  # a resolve intake heard of late
    assert "and in the email" not in messages.render("ticket.reopened", "agent", late).text
    by_agent = make_context("ticket.reopened", {"reason": "The fix did not hold.", "by": "bo", "by_name": "Bo Lind"})
    text = messages.render("ticket.reopened", "agent", by_agent).text
    assert "has been reopened by Bo Lind." in text and "The fix did not hold." in text
    by_admin = make_context("ticket.reopened", {"reason": "requester replied", "by": "admin", "by_name": DESK_NAME})
    text = messages.render("ticket.reopened", "agent", by_admin).text
    assert "reopened by the help desk." in text and "Reason:" in text  # an admin's words, whatever they are


def test_the_agents_email_of_a_close_by_the_requester_says_it_was_not_resolved_and_leaves_their_tickets():
    context = make_context("ticket.closed", {"by": "requester", "previous_status": "in_progress"})
    message = messages.render("ticket.closed", "agent", context)
    assert "Ana Ruiz closed ticket #100042 before it was resolved\n(it was in progress)" in message.text
    assert "before it was resolved (it was in progress)" in message.html and "console" in message.text


def test_closed_by_the_requester_and_closed_automatically_read_differently():
    by_requester = messages.render("ticket.closed", "requester", make_context("ticket.closed", {"by": "requester"}))
    automatic = messages.render("ticket.closed", "requester", make_context("ticket.closed", {"by": "auto"}))

    assert "as you asked" in by_requester.text and "as you asked" not in automatic.text
    assert "not heard back" in automatic.text


def test_a_merged_duplicate_closed_later_sends_its_requester_on_to_the_request_kept():
    """Its resolve's email said it went into the other request: the close, days later, says the same, not "we have
    not heard back, send a new request"."""
    context = make_context("ticket.closed", {"by": "auto", "merged_into": 100041})
    closed = messages.render("ticket.closed", "requester", context)
    for body in (closed.text, closed.html):
        assert "same as your request" in body and "#100041" in body and "reply to the emails of #100041" in body
        assert "not heard back" not in body and "send us a new request" not in body


def test_a_missing_context_key_fails_loudly():
    context = make_context("ticket.replied")
    del context["event"]["data"]["body"]

    with pytest.raises(UndefinedError):
        messages.render("ticket.replied", "requester", context)


def test_an_unknown_event_or_audience_is_refused():
    with pytest.raises(ValueError, match="no email"):
        messages.render("ticket.replied", "agent", make_context("ticket.replied"))
    with pytest.raises(ValueError):
        messages.render("../../etc/passwd", "requester", make_context("ticket.replied"))
    assert not messages.known("ticket.status_changed", "requester")
    assert messages.known("sla.breached", "lead")


def test_the_desk_s_time_zone_is_an_iana_name_utc_when_unset():
    assert load_settings({}).time_zone == "UTC"
    assert load_settings({"TICKETFLOW_TIME_ZONE": " Europe/Paris "}).time_zone == "Europe/Paris"
    for wrong in ("Mars/Olympus", "Europe", "CET+1", "../etc/passwd"):
        with pytest.raises(ConfigError, match="TICKETFLOW_TIME_ZONE must be a time zone such as Europe/Paris"):
            load_settings({"TICKETFLOW_TIME_ZONE": wrong})


def test_times_are_shown_to_the_minute_in_the_zone_asked_with_its_abbreviation():
    assert messages.format_time(datetime(2026, 11, 27, 9, 30, 59, tzinfo=UTC)) == "27 Nov 2026, 09:30 UTC"
    assert messages.format_time(datetime(2026, 11, 27, 9, 30)) == "27 Nov 2026, 09:30 UTC"
    assert messages.format_time("2026-11-27T09:30:00.000Z") == "27 Nov 2026, 09:30 UTC"
    assert messages.format_time(datetime(2026, 11, 27, 10, 30, tzinfo=timezone(timedelta(hours=1)))) == (
        "27 Nov 2026, 09:30 UTC"
    )
    summer = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)  # daylight saving time: the zone's summer offset and name
    assert messages.format_time(summer, "Europe/Paris") == "1 Jul 2026, 11:30 CEST"
    assert messages.format_time(summer, "Asia/Kolkata") == "1 Jul 2026, 15:00 IST"


# --- the requester's link to the ticket's page in the portal -----------------------------------------------


@pytest.mark.parametrize(("event_type", "audience"), REQUESTER_PAIRS)
def test_every_requester_email_links_to_that_ticket_for_that_requester(event_type, audience):
    context = make_context(event_type)
    context["link"] = messages.requester_link(LINK_SETTINGS, "t-1", "Ana@Example.com")

    message = messages.render(event_type, audience, context)

    text_links = re.findall(rf"^{re.escape(PORTAL)}/t/(\S+)$", message.text, re.MULTILINE)
    html_links = re.findall(rf'<a href="{re.escape(PORTAL)}/t/([^"]+)"', message.html)
    assert len(text_links) == len(html_links) == 1, (message.text, message.html)
    assert text_links == html_links  # the same link in both parts of one email
    link = read_link_token(LINK_SETTINGS.require_secret(), text_links[0])
    assert (link.ticket_id, link.email) == ("t-1", "ana@example.com")
    assert "See your request" in message.text and "See your request" in message.html


@pytest.mark.parametrize(("event_type", "audience"), REQUESTER_PAIRS)
def test_a_requester_email_without_a_link_fails_to_render(event_type, audience):
    context = make_context(event_type)
    del context["link"]

    with pytest.raises(UndefinedError):
        messages.render(event_type, audience, context)


@pytest.mark.parametrize(("event_type", "audience"), AGENT_PAIRS)
def test_agent_and_lead_emails_carry_no_requester_link(event_type, audience):
    context = make_context(event_type)
    del context["link"]  # the templates do not ask for one: rendering without it succeeds

    message = messages.render(event_type, audience, context)

    for part in (message.text, message.html):
        assert "/t/" not in part and not JWT.search(part) and "See your request" not in part


@pytest.mark.parametrize(("event_type", "audience"), AGENT_PAIRS)
def test_agent_and_lead_emails_lead_to_the_ticket_in_the_console(event_type, audience):
    message = messages.render(event_type, audience, make_context(event_type))

    assert f"Open it in the console: {PORTAL}/console/tickets/t-1" in message.text
    assert f'<a href="{PORTAL}/console/tickets/t-1"' in message.html and "in the console</a>" in message.html


@pytest.mark.parametrize(("event_type", "audience"), REQUESTER_PAIRS)
def test_requester_emails_never_show_the_console(event_type, audience):
    message = messages.render(event_type, audience, make_context(event_type))
    assert "/console/" not in message.text and "/console/" not in message.html


def test_the_console_link_is_under_the_configured_portal_with_the_id_quoted():
    assert messages.console_link(LINK_SETTINGS, "t-1") == f"{PORTAL}/console/tickets/t-1"
    assert messages.console_link(LINK_SETTINGS, "a/b?c") == f"{PORTAL}/console/tickets/a%2Fb%3Fc"


def test_each_link_has_a_token_of_its_own_under_the_configured_portal():
    first, second = (messages.requester_link(LINK_SETTINGS, "t-1", "ana@example.com") for _ in range(2))

    assert first != second and first.startswith(f"{PORTAL}/t/") and second.startswith(f"{PORTAL}/t/")
    expires = read_link_token(LINK_SETTINGS.require_secret(), first.rsplit("/", 1)[1]).expires_at
    assert abs(expires - (datetime.now(UTC).timestamp() + 30 * 86400)) < 60  # TICKETFLOW_LINK_DAYS


def test_the_resolved_email_says_when_the_ticket_closes_by_itself_and_asks_how_it_went():
    message = messages.render("ticket.resolved", "requester", make_context("ticket.resolved"))

    assert "If we do not hear from you, it closes by itself in 3 days." in message.text
    assert "it closes by itself in 3 days." in message.html
    assert "How did we do? Tell us on your request's page" in message.text


def test_a_duplicate_merged_into_another_request_is_said_so_not_as_good_news():
    data = {"resolution": "Merged into your request #100041 (“VPN”): the same request.", "merged_into": 100041}
    message = messages.render("ticket.resolved", "requester", make_context("ticket.resolved", data))
    assert "Your request #100042 is the same as your request #100041,\nso we merged it there" in message.text
    assert "reply to the emails of #100041." in message.text
    assert "Good news" not in message.text and "How did we do?" not in message.text
    assert "Merged into your request" not in message.text  # the portal's words for its page: said once, here
    assert "Good news" not in message.html and "we have added what you wrote here to #100041" in message.html
    assert "Your request was merged into #100041" in message.html


@pytest.mark.parametrize(
    ("hours", "words"),
    [(72, "3 days"), (48, "2 days"), (36, "36 hours"), (24, "24 hours"), (1, "1 hour"), (2.5, "about 2 hours"),
     (0.5, "30 minutes"), (1 / 60, "1 minute"), (0.001, "1 minute")],
)  # fmt: skip
def test_a_period_in_hours_reads_as_people_say_it(hours, words):
    assert messages.period_words(hours) == words


def test_a_reopened_ticket_given_to_another_agent_says_why_it_is_theirs():
    data = {"reason": "reopen", "previous_agent_id": "omar"}
    message = messages.render("ticket.assigned", "agent", make_context("ticket.assigned", data))
    assert "It was reopened, and given to you: the agent who had it before does\nnot take it now." in message.text
    assert "given to you: the agent who had it before" in message.html
    nobody = messages.render(
        "ticket.assigned", "agent", make_context("ticket.assigned", {**data, "previous_agent_id": None})
    )
    assert "It was reopened, and given to you.\n" in nobody.text and "had it before" not in nobody.html


def test_a_requesters_emails_say_request_as_the_portal_does_and_an_agents_say_ticket():
    for event_type in ("ticket.created", "ticket.replied", "ticket.resolved", "ticket.closed"):
        message = messages.render(event_type, "requester", make_context(event_type))
        prose = re.sub(r"\{\{.*?\}\}|\[#\d+\]|<[^>]+>", "", message.text + message.html)
        assert not re.search(r"\bticket\b", prose, re.IGNORECASE), event_type
        assert "Request #100042" in message.html and "about request #100042" in message.html
    to_agent = {k: v for k, v in make_context("ticket.assigned").items() if k not in ("link", "closes_in")}  # as sent
    agents = messages.render("ticket.assigned", "agent", to_agent)
    assert "Ticket #100042" in agents.html and not re.search(r"\brequest\b", agents.html, re.IGNORECASE)


def test_a_reply_or_message_that_came_with_files_names_them_and_says_where_they_are():
    one = messages.render("ticket.replied", "requester", make_context("ticket.replied", data={"files": ["guide.pdf"]}))
    two = messages.render(
        "ticket.message_added", "agent", make_context("ticket.message_added", data={"files": ["a<b>.png", "log.txt"]})
    )
    none = messages.render("ticket.replied", "requester", make_context("ticket.replied"))

    said = "A file came with this reply: guide.pdf. Download it on your request's page."
    assert said in one.text and said in one.html
    said = "2 files came with this message: a<b>.png, log.txt. They are on the ticket's page in the console."
    assert said in two.text
    assert "a&lt;b&gt;.png, log.txt. They are on the ticket's page" in two.html  # a name is text, never markup
    assert "came with this" not in none.text and "came with this" not in none.html
    assert "\n\n\n" not in none.text  # no blank lines left where the sentence would be


def test_files_sent_alone_are_named_once_with_where_to_find_them():
    alone = {"body": "Sent 2 files: a.png, log.txt", "files": ["a.png", "log.txt"]}
    message = messages.render("ticket.message_added", "agent", make_context("ticket.message_added", data=alone))
    reply = messages.render(
        "ticket.replied",
        "requester",
        make_context("ticket.replied", data={"body": "Sent a file: guide.pdf", "files": ["guide.pdf"]}),  # fmt: skip
    )
    assert "came with this" not in message.text and "came with this" not in message.html
    assert "\nThey are on the ticket's page in the console.\n" in message.text
    assert "\nDownload it on your request's page.\n" in reply.text and "Download it on your request" in reply.html
    worded = {"body": "Sent a file: see the log", "files": ["log.txt"]}  # words of the person's own, not the names
    assert "A file came with this message: log.txt." in messages.render(
        "ticket.message_added", "agent", make_context("ticket.message_added", data=worded)).text  # fmt: skip


def test_a_message_that_reopened_its_ticket_says_so_in_its_email():
    reopened = messages.render("ticket.message_added", "agent", make_context("ticket.message_added", {"reopens": True}))
    plain = messages.render("ticket.message_added", "agent", make_context("ticket.message_added"))
    said = "Ana Ruiz wrote on ticket #100042, which was resolved; the message reopened it:"
    assert said in reopened.text and "A message reopened your ticket" in reopened.html
    assert "which was resolved; the message reopened it:</p>" in reopened.html
    assert "reopened" not in plain.text and "reopened" not in plain.html
    assert "Ana Ruiz wrote on ticket #100042:\n" in plain.text
