"""The portal's defences, against the real processes: CSRF, headers and cookies, text that stays text,
links that open one ticket only, the admin pages, and the sign-in lockout."""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest
import requests
from playwright.sync_api import expect

from shared.links import link_url, mint_link_token
from tests.browser.portal_system import ADMIN_EMAIL, LINK, PASSWORD, STAFF, portal_system, unique_email  # noqa: F401 - a fixture
from tests.browser.test_portal_journey import open_request, sign_in, ticket_id_of
from tests.harness import auth_header, wait_until

SECRET = os.environ.get("TICKETFLOW_JWT_SECRET", "")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


def new_ticket(system, email: str, subject: str = "Screen flickers", name: str = "Ana Ruiz") -> dict:
    body = {"subject": subject, "description": "Since the update.", "topic": "network",
            "requester": {"name": name, "email": email}}  # fmt: skip
    return system.call("POST", "intake", "/tickets", json=body)


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(portal_system):  # noqa: F811
    session = requests.Session()
    home = session.get(portal_system.portal + "/", timeout=10).text
    email = unique_email()
    form = {"form_key": FORM_KEY.search(home).group(1), "name": "Eve", "email": email, "topic": "network",
            "subject": "No token", "description": "Should not open."}  # fmt: skip
    for token in (None, "forged-token", "é-not-ascii"):
        sent = form | ({"csrf_token": token} if token else {})
        answer = session.post(portal_system.portal + "/tickets", data=sent, allow_redirects=False, timeout=10)
        assert answer.status_code in (400, 403)
        assert "text/html" in answer.headers["Content-Type"] and "Traceback" not in answer.text
    # with the page's token the same form works: the refusal above was the token's doing
    found = portal_system.call("GET", "intake", "/tickets", params={"requester_email": email})["items"]
    assert found == []
    answer = session.post(
        portal_system.portal + "/tickets",
        data=form | {"csrf_token": CSRF_FIELD.search(home).group(1)},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303


def test_a_signed_in_agent_cannot_act_without_the_session_csrf_token(portal_system):  # noqa: F811
    system = portal_system
    ticket = new_ticket(system, unique_email())
    wait_until(lambda: system.work(ticket["id"]), timeout=30, message="assignment knows the ticket")  # asynchronous
    session = requests.Session()
    login = session.get(system.portal + "/login", timeout=10).text
    data = {"email": STAFF["bob"]["email"], "password": PASSWORD, "csrf_token": CSRF_FIELD.search(login).group(1)}
    assert session.post(system.portal + "/login", data=data, allow_redirects=False, timeout=10).status_code == 303
    answer = session.post(
        f"{system.portal}/console/tickets/{ticket['id']}/note", data={"body": "sneaky"}, allow_redirects=False
    )
    assert answer.status_code == 403
    assert "sneaky" not in str(system.work(ticket["id"]).get("notes"))


def test_pages_carry_the_security_headers_and_cookie_flags(portal_system):  # noqa: F811
    session = requests.Session()
    for path in ("/", "/login", "/no-such-page"):
        answer = session.get(portal_system.portal + path, timeout=10)
        csp = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert "<script>" not in answer.text.replace('<script src="/static/', "")  # no inline script
    login = session.get(portal_system.portal + "/login", timeout=10).text
    data = {"email": STAFF["ada"]["email"], "password": PASSWORD, "csrf_token": CSRF_FIELD.search(login).group(1)}
    answer = session.post(portal_system.portal + "/login", data=data, allow_redirects=False, timeout=10)
    cookie = next(c for c in answer.headers.get("Set-Cookie", "").split(", ") if c.startswith("tf_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    before = session.cookies.get("tf_session")
    assert before and len(before) >= 40  # opaque: a random id, nothing about the person in it


def test_a_new_session_id_at_sign_in_and_sign_out_ends_it_on_the_server(portal_system):  # noqa: F811
    session = requests.Session()
    email = unique_email("visitor")
    home = session.get(portal_system.portal + "/", timeout=10).text  # a requester session first
    form = {"form_key": FORM_KEY.search(home).group(1), "name": "V", "email": email, "topic": "network",
            "subject": "Hello", "description": "Hi.", "csrf_token": CSRF_FIELD.search(home).group(1)}  # fmt: skip
    session.post(portal_system.portal + "/tickets", data=form, timeout=10)
    requester_session = session.cookies.get("tf_session")
    login = session.get(portal_system.portal + "/login", timeout=10).text
    data = {"email": STAFF["ada"]["email"], "password": PASSWORD, "csrf_token": CSRF_FIELD.search(login).group(1)}
    session.post(portal_system.portal + "/login", data=data, allow_redirects=False, timeout=10)
    agent_session = session.cookies.get("tf_session")
    assert requester_session and agent_session and agent_session != requester_session
    queue = session.get(portal_system.portal + "/console/", allow_redirects=False, timeout=10)
    assert queue.status_code == 200
    token = CSRF_FIELD.search(queue.text).group(1)
    session.post(portal_system.portal + "/logout", data={"csrf_token": token}, allow_redirects=False, timeout=10)
    replay = requests.get(
        portal_system.portal + "/console/", cookies={"tf_session": agent_session}, allow_redirects=False, timeout=10
    )
    assert replay.status_code == 302 and "/login" in replay.headers["Location"]


def test_script_in_a_subject_a_name_and_a_message_is_shown_as_text(portal_system, new_context):  # noqa: F811
    system = portal_system
    script = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"
    email = unique_email("mallory")
    page = new_context().new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_request(page, system.portal, f"Mal {script}", email, f"Help {script}", f"Body {script}")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name=f"Help {script}")).to_be_visible()
    page.get_by_label("Your message").fill(f"More {script}")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text(f"More {script}")).to_be_visible()
    expect(page.get_by_text(f"Mal {script}").first).to_be_visible()
    ticket_id = ticket_id_of(page)
    agent = new_context().new_page()
    sign_in(agent, system.portal, STAFF["ada"]["email"])
    agent.goto(f"{system.portal}/console/tickets/{ticket_id}")
    expect(agent.get_by_role("heading", name=f"Help {script}")).to_be_visible()
    expect(agent.get_by_text(f"More {script}")).to_be_visible()
    for shown in (page, agent):
        assert shown.evaluate("window.__pwned") is None
    assert dialogs == []


