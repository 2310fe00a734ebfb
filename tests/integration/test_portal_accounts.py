"""Disabling an account (someone who left): its sessions end, it cannot sign in or set a password, and it can be
enabled again. In-process, on the real portal database; the other services are the stub of test_portal_search."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from werkzeug.serving import make_server

from services.intake import inbound_headers
from services.portal import devices, handlers, mailing, passwords
from services.portal.admin import welcome
from services.portal.client import Unreachable
from services.portal.pages import cookie_names
from shared import links
from shared.auth import decode_token, issue_token
from shared.clock import now
from shared.events import parse_time
from tests.integration.test_portal_search import PASSWORD, portal, stub, text  # noqa: F401
from ticketflow import cli

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def account_with_session(app, role: str = "agent", agent_id: str = "ada") -> tuple[dict, str]:
    """A new account (a password of its own) and the token of a session it signed in with."""
    svc = app.extensions["ticketflow.portal"]
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    account, _ = handlers.create_account(svc, email, role, agent_id if role == "agent" else None, PASSWORD)
    token, _ = handlers.start_session(svc, account)
    return account, token


def browser(app, token: str | None = None):
    client = app.test_client()
    if token:
        client.set_cookie(cookie_names(False)[0], token)
    return client


@contextmanager
def served(app) -> Iterator[str]:
    """The app on a real port of this machine (for the command line, which speaks HTTP): its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def post_form(client, path: str, page: str, form: dict):
    """POST a form as the browser sends it: with the CSRF token of the page it came from."""
    token = CSRF.search(text(client.get(page))).group(1)
    return client.post(path, data={**form, "csrf_token": token})


def sign_in(app, email: str, password: str = PASSWORD):
    return post_form(browser(app), "/login", "/login", {"email": email, "password": password})


def test_an_admin_disables_an_account_its_session_ends_and_its_sign_ins_are_refused(portal, stub):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent_id = f"ada-{uuid.uuid4().hex[:6]}"  # its own: another test's account of "ada" would share the agent
    stub.answers[f"/agents/{agent_id}"] = {"id": agent_id, "name": "Ada", "teams": ["network"], "available": False}
    _, admin_token = account_with_session(portal, "admin")
    agent, agent_token = account_with_session(portal, "agent", agent_id)
    admin = browser(portal, admin_token)

    done = post_form(admin, f"/admin/accounts/{agent['_id']}/disabled", "/admin/", {"disabled": "true"})

    assert done.status_code == 303 and done.headers["Location"].endswith("/admin/?notice=disabled-agent")
    assert handlers.load_session(svc, agent_token) is None  # ended at once, not at its expiry
    page = text(admin.get("/admin/?notice=disabled-agent"))
    assert "The account is disabled: its sessions ended and it cannot sign in." in page
    assert "Its agent is away now, so it gets no new tickets." in page  # a leaver's tickets: the next step
    row = page[page.index('"break-anywhere">' + agent["email"]) :].split("</tr>")[0]
    assert "No: disabled" in row and ">Enable<" in row
    refused = sign_in(portal, agent["email"])
    assert refused.status_code == 403 and "This account is disabled. Ask an admin to enable it again." in text(refused)
    wrong = sign_in(portal, agent["email"], "not the password at all")
    assert wrong.status_code == 401 and "disabled" not in text(wrong)  # said only to whoever knows the password

    post_form(admin, f"/admin/accounts/{agent['_id']}/disabled", "/admin/", {"disabled": "false"})

    assert svc.store.account(agent["_id"]).get("disabled_at") is None
    assert sign_in(portal, agent["email"]).status_code == 303  # signs in again, with the same password


