"""Passwords an agent or admin looks after alone: "Forgot your password?" emails a link to choose a new one (the
page answers the same whatever address was typed), and a signed-in person changes theirs with the current one.
In-process, on the real portal database; the other services are the stub of test_portal_search."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest

from services.portal import handlers, mailing, resets, timers
from shared.auth import issue_token
from tests.integration.test_portal_accounts import CSRF, account_with_session, browser, served, sign_in
from tests.integration.test_portal_search import PASSWORD, portal, stub, text  # noqa: F401
from ticketflow import cli

NEW_PASSWORD = "purple elephants dance at noon"
LINK = re.compile(r"(http\S+/password/(\S+))")


@pytest.fixture
def outbox(monkeypatch) -> list[dict]:
    """The emails the portal's worker sends, instead of an SMTP server."""
    sent: list[dict] = []
    monkeypatch.setattr(mailing, "send", lambda settings, to, subject, body: sent.append(
        {"to": to, "subject": subject, "text": body}))  # fmt: skip
    return sent


def new_client_address() -> str:
    """A client address of this test's own: the per-address counts are kept for an hour across tests."""
    return f"127.0.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


def post(client, path: str, page: str, form: dict, address: str = "127.0.0.1"):
    """POST a form as the browser sends it (the CSRF token of the page it came from), from `address`."""
    token = CSRF.search(text(client.get(page))).group(1)
    return client.post(path, data={**form, "csrf_token": token}, environ_base={"REMOTE_ADDR": address})


def ask_for_link(app, email: str, address: str | None = None):
    return post(browser(app), "/password/forgot", "/password/forgot", {"email": email}, address or new_client_address())


def the_request(svc, email: str) -> dict:
    return svc.store.password_resets.find_one({"email": email}, sort=[("created_at", -1)])


