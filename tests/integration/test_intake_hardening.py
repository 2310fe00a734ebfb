"""intake refuses what could never be served later: unmailable requester addresses, over-long tokens."""

from __future__ import annotations

import os

import pytest

from shared.auth import issue_token
from tests.harness import auth_header
from tests.integration.conftest import ticket_request
from ticketflow.cli import api_command
from ticketflow.local import free_port

PROBLEM_JSON = "application/problem+json"

UNMAILABLE = [
    '"a\x0bb"@example.com',  # a vertical tab inside quotes: marshmallow's Email let it through
    '"a\x7fb"@example.com',
    '"a\x1bb"@example.com',
    '"a\x85b"@example.com',
    '"a\u2028b"@example.com',
    '"a\rb"@example.com',
    '"a\nb"@example.com',
    "a\r\nbcc@example.com",
    "a\x0bb@example.com",
    "ana@exa\x0bmple.com",
    '"a\tb"@example.com',
]
MAILABLE = [
    "ana@example.com",
    "ana.ruiz+vpn@example.com",
    '"ana..ruiz"@example.com',
    "ANA@Example.COM",
    "ana@sub.example.co.uk",
]


@pytest.mark.parametrize("email", UNMAILABLE)
def test_a_requester_address_no_email_can_be_built_for_is_refused(client, email):
    body = ticket_request(requester={"name": "Ana Ruiz", "email": email})
    response = client.post("/tickets", json=body, headers=auth_header("portal"))
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == PROBLEM_JSON
    assert "requester.email" in response.get_json()["errors"]


@pytest.mark.parametrize("email", MAILABLE)
def test_valid_requester_addresses_stay_valid(client, email):
    body = ticket_request(requester={"name": "Ana Ruiz", "email": email})
    response = client.post("/tickets", json=body, headers=auth_header("portal"))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["requester"]["email"] == email.lower()


def test_the_api_refuses_a_token_that_lives_longer_than_the_cap(client):
    secret = os.environ["TICKETFLOW_JWT_SECRET"]
    too_long = issue_token(secret, "admin", ttl=25 * 3600)
    response = client.get("/tickets", headers={"Authorization": f"Bearer {too_long}"})
    assert response.status_code == 401 and response.mimetype == PROBLEM_JSON
    assert "longer than 24 hours" in response.get_json()["detail"]
    day = issue_token(secret, "admin", ttl=24 * 3600)
    assert client.get("/tickets", headers={"Authorization": f"Bearer {day}"}).status_code == 200


def test_dev_mode_refuses_to_start_an_api_on_a_public_address(spawn):
    argv = api_command("intake", free_port(), host="0.0.0.0")  # refused before gunicorn binds: no traffic
    handle = spawn(argv, env={"TICKETFLOW_DEV": "1", "TICKETFLOW_JWT_SECRET": ""}, name="dev-public")
    assert handle.proc.wait(timeout=30) != 0
    assert "TICKETFLOW_DEV=1 refuses to listen on 0.0.0.0:" in handle.log_text()
