"""Saved replies in-process, on the real portal database, the other services a stub: an admin keeps them on their
page; an agent inserts one into a reply on a ticket's page with the ticket's details filled in."""

from __future__ import annotations

import re
import uuid

from tests.integration.test_portal_search import a_ticket, portal, signed_in, stub, text  # noqa: F401


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


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
    bad = admin.post(f"/admin/replies/{reply_id}", data={"title": title, "body": "Hi {name}", "csrf_token": csrf(page)})
    assert bad.status_code == 422 and "Unknown field {name}" in text(bad) and "Hi {name}</textarea>" in text(bad)
    saved = admin.post(f"/admin/replies/{reply_id}", data={"title": title, "body": "Hi.", "csrf_token": csrf(page)})
    assert saved.status_code == 303

    deleted = admin.post(f"/admin/replies/{reply_id}/delete", data={"csrf_token": csrf(page)})

    assert deleted.status_code == 303
    assert title not in text(admin.get("/admin/replies"))
    assert admin.get(f"/admin/replies/{reply_id}").status_code == 404


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

    assert f'<template id="saved-reply-{reply_id}">Hello Ana, about #7: &lt;b&gt;done&lt;/b&gt;.</template>' in html
    assert 'form="saved-reply-form"' in html and '<form id="saved-reply-form" method="get"' in html

    without_js = text(admin.get(f"/console/tickets/t-1?reply_with={reply_id}"))  # what "Insert" asks without JS

    assert ">Hello Ana, about #7: &lt;b&gt;done&lt;/b&gt;.</textarea>" in without_js
    unknown = text(admin.get("/console/tickets/t-1?reply_with=nothing-such"))
    assert 'name="body" rows="5" required aria-describedby="reply-hint"></textarea>' in unknown
