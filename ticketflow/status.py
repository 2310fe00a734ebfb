"""`ticketflow status`: is each service ready, how its queues stand, open tickets per team, recent breaches.

Reads only what anyone may read from outside: each API's /readyz and public endpoints, and the
broker's queue counters (a passive queue_declare). Works with any part of the system down.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from shared.config import ConfigError, Settings, load_settings
from shared.topology import QueueCounts, queue_counts
from ticketflow import local


class ApiError(Exception):
    """An HTTP call that did not answer as expected; `status` is None when nothing answered."""

    def __init__(self, message: str, status: int | None = None, body: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, body or {}


def call(method: str, url: str, token: str | None = None, body: dict | None = None, headers=None, timeout=5.0):
    """(status, JSON answer) of one HTTP call; ApiError when nobody answers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, _json(exc.read())
    except (urllib.error.URLError, OSError) as exc:
        raise ApiError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from None


def _json(raw: bytes):
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {"detail": raw[:200].decode(errors="replace")}


def readiness(url: str, timeout: float = 2.0) -> str:
    """'ready', 'down' (nothing answers) or 'not ready (...)' from GET /readyz."""
    try:
        status, answer = call("GET", f"{url}/readyz", timeout=timeout)
    except ApiError:
        return "down"
    if status == 200:
        return "ready"
    failing = [name for name, ok in (answer.get("checks") or {}).items() if not ok]
    return f"not ready ({', '.join(failing) or status})"


def pages(url: str, path: str, token: str, params: dict, limit: int = 2000) -> list[dict]:
    """Every item of a cursor-paginated list (up to `limit`)."""
    items, cursor = [], None
    while len(items) < limit:
        query = urlencode({**params, "limit": 200, **({"cursor": cursor} if cursor else {})})
        status, answer = call("GET", f"{url}{path}?{query}", token)
        if status != 200:
            raise ApiError(f"GET {path}: {status} {answer.get('detail', '')}".strip(), status, answer)
        items += answer["items"]
        cursor = answer.get("next_cursor")
        if not cursor:
            break
    return items


@dataclass
class Report:
    api: dict[str, str] = field(default_factory=dict)
    queues: dict[str, QueueCounts] = field(default_factory=dict)
    broker_problem: str | None = None
    teams: list[dict] | None = None  # [{"team", "open", "with_agent", "waiting", "breached"}]
    teams_problem: str | None = None
    breaches: list[dict] | None = None
    breaches_problem: str | None = None

    @property
    def problems(self) -> list[str]:
        """What is not ready: apis that do not answer ready, the broker, services without a consuming worker."""
        out = [f"{service} api {state}" for service, state in self.api.items() if state != "ready"]
        if self.broker_problem:
            return [*out, "RabbitMQ does not answer"]
        idle = [service for service, queue in self.queues.items() if not queue.consumers]
        return out + ([f"no worker consumes for {', '.join(idle)}"] if idle else [])

    @property
    def ready(self) -> bool:
        return not self.problems


def queue_states(settings: Settings, services) -> tuple[dict[str, QueueCounts], str | None]:
    """Messages, consumers, retrying and dead letters of each service's queues, by passive declares."""
    if not local.amqp_answers(settings.amqp_url):
        return {}, f"RabbitMQ does not answer at {local.masked(settings.amqp_url)}"
    import pika
    from pika.exceptions import AMQPError

    from shared.bus import parameters

    try:
        connection = pika.BlockingConnection(parameters(settings, "status"))
    except AMQPError as exc:
        return {}, local.masked(f"RabbitMQ at {settings.amqp_url}: {exc!r}")
    try:
        return {service: queue_counts(connection, settings, service) for service in services}, None
    finally:
        if connection.is_open:
            connection.close()


def open_tickets(url: str, token: str) -> list[dict]:
    """Per team: open tickets, those with an agent, those waiting in the team queue, those breached."""
    rows = []
    for team in pages(url, "/teams", token, {}):
        tickets = pages(url, "/queue", token, {"team": team["id"]})
        with_agent = sum(1 for t in tickets if t.get("agent_id"))
        breached = sum(1 for t in tickets if (t.get("sla") or {}).get("breached"))
        rows.append(
            {"team": team["id"], "open": len(tickets), "with_agent": with_agent,
             "waiting": len(tickets) - with_agent, "breached": breached}
        )  # fmt: skip
    return rows


