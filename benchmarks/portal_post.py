"""Opening a ticket through the portal's form against posting it straight to intake, same intake, same run.

    .venv/bin/python benchmarks/portal_post.py [--seconds 15] [--clients 16] [--workers 4]

One intake api and one portal api under gunicorn (--workers each), on MONGO_URL / AMQP_URL when set,
else on a FerretDB of its own and the local RabbitMQ. Two loads, one after the other:

  portal   a requester's browser: POST /tickets (the form, with its CSRF token and a fresh form key),
           then GET the page the redirect names (the new ticket's page, read from intake): both timed as one
  intake   POST /tickets to intake with a requester-scoped portal token, as the portal does

Each from 2 processes of --clients/2 threads, after a 2 s warm-up. Prints requests per second,
p50/p99 latency and errors of each, and the ratio portal / intake.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.intake_post import _cleanup, _declare_intake_queue, body, gunicorn, store_url  # noqa: E402
from benchmarks.meters import finish  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from ticketflow.local import broker_for_benchmark, free_port  # noqa: E402

SECRET = secrets.token_urlsafe(32)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _form_client(port: int) -> tuple[str, str]:
    """(the anonymous CSRF cookie, the token of the form): what a browser has after GET /."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = next(c for c in response.headers.get_all("Set-Cookie") if c.startswith("tf_csrf="))
    conn.close()
    return cookie.split(";", 1)[0], CSRF.search(page).group(1)


def _portal_once(port: int, i: int, cookie: str, token: str) -> bool:
    ticket = json.loads(body(i))
    form = {
        "csrf_token": token,
        "form_key": uuid.uuid4().hex,
        "name": ticket["requester"]["name"],
        "email": ticket["requester"]["email"],
        "topic": ticket["topic"],
        "subject": ticket["subject"],
        "description": ticket["description"],
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    conn.request("POST", "/tickets", urlencode(form), headers)
    response = conn.getresponse()
    response.read()
    if response.status != 303:
        conn.close()
        return False
    session = next(c for c in response.headers.get_all("Set-Cookie") if c.startswith("tf_session="))
    conn.request("GET", response.headers["Location"], headers={"Cookie": session.split(";", 1)[0]})
    page = conn.getresponse()
    text = page.read()
    conn.close()
    return page.status == 200 and b"Request " in text


def _intake_once(port: int, i: int) -> bool:
    """As the portal posts: a requester-scoped token for the ticket's own requester."""
    email = json.loads(body(i))["requester"]["email"]
    token = issue_token(SECRET, "portal", requester_email=email, ttl=300)
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": uuid.uuid4().hex,
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/tickets", body(i), headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status == 201


def _thread(kind: str, port: int, deadline: float, out: list) -> None:
    cookie, token = _form_client(port) if kind == "portal" else ("", "")
    i = 0
    while time.monotonic() < deadline:
        start = time.perf_counter()
        ok = _portal_once(port, i, cookie, token) if kind == "portal" else _intake_once(port, i)
        out.append((ok, time.perf_counter() - start))
        i += 1


def _load(kind: str, port: int, seconds: float, threads: int, queue) -> None:
    deadline, results = time.monotonic() + seconds, []
    workers = [threading.Thread(target=_thread, args=(kind, port, deadline, results)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put(results)


def drive(kind: str, port: int, seconds: float, clients: int, load=None) -> dict:
    """`load(kind, port, seconds, threads, queue)` (this module's by default) from 2 processes after a warm-up:
    requests per second, errors, p50 and p99 latency."""
    load = load or _load
    load(kind, port, 2.0, clients // 2, multiprocessing.Queue())  # warm-up
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=load, args=(kind, port, seconds, clients // 2, queue)) for _ in range(2)]
    for proc in procs:
        proc.start()
    results = [item for _ in procs for item in queue.get()]
    for proc in procs:
        proc.join()
    latencies = sorted(latency for good, latency in results if good)
    return {
        "requests_per_second": len(latencies) / seconds,
        "errors": len(results) - len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    namespace, tmp = f"bench_{secrets.token_hex(3)}", Path(tempfile.mkdtemp(prefix="ticketflow-bench-"))
    procs: list[subprocess.Popen] = []
    amqp_url = broker_for_benchmark()  # first: a broker that cannot start leaves no store behind
    mongo_url = store_url(tmp, procs)
    intake_port, portal_port = free_port(), free_port()
    env = {**os.environ, "AMQP_URL": amqp_url, "MONGO_URL": mongo_url, "TICKETFLOW_NAMESPACE": namespace,
           "TICKETFLOW_JWT_SECRET": SECRET, "PYTHONPATH": str(ROOT), "TICKETFLOW_INTAKE_URL": f"http://127.0.0.1:{intake_port}",
           "TICKETFLOW_REQUESTER_TICKETS_PER_HOUR": "1000000"}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp / "servers.log", "w")  # noqa: SIM115 - closed at the end
    try:
        _declare_intake_queue(env)
        procs.append(gunicorn("services.intake.api:create_app()", intake_port, env, args.workers, log))
        procs.append(gunicorn("services.portal.api:create_app()", portal_port, env, args.workers, log))
        results = {}
        for kind, port in (("intake", intake_port), ("portal", portal_port)):
            results[kind] = found = drive(kind, port, args.seconds, args.clients)
            print(f"{kind:>7}: {found['requests_per_second']:8.1f} tickets/s  p50 {found['p50_ms']:6.1f} ms"
                  f"  p99 {found['p99_ms']:6.1f} ms  errors {found['errors']}", flush=True)  # fmt: skip
        ratio = results["portal"]["requests_per_second"] / results["intake"]["requests_per_second"]
        print(f"  ratio: {ratio:.2f} (portal / intake), {args.workers} gunicorn workers each, {args.clients} clients")
    finally:
        for proc in reversed(procs[1:] if not os.environ.get("MONGO_URL") else procs):
            proc.terminate()
            proc.wait(15)
        finish(lambda: _cleanup(env), procs, log)


if __name__ == "__main__":
    main()
