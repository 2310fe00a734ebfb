"""The whole help desk for the browser tests: the four services, the portal, an SMTP server, a small team.

One system per test module (starting it takes a few seconds), in the module's own namespace. Every test
makes its own tickets, so no test reads another's leftovers; the people below are the module's staff:

    ada   agent of team "network", available: the tickets on topic network go to her automatically
    bob   agent of team "network", not available: he gets none, but may claim
    admin an admin account (no agent)
"""

from __future__ import annotations

import re
import smtplib
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller

from shared.config import SERVICE_PORTS, load_settings
from tests.conftest import Spawner, _wait_healthy, own_namespace, require_running
from tests.harness import auth_header, consumers_on, wait_until
from tests.integration.notify_servers import SmtpRecorder
from ticketflow.cli import api_command, mail_command
from ticketflow.local import free_port, free_ports, port_answers

PASSWORD = "correct horse battery staple"
STAFF = {
    "ada": {"email": "ada@example.com", "name": "Ada Lovelace", "available": True, "role": "agent"},
    "bob": {"email": "bob@example.com", "name": "Bob Marley", "available": False, "role": "agent"},
}
ADMIN_EMAIL = "admin@example.com"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/t/[A-Za-z0-9._-]+")


@dataclass
class PortalSystem:
    portal: str  # the portal's base URL
    urls: dict[str, str]
    smtp: SmtpRecorder
    handles: list = field(default_factory=list)
    mail_in_port: int = 0  # intake's mail process (mail in) listens here

    def send_mail(self, message) -> None:
        """A mail to the help desk, as an MTA relays it to intake's mail process; returns once it is stored."""
        with smtplib.SMTP("127.0.0.1", self.mail_in_port, timeout=30) as smtp:
            assert smtp.send_message(message) == {}

    def call(self, method: str, service: str, path: str, role: str = "admin", agent_id: str | None = None, **kw):
        response = requests.request(
            method, f"{self.urls[service]}{path}", headers=auth_header(role, agent_id), timeout=15, **kw
        )
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def links_to(self, address: str, number: int) -> list[str]:
        """The portal links in the emails sent to `address` about ticket `number`, oldest first."""
        found = []
        for message in list(self.smtp.received):
            if message["To"] == address and f"[#{number}]" in message["Subject"]:
                found += LINK.findall(message.get_body(("plain",)).get_content())
        return found

    def emails_to(self, address: str, number: int) -> list:
        return [m for m in list(self.smtp.received) if m["To"] == address and f"[#{number}]" in m["Subject"]]

    def ticket(self, ticket_id: str) -> dict:
        return self.call("GET", "intake", f"/tickets/{ticket_id}")

    def work(self, ticket_id: str) -> dict:
        return self.call("GET", "assignment", f"/tickets/{ticket_id}")

    def sla_knows(self, ticket_id: str) -> bool:
        """Whether sla has the ticket's clocks (its worker learns a ticket beside assignment's, not after it)."""
        response = requests.get(f"{self.urls['sla']}/tickets/{ticket_id}", headers=auth_header("admin"), timeout=15)
        return response.status_code == 200 and response.json()["clocks"]["first_response"] is not None


def unique_email(name: str = "ana") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture(scope="module")
def portal_system(infra) -> Iterator[PortalSystem]:
    """The whole system with the portal, for one module; stopped and its namespace deleted after it."""
    with own_namespace("p"), tempfile.TemporaryDirectory(prefix="portal-system-") as folder:
        recorder, smtp_port = SmtpRecorder(), free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        spawn = Spawner(Path(folder), [])
        try:
            yield _start(spawn, recorder, smtp_port, infra)
        finally:
            for handle in spawn.handles:
                if handle.running:
                    handle.proc.terminate()
            for handle in reversed(spawn.handles):
                handle.stop()
            controller.stop()


STARTS_WITHIN = 180  # seconds each part of a system has to start


def _start(spawn: Spawner, recorder: SmtpRecorder, smtp_port: int, infra) -> PortalSystem:
    names = [*SERVICE_PORTS, "portal", "mail-in"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))  # each its own port
    mail_in_port = ports.pop("mail-in")
    urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
    env = {
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "TICKETFLOW_PORTAL_URL": urls["portal"],
        "TICKETFLOW_SMTP_TIMEOUT": "2",
        "TICKETFLOW_SEARCH_INDEX_DIR": str(spawn.tmp_path / "search-index"),
        **{f"TICKETFLOW_{service.upper()}_URL": urls[service] for service in SERVICE_PORTS},
    }
    apis = []
    for service, port in ports.items():
        # one gunicorn process per api (a few browsers are the only load), two for the portal the browsers call
        api_env = spawn._service_env(service, {**env, "WEB_CONCURRENCY": "2" if service == "portal" else "1"})
        api = spawn(api_command(service, port), env=api_env, name=f"{service}-api")
        api.url = urls[service]
        apis.append(api)
        spawn.worker(service, env=env)
    mail_env = {**env, "TICKETFLOW_INBOUND_SMTP": f"127.0.0.1:{mail_in_port}"}
    mail_in = spawn(mail_command(), env=mail_env, name="intake-mail")
    # bounds for a busy machine: four test processes may each be starting a whole system (a dozen Python
    # processes, the search worker loading its embedding) on two cores, one of them kept busy
    for api in apis:
        _wait_healthy(api, STARTS_WITHIN)
    wait_until(lambda: _listening(mail_in, mail_in_port), timeout=STARTS_WITHIN, message="mail in's port")
    namespace = load_settings().namespace
    for service in SERVICE_PORTS:
        wait_until(
            lambda s=service: consumers_on(infra.amqp_url, f"{namespace}.{s}") >= 1,
            timeout=STARTS_WITHIN,
            message=f"{service}'s worker consuming",
        )
    system = PortalSystem(urls["portal"], urls, recorder, spawn.handles, mail_in_port)
    _staff(system)
    return system


def _listening(handle, port: int) -> bool:
    """Whether the process answers on its port; a process that exited fails the wait at once, with its log."""
    require_running(handle)
    return port_answers("127.0.0.1", port)


def _staff(system: PortalSystem) -> None:
    system.call("POST", "assignment", "/teams", json={"id": "network", "name": "Network", "topics": ["network"]})
    for agent_id, person in STAFF.items():
        agent = {"id": agent_id, "name": person["name"], "email": person["email"], "teams": ["network"],
                 "capacity": 50, "available": person["available"], "lead": False}  # fmt: skip
        system.call("POST", "assignment", "/agents", json=agent)
        account = {"email": person["email"], "role": "agent", "agent_id": agent_id, "password": PASSWORD}
        requests.post(f"{system.portal}/api/accounts", json=account, headers=auth_header("admin"), timeout=15)
    admin = {"email": ADMIN_EMAIL, "role": "admin", "password": PASSWORD}
    answer = requests.post(f"{system.portal}/api/accounts", json=admin, headers=auth_header("admin"), timeout=15)
    assert answer.status_code == 201, answer.text
    # intake learns each agent's teams from assignment's agent.updated events: wait until it has
    wait_until(lambda: _intake_knows_agents(system), timeout=30)


def _intake_knows_agents(system: PortalSystem) -> bool:
    response = requests.get(
        f"{system.urls['intake']}/tickets", headers=auth_header("agent", "ada"), params={"limit": 1}, timeout=5
    )
    return response.status_code == 200