def test_words_without_a_space_never_push_a_page_sideways(portal_system, new_context, screenshot):  # noqa: F811
    """A name, a subject and a message of 200 letters without a space (the forms take them) wrap inside their boxes,
    on the requester's page and the agent's, at phone and desktop widths; a saved reply's long title is cut in its
    list on the agent's."""
    system, long = portal_system, "N" * 200
    admin = new_context().new_page()
    sign_in(admin, system.portal, ADMIN_EMAIL)
    admin.goto(system.portal + "/admin/replies")
    title = f"Password reset from home over the VPN, the laptop never on the office network ({uuid.uuid4().hex[:8]})"
    admin.get_by_label("Title").fill(title)
    admin.get_by_label("Text").fill("Hello {requester_first_name}, here is how.")
    admin.get_by_role("button", name="Add saved reply").click()
    expect(admin.get_by_text("The saved reply is added")).to_be_visible()
    page = new_context().new_page()
    open_request(page, system.portal, long, unique_email("long"), "S" * 200, "D" * 2000)
    page.get_by_role("button", name="Send request").click()
    page.get_by_label("Your message").fill("M" * 2000)
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text("M" * 2000)).to_be_visible()
    ticket_id = ticket_id_of(page)
    agent = new_context().new_page()
    sign_in(agent, system.portal, STAFF["ada"]["email"])
    agent.goto(f"{system.portal}/console/tickets/{ticket_id}")
    expect(agent.get_by_text("M" * 2000)).to_be_visible()

    for shown, name in ((page, "requester-long-words"), (agent, "console-long-words")):
        for width in (1280, 390):
            shown.set_viewport_size({"width": width, "height": 844})
            assert shown.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        shown.locator(".entry-meta").last.evaluate("e => e.scrollIntoView()")  # the name above the message
        screenshot(shown, f"{name}-phone", full_page=False)
    admin.get_by_role("link", name=title).click()  # the desk's saved replies as they were
    admin.get_by_text("Delete this saved reply").click()
    admin.get_by_role("button", name="Yes, delete it").click()
    expect(admin.get_by_role("link", name=title)).to_have_count(0)


def test_a_link_opens_its_own_ticket_only_and_leaves_the_address_bar(portal_system, new_context):  # noqa: F811
    system = portal_system
    ana, ben = unique_email("ana"), unique_email("ben")
    anas, bens = new_ticket(system, ana, "Ana's VPN"), new_ticket(system, ben, "Ben's printer")
    token = mint_link_token(SECRET, anas["id"], ana, 30)
    page = new_context().new_page()
    page.goto(link_url(system.portal, token))
    expect(page.get_by_role("heading", name="Ana's VPN")).to_be_visible()
    assert token not in page.url and "/t/" not in page.url
    # the same browser, Ben's ticket: nothing of it shows
    answer = page.goto(f"{system.portal}/tickets/{bens['id']}")
    assert answer.status == 404
    expect(page.get_by_text("Ben's printer")).to_have_count(0)