def test_forgot_emails_a_link_that_sets_a_new_password_once(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, session = account_with_session(portal, "agent")
    login = text(browser(portal).get("/login"))
    assert 'href="/password/forgot"' in login and "Forgot your password?" in login

    asked = ask_for_link(portal, "  " + agent["email"].upper())  # as people type it

    assert asked.status_code == 303 and asked.headers["Location"].endswith("/password/forgot/sent")
    sent = text(browser(portal).get(asked.headers["Location"]))
    assert "If that address belongs to an account, we have sent it a link" in sent
    assert outbox == []  # the worker sends it, not the page
    assert resets.send_reset(svc, the_request(svc, agent["email"])) == "sent"
    [email] = outbox
    assert email["to"] == agent["email"] and email["subject"] == "Choose a new password for the help desk"
    assert "works once, for 60 minutes" in email["text"] and "your password stays as it is" in email["text"]
    url, token = LINK.search(email["text"]).groups()
    assert url.startswith(svc.settings.portal_url)
    assert sign_in(portal, agent["email"]).status_code == 303  # asking changed nothing yet
    assert handlers.load_session(svc, session) is not None

    chosen = post(browser(portal), f"/password/{token}", f"/password/{token}", {"password": NEW_PASSWORD})

    assert chosen.status_code == 303 and chosen.headers["Location"].endswith("/login?notice=password-set")
    assert sign_in(portal, agent["email"]).status_code == 401  # the old password is gone
    assert sign_in(portal, agent["email"], NEW_PASSWORD).status_code == 303
    assert handlers.load_session(svc, session) is None  # every session of the account ended
    again = browser(portal).get(f"/password/{token}")
    assert again.status_code == 404 and "Forgot your password?" in text(again)  # once


def test_the_page_answers_the_same_for_an_unknown_or_disabled_address_and_nothing_is_sent(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    disabled, _ = account_with_session(portal, "agent")
    handlers.set_disabled(svc, disabled["_id"], True)
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"

    answers = [ask_for_link(portal, email) for email in (nobody, disabled["email"])]

    assert [(a.status_code, a.headers["Location"]) for a in answers] == [(303, "/password/forgot/sent")] * 2
    assert [resets.send_reset(svc, the_request(svc, e)) for e in (nobody, disabled["email"])] == ["no-account"] * 2
    assert outbox == [] and svc.store.password_links.count_documents({"account_id": disabled["_id"]}) == 0


def test_the_worker_answers_the_requests_it_finds(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    admin, _ = account_with_session(portal, "admin")
    ask_for_link(portal, admin["email"])

    assert timers.send_resets(svc) >= 1  # with any other test's requests waiting

    assert [e["to"] for e in outbox].count(admin["email"]) == 1
    assert the_request(svc, admin["email"])["state"] == "sent"


def test_a_link_that_could_not_be_emailed_does_not_stay_usable(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    ask_for_link(portal, agent["email"])

    def refused(*args):
        raise handlers.mailing.smtp.SmtpError("550 no such user")

    monkeypatch.setattr(mailing, "send", refused)
    with pytest.raises(handlers.mailing.smtp.SmtpError):
        resets.send_reset(svc, the_request(svc, agent["email"]))
    assert svc.store.password_links.count_documents({"account_id": agent["_id"]}) == 0


def test_a_bad_address_is_answered_next_to_the_field(portal):  # noqa: F811
    refused = ask_for_link(portal, "ada at example")

    page = text(refused)
    assert refused.status_code == 422 and 'id="email-error"' in page
    assert "Enter the email address you sign in with, like ada@example.com." in page
    assert 'value="ada at example"' in page  # what was typed is kept


def test_an_address_gets_five_links_an_hour_and_a_client_twenty(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    fixed = handlers.now().replace(minute=30, second=0, microsecond=0)  # never across the hour's end
    monkeypatch.setattr(handlers, "now", lambda: fixed)
    owner = f"owner-{uuid.uuid4().hex[:8]}@example.com"

    answers = [ask_for_link(portal, owner).status_code for _ in range(6)]

    assert answers == [303] * 5 + [429]
    assert svc.store.password_resets.count_documents({"email": owner}) == 5
    address = new_client_address()
    answers = [ask_for_link(portal, f"guess-{n}-{uuid.uuid4().hex[:6]}@example.com", address).status_code
               for n in range(21)]  # fmt: skip
    assert answers == [303] * 20 + [429]
    page = text(ask_for_link(portal, owner, address))
    assert "Too many requests for a link. Please try again in an hour." in page
    monkeypatch.setattr(handlers, "now", lambda: fixed + timedelta(hours=1))
    assert ask_for_link(portal, owner).status_code == 303  # the next hour


def test_a_reset_clears_the_failed_sign_ins_that_locked_the_address(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    for _ in range(5):
        sign_in(portal, agent["email"], "a wrong guess of a password")
    assert sign_in(portal, agent["email"]).status_code == 429
    ask_for_link(portal, agent["email"])
    resets.send_reset(svc, the_request(svc, agent["email"]))
    token = LINK.search(outbox[-1]["text"]).group(2)

    post(browser(portal), f"/password/{token}", f"/password/{token}", {"password": NEW_PASSWORD})

    assert sign_in(portal, agent["email"], NEW_PASSWORD).status_code == 303


def change(client, form: dict):
    return post(client, "/account/password", "/account/password", form)


def test_a_signed_in_agent_changes_their_password_and_is_signed_out_elsewhere(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, here = account_with_session(portal, "agent")
    elsewhere, _ = handlers.start_session(svc, agent)
    client = browser(portal, here)
    assert 'href="/account/password"' in text(client.get("/account/password"))  # in the header

    done = change(client, {"current": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD})

    assert done.status_code == 303 and done.headers["Location"].endswith("/account/password?notice=changed")
    page = client.get(done.headers["Location"])
    assert page.status_code == 200 and "Your password is changed." in text(page)  # still signed in, a new session
    assert handlers.load_session(svc, here) is None and handlers.load_session(svc, elsewhere) is None
    assert sign_in(portal, agent["email"]).status_code == 401
    assert sign_in(portal, agent["email"], NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"current": "not it at all, sorry", "password": NEW_PASSWORD, "again": NEW_PASSWORD}, "current",
         "This is not your current password."),
        ({"current": PASSWORD, "password": "short", "again": "short"}, "password", "Use at least 12 characters."),
        ({"current": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD + "!"}, "again",
         "This is not the same as the new password above."),
        ({"current": PASSWORD, "password": PASSWORD, "again": PASSWORD}, "password",
         "This is your current password. Choose a new one."),
    ],
)  # fmt: skip
def test_a_change_that_will_not_do_is_said_next_to_the_field_and_changes_nothing(portal, form, field, words):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, here = account_with_session(portal, "agent")
    client = browser(portal, here)

    refused = change(client, form)

    page = text(refused)
    assert refused.status_code == 422 and f'id="{field}-error"' in page and words in page
    assert PASSWORD not in page and NEW_PASSWORD not in page  # no password is written back into a page
    assert handlers.load_session(svc, here) is not None
    assert sign_in(portal, agent["email"]).status_code == 303


def test_wrong_current_passwords_count_as_failed_sign_ins(portal):  # noqa: F811
    agent, here = account_with_session(portal, "agent")
    client = browser(portal, here)
    wrong = {"current": "a guess at the password", "password": NEW_PASSWORD, "again": NEW_PASSWORD}

    answers = [change(client, wrong).status_code for _ in range(6)]

    assert answers == [422] * 5 + [429]
    assert sign_in(portal, agent["email"]).status_code == 429  # the same lock as the sign-in page's


def test_the_password_page_is_for_signed_in_people(portal):  # noqa: F811
    answer = browser(portal).get("/account/password")

    assert answer.status_code == 302 and "/login?next=/account/password" in answer.headers["Location"]


def test_an_admin_gives_someone_a_new_password_link_from_the_accounts_page(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    admin_account, admin_session = account_with_session(portal, "admin")
    agent, agent_session = account_with_session(portal, "agent")
    admin = browser(portal, admin_session)
    page = text(admin.get("/admin/"))
    own_row = page[page.index('"break-anywhere">' + admin_account["email"]) :].split("</tr>")[0]
    assert "New password link" not in own_row  # one's own: "Your password"
    assert f'action="/admin/accounts/{agent["_id"]}/password-link"' in page

    shown = post(admin, f"/admin/accounts/{agent['_id']}/password-link", "/admin/", {})

    assert shown.status_code == 200
    token = re.search(r'<code class="copyable">\S+/password/(\S+)</code>', text(shown)).group(1)
    assert f"Give {agent['email']} this one-time link" in text(shown)
    assert sign_in(portal, agent["email"]).status_code == 303  # their password works until the link is used
    assert handlers.load_session(svc, agent_session) is not None
    post(browser(portal), f"/password/{token}", f"/password/{token}", {"password": NEW_PASSWORD})
    assert sign_in(portal, agent["email"], NEW_PASSWORD).status_code == 303
    refused = post(admin, f"/admin/accounts/{admin_account['_id']}/password-link", "/admin/", {})
    assert refused.status_code == 409 and "Change your own password on" in text(refused)
    handlers.set_disabled(svc, agent["_id"], True)
    refused = post(admin, f"/admin/accounts/{agent['_id']}/password-link", "/admin/", {})
    assert refused.status_code == 409 and "The account is disabled: enable it first." in text(refused)


def test_ticketflow_account_password_link_and_delete_from_the_command_line(portal, capsys):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    with served(portal) as url:
        assert cli.main(["account", "password-link", "--email", agent["email"].upper(), "--portal-url", url]) == 0
        out = capsys.readouterr().out
        assert f"a new password for {agent['email']} (one-time link, 3 days): " in out
        token = LINK.search(out).group(2)
        assert handlers.password_link_valid(svc, token)
        assert cli.main(["account", "password-link", "--email", "nobody@example.com", "--portal-url", url]) == 1
        assert "No account for nobody@example.com." in capsys.readouterr().err

        assert cli.main(["account", "delete", "--email", agent["email"], "--portal-url", url]) == 1
        assert "Disable the account first" in capsys.readouterr().err
        handlers.set_disabled(svc, agent["_id"], True)
        assert cli.main(["account", "delete", "--email", agent["email"], "--portal-url", url]) == 0
        assert f"account {agent['email']} deleted" in capsys.readouterr().out
        assert svc.store.account(agent["_id"]) is None


def test_the_api_gives_a_password_link_to_admins_only(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    client = portal.test_client()
    path = f"/api/accounts/{agent['email']}/password-link"
    as_agent = {"Authorization": "Bearer " + issue_token(svc.secret, "agent", agent_id="ada", ttl=60)}
    as_admin = {"Authorization": "Bearer " + issue_token(svc.secret, "admin", ttl=60)}

    assert client.post(path, headers=as_agent).status_code == 403
    answer = client.post(path, headers=as_admin)

    assert answer.status_code == 201 and answer.json["email"] == agent["email"] and "password_hash" not in answer.json
    assert handlers.password_link_valid(svc, answer.json["set_password_url"].rsplit("/", 1)[1])
    missing = client.post("/api/accounts/nobody@example.com/password-link", headers=as_admin)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
