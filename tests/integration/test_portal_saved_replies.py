"""Saved replies in-process, on the real portal database, the other services a stub: an admin keeps them on their
page; an agent inserts one into a reply on a ticket's page with the ticket's details filled in."""

from __future__ import annotations

import re
import uuid

from tests.integration.test_portal_search import a_ticket, portal, signed_in, stub, text  # noqa: F401


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def edit(admin, reply_id: str, page: str, **fields):
    """Send the saved reply's form as the page showed it (its version), with these fields."""
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    return admin.post(f"/admin/replies/{reply_id}", data={**fields, "version": version, "csrf_token": csrf(page)})


def reply_id_of(admin, title: str) -> str:
    return re.search(
        r'href="/admin/replies/([0-9a-f]{32})">' + re.escape(title), text(admin.get("/admin/replies"))
    ).group(1)


def add(admin, title: str, body: str):
    token = csrf(text(admin.get("/admin/replies")))
    return admin.post("/admin/replies", data={"title": title, "body": body, "csrf_token": token})


def test_an_admin_adds_changes_and_deletes_a_saved_reply(portal):  # noqa: F811
    admin = signed_in(portal)
    title = f"Password reset {uuid.uuid4().hex[:6]}"

    added = add(admin, title, "Hello {requester_first_name},\n\nUse the self-service page.")

    assert added.status_code == 303 and added.headers["Location"].endswith("/admin/replies?notice=added")
    listed = text(admin.get("/admin/replies?notice=added"))
    assert "The saved reply is added" in listed and f">{title}</a>" in listed
    again = add(admin, title.upper(), "Another text.")  # the same title, whatever its case
    assert again.status_code == 409
    assert "Another saved reply has this title" in text(again) and 'value="' + title.upper() + '"' in text(again)

    reply_id = re.search(r'href="/admin/replies/([0-9a-f]{32})">' + re.escape(title), listed).group(1)
    page = text(admin.get(f"/admin/replies/{reply_id}"))
    assert "Use the self-service page." in page
    bad = edit(admin, reply_id, page, title=title, body="Hi {name}")
    assert bad.status_code == 422 and "Unknown field {name}" in text(bad) and "Hi {name}</textarea>" in text(bad)
    saved = edit(admin, reply_id, page, title=title, body="Hi.")
    assert saved.status_code == 303

    deleted = admin.post(f"/admin/replies/{reply_id}/delete", data={"csrf_token": csrf(page)})

    assert deleted.status_code == 303
    assert title not in text(admin.get("/admin/replies"))
    gone = admin.get(f"/admin/replies/{reply_id}")
    assert gone.status_code == 404 and '<a href="/admin/replies">Back to the saved replies</a>' in text(gone)
    # saved from a tab opened before the delete: the list, its words in the form that adds one, nothing lost
    late = edit(admin, reply_id, page, title=title, body="Words typed in the other tab.")
    assert late.status_code == 409
    assert "Someone deleted this saved reply since you opened it" in text(late)
    assert f'value="{title}"' in text(late) and "Words typed in the other tab.</textarea>" in text(late)


def test_an_agent_may_not_keep_saved_replies(portal):  # noqa: F811
    agent = signed_in(portal, "agent", "ada")
    assert agent.get("/admin/replies").status_code == 403
    token = csrf(text(agent.get("/console/")))
    assert agent.post("/admin/replies", data={"title": "x", "body": "y", "csrf_token": token}).status_code == 403