@pytest.mark.parametrize("how", ["tampered", "expired", "another key", "another address"])
def test_a_bad_link_opens_nothing(portal_system, new_context, how):  # noqa: F811
    system = portal_system
    ana = unique_email("ana")
    ticket = new_ticket(system, ana, "Secret subject")
    token = {
        "tampered": lambda: mint_link_token(SECRET, ticket["id"], ana, 30)[:-3] + "AAA",
        "expired": lambda: mint_link_token(SECRET, ticket["id"], ana, 30, now=time.time() - 31 * 86400),
        "another key": lambda: mint_link_token("x" * 40, ticket["id"], ana, 30),
        "another address": lambda: mint_link_token(SECRET, ticket["id"], unique_email("eve"), 30),
    }[how]()
    page = new_context().new_page()
    answer = page.goto(link_url(system.portal, token))
    if how == "another address":  # a valid link of Eve's: it names a ticket that is not hers
        assert "/tickets/" in page.url
    else:
        assert answer.status == 404
        expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    expect(page.get_by_text("Secret subject")).to_have_count(0)
    assert (
        page.context.cookies() == []
        or all(c["name"] != "tf_session" for c in page.context.cookies())
        or (how == "another address")
    )


def test_an_agent_gets_403_on_admin_and_an_admin_does_not(portal_system, new_context):  # noqa: F811
    agent = new_context().new_page()
    sign_in(agent, portal_system.portal, STAFF["ada"]["email"])
    answer = agent.goto(portal_system.portal + "/admin/")
    assert answer.status == 403
    expect(agent.get_by_role("heading", name="Admins only")).to_be_visible()
    admin = new_context().new_page()
    sign_in(admin, portal_system.portal, "admin@example.com")
    assert admin.goto(portal_system.portal + "/admin/").status == 200
    expect(admin.get_by_role("heading", name="Accounts")).to_be_visible()
    anonymous = new_context().new_page()
    anonymous.goto(portal_system.portal + "/admin/")
    assert "/login" in anonymous.url


def test_the_sixth_wrong_password_finds_the_account_locked(portal_system, new_context):  # noqa: F811
    email = unique_email("carol")
    account = {"email": email, "role": "agent", "agent_id": "carol", "password": PASSWORD}
    answer = requests.post(
        portal_system.portal + "/api/accounts", json=account, headers=auth_header("admin"), timeout=10
    )
    assert answer.status_code == 201
    page = new_context().new_page()
    for _ in range(5):
        sign_in(page, portal_system.portal, email, "wrong password 123")
        expect(page.get_by_role("alert")).to_contain_text("The email or password is not right.")
    sign_in(page, portal_system.portal, email, "wrong password 123")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    sign_in(page, portal_system.portal, email, PASSWORD)  # even the right password waits 15 minutes now
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    assert "/login" in page.url
    # an unknown email and a wrong password read the same
    other = new_context().new_page()
    sign_in(other, portal_system.portal, unique_email("nobody"), "whatever password")
    expect(other.get_by_role("alert")).to_contain_text("The email or password is not right.")


def _status_page(session: requests.Session, portal: str, email: str, number: str) -> requests.Response:
    home = session.get(portal + "/", timeout=10).text
    data = {"status_email": email, "number": number, "csrf_token": CSRF_FIELD.search(home).group(1)}
    return session.post(portal + "/status", data=data, timeout=10)


def _main(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


def test_check_status_answers_the_same_and_emails_a_link_only_when_they_match(portal_system, new_context):  # noqa: F811
    system = portal_system
    ana = unique_email("ana")
    ticket = new_ticket(system, ana, "Where is my order?")
    number = ticket["number"]
    session = requests.Session()
    wrong = _status_page(session, system.portal, ana, str(number + 100000))
    right = _status_page(session, system.portal, ana, f"#{number}")
    assert wrong.status_code == right.status_code == 200
    assert _main(wrong.text) == _main(right.text)
    wait_until(lambda: any("Your link" in m["Subject"] for m in system.emails_to(ana, number)), timeout=30)
    link_emails = [m for m in list(system.smtp.received) if m["To"] == ana and "Your link" in m["Subject"]]
    assert len(link_emails) == 1  # none for the number that is not hers
    link = LINK.findall(link_emails[0].get_body(("plain",)).get_content())[0]
    page = new_context().new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name="Where is my order?")).to_be_visible()


