"""Admin pages in-process, on the real portal database, the other services a stub."""

from __future__ import annotations

import re
import uuid

from flask import request
from markupsafe import escape

from services.portal import handlers
from tests.integration.test_portal_search import PASSWORD, a_ticket, portal, signed_in, stub, text  # noqa: F401


def a_low_policy(stub, first_response_minutes: int) -> dict:  # noqa: F811
    """sla's low policy (version 3: 60 min to the next response, 480 to resolution, 24x7) as the pages read it."""
    policy = {"priority": "low", "version": 3, "first_response_minutes": first_response_minutes,
              "next_response_minutes": 60, "resolution_minutes": 480, "warn_at_percent": [80], "calendar": "24x7",
              "changed_at": "2026-12-01T04:00:00.000Z"}  # fmt: skip
    stub.answers["/policies/low"] = policy
    stub.answers["/policies/low/versions"] = {"items": [policy]}
    stub.answers["/calendars"] = {"items": [{"id": "24x7", "timezone": "UTC"}]}
    return policy


def test_a_policy_page_points_out_a_response_target_past_the_resolution(portal, stub):  # noqa: F811
    a_low_policy(stub, 600)

    page = text(signed_in(portal).get("/admin/policies/low"))

    assert "The first response target (600 min) is not shorter than the resolution target (480 min)" in page
    assert "next response target" not in page
    assert ", 24x7; warnings at 80%</td>" in page  # a version's warnings are part of its history


def test_a_draft_with_a_response_target_past_the_resolution_is_asked_once_more_before_it_is_saved(portal, stub):  # noqa: F811
    a_low_policy(stub, 60)
    admin = signed_in(portal)
    opened = text(admin.get("/admin/policies/low"))
    form = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', opened).group(1),
            "seen": re.search(r'name="seen" value="([^"]+)"', opened).group(1), "first_response_minutes": "600",
            "next_response_minutes": "60", "resolution_minutes": "480", "warn_at_percent": "80",
            "calendar": "24x7"}  # fmt: skip
    stub.calls.clear()

    asked = admin.post("/admin/policies/low", data=form)

    page = " ".join(text(asked).split())
    assert asked.status_code == 200 and "Not saved yet." in page and 'value="600"' in page  # the draft kept
    assert "The first response target (600 min) is not shorter than the resolution target (480 min)" in page
    button = r'<button type="submit" class="button" name="odd_confirmed" value="(\w+)">Save anyway</button>'
    confirmed = re.search(button, page)
    assert confirmed is not None
    assert not [call for call in stub.calls if call["method"] == "PUT"]
    # another slip typed after the question is asked about again: "Save anyway" confirms what it was shown
    another = {**form, "next_response_minutes": "900", "odd_confirmed": confirmed[1]}
    other = admin.post("/admin/policies/low", data=another)
    assert "Not saved yet." in text(other) and "The next response target (900 min)" in " ".join(text(other).split())
    assert not [call for call in stub.calls if call["method"] == "PUT"]
    saved = admin.post("/admin/policies/low", data={**form, "odd_confirmed": confirmed[1]})
    assert saved.status_code == 303 and [call["method"] for call in stub.calls].count("PUT") == 1
    stub.calls.clear()
    words = admin.post("/admin/policies/low", data={**form, "first_response_minutes": "soon"})  # sla says why
    assert "Not saved yet." not in text(words) and [call["method"] for call in stub.calls].count("PUT") == 1


def test_the_agents_page_says_who_holds_more_than_their_capacity(portal, stub):  # noqa: F811
    stub.answers["/agents"] = {"items": [
        {"id": "sofia", "name": "Sofia", "email": "sofia@example.com", "teams": ["network"], "lead_of": [],
         "capacity": 4, "available": True, "open_tickets": 10},
        {"id": "omar", "name": "Omar", "email": "omar@example.com", "teams": ["network"], "lead_of": [],
         "capacity": 4, "available": True, "open_tickets": 4},
    ]}  # fmt: skip
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    stub.answers["/topics"] = {"items": []}

    page = text(signed_in(portal).get("/admin/agents"))

    over = "(more than their capacity: no new ticket goes to them by itself)"
    assert page.count(over) == 1 and page.index("sofia@example.com") < page.index(over) < page.index("omar@example.com")
    # a new agent is away until ticked (or until they set themselves available once signed in), its email sent
    assert '<input type="checkbox" id="available" name="available" value="on" aria-describedby' in page
    assert '<input type="checkbox" id="send_email" name="send_email" value="on" checked' in page


def test_a_form_s_address_opened_again_leads_to_its_page(portal, stub):  # noqa: F811
    admin = signed_in(portal)
    expected = {
        "/admin/policies/high/what-if": "/admin/policies/high",
        "/admin/topics": "/admin/teams",
        "/admin/topics/software/retired": "/admin/teams",
        "/admin/teams/network/lead": "/admin/teams/network",
        "/admin/teams/network/delete": "/admin/teams/network",
        "/admin/agents/omar/teams/network/remove": "/admin/agents/omar",
        "/admin/webhooks/w-1/delete": "/admin/webhooks",
        "/admin/notifications/retry-all": "/admin/notifications",
        "/admin/accounts/a-1/delete": "/admin/",
        "/account/sessions/others": "/account/password",
        "/forget": "/",
    }
    for address, page in expected.items():
        answer = admin.get(address)
        assert (answer.status_code, answer.headers.get("Location")) == (303, page), address
    assert admin.get("/admin/no-such-page").status_code == 404


def test_an_agent_out_of_a_team_hands_its_tickets_there_back_and_the_page_says_so(portal, stub):  # noqa: F811
    cora = {"id": "cora", "name": "Cora", "email": "cora@example.com", "teams": ["network", "desk"], "lead_of": [],
            "capacity": 4, "available": True, "open_tickets": 2}  # fmt: skip
    stub.answers["/agents/cora"] = cora
    stub.answers["/agents"] = {"items": [cora]}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}]}
    stub.answers["/topics"] = {"items": []}
    held = [{"ticket_id": "t-7", "number": 107}, {"ticket_id": "t-8", "number": 108}]

    def queue() -> dict:  # assignment's PATCH hands back t-7 itself; t-8 stays (past its bound): its reconciler's
        patched = any(call["method"] == "PATCH" for call in stub.calls)
        return {"items": held[1:] if patched else held, "next_cursor": None}

    stub.answers["/queue"] = queue
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/agents/cora"))).group(1)

    answer = admin.post("/admin/agents/cora/teams/desk/remove", data={"csrf_token": token})

    assert answer.status_code == 303
    sent = [(call["method"], call["path"], call["json"]) for call in stub.calls if call["method"] != "GET"]
    assert sent == [("PATCH", "/agents/cora", {"teams": ["network"]})]  # assignment hands them back
    said = (
        "The agent is out of Desk. 1 open ticket of Desk went back to the team: each to another of its agents, or "
        "to its queue. 1 still with the agent for now (#108): assignment hands it back to Desk by itself shortly."
    )
    assert said in " ".join(text(admin.get(answer.headers["Location"])).split())
    assert said not in text(admin.get(answer.headers["Location"]))  # said once: a reload sends nothing again