def test_the_ticket_page_offers_the_saved_replies_filled_in_for_its_ticket(portal, stub):  # noqa: F811
    a_ticket(stub)  # ticket 7 of Ana
    admin = signed_in(portal)
    title = f"Greeting {uuid.uuid4().hex[:6]}"
    add(admin, title, "Hello {requester_first_name}, about #{ticket_number}: <b>done</b>.")
    html = text(admin.get("/console/tickets/t-1"))
    reply_id = re.search(r'<option value="([0-9a-f]{32})">' + re.escape(title) + "</option>", html).group(1)
    assert "<template" not in html  # the titles alone: a text comes when it is chosen

    answer = admin.get(f"/console/tickets/t-1/saved-replies/{reply_id}")  # what portal.js asks for

    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    assert answer.get_data(as_text=True) == "Hello Ana, about #7: <b>done</b>."
    assert admin.get("/console/tickets/t-1/saved-replies/nothing-such").status_code == 404
    assert admin.get(f"/console/tickets/t-404/saved-replies/{reply_id}").status_code == 404  # intake: no ticket

    form = {"body": "Sorry for the wait.", "reply_with": reply_id, "csrf_token": csrf(html)}
    without_js = admin.post("/console/tickets/t-1/insert", data=form)  # "Insert" without JavaScript

    assert without_js.status_code == 200
    assert ">Sorry for the wait.\n\nHello Ana, about #7: &lt;b&gt;done&lt;/b&gt;.</textarea>" in text(without_js)
    nothing_chosen = admin.post("/console/tickets/t-1/insert", data={"body": "Typed.", "csrf_token": csrf(html)})
    assert nothing_chosen.status_code == 422 and "Choose a saved reply first, then Insert." in text(nothing_chosen)
    assert ">Typed.</textarea>" in text(nothing_chosen)  # what was typed stays
    gone = admin.post("/console/tickets/t-1/insert", data={"body": "Typed.", "reply_with": "f" * 32,
                                                           "csrf_token": csrf(html)})  # fmt: skip
    assert gone.status_code == 404 and "That saved reply no longer exists" in text(gone)
    assert ">Typed.</textarea>" in text(gone)


def test_a_saved_reply_renamed_to_another_ones_title_is_said_next_to_the_field(portal):  # noqa: F811
    admin = signed_in(portal)
    first, second = f"First {uuid.uuid4().hex[:6]}", f"Second {uuid.uuid4().hex[:6]}"
    add(admin, first, "One.")
    add(admin, second, "Two.")
    reply_id = reply_id_of(admin, second)

    renamed = edit(admin, reply_id, text(admin.get(f"/admin/replies/{reply_id}")), title=first.upper(), body="Two.")

    assert renamed.status_code == 409
    assert "Another saved reply has this title" in text(renamed)
    assert f"<h1>{second}</h1>" in text(renamed)  # the heading names the reply as it is, not as typed


def test_two_admins_changing_one_saved_reply_do_not_overwrite_each_other_unawares(portal):  # noqa: F811
    first, second = signed_in(portal), signed_in(portal)
    title = f"Printer {uuid.uuid4().hex[:6]}"
    add(first, title, "Restart it.")
    reply_id = reply_id_of(first, title)
    page_one, page_two = text(first.get(f"/admin/replies/{reply_id}")), text(second.get(f"/admin/replies/{reply_id}"))

    assert edit(first, reply_id, page_one, title=title, body="Restart it, then wait.").status_code == 303
    late = edit(second, reply_id, page_two, title=title + " (b)", body="Restart it.")

    assert late.status_code == 409 and "Someone changed this saved reply since you opened it" in text(late)
    assert 'value="' + title + ' (b)"' in text(late)  # their own changes are kept in the form
    assert portal.extensions["ticketflow.portal"].store.saved_reply(reply_id)["body"] == "Restart it, then wait."
    again = edit(second, reply_id, text(late), title=title + " (b)", body="Restart it.")
    assert again.status_code == 303  # saved knowingly: the form now carries the version it showed


def test_a_refused_save_keeps_the_version_the_form_was_opened_on(portal):  # noqa: F811
    first, second = signed_in(portal), signed_in(portal)
    title = f"Scanner {uuid.uuid4().hex[:6]}"
    add(first, title, "Unplug it.")
    reply_id = reply_id_of(first, title)
    page_one, page_two = text(first.get(f"/admin/replies/{reply_id}")), text(second.get(f"/admin/replies/{reply_id}"))
    assert edit(first, reply_id, page_one, title=title, body="Unplug it for ten seconds.").status_code == 303

    typo = edit(second, reply_id, page_two, title=title, body="Hello {Name}")  # refused for its field...
    assert typo.status_code == 422
    fixed = edit(second, reply_id, text(typo), title=title, body="Hello.")  # ...then fixed: still told, not saved

    assert fixed.status_code == 409 and "Someone changed this saved reply since you opened it" in text(fixed)
    assert portal.extensions["ticketflow.portal"].store.saved_reply(reply_id)["body"] == "Unplug it for ten seconds."
    assert first.post(f"/admin/replies/{reply_id}", data={"title": title, "body": "x", "version": "²",
                                                          "csrf_token": csrf(page_one)}).status_code == 409  # fmt: skip