@pytest.mark.parametrize("number", ["²", "12a", "1" * 16])  # an empty one asks for every open request's link
def test_check_status_names_a_bad_number_next_to_its_field(portal_system, number):  # noqa: F811
    answer = _status_page(requests.Session(), portal_system.portal, unique_email("typo"), number)
    assert answer.status_code == 422
    assert 'id="number-error"' in answer.text and "Enter the request number" in answer.text


def test_check_status_without_a_number_emails_a_link_to_each_request_not_closed(portal_system, new_context):  # noqa: F811
    system = portal_system
    ana = unique_email("ana")
    first, second = new_ticket(system, ana, "Where is my order?"), new_ticket(system, ana, "And my invoice?")
    asked = _status_page(requests.Session(), system.portal, ana, "")
    assert asked.status_code == 200 and "a link to each is on its way there" in asked.text

    def links_sent() -> list:
        return [m for m in list(system.smtp.received) if m["To"] == ana and m["Subject"] == "Links to your requests"]

    wait_until(links_sent, timeout=30)
    [email] = links_sent()
    body = email.get_body(("plain",)).get_content()
    assert f"#{first['number']} Where is my order?" in body and f"#{second['number']} And my invoice?" in body
    link = body[body.index(f"#{first['number']} Where is my order?") :]  # its line, then its link
    page = new_context().new_page()
    page.goto(LINK.findall(link)[0])
    expect(page.get_by_role("heading", name="Where is my order?")).to_be_visible()


def test_check_status_is_rate_limited_per_email(portal_system):  # noqa: F811
    email, session = unique_email("flood"), requests.Session()
    left = 3600 - time.time() % 3600  # the limit counts in clock hours: the six asks go in one hour's window
    if left < 30:
        time.sleep(left + 1)
    answers = [_status_page(session, portal_system.portal, email, "100001").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    assert _status_page(session, portal_system.portal, unique_email("other"), "100001").status_code == 200


def test_the_accounts_api_checks_rights_and_fields(portal_system):  # noqa: F811
    url = portal_system.portal + "/api/accounts"
    good = {"email": unique_email("dan"), "role": "agent", "agent_id": "dan", "password": PASSWORD}
    assert requests.post(url, json=good, timeout=10).status_code == 401
    assert requests.post(url, json=good, headers=auth_header("agent", "ada"), timeout=10).status_code == 403
    cases = [
        ({**good, "password": "too short"}, 422, "password"),
        ({**good, "agent_id": None}, 422, "agent_id"),
        ({key: value for key, value in good.items() if key != "agent_id"}, 422, "agent_id"),
        ({**good, "role": "root"}, 422, "role"),
        ({**good, "email": "not-an-email"}, 422, "email"),
        ({**good, "extra": 1}, 422, "extra"),
    ]
    for body, status, field in cases:
        answer = requests.post(url, json=body, headers=auth_header("admin"), timeout=10)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert field in answer.json()["errors"], answer.json()
    assert requests.post(url, json=good, headers=auth_header("admin"), timeout=10).status_code == 201
    again = requests.post(url, json=good, headers=auth_header("admin"), timeout=10)
    assert again.status_code == 409 and again.headers["Content-Type"].startswith("application/problem+json")


def test_an_account_without_a_password_sets_one_from_its_one_time_link(portal_system, new_context):  # noqa: F811
    email = unique_email("erin")
    answer = requests.post(
        portal_system.portal + "/api/accounts",
        json={"email": email, "role": "admin"},
        headers=auth_header("admin"),
        timeout=10,
    )
    assert answer.status_code == 201 and "password_hash" not in answer.json()
    link = answer.json()["set_password_url"]
    page = new_context().new_page()
    page.goto(link)
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Set password").click()
    expect(page.locator("#password-error")).to_contain_text("Use at least 12 characters.")
    page.get_by_label("New password").fill("a long enough passphrase")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("Your password is set.")).to_be_visible()
    assert page.goto(link).status == 404  # once only
    sign_in(page, portal_system.portal, email, "a long enough passphrase")
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()


@pytest.mark.parametrize("target", ["//example.org/", "https://example.org/", "/\\example.org", "/%09/example.org"])
def test_sign_in_never_redirects_to_another_site(portal_system, target):  # noqa: F811
    session = requests.Session()
    login = session.get(portal_system.portal + "/login", params={"next": target}, timeout=10).text
    data = {"email": STAFF["ada"]["email"], "password": PASSWORD, "next": target,
            "csrf_token": CSRF_FIELD.search(login).group(1)}  # fmt: skip
    answer = session.post(portal_system.portal + "/login", data=data, allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    assert answer.headers["Location"] in ("/console/", "/%09/example.org")  # a path of this site