def what_if_answer(stub) -> dict:  # noqa: F811
    """sla as the what-if of a draft of the high policy reads it; its answer, to change."""
    policy = {"priority": "high", "version": 2, "first_response_minutes": 60, "next_response_minutes": 60,
              "resolution_minutes": 480, "warn_at_percent": [80], "calendar": "24x7",
              "changed_at": "2026-12-01T04:00:00.000Z"}  # fmt: skip
    stub.answers["/policies/high"] = policy
    stub.answers["/policies/high/versions"] = {"items": [policy]}
    stub.answers["/calendars"] = {"items": [{"id": "24x7", "timezone": "UTC"}]}
    row = {"priority": "high", "clock": "first_response", "met": 20, "breached": 103, "compliance_percent": 16.3}
    stub.answers["/policies/high/what-if"] = {
        "since": "2026-11-01T00:00:00.000Z", "replayed": 186, "skipped": 0, "changed": [],
        "current": {"items": [{**row, "open": 11, "stopped": 52}]},
        "draft": {"items": [{**row, "met": 30, "breached": 90, "open": 14, "stopped": 52}]},
    }  # fmt: skip
    return stub.answers["/policies/high/what-if"]


def test_the_what_if_counts_the_clocks_neither_met_nor_breached(portal, stub):  # noqa: F811
    what_if_answer(stub)
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/policies/high"))).group(1)
    form = {"csrf_token": token, "first_response_minutes": "90", "next_response_minutes": "60",
            "resolution_minutes": "480", "warn_at_percent": "80", "calendar": "24x7"}  # fmt: skip

    page = text(admin.post("/admin/policies/high/what-if", data=form))

    assert '<td data-label="Neither, current policy">63</td>' in page
    assert '<td data-label="Neither with the draft">66</td>' in page
    assert "Not saved yet." not in page  # nothing odd in this draft
    slip = admin.post("/admin/policies/high/what-if", data={**form, "first_response_minutes": "600"})
    odd = " ".join(text(slip).split())
    assert "The first response target (600 min) is not shorter than the resolution target (480 min)" in odd


def test_a_clock_the_draft_breaches_says_the_moment_it_missed_not_its_later_spans(portal, stub):  # noqa: F811
    """A clock past its target, then paused and resumed (waiting on the requester, a reopen): its running span is
    due at once when it runs again, a moment later than the deadline it missed."""
    missed = {"outcome": "breached", "due_at": "2026-12-05T19:43:00.000Z", "breached_at": "2026-12-05T19:38:10.000Z"}
    what_if_answer(stub)["changed"] = [{
        "ticket_id": "t-1", "clock": "resolution", "instance": 0, "draft": missed,
        "current": {"outcome": "met", "due_at": "2026-12-06T19:37:00.000Z", "breached_at": None},
    }]  # fmt: skip
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/policies/high"))).group(1)
    form = {"csrf_token": token, "first_response_minutes": "1", "next_response_minutes": "60",
            "resolution_minutes": "1", "warn_at_percent": "80", "calendar": "24x7"}  # fmt: skip

    page = " ".join(text(admin.post("/admin/policies/high/what-if", data=form)).split())

    assert '<td data-label="Due with the draft">5 Dec 2026, 19:38 UTC (missed)</td>' in page
    assert '<td data-label="Due, current policy">6 Dec 2026, 19:37 UTC</td>' in page
    assert "19:43" not in page


def test_an_agent_account_whose_agent_assignment_does_not_know_is_told_so(portal, stub):  # noqa: F811
    stub.answers["/agents/ghost"] = (404, {"title": "Not Found", "detail": "No agent ghost."})
    page = signed_in(portal, "agent", agent_id="ghost").get("/console/")
    assert page.status_code == 409
    assert "This account is for the agent ghost, whom the help desk does not know" in text(page)


def test_a_team_page_drawn_again_after_a_topic_question_keeps_its_leads_ticked(portal, stub):  # noqa: F811
    ann = {"id": "ann", "name": "Ann", "email": "ann@example.com", "teams": ["a-team"], "lead_of": ["a-team"],
           "capacity": 4, "available": True, "open_tickets": 0}  # fmt: skip
    stub.answers["/agents"] = {"items": [ann]}
    stub.answers["/teams"] = {"items": [{"id": "a-team", "name": "A", "topics": []},
                                        {"id": "network", "name": "Network", "topics": ["vpn"]}]}  # fmt: skip
    stub.answers["/topics"] = {"items": [{"id": "vpn", "name": "VPN"}]}
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/teams/a-team"))).group(1)

    answer = admin.post("/admin/teams/a-team", data={"csrf_token": token, "name": "A", "topics": ["vpn"]})
    page = text(answer)

    assert answer.status_code == 200  # a question about the form as sent, not a mistake in it
    assert "Topic vpn: its tickets go to Network (network) now; with this team they would come here instead" in page
    assert "There is a problem" not in page and "field--error" not in page
    assert '<h2 id="question-title">Move a topic from another team?</h2>' in page
    assert 'id="move_topics" name="move_topics" value="vpn"' in page
    assert 'id="leads-ann" name="leads" value="ann" checked' in page


