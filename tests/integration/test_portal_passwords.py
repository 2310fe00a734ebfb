"""Passwords an agent or admin looks after alone: "Forgot your password?" emails a link to choose a new one (the
page answers the same whatever address was typed), and a signed-in person changes theirs with the current one; an
admin's new link; what the account's person is told. In-process, on the real portal database; the other services
are the stub of test_portal_search."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.portal import handlers, mailing, passwords, timers
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
    """A client address of this test's own (a /64 of 64 random bits): the per-client counts are kept for the hour
    across tests."""
    return f"fd00:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"


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
    assert passwords.send_reset(svc, the_request(svc, agent["email"])) == "sent"
    [email] = outbox
    assert email["to"] == agent["email"] and email["subject"] == "Choose a new password for the help desk"
    assert "works once, for 60 minutes" in email["text"] and "your password stays as it is" in email["text"]
    asking = mailing.wrapped(email["text"]).split("\n\n")[1].split("\n")  # as the email carries it
    assert all(50 < len(line) <= 72 for line in asking[:-1]), asking  # filled: no line broken short
    url, token = LINK.search(email["text"]).groups()
    assert url.startswith(svc.settings.portal_url)
    assert sign_in(portal, agent["email"]).status_code == 303  # asking changed nothing yet
    assert handlers.load_session(svc, session) is not None

    chosen = post(browser(portal), f"/password/{token}", f"/password/{token}", {"password": NEW_PASSWORD})

    assert chosen.status_code == 303 and "/login?notice=password-set&email=" in chosen.headers["Location"]
    signing_in = text(browser(portal).get(chosen.headers["Location"]))  # the address it was set for, filled in
    assert "Your password is set. Sign in with it." in signing_in
    assert re.search(rf'<input id="email" name="email" type="email" value="{re.escape(agent["email"])}"', signing_in)
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
    assert [passwords.send_reset(svc, the_request(svc, e)) for e in (nobody, disabled["email"])] == ["no-account"] * 2
    assert outbox == [] and svc.store.password_links.count_documents({"account_id": disabled["_id"]}) == 0


def test_the_worker_answers_the_requests_it_finds(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    admin, _ = account_with_session(portal, "admin")
    ask_for_link(portal, admin["email"])
    others = {"state": "pending", "email": {"$ne": admin["email"]}}  # other tests' requests: not this test's work
    svc.store.password_resets.update_many(others, {"$set": {"state": "no-account"}})

    assert timers.send_resets(svc) == 1

    assert [e["to"] for e in outbox] == [admin["email"]]
    assert the_request(svc, admin["email"])["state"] == "sent"


def test_a_link_that_could_not_be_emailed_does_not_stay_usable(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    ask_for_link(portal, agent["email"])

    def refused(*args):
        raise handlers.mailing.smtp.SmtpError("550 no such user")

    monkeypatch.setattr(mailing, "send", refused)
    with pytest.raises(handlers.mailing.smtp.SmtpError):
        passwords.send_reset(svc, the_request(svc, agent["email"]))
    assert svc.store.password_links.count_documents({"account_id": agent["_id"]}) == 0


def test_a_bad_address_is_answered_next_to_the_field(portal):  # noqa: F811
    refused = ask_for_link(portal, "ada at example")

    page = text(refused)
    assert refused.status_code == 422 and 'id="email-error"' in page
    assert "Enter the email address you sign in with, like ada@example.com." in page
    assert 'value="ada at example"' in page  # what was typed is kept


def test_an_address_gets_three_links_an_hour_from_one_network_ten_in_all_and_a_network_twenty(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    fixed = handlers.now().replace(minute=30, second=0, microsecond=0)  # never across the hour's end
    monkeypatch.setattr(passwords, "now", lambda: fixed)
    owner, stranger = f"owner-{uuid.uuid4().hex[:8]}@example.com", new_client_address()

    answers = [ask_for_link(portal, owner, stranger).status_code for _ in range(4)]

    assert answers == [303] * 3 + [429]  # a stranger's network uses up three of the owner's ten, not all
    page = text(ask_for_link(portal, owner, stranger))
    assert "Too many requests for a link. Please try again in 30 minutes." in page
    answers = [ask_for_link(portal, owner).status_code for _ in range(8)]  # each from a network of its own
    assert answers == [303] * 7 + [429]
    assert svc.store.password_resets.count_documents({"email": owner}) == 10
    same_64 = stranger.replace("::1", "::2")  # another address of the same /64: the same network
    answers = [ask_for_link(portal, f"guess-{n}-{uuid.uuid4().hex[:6]}@example.com", same_64).status_code
               for n in range(16)]  # fmt: skip
    assert answers == [303] * 15 + [429]  # 5 + 15 = 20 from that network, then no more
    monkeypatch.setattr(passwords, "now", lambda: fixed + timedelta(hours=1))
    assert ask_for_link(portal, owner, stranger).status_code == 303  # the next hour


def test_a_reset_clears_the_failed_sign_ins_that_locked_the_address(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    for _ in range(5):
        sign_in(portal, agent["email"], "a wrong guess of a password")
    locked = sign_in(portal, agent["email"])
    assert locked.status_code == 429 and "Too many failed sign-ins for this email. Try again in 15 minutes." in text(
        locked
    )
    assert "Or choose a new password with “Forgot your password?”: that ends the wait." in text(locked)  # it does:
    ask_for_link(portal, agent["email"])
    passwords.send_reset(svc, the_request(svc, agent["email"]))
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
        ({"current": "", "password": NEW_PASSWORD, "again": NEW_PASSWORD}, "current", "Enter your current password."),
        ({"current": PASSWORD, "password": NEW_PASSWORD, "again": ""}, "again", "Type the new password again."),
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


def test_a_new_password_too_short_and_typed_differently_again_is_said_both_at_once(portal):  # noqa: F811
    """A tester mended the length, then was told the second box differed: each problem is said at the first try."""
    _, here = account_with_session(portal, "agent")
    page = text(change(browser(portal, here), {"current": PASSWORD, "password": "short", "again": "shorter"}))
    assert 'id="password-error"' in page and "Use at least 12 characters." in page
    assert 'id="again-error"' in page and "This is not the same as the new password above." in page


def test_wrong_current_passwords_count_as_failed_sign_ins(portal):  # noqa: F811
    agent, here = account_with_session(portal, "agent")
    client = browser(portal, here)
    for _ in range(5):  # an empty box tries nothing: no failure counted
        assert change(client, {"current": "", "password": NEW_PASSWORD, "again": NEW_PASSWORD}).status_code == 422
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
    opened_again = admin.get(f"/admin/accounts/{agent['_id']}/password-link")  # Back to it: no new link, no 405
    assert opened_again.status_code == 303 and opened_again.headers["Location"].endswith("/admin/")
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
        assert f"a link to set a new password for {agent['email']} (one time, 3 days): " in out
        token = LINK.search(out).group(2)
        assert passwords.link_account(svc, token)
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
    assert passwords.link_account(svc, answer.json["set_password_url"].rsplit("/", 1)[1])
    missing = client.post("/api/accounts/nobody@example.com/password-link", headers=as_admin)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"


def test_a_link_made_before_the_account_was_disabled_is_void_once_it_is_enabled_again(portal):  # noqa: F811
    """A link minted in the moment the account was being disabled (the check read it enabled) ends when it is
    enabled again: enabling ends the account's links as disabling does."""
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    handlers.set_disabled(svc, agent["_id"], True)
    token = svc.store.new_password_link(agent["_id"], handlers.now(), handlers.PASSWORD_LINK_LIFE)  # the late mint
    assert passwords.link_account(svc, token) is None  # disabled: void

    handlers.set_disabled(svc, agent["_id"], False)

    assert passwords.link_account(svc, token) is None
    refused = post(browser(portal), f"/password/{token}", "/password/forgot", {"password": NEW_PASSWORD})
    assert refused.status_code == 404 and sign_in(portal, agent["email"], NEW_PASSWORD).status_code == 401


