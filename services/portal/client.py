"""The portal's one way to the five APIs: each call carries a JWT of at most 5 minutes for the person acting.

A refusal comes back as `Refused` with the service's own problem (its title, detail and field errors),
so a page can show the service's reason; a service that cannot be reached, or fails, is `Unreachable`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import quote

import requests

from shared.auth import issue_token

TOKEN_SECONDS = 300  # the longest a token the portal mints lives (the contract's 5 minutes)
TIMEOUT = (3.05, 10)  # connect, read


@dataclass(frozen=True)
class Actor:
    """Who acts: an agent or admin (by account), a requester (for one address, maybe one ticket), or the portal."""

    role: str  # agent | admin | portal
    sub: str
    agent_id: str | None = None
    requester_email: str | None = None
    ticket_id: str | None = None

    @property
    def recorded_as(self) -> str:
        """Who this is in the services' histories (shared.auth.Principal.actor): the agent, else "admin:<address>"."""
        return self.agent_id or f"{self.role}:{self.sub}"

    def token(self, secret: str) -> str:
        return issue_token(
            secret,
            self.role,
            agent_id=self.agent_id,
            ttl=TOKEN_SECONDS,
            sub=self.sub,
            requester_email=self.requester_email,
            ticket_id=self.ticket_id,
        )


PORTAL = Actor(role="portal", sub="portal")  # the portal server's own rights: never for a request of a browser


@dataclass
class Refused(Exception):
    """The service answered 4xx: its problem, to show as it is."""

    status: int
    title: str
    detail: str
    errors: dict = field(default_factory=dict)
    retry_after: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"


class Unreachable(Exception):
    """The service did not answer, or failed (5xx)."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service


def path_id(text: str) -> str:
    """An id (typed in a form, or from a URL) as one safe segment of a service's path: no / ? # or .. tricks."""
    return quote(text.strip(), safe="")


class Services:
    def __init__(self, urls: dict[str, str], secret: str) -> None:
        self.urls, self.secret = urls, secret
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if getattr(self._local, "session", None) is None:
            self._local.session = requests.Session()
            self._local.session.trust_env = False  # no proxy from the environment between the portal and its APIs
        return self._local.session

    def call(
        self,
        service: str,
        method: str,
        path: str,
        actor: Actor,
        json: dict | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        request_id: str | None = None,
        files: list | None = None,
        data: dict | None = None,
    ) -> dict:
        """The JSON answer of a 2xx; Refused for a 4xx; Unreachable otherwise.

        `files` and `data`: a multipart/form-data body instead of JSON (requests' own arguments).
        """
        response = self._send(service, method, path, actor, headers, request_id, json=json, params=params,
                              files=files, data=data)  # fmt: skip
        return _json(response)

    def stream(self, service: str, path: str, actor: Actor, request_id: str | None = None) -> requests.Response:
        """GET a 2xx answer whose body is not read yet, to pass on as it comes (close it when done); Refused for a
        4xx; Unreachable otherwise."""
        return self._send(service, "GET", path, actor, None, request_id, stream=True)

    def _send(self, service, method, path, actor, headers, request_id, params=None, **kwargs) -> requests.Response:
        sent = {"Authorization": f"Bearer {actor.token(self.secret)}", **(headers or {})}
        if request_id:
            sent["X-Request-ID"] = request_id
        params = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = self._session().request(
                method, self.urls[service] + path, params=params, headers=sent, timeout=TIMEOUT, **kwargs
            )
        except requests.RequestException as exc:
            raise Unreachable(service, type(exc).__name__) from None
        if response.status_code >= 400:
            body = _json(response)  # reads the body, and so releases the connection of a stream
            if response.status_code >= 500:
                raise Unreachable(service, f"answered {response.status_code}")
            raise Refused(
                status=response.status_code,
                title=str(body.get("title") or response.reason),
                detail=str(body.get("detail") or ""),
                errors=body.get("errors") or {},
                retry_after=response.headers.get("Retry-After"),
            )
        return response

    def probe(self, service: str, path: str = "/readyz", timeout: float = 2.0) -> tuple[int, dict] | None:
        """(status, JSON answer) of a probe that needs no token; None when nothing answers."""
        try:
            response = self._session().get(self.urls[service] + path, timeout=timeout)
        except requests.RequestException:
            return None
        return response.status_code, _json(response)

    def get(self, service: str, path: str, actor: Actor, **params) -> dict:
        return self.call(service, "GET", path, actor, params=params)

    def post(self, service: str, path: str, actor: Actor, body: dict, **kwargs) -> dict:
        return self.call(service, "POST", path, actor, json=body, **kwargs)


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