def test_failed_notifications_show_ticket_numbers_and_retry_all_at_once(portal, stub):  # noqa: F811
    def dead(notification_id: str, ticket_id: str, channel: str, recipient: str) -> dict:
        return {"id": notification_id, "ticket_id": ticket_id, "channel": channel, "event_type": "ticket.created",
                "recipient": recipient, "attempts": 5, "last_error": "it failed", "status": "dead",
                "created_at": "2026-12-01T04:00:00.000Z"}  # fmt: skip

    stub.answers["/notifications"] = {"items": [
        dead("n-1", "t-1", "email", "ana@example.com"),
        dead("n-2", "t-1", "webhook", "https://hooks.example.com/ok"),
        dead("n-3", "t-2222222", "webhook", "https://hooks.example.com/gone"),  # its webhook was removed since
    ]}  # fmt: skip
    stub.answers["/webhooks"] = {"items": [{"id": "w-1", "url": "https://user:pw@hooks.example.com/ok?k=1"}]}
    stub.answers["/tickets/t-1"] = {"id": "t-1", "number": 101}  # t-2222222: intake says 404, its id is shown
    stub.answers["/notifications/n-1/retry"] = {"id": "n-1", "status": "pending"}
    stub.answers["/notifications/n-2/retry"] = (409, {"title": "Conflict", "detail": "not dead"})
    admin = signed_in(portal)

    page = text(admin.get("/admin/notifications"))

    assert ">#101</a>" in page and ">t-222222</a>" in page
    asked = [call["path"] for call in stub.calls if call["path"].startswith("/tickets/")]
    assert asked == ["/tickets/t-1", "/tickets/t-2222222"]  # each ticket once
    assert "Retry all 2" in page and page.count("Its webhook was removed: nothing to retry.") == 1
    shown = re.findall(r'name="notification_ids" value="([^"]+)"', page)
    assert shown == ["n-1", "n-2"]
    assert "older ones failed too" not in page
    stub.answers["/notifications"]["next_cursor"] = "n-3"  # more failed before these than the page lists
    assert "These are the newest 3: older ones failed too." in text(admin.get("/admin/notifications"))
    del stub.answers["/notifications"]["next_cursor"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    stub.answers["/notifications"]["items"].append(dead("n-4", "t-1", "email", "bo@example.com"))  # failed since
    stub.calls.clear()

    answer = admin.post("/admin/notifications/retry-all", data={"csrf_token": token, "notification_ids": shown})

    assert answer.status_code == 303
    sent = [call["path"] for call in stub.calls if call["method"] == "POST"]
    assert sent == ["/notifications/n-1/retry", "/notifications/n-2/retry"]  # the ones shown, not n-4
    said = "1 notification is being sent again. 1 notification had left the list meanwhile"
    cora = {"id": "cora", "name": "Cora", "email": "cora@example.com", "teams": ["desk"], "lead_of": [],
            "capacity": 4, "available": True, "open_tickets": 0}  # fmt: skip
    stub.answers |= {"/agents/cora": cora, "/agents": {"items": [cora]}, "/topics": {"items": []},
                     "/teams": {"items": [{"id": "desk", "name": "Desk"}]}, "/queue": {"items": []}}  # fmt: skip
    agent_page = admin.get("/admin/agents/cora")
    assert agent_page.status_code == 200 and said not in text(agent_page)  # another page leaves it alone
    assert said in text(admin.get(answer.headers["Location"]))
    assert said not in text(admin.get(answer.headers["Location"]))  # said once

    nothing = admin.post("/admin/notifications/retry-all", data={"csrf_token": token})
    assert "Nothing to retry: no failed notification was chosen." in text(admin.get(nothing.headers["Location"]))


def test_a_topic_id_no_path_can_carry_is_said_next_to_its_field(portal, stub):  # noqa: F811
    """intake never sees such an id: a path cannot carry it as one part ("a/b", ".."), so it would answer 404."""
    stub.answers["/agents"] = {"items": []}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    stub.answers["/topics"] = {"items": []}
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/teams"))).group(1)
    for typed in ("a/b", "..", "<script>x</script>"):
        answer = admin.post("/admin/topics", data={"topic_id": typed, "topic_name": "X", "csrf_token": token})
        assert answer.status_code == 422, typed
        said = "A topic&#39;s id cannot hold “/”, or be “.” or “..”."
        assert said in text(answer)
    assert not [call for call in stub.calls if call["method"] != "GET"]


def test_an_id_longer_than_its_services_bound_is_said_next_to_its_field_not_sent(portal, stub):  # noqa: F811
    """A path of thousands of characters is refused by the service's server before it reads it: a page with no
    word next to the field. The bound is said here instead."""
    stub.answers["/agents"] = {"items": []}
    stub.answers["/teams"] = {"items": []}
    stub.answers["/topics"] = {"items": []}
    stub.answers["/calendars"] = {"items": []}
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/teams"))).group(1)
    topic = admin.post("/admin/topics", data={"topic_id": "t" * 5000, "topic_name": "X", "csrf_token": token})
    calendar = admin.post("/admin/calendars", data={"calendar_id": "c" * 5000, "timezone": "UTC", "csrf_token": token})
    assert topic.status_code == calendar.status_code == 422
    assert 'id="topic_id-error"' in text(topic) and "A topic&#39;s id has at most 40 characters" in text(topic)
    assert "A calendar&#39;s id has at most 64 characters; this one has 5,000." in text(calendar)
    assert not [call for call in stub.calls if call["method"] != "GET"]


def test_a_calendar_s_errors_are_summed_up_in_the_form_s_order(portal, stub):  # noqa: F811
    stub.answers["/calendars"] = {
        "items": [{"id": "24x7", "timezone": "UTC", "hours": {}, "holidays": [], "version": 1}]
    }
    stub.answers["/calendars/shop"] = (422, {"title": "Unprocessable Entity", "status": 422, "errors": {
        "timezone": ["Unknown time zone."], "holidays.1": ["Not a day of the calendar."],
        "hours.sat": ["A period ends after it starts."]}})  # fmt: skip
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/calendars"))).group(1)
    form = {"csrf_token": token, "calendar_id": "shop", "timezone": "Europe/Lisbn", "hours-sat": "10:00-10:00",
            "holidays": "2026-12-25\n2026-13-40"}  # fmt: skip
    page = text(admin.post("/admin/calendars", data=form))
    summary = page[page.index("There is a problem") :]
    found = [summary.index(name) for name in ("Time zone:", "Saturday:", "Holidays:")]
    assert found == sorted(found), summary[:400]  # as the fields come on the form


def test_a_team_or_topic_named_as_another_is_said_next_to_the_name_and_nothing_is_sent(portal, stub):  # noqa: F811
    """The queue's choices, the requesters' list and the reports name teams and topics: two of one name (case and
    spaces aside) could not be told apart there. A team keeps its own name when its other fields change."""
    stub.answers["/agents"] = {"items": []}
    stub.answers["/teams"] = {"items": [{"id": "desk", "name": "Service Desk", "topics": []},
                                        {"id": "net", "name": "Network", "topics": []}]}  # fmt: skip
    stub.answers["/teams/net"] = {"id": "net", "name": "Network", "topics": []}
    stub.answers["/topics"] = {"items": [{"id": "vpn", "name": "VPN and remote access", "retired": True}]}
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/teams"))).group(1)

    new = admin.post("/admin/teams", data={"csrf_token": token, "id": "desk2", "name": "service  DESK"})
    renamed = admin.post("/admin/teams/net", data={"csrf_token": token, "name": "Service Desk"})
    topic = admin.post(
        "/admin/topics", data={"csrf_token": token, "topic_id": "remote", "topic_name": "VPN and Remote access"}
    )  # noqa: E501

    for answer in (new, renamed):
        assert answer.status_code == 422
        assert "The team desk is named “Service Desk” already: choose a name people can tell apart." in text(answer)
    assert topic.status_code == 422
    assert "The topic vpn is named “VPN and remote access” already" in text(topic)  # a retired one too
    both = admin.post("/admin/topics", data={"csrf_token": token, "topic_id": "Remote VPN", "topic_name": "vpn and "
                                             "remote access"})  # fmt: skip
    said = text(both)  # the id's fault said at once with the name's, not after the name is mended
    assert 'id="topic_id-error"' in said and "Use 1 to 40 lowercase letters, digits, - or _." in said
    assert 'id="topic_name-error"' in said and "The topic vpn is named" in said
    assert not [call for call in stub.calls if call["method"] != "GET"]
    stub.answers["/teams"]["items"].append({"id": "net2", "name": "Network", "topics": []})  # two, from before
    admin.post("/admin/teams/net", data={"csrf_token": token, "name": "Network"})  # its own name, left as it is
    patched = [call for call in stub.calls if call["method"] == "PATCH"]
    assert [(call["path"], call["json"]) for call in patched] == [("/teams/net", {"topics": []})]


def test_an_agent_saved_with_its_name_unchanged_is_sent_without_it(portal, stub):  # noqa: F811
    """A name made before a rule it breaks (a control character) does not stop the rest of the page being saved."""
    one_agent(stub, id="cora", name="Cora\u202e", open_tickets=0)
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/agents/cora"))).group(1)
    form = {"csrf_token": token, "name": "Cora\u202e", "email": "cora@example.com", "teams": "network",
            "capacity": "6", "available": "true"}  # fmt: skip

    admin.post("/admin/agents/cora", data=form)

    [patch] = [call for call in stub.calls if call["method"] == "PATCH"]
    assert "name" not in patch["json"] and patch["json"]["capacity"] == 6


def test_a_webhook_s_deliveries_say_retrying_for_one_that_will_be_tried_again(portal, stub):  # noqa: F811
    """notify's `failed` is an attempt that failed, tried again at next_attempt_at; `dead` is the one given up."""

    def delivery(notification_id: str, status: str, **more) -> dict:
        return {"id": notification_id, "ticket_id": "t-1", "channel": "webhook", "event_type": "ticket.created",
                "recipient": "https://hooks.example.com/in", "attempts": 2, "last_error": None, "status": status,
                "created_at": "2026-12-01T04:00:00.000Z", "sent_at": None, "next_attempt_at": None} | more  # fmt: skip

    hook = {"id": "w-1", "url": "https://hooks.example.com/in", "events": ["ticket.created"],
            "created_at": "2026-12-01T03:00:00.000Z"}  # fmt: skip
    stub.answers["/webhooks"] = {"items": [hook]}
    stub.answers["/notifications"] = {"items": [
        delivery("n-1", "failed", last_error="HTTP 503", next_attempt_at="2026-12-01T04:05:00.000Z"),
        delivery("n-2", "dead", last_error="HTTP 404"),
        delivery("n-3", "sent", sent_at="2026-12-01T04:00:01.000Z"),
        delivery("n-4", "pending"),
    ]}  # fmt: skip
    stub.answers["/tickets/t-1"] = {"id": "t-1", "number": 101}

    page = text(signed_in(portal).get("/admin/webhooks"))

    states = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r'data-label="Status">(.*?)</td>', page)]
    assert states == ["Retrying next at 1 Dec 2026, 04:05 UTC", "Failed gave up: retry it", "Sent", "Waiting"]
    assert '<a href="/admin/notifications">retry it</a>' in page