def recent_breaches(url: str, token: str, hours: float = 1.0) -> list[dict]:
    since = (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return pages(url, "/breaches", token, {"since": since})


def collect(urls: dict[str, str], settings: Settings | None = None, token: str | None = None) -> Report:
    settings = settings or load_settings()
    report = Report(api={service: readiness(url) for service, url in urls.items()})
    report.queues, report.broker_problem = queue_states(settings, urls)
    problem = None
    if token is None:
        try:
            from shared.auth import issue_token

            token = issue_token(settings.require_secret(), "admin", sub="ticketflow-status", ttl=300)
        except ConfigError as exc:
            problem = "no token to read it with: " + str(exc.code).removeprefix("ticketflow: configuration error: ")
    report.teams, report.teams_problem = _guarded(report, "assignment", open_tickets, urls, token, problem)
    report.breaches, report.breaches_problem = _guarded(report, "sla", recent_breaches, urls, token, problem)
    return report


def _guarded(report: Report, service: str, read, urls: dict[str, str], token: str | None, problem: str | None):
    """(what read() found, None), or (None, why not) when the service is down or answers otherwise."""
    if report.api[service] == "down":
        return None, f"{service} api down"
    if problem:
        return None, problem
    try:
        return read(urls[service], token), None
    except (ApiError, KeyError, TypeError) as exc:
        return None, f"{service}: {exc}"


def render(report: Report, namespace: str) -> str:
    width = max(len(f"{namespace}.{service}") for service in report.api) + 2
    head = f"{'messages':>8} {'consumers':>9} {'retry':>5} {'dead':>5}"
    lines = [f"{'service':<11} {'api':<24} {'queue':<{width}} {head}"]
    for service, state in report.api.items():
        queue = report.queues.get(service)
        counts = ["?"] * 4 if report.broker_problem else ["no queue", "-", "-", "-"]
        if queue and queue.messages is not None:
            counts = [str(queue.messages), str(queue.consumers), *(_count(n) for n in (queue.retrying, queue.dead))]
        name = f"{namespace}.{service}"
        lines.append(f"{service:<11} {state:<24} {name:<{width}} {counts[0]:>8} {counts[1]:>9} {counts[2]:>5} "
                     f"{counts[3]:>5}")  # fmt: skip
    if report.broker_problem:
        lines.append(f"  queues: {report.broker_problem}")
    lines += ["", "open tickets per team (assignment GET /queue):"]
    if report.teams is None:
        lines.append(f"  {report.teams_problem}")
    else:
        lines.append(f"  {'team':<16} {'open':>5} {'with an agent':>14} {'waiting':>8} {'breached':>9}")
        for row in report.teams:
            lines.append(f"  {row['team']:<16} {row['open']:>5} {row['with_agent']:>14} {row['waiting']:>8} "
                         f"{row['breached']:>9}")  # fmt: skip
    lines.append("")
    if report.breaches is None:
        lines.append(f"SLA breaches in the last hour (sla GET /breaches): {report.breaches_problem}")
    else:
        kinds: dict[str, int] = {}
        for breach in report.breaches:
            key = f"{breach.get('priority')} {breach.get('clock')}"
            kinds[key] = kinds.get(key, 0) + 1
        detail = ", ".join(f"{key} {n}" for key, n in sorted(kinds.items()))
        lines.append(f"SLA breaches in the last hour: {len(report.breaches)}{f' ({detail})' if detail else ''}")
    lines.append("")
    lines.append("all ready" if report.ready else f"not ready: {', '.join(report.problems)}")
    return "\n".join(lines)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def main(urls: dict[str, str]) -> int:
    """Print the report; 0 when every api is ready and every service's queue has a consumer, else 1."""
    settings = load_settings()
    report = collect(urls, settings)
    print(local.masked(render(report, settings.namespace)))  # no password of a URL, whatever a problem quotes
    return 0 if report.ready else 1