def test_an_admin_cannot_disable_their_own_account(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    admin_account, admin_token = account_with_session(portal, "admin")
    admin = browser(portal, admin_token)
    page = text(admin.get("/admin/"))
    own_row = page[page.index('"break-anywhere">' + admin_account["email"]) :].split("</tr>")[0]
    assert "(you)" in own_row and "Disable" not in own_row  # no button to do it

    refused = post_form(admin, f"/admin/accounts/{admin_account['_id']}/disabled", "/admin/", {"disabled": "true"})

    assert refused.status_code == 409 and "You cannot disable your own account. Ask another admin." in text(refused)
    assert handlers.load_session(svc, admin_token) is not None


def test_a_session_that_slipped_past_the_disabling_ends_at_its_next_check(portal):  # noqa: F811
    """A sign-in that read the account just before it was disabled: its session ends within a minute."""
    svc = portal.extensions["ticketflow.portal"]
    agent, token = account_with_session(portal, "agent")
    svc.store.set_disabled(agent["_id"], now())  # as if the session were made after end_sessions_of ran
    session = handlers.load_session(svc, token)
    assert session is not None  # checked at most once a minute, as the session's sliding expiry is
    svc.store.touch_session(session["_id"], now() - timedelta(minutes=2), session["expires_at"])

    assert handlers.load_session(svc, token) is None
    assert svc.store.sessions.find_one({"_id": session["_id"]}) is None


def test_a_disabled_accounts_password_links_and_welcome_email_are_void(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    account, link = handlers.create_account(svc, f"new-{uuid.uuid4().hex[:8]}@example.com", "admin", None, None)
    assert passwords.link_account(svc, link) is not None

    handlers.set_disabled(svc, account["_id"], True)

    assert passwords.link_account(svc, link) is None
    assert welcome.send_welcome(svc, {"account_id": account["_id"], "email": account["email"]}) == "skipped"
    assert svc.store.password_links.count_documents({"account_id": account["_id"]}) == 0  # no new link minted


def test_the_welcome_email_greets_the_agent_by_name_and_is_dated_with_an_id_of_its_own(portal, monkeypatch):  # noqa: F811
    """Mail clients show an email without Date undated, and spam filters mark one without Message-ID down."""
    svc = portal.extensions["ticketflow.portal"]
    account, _ = handlers.create_account(svc, f"new-{uuid.uuid4().hex[:8]}@example.com", "agent", "ada", None)
    sent = []
    monkeypatch.setattr(mailing.smtp, "send_email", lambda server, message: sent.append(message))

    for _ in range(2):
        waiting = {"account_id": account["_id"], "email": account["email"], "name": "Ada\nLovelace"}
        assert welcome.send_welcome(svc, waiting) == "sent"

    first, second = sent
    assert first.get_content().startswith("Hello Ada Lovelace,\n\nAn admin has added you")
    lines = first.get_content().splitlines()  # at most 72 characters, as notify's: only a link may be longer
    assert all(len(line) <= 72 or " " not in line for line in lines) and any("/password/" in line for line in lines)
    assert abs((parsedate_to_datetime(first["Date"]) - now()).total_seconds()) < 600
    assert first["Message-ID"] != second["Message-ID"] and first["Message-ID"].endswith("@ticketflow>")
    assert not inbound_headers.ticket_ids((first["Message-ID"].strip("<>"),))  # names no ticket: a reply opens one


def test_disabling_twice_keeps_the_first_date_and_an_unknown_account_is_not_found(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    first = handlers.set_disabled(svc, agent["_id"], True)["disabled_at"]
    assert handlers.set_disabled(svc, agent["_id"], True)["disabled_at"] == first
    try:
        handlers.set_disabled(svc, "no-such-account", True)
    except handlers.UserError as exc:
        assert exc.status == 404
    else:
        raise AssertionError("an unknown account was disabled")


def test_the_api_disables_and_enables_by_email_for_admins_only(portal, stub):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    ada = f"ada-{uuid.uuid4().hex[:6]}"  # this agent's one account
    stub.answers[f"/agents/{ada}"] = {"id": ada, "name": "Ada", "teams": ["network"], "available": False}
    agent, token = account_with_session(portal, "agent", ada)
    secret = os.environ["TICKETFLOW_JWT_SECRET"]
    admin = {"Authorization": f"Bearer {issue_token(secret, 'admin', ttl=60, sub='ops')}"}
    client = browser(portal)
    path = f"/api/accounts/{agent['email'].upper()}"  # as typed: the address's case does not matter

    answer = client.patch(path, json={"disabled": True}, headers=admin)

    assert answer.status_code == 200
    body = answer.get_json()
    assert body["email"] == agent["email"] and body["disabled_at"] and "password_hash" not in body
    assert all(parse_time(body[key]) and body[key].endswith("Z") for key in ("created_at", "disabled_at"))
    assert handlers.load_session(svc, token) is None
    left = [(c["method"], c["path"], c["json"]) for c in stub.calls if c["method"] == "PATCH"]
    assert left == [("PATCH", f"/agents/{ada}", {"available": False})]  # its agent takes no new tickets
    assert decode_token(secret, stub.calls[-1]["token"]).sub == "ops"  # with the admin's own rights
    enabled = client.patch(path, json={"disabled": False}, headers=admin).get_json()
    assert "disabled_at" not in enabled

    unknown = client.patch("/api/accounts/nobody@example.com", json={"disabled": True}, headers=admin)
    assert unknown.status_code == 404 and unknown.headers["Content-Type"] == "application/problem+json"
    for spelled in ("maybe", "true", 1):  # a JSON true or false, nothing that looks like one
        invalid = client.patch(path, json={"disabled": spelled}, headers=admin)
        assert invalid.status_code == 422 and "disabled" in invalid.get_json()["errors"], spelled
    assert "disabled_at" not in svc.store.account(agent["_id"])
    agent_token = issue_token(secret, "agent", agent_id="ada", ttl=60)
    forbidden = client.patch(path, json={"disabled": True}, headers={"Authorization": f"Bearer {agent_token}"})
    assert forbidden.status_code == 403 and svc.store.account(agent["_id"]).get("disabled_at") is None


class Intake:
    """intake as the portal's form calls it: its topics, and each ticket opened (one per form key)."""

    def __init__(self) -> None:
        self.opened: dict[str, dict] = {}
        self.attached: dict[str, list[str]] = {}  # the file names sent, by Idempotency-Key

    def get(self, service, path, actor, **params):
        if path == "/topics":
            return {"items": [{"id": "general", "name": "General"}]}
        if path.endswith("/attachments"):
            return {"items": []}
        return next(ticket for ticket in self.opened.values() if path == f"/tickets/{ticket['id']}")

    def post(self, service, path, actor, body, headers=None, **kwargs):
        assert (service, path) == ("intake", "/tickets")
        key = headers["Idempotency-Key"]
        number = 100000 + len(self.opened)
        ticket = {"id": f"t-{uuid.uuid4().hex[:12]}", "number": number, "status": "new", "thread": [],
                  "created_at": "2026-12-01T04:00:00.000Z", **body}  # fmt: skip
        return self.opened.setdefault(key, ticket)

    def call(self, service, method, path, actor, files=(), headers=None, **kwargs):
        assert (service, method) == ("intake", "POST") and path.endswith("/attachments")
        self.attached.setdefault(headers["Idempotency-Key"], [name for _, (name, *_) in files])
        return {"items": []}


def test_one_client_address_opens_so_many_requests_an_hour_with_the_form(portal, monkeypatch):  # noqa: F811
    """Each request mails a receipt to the address typed in: a script may not mail the world from the desk."""
    svc = portal.extensions["ticketflow.portal"]
    intake = Intake()
    monkeypatch.setattr(svc, "services", intake)
    monkeypatch.setattr(svc, "settings", dataclasses.replace(svc.settings, portal_tickets_per_client_hour=2))
    at = handlers.now()
    monkeypatch.setattr(handlers, "now", lambda: at)  # one hour's window for the whole test, whenever it runs
    address = f"10.{uuid.uuid4().int % 250}.0.7"  # this test's own: the window is the portal database's

    def send(n: int, client: str):
        browser = portal.test_client()
        home = text(browser.get("/", environ_base={"REMOTE_ADDR": client}))
        form = {
            name: re.search(rf'name="{name}" value="([^"]+)"', home).group(1) for name in ("csrf_token", "form_key")
        }
        form |= {
            "name": "Ana",
            "email": f"victim{n}@example.com",
            "topic": "general",
            "subject": "Hi",
            "description": "x",
        }
        return browser.post("/tickets", data=form, environ_base={"REMOTE_ADDR": client})

    assert [send(n, address).status_code for n in range(2)] == [303, 303]
    refused = send(2, address)

    assert refused.status_code == 429
    assert "You have sent a lot of requests in a short time. Please try again in a while." in text(refused)
    assert 'value="victim2@example.com"' in text(refused)  # what was typed is kept
    assert len(intake.opened) == 2  # the third was never sent to intake
    assert send(3, f"{address}1").status_code == 303  # another address is not held up


def test_ticketflow_account_disable_and_enable_from_the_command_line(portal, capsys):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, token = account_with_session(portal, "agent")
    with served(portal) as url:
        assert cli.main(["account", "disable", "--email", agent["email"], "--portal-url", url]) == 0
        assert f"account {agent['email']} (agent) disabled" in capsys.readouterr().out
        assert svc.store.account(agent["_id"])["disabled_at"] and handlers.load_session(svc, token) is None

        assert cli.main(["account", "enable", "--email", agent["email"], "--portal-url", url]) == 0
        assert svc.store.account(agent["_id"]).get("disabled_at") is None

        assert cli.main(["account", "disable", "--email", "nobody@example.com", "--portal-url", url]) == 1
        assert "No account for nobody@example.com." in capsys.readouterr().err


def test_an_agent_account_is_for_an_agent_assignment_has(portal, stub):  # noqa: F811
    _, admin_token = account_with_session(portal, "admin")
    admin = browser(portal, admin_token)
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    ada = f"ada-{ghost}"  # an agent with no account yet
    stub.answers[f"/agents/{ada}"] = {"id": ada, "name": "Ada", "teams": ["network"], "lead_of": []}
    stub.answers["/agents"] = {"items": [stub.answers[f"/agents/{ada}"]]}

    refused = post_form(admin, "/admin/accounts", "/admin/", {"email": f"{ghost}@example.com", "role": "agent",
                                                              "agent_id": ghost})  # fmt: skip

    assert refused.status_code == 422
    assert f"No agent has the id {ghost}. To add a new agent, use Agents: it adds the account too." in text(refused)
    both = post_form(admin, "/admin/accounts", "/admin/", {"email": "bad@", "role": "agent", "agent_id": ghost})
    said = text(both)  # the email's mistake said with the unknown agent, not after it is mended
    assert both.status_code == 422 and "No agent has the id" in said and 'id="email-error"' in said
    added = post_form(admin, "/admin/accounts", "/admin/", {"email": f"ada-{ghost}@example.com", "role": "agent",
                                                            "agent_id": ada})  # fmt: skip
    assert added.status_code == 200 and f"Account ada-{ghost}@example.com added." in text(added)
    again = post_form(admin, "/admin/accounts", "/admin/", {"email": f"ada-{ghost}@example.com", "role": "agent",
                                                            "agent_id": ada})  # fmt: skip
    assert again.status_code == 409  # a reload sends the form again: the way to a new link is said with it
    assert "An account with this email exists." in text(again) and "use “New password link” on its row" in text(again)
    second = post_form(admin, "/admin/accounts", "/admin/", {"email": f"boss-{ghost}@example.com", "role": "admin",
                                                             "agent_id": ada})  # fmt: skip  # it would act as Ada
    assert second.status_code == 409 and 'id="agent_id-error"' in text(second)
    assert f"The account ada-{ghost}@example.com signs in as the agent {ada} already: each agent has one account." \
        in text(second)  # fmt: skip
    assert not portal.extensions["ticketflow.portal"].store.account_by_email(f"boss-{ghost}@example.com")
    assert "use “New password link” on its row" not in text(second)  # that hint is for an email taken


def test_an_agent_s_account_never_signs_in_with_another_agent_s_address(portal, stub):  # noqa: F811
    """It would sign in as one agent while that address's emails go to another (the admin tester's find)."""
    _, admin_token = account_with_session(portal, "admin")
    admin = browser(portal, admin_token)
    run = uuid.uuid4().hex[:6]
    ana, bea = f"ana-{run}", f"bea-{run}"
    stub.answers[f"/agents/{bea}"] = {"id": bea, "name": "Bea", "email": f"{bea}@example.com", "teams": []}
    stub.answers["/agents"] = {"items": [{"id": ana, "name": "Ana", "email": f"{ana}@example.com", "teams": []},
                                         stub.answers[f"/agents/{bea}"]]}  # fmt: skip

    refused = post_form(admin, "/admin/accounts", "/admin/", {"email": f"ANA-{run}@example.com", "role": "agent",
                                                              "agent_id": bea})  # fmt: skip

    assert refused.status_code == 409 and 'id="email-error"' in text(refused)
    assert f"Ana ({ana}) has this email address: an agent&#39;s account signs in with its own." in text(refused)
    assert "use “New password link” on its row" not in text(refused)
    assert not portal.extensions["ticketflow.portal"].store.account_by_email(f"ana-{run}@example.com")
    secret = os.environ["TICKETFLOW_JWT_SECRET"]
    token = {"Authorization": f"Bearer {issue_token(secret, 'admin', ttl=60, sub='ops')}"}
    body = {"email": f"ana-{run}@example.com", "role": "agent", "agent_id": bea}  # the API (and the CLI) alike
    api = browser(portal).post("/api/accounts", json=body, headers=token)
    assert api.status_code == 409 and api.headers["Content-Type"] == "application/problem+json"
    assert f"Ana ({ana}) has this email address" in api.get_json()["errors"]["email"][0]
    added = post_form(admin, "/admin/accounts", "/admin/", {"email": f"{bea}@example.com", "role": "agent",
                                                            "agent_id": bea})  # fmt: skip
    assert added.status_code == 200, text(added)[:300]


def test_the_same_request_sent_again_from_the_same_browser_opens_no_second_ticket(portal, monkeypatch):  # noqa: F811
    """Back, then Send again: the page came back with a new form key, the same words; one ticket."""
    svc = portal.extensions["ticketflow.portal"]
    intake = Intake()
    monkeypatch.setattr(svc, "services", intake)
    browser = portal.test_client()

    def send(description: str):
        home = text(browser.get("/"))
        form = {
            name: re.search(rf'name="{name}" value="([^"]+)"', home).group(1) for name in ("csrf_token", "form_key")
        }
        form |= {
            "name": "Ana",
            "email": "ana@example.com",
            "topic": "general",
            "subject": "VPN",
            "description": description,
        }
        return browser.post("/tickets", data=form)

    first = send("It drops every hour.")
    again = send("It  drops every hour. ")  # the same words, as a browser refills them

    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"].replace("notice=opened", "notice=sent-before")
    assert len(intake.opened) == 1
    shown = text(browser.get(again.headers["Location"]))
    assert "You sent this request a moment ago: here it is." in shown
    assert send("It drops every hour, and the printer too.").status_code == 303 and len(intake.opened) == 2


def test_the_same_request_with_the_same_files_chosen_again_opens_no_second_ticket(portal, monkeypatch):  # noqa: F811
    """Back, then Send again: a browser keeps the words but not the files; the person chooses them again. The
    same words with the same files (names and sizes) are the same request; other files make another one."""
    svc = portal.extensions["ticketflow.portal"]
    intake = Intake()
    monkeypatch.setattr(svc, "services", intake)
    browser = portal.test_client()

    def send(*files: tuple[str, bytes]):
        form = _form_of(text(browser.get("/")))
        form |= {"name": "Ana", "email": "ana@example.com", "topic": "general", "subject": "VPN", "description": "Log."}
        form["files"] = [(io.BytesIO(content), name) for name, content in files]
        return browser.post("/tickets", data=form, content_type="multipart/form-data")

    first = send(("log.txt", b"12345"))
    again = send(("log.txt", b"abcde"))  # the same file chosen again: its name and size

    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"].replace("notice=opened", "notice=sent-before")
    assert len(intake.opened) == 1 and list(intake.attached.values()) == [["log.txt"]]
    assert send(("log.txt", b"123456")).headers["Location"].endswith("notice=opened")  # another file: a new one
    assert send(("log.txt", b"12345"), ("b.png", b"x")).headers["Location"].endswith("notice=opened")
    assert send().headers["Location"].endswith("notice=opened")  # no file: not the request sent with one
    assert len(intake.opened) == 4


def test_a_request_form_whose_token_went_out_of_date_comes_back_filled_in(portal, monkeypatch):  # noqa: F811
    """The browser lost its cookies while the request was being written (closed, a phone's tab reloaded): nothing is
    sent, and the form comes back with what was typed, to send again. A form from another site comes back empty."""
    svc = portal.extensions["ticketflow.portal"]
    intake = Intake()
    monkeypatch.setattr(svc, "services", intake)
    browser = portal.test_client()
    form = _form_of(text(browser.get("/")))
    form |= {"name": "Ana", "email": "ana@example.com", "topic": "general", "subject": "VPN <b>drops</b>",
             "description": "Every hour."}  # fmt: skip
    browser.delete_cookie(cookie_names(False)[1])  # the forms' cookie of a browser without a session

    ours = {"Sec-Fetch-Site": "same-origin"}  # what a browser says of a form of this site
    stale = browser.post("/tickets", data=form, headers=ours)

    assert stale.status_code == 403 and intake.opened == {}
    page = text(stale)
    assert "Your request was not sent: this page had expired." in page and "This form has expired" not in page
    assert 'value="VPN &lt;b&gt;drops&lt;/b&gt;"' in page and "Every hour." in page
    assert f'name="form_key" value="{form["form_key"]}"' in page  # sent again: still the one request
    sent = browser.post("/tickets", data=form | {"csrf_token": _csrf(page)})
    assert sent.status_code == 303 and len(intake.opened) == 1

    for elsewhere in ({"Sec-Fetch-Site": "cross-site"}, {}):  # another site's, or a browser that does not say
        answer = text(browser.post("/tickets", data=form | {"csrf_token": "x"}, headers=elsewhere))
        assert "Your request was not sent: the form had expired." in answer, elsewhere
        assert "Every hour." not in answer and "&lt;b&gt;" not in answer and form["form_key"] not in answer
    assert len(intake.opened) == 1


def test_a_request_being_written_still_sends_after_another_tab_opened_an_emailed_link(portal, monkeypatch):  # noqa: F811
    """Tab one: the request form, half written. Tab two: a link from a receipt, which starts the browser's session.
    The form of tab one was made before the session: it still sends."""
    svc = portal.extensions["ticketflow.portal"]
    intake = Intake()
    monkeypatch.setattr(svc, "services", intake)
    browser = portal.test_client()
    earlier = intake.post("intake", "/tickets", None, {"requester": {"email": "ana@example.com"}},
                          headers={"Idempotency-Key": "earlier-request"})  # fmt: skip
    form = _form_of(text(browser.get("/")))
    form |= {"name": "Ana", "email": "ana@example.com", "topic": "general", "subject": "VPN", "description": "Drops."}
    token = links.mint_link_token(os.environ["TICKETFLOW_JWT_SECRET"], earlier["id"], "ana@example.com", 30)

    assert browser.get(f"/t/{token}").status_code == 303  # the other tab: its own token over http
    ours = {"Sec-Fetch-Site": "same-origin"}
    again = browser.post("/tickets", data=form, headers=ours)
    assert again.status_code == 403 and "Your request was not sent: this page had expired." in text(again)

    browser = portal.test_client()  # over https, whose __Host- cookie no other site sets: the session keeps it
    monkeypatch.setitem(portal.extensions, "ticketflow.forms_token", portal.jinja_env.globals["csrf_token"])
    form |= _form_of(text(browser.get("/")))
    assert browser.get(f"/t/{token}").status_code == 303
    sent = browser.post("/tickets", data=form)
    assert sent.status_code == 303 and sent.headers["Location"].endswith("notice=opened") and len(intake.opened) == 2
    assert browser.get(sent.headers["Location"]).status_code == 200  # this browser has both requests now
    assert browser.get(f"/tickets/{earlier['id']}").status_code == 200


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _form_of(home: str) -> dict:
    """The hidden fields of the home page's request form: its token and its form key."""
    return {name: re.search(rf'name="{name}" value="([^"]+)"', home).group(1) for name in ("csrf_token", "form_key")}


def test_the_same_form_sent_again_after_the_owner_confirmed_gives_no_way_back_in(portal, monkeypatch):  # noqa: F811
    """Whoever typed someone's address lost the request when its owner followed an emailed link; sending the same
    form again (intake answers the same ticket) must not give it back."""
    svc = portal.extensions["ticketflow.portal"]
    intake = Intake()
    monkeypatch.setattr(svc, "services", intake)
    typist = portal.test_client()
    form = _form_of(text(typist.get("/")))
    form |= {"name": "Ana", "email": f"ana-{uuid.uuid4().hex[:6]}@example.com", "topic": "general",
             "subject": "VPN", "description": "Drops."}  # fmt: skip
    assert typist.post("/tickets", data=form).status_code == 303
    [ticket] = intake.opened.values()
    token = links.mint_link_token(os.environ["TICKETFLOW_JWT_SECRET"], ticket["id"], ticket["requester"]["email"], 30)
    owner = portal.test_client()
    assert owner.get(f"/t/{token}").status_code == 303  # the owner, from the receipt...
    assert owner.get(f"/tickets/{ticket['id']}/live?shown=-&n=0&s=new").status_code == 200  # ...reading the page

    fresh = re.search(r'name="csrf_token" value="([^"]+)"', text(typist.get("/"))).group(1)  # its session's now
    again = typist.post("/tickets", data={**form, "csrf_token": fresh})  # the old form key: intake's same ticket

    assert again.status_code == 200
    assert "You sent this request already. Open it from the link in the email we sent you." in text(again)
    assert typist.get(f"/tickets/{ticket['id']}").status_code == 404  # still no way in without the link


def test_a_form_sent_again_after_the_device_forgot_its_requests_opens_nothing(portal, monkeypatch):  # noqa: F811
    """Back to the form's page on a shared computer, then Send (or reload it): intake would answer the same ticket
    for the same key, and the next person would read the previous one's request."""
    intake = Intake()
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", intake)
    browser = portal.test_client()
    form = _form_of(text(browser.get("/")))
    form |= {"name": "Ana", "email": f"ana.{uuid.uuid4().hex[:6]}@example.com", "topic": "general",
             "subject": "Salary slip", "description": "Account 12345 does not load."}  # fmt: skip
    opened = browser.post("/tickets", data=form)
    assert opened.status_code == 303
    ticket_id = opened.headers["Location"].split("/tickets/")[1].split("?")[0]
    mine = text(browser.get("/requests"))
    forgot = browser.post(
        "/forget", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', mine).group(1)}
    )
    assert forgot.status_code == 303

    next_person = browser  # the same browser, its cookie gone: a new session from here on
    page = text(next_person.get("/"))
    again = next_person.post(
        "/tickets", data={**form, "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)}
    )

    assert again.status_code == 409
    assert "sent from this device before it forgot its requests" in text(again)
    assert "Account 12345" not in text(again) and form["email"] not in text(again)  # nothing of it shown
    assert next_person.get(f"/tickets/{ticket_id}").status_code == 404
    assert len(intake.opened) == 1


def test_a_disabled_account_can_be_deleted_for_good_and_an_enabled_one_cannot(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, token = account_with_session(portal, "agent")
    secret = os.environ["TICKETFLOW_JWT_SECRET"]
    admin = {"Authorization": f"Bearer {issue_token(secret, 'admin', ttl=60, sub='ops')}"}
    client = browser(portal)
    path = f"/api/accounts/{agent['email']}"

    enabled = client.delete(path, headers=admin)
    assert enabled.status_code == 409 and "Disable the account first" in enabled.get_json()["detail"]
    assert svc.store.account(agent["_id"]) is not None and handlers.load_session(svc, token) is not None
    agent_token = issue_token(secret, "agent", agent_id="ada", ttl=60)
    assert client.delete(path, headers={"Authorization": f"Bearer {agent_token}"}).status_code == 403

    assert client.patch(path, json={"disabled": True}, headers=admin).status_code == 200
    deleted = client.delete(path, headers=admin)

    assert deleted.status_code == 204 and svc.store.account(agent["_id"]) is None
    assert svc.store.account_by_email(agent["email"]) is None
    assert client.delete(path, headers=admin).status_code == 404


def test_an_admin_deletes_a_disabled_account_from_the_page_but_never_their_own(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    me, my_token = account_with_session(portal, "admin")
    other, _ = account_with_session(portal, "agent")
    page = browser(portal, my_token)
    handlers.set_disabled(svc, other["_id"], True)
    assert f"Yes, delete {other['email']}" in text(page.get("/admin/"))

    deleted = post_form(page, f"/admin/accounts/{other['_id']}/delete", "/admin/", {})

    assert deleted.status_code == 303 and deleted.headers["Location"].endswith("notice=deleted")
    assert svc.store.account(other["_id"]) is None and other["email"] not in text(page.get("/admin/"))
    try:
        handlers.delete_account(svc, me["_id"], by={"_id": me["_id"]})  # as the page passes who acts
    except handlers.UserError as exc:
        assert exc.status == 409 and "your own account" in exc.message
    else:
        raise AssertionError("an admin deleted their own account")
    assert svc.store.account(me["_id"]) is not None


def test_an_unknown_email_is_checked_against_a_password_hash_as_a_known_one_is(portal, monkeypatch):  # noqa: F811
    """The same answer in the same time: a sign-in with an email nobody has runs argon2 once, as a wrong password
    does (without it, the answer came 25 times sooner and told which emails have accounts)."""
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    checked = []
    real = svc.hasher

    class Counting:
        def verify(self, stored, password):
            checked.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(svc, "hasher", Counting())

    unknown = sign_in(portal, f"nobody-{uuid.uuid4().hex[:8]}@example.com", "not the password at all")
    wrong = sign_in(portal, agent["email"], "not the password at all")

    assert unknown.status_code == wrong.status_code == 401
    assert text(unknown).count("The email or password is not right.") == 1
    assert len(checked) == 2 and checked[0] == handlers._DUMMY_HASH and checked[1] == agent["password_hash"]


def test_a_sign_in_with_an_empty_field_says_which_next_to_it_and_counts_no_attempt(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")

    both = sign_in(portal, "  ", "")
    no_password = sign_in(portal, agent["email"], "")

    assert both.status_code == no_password.status_code == 422
    page = text(both)
    assert (
        '<p class="field-error" id="email-error"><span class="visually-hidden">Error:</span> Enter your email ' in page
    )
    assert (
        '<p class="field-error" id="password-error"><span class="visually-hidden">Error:</span> Enter your pass' in page
    )
    assert "not right" not in page and "<title>Error: Sign in" in page
    page = text(no_password)
    assert "Enter your password." in page and "Enter your email address." not in page
    assert f'value="{agent["email"]}"' in page  # what was typed stays
    assert svc.store.failures.find_one({"_id": agent["email"]}) is None  # nothing was checked: no attempt counted


def test_the_accounts_list_says_which_never_set_a_password(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    _, admin_token = account_with_session(portal, "admin")
    invited, _ = handlers.create_account(svc, f"new-{uuid.uuid4().hex[:8]}@example.com", "agent", "ada", None)
    with_password, _ = account_with_session(portal, "agent")

    page = text(browser(portal, admin_token).get("/admin/"))

    row = lambda account: page[page.index('"break-anywhere">' + account["email"]) :].split("</tr>")[0]  # noqa: E731
    assert "Not yet: no password set" in row(invited)
    assert "Not yet" not in row(with_password) and ">Yes<" in row(with_password)
    assert all("password_hash" not in account for account in svc.store.list_accounts())


def device_of(app, client, email: str):
    """The device cookie the browser holds for the email (services/portal/devices.py)."""
    svc = app.extensions["ticketflow.portal"]
    return client.get_cookie(devices.cookie_name(svc.secret, email, False))


def signed_in_once(app, email: str):
    """A browser that signed in to the account, then signed out: it keeps its device cookie."""
    own = browser(app)
    assert post_form(own, "/login", "/login", {"email": email, "password": PASSWORD}).status_code == 303
    own.post("/logout", data={"csrf_token": CSRF.search(text(own.get("/logout"))).group(1)})
    return own


def test_an_attempt_refused_while_locked_in_the_same_millisecond_as_the_fifth_failure_leaves_it_counted(
    portal,  # noqa: F811
    monkeypatch,
):
    """A race hunter's find: the fifth failure and a parallel attempt that found the email locked were stored at the
    same millisecond, and dropping the refused one pulled both: the next guess saw four failures and had its
    password checked. Each attempt is stored as itself; only the refused one goes."""
    svc = portal.extensions["ticketflow.portal"]
    email = f"locked-{uuid.uuid4().hex[:8]}@example.com"
    same = now().replace(microsecond=123000)
    monkeypatch.setattr(handlers, "now", lambda: same)  # every attempt in one millisecond, as parallel ones may be

    def attempt() -> int:
        try:
            handlers.count_attempt(svc, (email, email), "Too many failed sign-ins for this email.")
        except handlers.UserError as refused:
            return refused.status
        return 200  # counted as failed, and its password would be checked

    assert [attempt() for _ in range(5)] == [200] * 5  # four failures before each: none locked yet
    assert [attempt() for _ in range(3)] == [429] * 3  # the fifth locked it, and stays counted
    (doc,) = svc.store.failures.find({"_id": email})
    assert len(doc["times"]) == 5


def test_guesses_from_elsewhere_lock_the_email_but_not_a_browser_that_signed_in_to_it_before(portal):  # noqa: F811
    agent, _ = account_with_session(portal, "agent")
    own = signed_in_once(portal, agent["email"])
    cookie = device_of(portal, own, agent["email"])
    assert cookie is not None and cookie.http_only and cookie.max_age == 365 * 86400 and cookie.same_site == "Lax"

    for _ in range(6):  # someone else's guesses: the email is locked for any browser it does not know
        guessed = sign_in(portal, agent["email"], "a guess of a password")
    assert guessed.status_code == 429 and "Too many failed sign-ins for this email." in text(guessed)
    assert sign_in(portal, agent["email"]).status_code == 429  # the right password, from a browser it does not know

    assert post_form(own, "/login", "/login", {"email": agent["email"], "password": PASSWORD}).status_code == 303

    forged = browser(portal)
    issued, nonce, _ = cookie.value.split(".")
    forged.set_cookie(cookie.key, f"{issued}.{nonce}.{'0' * 32}")
    assert post_form(forged, "/login", "/login", {"email": agent["email"], "password": PASSWORD}).status_code == 429
    other = browser(portal)  # another account's good cookie, under this email's name, is no device of this one
    someone, _ = account_with_session(portal, "agent")
    other.set_cookie(cookie.key, device_of(portal, signed_in_once(portal, someone["email"]), someone["email"]).value)
    assert post_form(other, "/login", "/login", {"email": agent["email"], "password": PASSWORD}).status_code == 429


def test_a_known_browser_that_fails_as_often_is_locked_in_turn_and_a_reset_frees_it(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    agent, _ = account_with_session(portal, "agent")
    own = signed_in_once(portal, agent["email"])
    guess = {"email": agent["email"], "password": "a guess"}

    answers = [post_form(own, "/login", "/login", guess).status_code for _ in range(6)]

    assert answers == [401] * 5 + [429]
    locked = post_form(own, "/login", "/login", {"email": agent["email"], "password": PASSWORD})
    assert locked.status_code == 429 and "Too many failed sign-ins from this browser." in text(locked)
    assert sign_in(portal, agent["email"]).status_code == 303  # the email itself is not locked by them
    for _ in range(5):
        post_form(own, "/login", "/login", guess)
    token = svc.store.new_password_link(agent["_id"], now(), timedelta(hours=1))
    passwords.set_password(svc, token, "a new password, long enough")  # "Forgot your password?" ends the wait
    assert post_form(own, "/login", "/login", {**guess, "password": "a new password, long enough"}).status_code == 303


def test_failed_sign_ins_from_one_network_are_capped_whatever_the_emails_before_any_password_is_checked(
    portal,  # noqa: F811
    monkeypatch,
):
    """One password tried against every account (each attempt an argon2 check): the per-email lock never sees
    more than one failure an email. The client's failures are capped too; right passwords do not count; a browser
    that signed in to an account before passes; another network is not held up."""
    svc = portal.extensions["ticketflow.portal"]
    monkeypatch.setattr(svc, "settings", dataclasses.replace(svc.settings, portal_failed_sign_ins_per_client_hour=3))
    # the count's window is the clock hour: all of it in one, however slow (and never before now: a device's token
    # made now would be one from the future)
    mid_hour = now().replace(minute=30, second=0) + timedelta(hours=1 if now().minute >= 30 else 0)
    monkeypatch.setattr(handlers, "now", lambda: mid_hour)
    agent, _ = account_with_session(portal, "agent")
    network = {"REMOTE_ADDR": f"10.7.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"}

    def attempt(email: str, password: str = "Spring2026!", client=None, where=None):
        client = client or browser(portal)
        token = CSRF.search(text(client.get("/login"))).group(1)
        form = {"email": email, "password": password, "csrf_token": token}
        return client.post("/login", data=form, environ_base=where or network)

    checked = []
    matches = handlers.password_matches
    monkeypatch.setattr(handlers, "password_matches", lambda *args: checked.append(1) or matches(*args))
    own = browser(portal)
    assert attempt(agent["email"], PASSWORD, client=own).status_code == 303  # a right password counts no failure
    own.post("/logout", data={"csrf_token": CSRF.search(text(own.get("/logout"))).group(1)})  # keeps its device
    answers = [attempt(f"someone-{n}-{uuid.uuid4().hex[:6]}@example.com").status_code for n in range(3)]
    assert answers == [401, 401, 401] and len(checked) == 4
    refused = attempt(f"one-more-{uuid.uuid4().hex[:6]}@example.com")
    assert refused.status_code == 429 and "Too many failed sign-ins from your network." in text(refused)
    assert (
        attempt(agent["email"], PASSWORD).status_code == 429
    )  # the right password too, from a browser it does not know
    assert len(checked) == 4  # neither was checked
    assert attempt(agent["email"], PASSWORD, client=own).status_code == 303  # a browser that signed in to it before
    elsewhere = {"REMOTE_ADDR": "10.6.0.1" if network["REMOTE_ADDR"] != "10.6.0.1" else "10.6.0.2"}
    assert attempt(f"x-{uuid.uuid4().hex[:6]}@example.com", where=elsewhere).status_code == 401


def test_a_browser_knows_each_account_it_signed_in_to(portal):  # noqa: F811
    first, _ = account_with_session(portal, "agent")
    second, _ = account_with_session(portal, "agent")
    shared = signed_in_once(portal, first["email"])
    assert post_form(shared, "/login", "/login", {"email": second["email"], "password": PASSWORD}).status_code == 303

    for _ in range(6):
        sign_in(portal, first["email"], "a guess of a password")

    assert device_of(portal, shared, first["email"]) is not None and device_of(portal, shared, second["email"])
    shared.post("/logout", data={"csrf_token": CSRF.search(text(shared.get("/logout"))).group(1)})
    assert post_form(shared, "/login", "/login", {"email": first["email"], "password": PASSWORD}).status_code == 303


@pytest.mark.parametrize("forget", ["new password", "disabled and enabled", "signed out everywhere else"])
def test_what_forgets_every_browser_of_an_account(portal, forget):  # noqa: F811
    """A new password, disabling, or "sign out everywhere else": older device cookies count as no device's."""
    svc = portal.extensions["ticketflow.portal"]
    agent, session_token = account_with_session(portal, "agent")
    old = signed_in_once(portal, agent["email"])
    here = signed_in_once(portal, agent["email"])  # the browser where it is done
    old_token = device_of(portal, old, agent["email"]).value
    assert devices.known(svc.secret, svc.store.account(agent["_id"]), old_token, now()) is not None
    password = PASSWORD
    if forget == "new password":
        password = "another password, long enough"
        assert post_form(here, "/login", "/login", {"email": agent["email"], "password": PASSWORD}).status_code == 303
        changed = post_form(here, "/account/password", "/account/password",
                            {"current": PASSWORD, "password": password, "again": password})  # fmt: skip
        assert changed.status_code == 303
    elif forget == "disabled and enabled":
        handlers.set_disabled(svc, agent["_id"], True)
        handlers.set_disabled(svc, agent["_id"], False)
        here = None  # no browser is known after it
    else:
        assert post_form(here, "/login", "/login", {"email": agent["email"], "password": PASSWORD}).status_code == 303
        post_form(here, "/account/sessions/others", "/account/password", {})

    assert devices.known(svc.secret, svc.store.account(agent["_id"]), old_token, now()) is None
    for _ in range(6):
        sign_in(portal, agent["email"], "a guess of a password")

    assert post_form(old, "/login", "/login", {"email": agent["email"], "password": password}).status_code == 429
    if here is not None:  # the browser where it was done is still known
        here.post("/logout", data={"csrf_token": CSRF.search(text(here.get("/logout"))).group(1)})
        assert post_form(here, "/login", "/login", {"email": agent["email"], "password": password}).status_code == 303


def test_a_session_alone_mints_no_device_and_sign_out_elsewhere_keeps_this_browser_s_count(portal):  # noqa: F811
    """Without the password, a session must not get fresh counts of failures (a new device id each time)."""
    svc = portal.extensions["ticketflow.portal"]
    agent, session_token = account_with_session(portal, "agent")
    held = browser(portal, session_token)  # a session, no device cookie: as one left open on a shared computer
    post_form(held, "/account/sessions/others", "/account/password", {})
    assert device_of(portal, held, agent["email"]) is None

    own = signed_in_once(portal, agent["email"])
    assert post_form(own, "/login", "/login", {"email": agent["email"], "password": PASSWORD}).status_code == 303
    before = device_of(portal, own, agent["email"]).value
    wrong = {
        "current": "not my password",
        "password": "a new password, long enough",
        "again": "a new password, long enough",
    }
    for _ in range(3):
        assert post_form(own, "/account/password", "/account/password", wrong).status_code == 422
    post_form(own, "/account/sessions/others", "/account/password", {})
    after = device_of(portal, own, agent["email"]).value

    assert after.split(".")[1] == before.split(".")[1]  # the same device id, signed under the new epoch
    assert devices.known(svc.secret, svc.store.account(agent["_id"]), before, now()) is None
    answers = [post_form(own, "/account/password", "/account/password", wrong).status_code for _ in range(3)]
    assert answers == [422, 422, 429]  # its count went on: 3 before, 2 more, then locked


def test_a_known_browser_changes_its_password_while_others_lock_the_email_and_the_new_one_ends_it(portal):  # noqa: F811
    agent, _ = account_with_session(portal, "agent")
    own = signed_in_once(portal, agent["email"])
    assert post_form(own, "/login", "/login", {"email": agent["email"], "password": PASSWORD}).status_code == 303
    for _ in range(6):
        sign_in(portal, agent["email"], "a guess of a password")
    short = {"current": PASSWORD, "password": "short", "again": "short"}

    assert post_form(own, "/account/password", "/account/password", short).status_code == 422  # refused: too short

    assert sign_in(portal, agent["email"], "another guess").status_code == 429  # a refused change frees nothing
    new = "a new password, long enough"
    changed = post_form(own, "/account/password", "/account/password", {"current": PASSWORD, "password": new,
                                                                         "again": new})  # fmt: skip
    assert changed.status_code == 303
    assert sign_in(portal, agent["email"], new).status_code == 303  # a new password ends the wait, as a link's does


def test_an_email_no_account_could_have_is_refused_without_counting(portal):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    for email in ("not an email", "device abc", "a@b"):
        assert sign_in(portal, email, "whatever password").status_code == 401
        assert svc.store.failures.count_documents({"_id": email}) == 0


def test_an_agent_with_two_accounts_from_before_the_rule_stays_available_while_one_signs_in(portal, stub):  # noqa: F811
    """One account an agent is the rule now (a second would act in its name); accounts made before it may share
    one, and disabling one of them must not stop the person who still signs in with the other."""
    svc = portal.extensions["ticketflow.portal"]
    li = f"li-{uuid.uuid4().hex[:6]}"
    stub.answers[f"/agents/{li}"] = {"id": li, "name": "Li", "teams": ["network"], "available": True}
    stub.answers["/agents"] = {"items": [stub.answers[f"/agents/{li}"]]}
    own, _ = handlers.create_account(svc, f"{li}@example.com", "agent", li, PASSWORD)
    other, _ = handlers.create_account(svc, f"boss-{li}@example.com", "admin", li, PASSWORD)  # from before the rule
    secret = os.environ["TICKETFLOW_JWT_SECRET"]
    admin = {"Authorization": f"Bearer {issue_token(secret, 'admin', ttl=60, sub='ops')}"}
    client = browser(portal)

    assert client.patch(f"/api/accounts/{other['email']}", json={"disabled": True}, headers=admin).status_code == 200

    assert li not in svc.store.disabled_agent_ids()
    assert not [c for c in stub.calls if c["method"] == "PATCH"]  # Li still works: left available
    assert client.patch(f"/api/accounts/{own['email']}", json={"disabled": True}, headers=admin).status_code == 200
    assert li in svc.store.disabled_agent_ids()  # nobody signs in as Li now
    assert [(c["path"], c["json"]) for c in stub.calls if c["method"] == "PATCH"] == [
        (f"/agents/{li}", {"available": False})
    ]
    third = {"email": f"new-{li}@example.com", "role": "agent", "agent_id": li, "password": PASSWORD}
    refused = client.post("/api/accounts", json=third, headers=admin)
    assert refused.status_code == 409 and refused.headers["Content-Type"] == "application/problem+json"
    assert "each agent has one account" in refused.get_json()["errors"]["agent_id"][0]


def test_an_account_enabled_again_before_it_had_a_password_is_said_to_need_a_new_link(portal):  # noqa: F811
    """Disabling ends its links: enabled again, its row and the notice say so, not "its link is waiting"."""
    svc = portal.extensions["ticketflow.portal"]
    _, admin_token = account_with_session(portal, "admin")
    admin = browser(portal, admin_token)
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"
    added = post_form(admin, "/admin/accounts", "/admin/", {"email": email, "role": "admin"})
    assert added.status_code == 200
    account = svc.store.account_by_email(email)
    row = lambda page: page[page.index(email) :].split("</tr>")[0]  # noqa: E731
    assert "its link is waiting" in row(text(admin.get("/admin/")))

    path = f"/admin/accounts/{account['_id']}/disabled"
    assert post_form(admin, path, "/admin/", {"disabled": "true"}).status_code == 303
    enabled = post_form(admin, path, "/admin/", {"disabled": "false"})
    page = text(admin.get(enabled.headers["Location"]))

    assert "It has no password yet and no link waiting" in page
    assert "no link is waiting: give one with “New password link”" in row(page)


def test_the_json_api_answers_problem_json_when_a_service_it_asks_fails_or_refuses(portal, stub, monkeypatch):  # noqa: F811
    """POST /api/accounts asks assignment for its agents: its failure is the client's problem+json, never a page."""
    token = {"Authorization": f"Bearer {issue_token(os.environ['TICKETFLOW_JWT_SECRET'], 'admin', ttl=60, sub='ops')}"}
    body = {"email": f"cy-{uuid.uuid4().hex[:6]}@example.com", "role": "agent", "agent_id": "cy"}
    stub.answers["/agents"] = (401, {"title": "Unauthorized", "detail": "Bad token."})
    refused = browser(portal).post("/api/accounts", json=body, headers=token)
    assert (refused.status_code, refused.headers["Content-Type"]) == (502, "application/problem+json")
    assert refused.get_json()["detail"] == "A service refused the portal's call: Bad token."

    services = portal.extensions["ticketflow.portal"].services

    def down(*args, **kwargs):
        raise Unreachable("assignment", "connection refused")

    monkeypatch.setattr(services, "get", down)
    failed = browser(portal).post("/api/accounts", json=body, headers=token)
    assert (failed.status_code, failed.headers["Content-Type"]) == (503, "application/problem+json")
    assert failed.headers["Retry-After"] == "5" and "assignment service did not answer" in failed.get_json()["detail"]
    assert not portal.extensions["ticketflow.portal"].store.account_by_email(body["email"])