def test_the_new_calendar_form_never_replaces_one_by_the_same_id(portal, stub):  # noqa: F811
    office = {"id": "office", "timezone": "Europe/Madrid", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": [],
              "version": 3}  # fmt: skip
    stub.answers["/calendars"] = {"items": [office]}
    stub.answers["/calendars/office"] = office
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/calendars"))).group(1)
    form = {"csrf_token": token, "calendar_id": "office", "timezone": "UTC", "hours-mon": "08:00-12:00"}

    refused = admin.post("/admin/calendars", data=form)

    assert refused.status_code == 409
    assert "A calendar office exists already: change it on its page, or choose another id." in text(refused)
    assert not [call for call in stub.calls if call["method"] == "PUT"]  # nothing sent
    other_case = admin.post("/admin/calendars", data={**form, "calendar_id": "Office"})  # sla would keep both
    assert other_case.status_code == 409 and "A calendar office exists already" in text(other_case)
    stub.answers["/calendars/office"] = {**office, "timezone": "UTC", "version": 4}
    changed = admin.post("/admin/calendars", data={**form, "existing": "1"})  # from its own page: changed
    assert changed.status_code == 303 and [call["method"] for call in stub.calls].count("PUT") == 1


def test_a_calendar_added_by_mistake_is_deleted_and_one_a_policy_used_is_refused_in_words(portal, stub):  # noqa: F811
    calendars = {c: {"id": c, "timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": [], "version": 1}
                 for c in ("typo", "office")}  # fmt: skip
    always = {"id": "24x7", "timezone": "UTC", "hours": {"mon": [["00:00", "24:00"]]}, "holidays": [], "version": 1}
    stub.answers["/calendars"] = {"items": [always, *calendars.values()]}
    detail = "Not deleted: office is the calendar of the low priority policy's version 3."

    def answer(calendar_id: str, refusal: tuple | None):
        return lambda: (refusal or (204, {})) if request.method == "DELETE" else calendars[calendar_id]

    stub.answers["/calendars/typo"] = answer("typo", None)
    stub.answers["/calendars/office"] = answer("office", (409, {"title": "Conflict", "detail": detail}))
    stub.answers["/calendars/24x7"] = always
    admin = signed_in(portal)
    typo = text(admin.get("/admin/calendars/typo"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', typo).group(1)
    assert 'action="/admin/calendars/typo/delete"' in typo and "Yes, delete typo" in typo
    assert "/delete" not in text(admin.get("/admin/calendars/24x7"))

    refused = admin.post("/admin/calendars/office/delete", data={"csrf_token": token})
    assert (
        refused.status_code == 409 and str(escape(detail)) in text(refused) and "<h1>Calendar office" in text(refused)
    )

    deleted = admin.post("/admin/calendars/typo/delete", data={"csrf_token": token})
    assert (deleted.status_code, deleted.headers["Location"]) == (303, "/admin/calendars?notice=deleted")
    assert [call["method"] for call in stub.calls if call["path"] == "/calendars/typo"] == ["GET", "DELETE"]
    assert "The calendar is deleted." in text(admin.get(deleted.headers["Location"]))


def test_disabling_an_agents_account_makes_the_agent_unavailable_and_the_agents_page_says_so(portal, stub):  # noqa: F811
    """Someone who left: no new tickets go to them. Enabling the account again leaves the agent unavailable, and
    an assignment that will not change the agent is said."""
    svc = portal.extensions["ticketflow.portal"]
    agent_id = f"gone-{uuid.uuid4().hex[:6]}"
    account, _ = handlers.create_account(svc, f"{agent_id}@example.com", "agent", agent_id, PASSWORD)
    gone = {"id": agent_id, "name": "Gus Gone", "email": f"{agent_id}@example.com", "teams": ["desk"],
            "lead_of": [], "capacity": 4, "available": False, "open_tickets": 1}  # fmt: skip
    stub.answers[f"/agents/{agent_id}"] = gone
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/"))).group(1)
    path = f"/admin/accounts/{account['_id']}/disabled"

    disabled = admin.post(path, data={"csrf_token": token, "disabled": "true"})

    assert disabled.headers["Location"].endswith("notice=disabled-agent")
    changes = [(call["method"], call["path"], call["json"]) for call in stub.calls if call["method"] != "GET"]
    assert changes == [("PATCH", f"/agents/{agent_id}", {"available": False})]
    assert "Its agent is away now, so it gets no new tickets." in text(admin.get(disabled.headers["Location"]))
    stub.answers["/agents"] = {"items": [gone]}
    stub.answers["/teams"] = {"items": [{"id": "desk", "name": "Desk"}]}
    stub.answers["/topics"] = {"items": []}
    agents_page = text(admin.get("/admin/agents"))
    assert re.search(rf"{agent_id} · .*Account disabled", agents_page)
    assert f'<a href="/console/?view=all&amp;agent={agent_id}" aria-label="Gus Gone: 1 open, in the queue">1</a>' \
        in agents_page  # fmt: skip  # their tickets, to hand on
    assert "Set available" not in agents_page and "To make them available, <a href=\"/admin/#accounts-title\">" \
        "enable their account</a> first." in agents_page  # fmt: skip
    back = admin.post(f"/admin/agents/{agent_id}/availability", data={"csrf_token": token, "available": "true"})
    assert back.status_code == 409 and "enable the account first" in text(back)  # no tickets nobody works on
    a_ticket(stub)
    stub.answers["/tickets/t-1"] = {**stub.answers["/tickets/t-1"], "status": "assigned", "team": "desk"}
    stub.answers["/agents"] = {"items": [gone]}
    assert "Gus Gone" not in text(admin.get("/console/tickets/t-1"))  # not offered
    stub.answers["/tickets/t-1"] = {**stub.answers["/tickets/t-1"], "agent_id": agent_id}  # its holder: said
    assert "Gus Gone (1 open of 4, away, account disabled)</option>" in text(admin.get("/console/tickets/t-1"))
    given = admin.post("/console/tickets/t-1/assign", data={"csrf_token": token, "agent_id": agent_id})
    assert given.status_code == 409 and "Their account is disabled" in text(given)
    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == []  # neither reached assignment

    enabled = admin.post(path, data={"csrf_token": token, "disabled": "false"})
    assert enabled.headers["Location"].endswith("notice=enabled-agent")
    assert len([call for call in stub.calls if call["method"] == "PATCH"]) == 1  # available stays the admin's call

    stub.answers[f"/agents/{agent_id}"] = (404, {"title": "Not Found", "detail": "No agent."})
    again = admin.post(path, data={"csrf_token": token, "disabled": "true"})
    assert again.headers["Location"].endswith("notice=disabled-agent-available")
    assert "could not be set away just now" in text(admin.get(again.headers["Location"]))
    assert svc.store.account(account["_id"])["disabled_at"]  # disabled all the same

    # deleted for good: its agent stays in assignment, and still nobody may make it take tickets
    handlers.delete_account(svc, account["_id"])
    agents_page = text(admin.get("/admin/agents"))
    assert re.search(rf"{agent_id} · .*\(account deleted\)", agents_page) and "Set available" not in agents_page
    assert "give them a new account</a> first." in agents_page
    back = admin.post(f"/admin/agents/{agent_id}/availability", data={"csrf_token": token, "available": "true"})
    assert back.status_code == 409 and "disabled or deleted" in text(back)
    assert svc.store.disabled_agent_ids()[agent_id] == "deleted"
    ticket_page = text(admin.get("/console/tickets/t-1"))  # its holder, said as the Agents page says it
    assert "Gus Gone (1 open of 4, away, account deleted)</option>" in ticket_page
    given = admin.post("/console/tickets/t-1/assign", data={"csrf_token": token, "agent_id": agent_id})
    assert given.status_code == 409 and "Their account is deleted" in text(given)
    handlers.create_account(svc, f"{agent_id}.new@example.com", "agent", agent_id, PASSWORD)  # back with a new one
    assert agent_id not in svc.store.disabled_agent_ids()


def test_an_unavailable_agent_hands_back_its_tickets_of_its_own_teams(portal, stub):  # noqa: F811
    """Away or gone: its open tickets go back to their teams, to another available agent or the queue. While it is
    available, those of its own teams stay with it."""
    cora = {"id": "cora", "name": "Cora", "email": "cora@example.com", "teams": ["desk"], "lead_of": [],
            "capacity": 4, "available": False, "open_tickets": 1}  # fmt: skip
    stub.answers["/agents/cora"] = cora
    stub.answers["/agents"] = {"items": [cora]}
    stub.answers["/teams"] = {"items": [{"id": "desk", "name": "Desk"}]}
    stub.answers["/topics"] = {"items": []}
    stub.answers["/queue"] = {"items": [{"ticket_id": "t-7", "number": 107, "team": "desk"}], "next_cursor": None}
    admin = signed_in(portal)
    page = text(admin.get("/admin/agents/cora"))
    assert "Their open tickets" in page and "Hand them back to Desk" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    answer = admin.post("/admin/agents/cora/teams/desk/hand-back", data={"csrf_token": token})

    assert answer.status_code == 303
    assert [(c["method"], c["path"], c["json"]) for c in stub.calls if c["method"] != "GET"] == [
        ("POST", "/tickets/t-7/assign", {"team": "desk"})
    ]
    stub.answers["/agents/cora"] = {**cora, "available": True}
    kept = admin.post("/admin/agents/cora/teams/desk/hand-back", data={"csrf_token": token})
    assert kept.status_code == 409 and "Set it away first to hand them back." in text(kept)
    assert "Hand them back to Desk" not in text(admin.get("/admin/agents/cora"))


def test_a_resolved_ticket_reopens_from_its_console_page_with_a_reason(portal, stub):  # noqa: F811
    """The requester called: the fix did not hold. intake reopens it (its ticket.reopened), the page says so; a
    reason is asked for next to its field."""
    a_ticket(stub)
    stub.answers["/tickets/t-1"] = {**stub.answers["/tickets/t-1"], "status": "resolved", "agent_id": "ada",
                                    "team": "network", "ticket_id": "t-1"}  # fmt: skip
    stub.answers["/tickets/t-1/reopen"] = {"id": "t-1", "status": "assigned"}
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    agent = signed_in(portal, "agent", "ada")
    page = text(agent.get("/console/tickets/t-1"))
    assert 'action="/console/tickets/t-1/reopen"' in page and "Reopen it, because" in page
    assert 'action="/console/tickets/t-1/reply"' not in page  # a resolved ticket takes no reply
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    empty = agent.post("/console/tickets/t-1/reopen", data={"csrf_token": token, "reason": " "})
    done = agent.post("/console/tickets/t-1/reopen", data={"csrf_token": token, "reason": "She called: it jams."})

    assert empty.status_code == 422 and "Say why it reopens: its agent reads it." in text(empty)
    assert 'href="#reopen-reason"' in text(empty) and 'aria-invalid="true"' in text(empty)
    assert done.status_code == 303 and done.headers["Location"].endswith("notice=reopen")
    (sent,) = [(c["path"], c["json"]) for c in stub.calls if c["method"] == "POST"]
    assert sent == ("/tickets/t-1/reopen", {"reason": "She called: it jams."})
    assert "Ticket reopened." in text(agent.get(done.headers["Location"]))


def test_a_webhook_without_a_url_or_into_the_desks_own_network_is_said_in_an_admins_words(portal, stub):  # noqa: F811
    stub.answers["/webhooks"] = lambda: (
        (
            422,
            {
                "title": "Unprocessable Entity",
                "status": 422,
                "errors": {
                    "url": [
                        "Must point to a public address: 127.0.0.1 is a loopback address "
                        "(TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS admits chosen networks)."
                    ]
                },
            },
        )  # fmt: skip
        if stub.calls[-1]["method"] == "POST"
        else (200, {"items": []})
    )
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/webhooks"))).group(1)

    empty = admin.post("/admin/webhooks", data={"csrf_token": token, "url": "  ", "events": "ticket.*"})
    inside = admin.post("/admin/webhooks", data={"csrf_token": token, "url": "http://127.0.0.1:8765/hook",
                                                 "events": "ticket.*", "form_key": "k2"})  # fmt: skip

    assert empty.status_code == 422 and "Enter the URL the events are posted to, like https://" in text(empty)
    assert len([call for call in stub.calls if call["method"] == "POST"]) == 1  # the empty one was never sent
    said = text(inside)
    assert inside.status_code == 422 and 'id="url-error"' in said
    assert "Must point to a public address: 127.0.0.1 is a loopback address. Webhooks go to addresses outside your " \
        "network; one inside it works once whoever runs the help desk allows its network (the setting " \
        "TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS)." in said  # fmt: skip


def _second_tab(admin, page: str, post: str, form: dict, stub, change, kept: str, said: str = "") -> None:  # noqa: F811
    """Two tabs on one edit page: the other saves first (`change` plays it on the stub), then this one's save is
    refused with nothing sent, its words are kept, and (`said`) what is saved now that differs is named; saved
    again from that page, it goes through."""
    opened = text(admin.get(page))
    token = re.search(r'name="csrf_token" value="([^"]+)"', opened).group(1)
    seen = re.search(r'name="seen" value="([^"]+)"', opened).group(1)
    change()
    sent = len(stub.calls)

    refused = admin.post(post, data={**form, "csrf_token": token, "seen": seen})

    assert refused.status_code == 409, text(refused)[:300]
    assert "since you opened it" in text(refused)
    assert str(escape(said)) in text(refused)
    assert kept in text(refused)  # what was typed is in the form again
    assert not [call for call in stub.calls[sent:] if call["method"] not in ("GET",)]  # nothing saved
    fresh = re.search(r'name="seen" value="([^"]+)"', text(refused)).group(1)
    assert fresh != seen
    again = admin.post(post, data={**form, "csrf_token": token, "seen": fresh})
    assert again.status_code == 303, text(again)[:300]
    assert [call for call in stub.calls[sent:] if call["method"] in ("PATCH", "PUT")]


def test_an_agent_changed_in_another_tab_is_not_overwritten(portal, stub):  # noqa: F811
    cora = {"id": "cora", "name": "Cora", "email": "cora@example.com", "teams": ["network"], "lead_of": [],
            "capacity": 4, "available": True, "open_tickets": 0}  # fmt: skip
    stub.answers["/agents/cora"] = cora
    stub.answers["/agents"] = {"items": [cora]}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    stub.answers["/topics"] = {"items": []}
    form = {"name": "Cora Ruiz", "email": "cora@example.com", "teams": "network", "capacity": "4", "available": "on"}

    def other_tab():
        cora["capacity"] = 6  # the same dict: /agents and /agents/cora both answer it

    # saving again would put the capacity back to 4: said, with the name this form changes
    said = "Saved now, and different from yours: Name Cora (yours: Cora Ruiz); Capacity 6 (yours: 4)."
    _second_tab(
        signed_in(portal), "/admin/agents/cora", "/admin/agents/cora", form, stub, other_tab, 'value="Cora Ruiz"', said
    )


def test_a_team_a_policy_and_a_calendar_changed_in_another_tab_are_not_overwritten(portal, stub):  # noqa: F811
    admin = signed_in(portal)
    team = {"id": "network", "name": "Network", "topics": ["network"]}
    stub.answers["/teams"] = {"items": [team]}
    stub.answers["/agents"] = {"items": []}
    stub.answers["/topics"] = {"items": [{"id": "network", "name": "Network"}, {"id": "vpn", "name": "VPN"}]}
    stub.answers["/teams/network"] = team
    _second_tab(admin, "/admin/teams/network", "/admin/teams/network", {"name": "Networks", "topics": "network"},
                stub, lambda: team["topics"].append("vpn"), 'value="Networks"',
                "Name Network (yours: Networks); Topics network, vpn (yours: network)")  # fmt: skip

    policy = {"priority": "low", "version": 3, "first_response_minutes": 600, "next_response_minutes": 600,
              "resolution_minutes": 2400, "warn_at_percent": [80], "calendar": "24x7",
              "changed_at": "2026-12-01T04:00:00.000Z"}  # fmt: skip
    stub.answers["/policies/low"] = policy
    stub.answers["/policies/low/versions"] = {"items": [policy]}
    stub.answers["/calendars"] = {"items": [{"id": "24x7", "timezone": "UTC"}]}
    terms = {"first_response_minutes": "500", "next_response_minutes": "600", "resolution_minutes": "2400",
             "warn_at_percent": "80", "calendar": "24x7"}  # fmt: skip
    _second_tab(admin, "/admin/policies/low", "/admin/policies/low", terms, stub, lambda: policy.update(version=4),
                'value="500"')  # fmt: skip

    shop = {"id": "shop", "timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": [], "version": 1}
    stub.answers["/calendars/shop"] = shop
    stub.answers["/calendars"] = {"items": [shop]}
    hours = {"calendar_id": "shop", "existing": "1", "timezone": "UTC", "hours-mon": "09:00-18:00", "holidays": ""}
    _second_tab(admin, "/admin/calendars/shop", "/admin/calendars", hours, stub,
                lambda: shop.update(holidays=["2026-12-31"], version=2), 'value="09:00-18:00"')  # fmt: skip


def test_a_team_whose_topics_are_all_retired_is_marked_in_the_list(portal, stub):  # noqa: F811
    """Retiring a topic left a team with no topic on the form, silently (the admin tester's find)."""
    facilities = {"id": "facilities", "name": "Facilities", "topics": ["facilities"]}
    stub.answers["/teams"] = {"items": [facilities, {"id": "network", "name": "Network", "topics": ["network", "vpn"]}]}
    stub.answers["/agents"] = {"items": []}
    topics = [("facilities", "Facilities", True), ("network", "Network", False), ("vpn", "VPN", True)]
    stub.answers["/topics"] = {"items": [{"id": i, "name": n, "retired": r} for i, n, r in topics]}

    page = text(signed_in(portal).get("/admin/teams"))

    rows = {
        team: page[page.index(f'<span class="muted">{team}</span>') :].split("</tr>")[0]
        for team in ("facilities", "network")
    }
    assert (
        "facilities: retired" in rows["facilities"] and "no new ticket comes to it from the form" in rows["facilities"]
    )
    assert "vpn: retired" in rows["network"] and "no new ticket comes to it" not in rows["network"]  # network stays


def test_a_team_nobody_takes_tickets_of_and_a_disabled_agent_are_marked_on_the_team_pages(portal, stub):  # noqa: F811
    """A team left with nobody took tickets silently, its breaches emailed to no one, and a disabled agent read as
    a member like the others (an admin tester's finds)."""
    svc = portal.extensions["ticketflow.portal"]
    gone_id = f"gone-{uuid.uuid4().hex[:6]}"
    account, _ = handlers.create_account(svc, f"{gone_id}@example.com", "agent", gone_id, PASSWORD)
    handlers.set_disabled(svc, account["_id"], True)
    gone = {"id": gone_id, "name": "Gus Gone", "email": f"{gone_id}@example.com", "teams": ["facilities"],
            "lead_of": ["facilities"], "capacity": 4, "available": False, "open_tickets": 2}  # fmt: skip
    ada = {"id": "ada", "name": "Ada", "email": "ada@example.com", "teams": ["network"], "lead_of": [],
           "capacity": 4, "available": True, "open_tickets": 0}  # fmt: skip
    stub.answers["/agents"] = {"items": [gone, ada]}
    stub.answers["/teams"] = {"items": [{"id": "facilities", "name": "Facilities", "topics": ["facilities"]},
                                        {"id": "network", "name": "Network", "topics": ["network"]}]}  # fmt: skip
    stub.answers["/topics"] = {"items": [{"id": "facilities", "name": "Facilities"}, {"id": "network", "name": "N"}]}
    admin = signed_in(portal)

    page = text(admin.get("/admin/teams"))
    rows = {
        team: page[page.index(f'<span class="muted">{team}</span>') :].split("</tr>")[0]
        for team in ("facilities", "network")
    }
    assert 'Gus Gone <span class="muted">(account disabled)</span>' in rows["facilities"]
    assert "Nobody takes its tickets" in rows["facilities"] and "Nobody takes its tickets" not in rows["network"]
    team = " ".join(text(admin.get("/admin/teams/facilities")).split())
    assert "Account disabled</strong>" in team and "Nobody takes this team's tickets now" in team
    assert f"Gus Gone ({gone_id}, account disabled)" in team  # as the leads' boxes name it
    assert "Nobody takes this team's tickets now" not in text(admin.get("/admin/teams/network"))


def test_a_team_added_by_mistake_is_deleted_and_one_with_a_history_is_refused_in_words(portal, stub):  # noqa: F811
    ann = {"id": "ann", "name": "Ann", "email": "ann@example.com", "teams": ["staffed"], "lead_of": [],
           "capacity": 4, "available": True, "open_tickets": 0}  # fmt: skip
    stub.answers["/agents"] = {"items": [ann]}
    teams = [{"id": i, "name": n, "topics": []} for i, n in (("general", "General"), ("mistake", "Sales typo"),
                                                            ("staffed", "Staffed"), ("used", "Used"))]  # fmt: skip
    stub.answers["/teams"] = {"items": teams}
    stub.answers["/topics"] = {"items": []}
    admin = signed_in(portal)
    pages = {team["id"]: text(admin.get(f"/admin/teams/{team['id']}")) for team in teams}
    token = re.search(r'name="csrf_token" value="([^"]+)"', pages["mistake"]).group(1)

    assert 'action="/admin/teams/mistake/delete"' in pages["mistake"] and "Yes, delete Sales typo" in pages["mistake"]
    assert "/delete" not in pages["general"] and "Delete it" not in pages["general"]
    assert "/delete" not in pages["staffed"] and "take them out of it first" in pages["staffed"]

    detail = "Tickets went to Used (#7 for one): a team with tickets stays, since they and the reports name it."
    stub.answers["/teams/used"] = (409, {"title": "Conflict", "detail": detail})
    refused = admin.post("/admin/teams/used/delete", data={"csrf_token": token})
    assert refused.status_code == 409 and detail in text(refused) and "<h1>Used" in text(refused)

    stub.answers["/teams/mistake"] = (204, {})
    deleted = admin.post("/admin/teams/mistake/delete", data={"csrf_token": token})
    assert (deleted.status_code, deleted.headers["Location"]) == (303, "/admin/teams?notice=deleted")
    assert [call["method"] for call in stub.calls if call["path"] == "/teams/mistake"] == ["DELETE"]
    assert "The team is deleted." in text(admin.get(deleted.headers["Location"]))


def test_setting_an_agent_away_names_them_and_what_they_still_hold(portal, stub):  # noqa: F811
    one_agent(stub, id="marta", name="Marta Ruiz", open_tickets=4)
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/admin/agents"))).group(1)

    answer = admin.post("/admin/agents/marta/availability", data={"csrf_token": token, "available": "false"})

    assert answer.status_code == 303
    said = " ".join(text(admin.get(answer.headers["Location"])).split())
    assert "Marta Ruiz is away: no new tickets are assigned to them. They still hold 4 open tickets. Hand" in said
    assert "Marta Ruiz is" not in " ".join(text(admin.get("/admin/agents?notice=unavailable&agent=nobody")).split())


def one_agent(stub, **fields) -> dict:  # noqa: F811
    """assignment with one agent (of team Network, available, capacity 4; `fields` change it), for its pages."""
    agent = {"email": f"{fields['id']}@example.com", "teams": ["network"], "lead_of": [], "capacity": 4,
             "available": True, **fields}  # fmt: skip
    stub.answers[f"/agents/{agent['id']}"] = agent
    stub.answers["/agents"] = {"items": [agent]}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    stub.answers["/topics"] = {"items": []}
    return agent


def test_an_agent_s_new_address_is_the_one_their_account_signs_in_with_and_both_are_told(portal, stub, monkeypatch):  # noqa: F811
    """An admin changes an agent's email (they left the old mailbox): the account that signed in with the old one
    signs in with the new one, its password kept, its password links (emailed to the old one) ended, and both
    addresses told. It stayed on the old address, and a forgotten password's link went there (a review's find)."""
    from services.portal import passwords

    svc = portal.extensions["ticketflow.portal"]
    tag = uuid.uuid4().hex[:8]
    old, new = f"cora-{tag}@example.com", f"cora.ruiz-{tag}@example.org"
    one_agent(stub, id=f"cora-{tag}", name="Cora Ruiz", email=old, open_tickets=0)
    account, _ = handlers.create_account(svc, old, "agent", f"cora-{tag}", PASSWORD)
    _, session = handlers.start_session(svc, account)
    link = svc.store.new_password_link(account["_id"], handlers.now(), handlers.PASSWORD_LINK_LIFE)
    admin = signed_in(portal)
    page = text(admin.get(f"/admin/agents/cora-{tag}"))
    form = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1), "name": "Cora Ruiz",
            "email": new.upper(), "teams": "network", "capacity": "4", "available": "true"}  # fmt: skip

    saved = admin.post(f"/admin/agents/cora-{tag}", data=form)

    assert saved.status_code == 303
    said = " ".join(text(admin.get(saved.headers["Location"])).split())
    assert f"They sign in with {new} from now on; both addresses were told by email." in said
    assert svc.store.account_by_email(old) is None and svc.store.account_by_email(new)["_id"] == account["_id"]
    assert svc.store.account_by_email(new)["password_hash"] == account["password_hash"]
    assert svc.store.sessions.find_one({"_id": session["_id"]})["email"] == new
    assert svc.store.password_link(link, handlers.now()) is None
    notices = list(svc.store.account_notices.find({"account_id": account["_id"]}))
    assert sorted((n["email"], n["kind"]) for n in notices) == [
        (old, "address-changed-old"),
        (new, "address-changed-new"),
    ]
    sent = []
    monkeypatch.setattr(passwords.mailing, "send", lambda settings, to, subject, body: sent.append((to, body)))
    assert [passwords.send_notice(svc, notice) for notice in notices] == ["sent", "sent"]
    assert all(f"to {new}" in body or f"({new})" in body for _, body in sent)

    # an address another account signs in with: said next to the field, nothing changed
    taken = f"taken-{tag}@example.com"
    handlers.create_account(svc, taken, "admin", None, PASSWORD)
    one_agent(stub, id=f"cora-{tag}", name="Cora Ruiz", email=new, open_tickets=0)
    stub.calls.clear()
    refused = admin.post(f"/admin/agents/cora-{tag}", data={**form, "email": taken})
    assert refused.status_code == 409 and handlers.ACCOUNT_TAKEN in text(refused)
    assert [call["json"]["email"] for call in stub.calls if call["method"] == "PATCH"] == [""]  # a probe, refused
    assert svc.store.account_by_email(new)["_id"] == account["_id"]
