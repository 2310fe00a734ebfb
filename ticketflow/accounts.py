"""`ticketflow account create|disable|enable|delete|password-link`: accounts through the portal's API, with an
admin token minted here."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from shared.auth import issue_token
from shared.config import load_settings


def create(portal_url: str, email: str, role: str, agent_id: str | None, password: str | None) -> int:
    body = {"email": email, "role": role}
    if agent_id:
        body["agent_id"] = agent_id
    if password is not None:
        body["password"] = password
    answer = _answer(portal_url, lambda: post_account(portal_url, body))
    if answer is None:
        return 1
    print(f"account {answer['email']} ({answer['role']}) created")
    if answer.get("set_password_url"):
        print(f"set its password (one-time link, 3 days): {answer['set_password_url']}")
    return 0


def change(portal_url: str, email: str, disabled: bool) -> int:
    """Disable an account (it cannot sign in; its sessions end) or enable it again."""
    answer = _answer(portal_url, lambda: call(portal_url, "PATCH", _path(email), {"disabled": disabled}))
    if answer is None:
        return 1
    print(f"account {answer['email']} ({answer['role']}) {'disabled' if disabled else 'enabled'}")
    return 0


def delete(portal_url: str, email: str) -> int:
    """Delete a disabled account for good."""
    if _answer(portal_url, lambda: call(portal_url, "DELETE", _path(email), None)) is None:
        return 1
    print(f"account {email.strip().lower()} deleted")
    return 0


def password_link(portal_url: str, email: str) -> int:
    """Print a new one-time link to set the account's password (its password works until the link is used)."""
    answer = _answer(portal_url, lambda: call(portal_url, "POST", _path(email) + "/password-link", {}))
    if answer is None:
        return 1
    print(f"a link to set a new password for {answer['email']} (one time, 3 days): {answer['set_password_url']}")
    return 0


def _path(email: str) -> str:
    return "/api/accounts/" + urllib.parse.quote(email.strip(), safe="@")


def _answer(portal_url: str, request) -> dict | None:
    """What the portal answered; None after saying on stderr why there is nothing."""
    try:
        return request()
    except urllib.error.HTTPError as exc:
        problem = _json(exc.read())
        fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in (problem.get("errors") or {}).items())
        print(
            f"ticketflow: {problem.get('detail') or exc.reason}{' (' + fields + ')' if fields else ''}", file=sys.stderr
        )
    except OSError as exc:
        print(
            f"ticketflow: the portal does not answer at {portal_url} ({exc}); is `make run` running?", file=sys.stderr
        )
    return None


def post_account(portal_url: str, body: dict, timeout: float = 10.0) -> dict:
    """POST /api/accounts with a 5-minute admin token; the account the portal answers."""
    return call(portal_url, "POST", "/api/accounts", body, timeout)


def call(portal_url: str, method: str, path: str, body: dict | None, timeout: float = 10.0) -> dict:
    """A JSON request to the portal's API with a 5-minute admin token; what it answers ({} for none)."""
    token = issue_token(load_settings().require_secret(), "admin", ttl=300, sub="ticketflow-cli")
    request = urllib.request.Request(
        portal_url.rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw else {}


def _json(raw: bytes) -> dict:
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