def test_links_and_sessions_made_before_a_password_change_are_void(portal, monkeypatch):  # noqa: F811
    """Made in the instant of a change (after it ended the account's links and sessions): the moment the password
    changed is kept, and anything older is refused, the session at its next check."""
    svc = portal.extensions["ticketflow.portal"]
    agent, here = account_with_session(portal, "agent")
    before = handlers.now() - timedelta(seconds=5)
    late_link = svc.store.new_password_link(agent["_id"], before, handlers.PASSWORD_LINK_LIFE)
    late_token, late_session = handlers.start_session(svc, agent)
    svc.store.sessions.update_one({"_id": late_session["_id"]}, {"$set": {"created_at": before}})
    svc.store.set_password_hash(agent["_id"], svc.hasher.hash(NEW_PASSWORD), handlers.now())

    assert passwords.link_account(svc, late_link) is None
    with pytest.raises(handlers.UserError):
        passwords.set_password(svc, late_link, "yet another password, longer")
    session = handlers.load_session(svc, late_token)  # checked at most once a minute, as disabling is
    svc.store.touch_session(session["_id"], handlers.now() - timedelta(minutes=2), session["expires_at"])
    assert handlers.load_session(svc, late_token) is None


def test_a_reset_asked_for_before_the_password_changed_sends_nothing(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, here = account_with_session(portal, "agent")
    ask_for_link(portal, agent["email"])  # then they remember it, and change it on "Your password"
    change(browser(portal, here), {"current": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD})

    assert passwords.send_reset(svc, the_request(svc, agent["email"])) == "superseded"

    assert outbox == [] and svc.store.password_links.count_documents({"account_id": agent["_id"]}) == 0


def test_the_person_is_told_when_their_password_changes_or_an_admin_makes_them_a_link(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, here = account_with_session(portal, "agent")
    admin, admin_session = account_with_session(portal, "admin")
    change(browser(portal, here), {"current": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD})
    post(browser(portal, admin_session), f"/admin/accounts/{agent['_id']}/password-link", "/admin/", {})
    notices = list(svc.store.account_notices.find({"email": agent["email"]}).sort("created_at", 1))

    assert [passwords.send_notice(svc, notice) for notice in notices] == ["sent", "sent"]

    assert [(e["to"], e["subject"]) for e in outbox] == [
        (agent["email"], "Your password on the help desk was changed"),
        (agent["email"], "A link to set your password on the help desk"),
    ]
    assert f"{svc.settings.portal_url}/password/forgot" in outbox[0]["text"]
    assert "Your password works until the link is used." in outbox[1]["text"]
    assert svc.store.account_notices.count_documents({"email": admin["email"]}) == 0


def test_a_notice_writes_its_time_in_the_desk_s_time_zone(portal, outbox, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    monkeypatch.setattr(svc, "settings", dataclasses.replace(svc.settings, time_zone="Europe/Madrid"))
    agent, here = account_with_session(portal, "agent")
    change(browser(portal, here), {"current": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD})
    [notice] = svc.store.account_notices.find({"email": agent["email"]})
    notice["at"] = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)  # winter: an hour ahead of UTC

    assert passwords.send_notice(svc, notice) == "sent"

    assert "was changed on 6 Dec 2026, 10:30 CET." in outbox[0]["text"]


def test_an_admin_s_link_for_an_account_without_a_password_says_it_sets_the_first(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    account, _ = handlers.create_account(svc, f"new-{uuid.uuid4().hex[:8]}@example.com", "agent", "ada", None)
    passwords.new_link(svc, account["_id"], "an admin")
    [notice] = svc.store.account_notices.find({"email": account["email"]})
    passwords.set_password(svc, svc.store.new_password_link(account["_id"], handlers.now(), timedelta(hours=1)),
                           NEW_PASSWORD)  # used before the worker sends the notice: still the first  # fmt: skip

    assert passwords.send_notice(svc, notice) == "sent"

    assert "to choose your password for your account on the help desk (it has none yet)" in outbox[0]["text"]
    assert "works until" not in outbox[0]["text"] and " new password" not in outbox[0]["text"]


def test_a_new_accounts_first_password_tells_nobody(portal, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    account, token = handlers.create_account(svc, f"new-{uuid.uuid4().hex[:8]}@example.com", "admin", None, None)

    passwords.set_password(svc, token, NEW_PASSWORD)

    assert svc.store.account_notices.count_documents({"email": account["email"]}) == 0


def test_a_new_admin_link_ends_the_earlier_ones(portal):  # noqa: F811
    """A reload of the page that showed a link makes another: the one shown before (pasted into a chat, say)
    is void."""
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    _, first = passwords.new_link(svc, agent["_id"], by="admin test")

    _, second = passwords.new_link(svc, agent["_id"], by="admin test")

    assert passwords.link_account(svc, first) is None and passwords.link_account(svc, second) is not None


def test_the_right_current_password_is_refused_while_the_address_is_locked(portal):  # noqa: F811
    agent, here = account_with_session(portal, "agent")
    for _ in range(5):
        sign_in(portal, agent["email"], "a wrong guess of a password")

    refused = change(browser(portal, here), {"current": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD})

    assert refused.status_code == 429 and "Too many wrong passwords. Try again in" in text(refused)
    assert "<title>Error: Your password" in text(refused)


def test_the_api_refuses_a_link_for_a_disabled_account_as_a_problem(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    handlers.set_disabled(svc, agent["_id"], True)
    as_admin = {"Authorization": "Bearer " + issue_token(svc.secret, "admin", ttl=60)}

    refused = portal.test_client().post(f"/api/accounts/{agent['email']}/password-link", headers=as_admin)

    assert refused.status_code == 409 and refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json["detail"] == "The account is disabled: enable it first."


@pytest.mark.parametrize("path", ["/password/forgot", "/account/password", "/account/sessions/others"])
def test_the_new_forms_are_refused_without_their_csrf_token(portal, path):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, here = account_with_session(portal, "agent")
    form = {"email": agent["email"], "current": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD}

    other, _ = handlers.start_session(svc, agent)

    refused = browser(portal, here).post(path, data=form)

    assert refused.status_code in (400, 403)
    assert handlers.load_session(svc, other) is not None  # no session ended
    assert svc.store.password_resets.count_documents({"email": agent["email"]}) == 0
    assert sign_in(portal, agent["email"]).status_code == 303  # the password did not change


def test_sign_out_everywhere_else_ends_the_other_sessions_and_keeps_this_one(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, here = account_with_session(portal, "agent")
    elsewhere = [handlers.start_session(svc, agent)[0] for _ in range(2)]
    _, someone_else = account_with_session(portal, "agent")
    client = browser(portal, here)
    page = text(client.get("/account/password"))
    assert "You are signed in on 2 other browsers or computers too." in page
    assert "<title>Your password · ticketflow</title>" in page

    done = post(client, "/account/sessions/others", "/account/password", {})

    assert done.status_code == 303 and done.headers["Location"].endswith(
        "/account/password?notice=signed-out-elsewhere"
    )
    page = text(client.get(done.headers["Location"]))
    assert "You are signed out everywhere else. This browser stays signed in." in page
    assert "You are signed in here only." in page
    assert [handlers.load_session(svc, token) for token in elsewhere] == [None, None]
    assert handlers.load_session(svc, here) is not None and handlers.load_session(svc, someone_else) is not None
    assert sign_in(portal, agent["email"]).status_code == 303  # the password did not change
