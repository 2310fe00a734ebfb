"""gunicorn settings for every service's api (`gunicorn -c python:shared.gunicorn_conf ...`)."""

import json
import multiprocessing
import os
import uuid

# imported here, not in child_exit: two workers exiting at once would re-enter a half-done import there
from gunicorn import util
from prometheus_client import multiprocess

from shared import gunicorn_worker
from shared.errors import SLUGS

workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
# the sync worker, each connection's reads limited (shared/gunicorn_worker.py: a stalled client frees its worker)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", f"{gunicorn_worker.__name__}.ReadTimeoutWorker")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 30
# on SIGTERM (a rollout), a request under way may finish: an upload on a slow line takes more than 10 s.
# Kubernetes gives the pod 35 s (a 5 s preStop first), compose 30 s (stop_grace_period)
graceful_timeout = 25
keepalive = 5
preload_app = False  # each worker opens its own MongoDB client and broker connection after the fork
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def on_starting(server):
    """Check the configuration once, in the master (before it binds): a missing secret, or dev mode on an
    address other hosts reach, stops gunicorn instead of looping."""
    from shared.config import load_settings, refuse_dev_on_public_bind

    settings = load_settings()
    settings.require_secret()
    refuse_dev_on_public_bind(settings, list(server.cfg.bind or []))
    app = getattr(server.app, "app_uri", None) or server.cfg.wsgi_app or ""  # given as an argument, or --wsgi-app
    if "services.portal." not in app:  # the portal's people read pages: gunicorn's own is one
        util.write_error = write_problem  # the workers are forked from here: theirs too


def write_problem(sock, status: int, reason: str, message: str) -> None:
    """What gunicorn answers itself, before the app sees the request (a request line or headers too long or
    malformed), as the APIs answer everything else: problem+json with an X-Request-ID, not an HTML page."""
    slug = SLUGS.get(status, "error")
    body = json.dumps({"type": f"urn:ticketflow:problem:{slug}", "title": reason, "status": status,
                       "detail": message or reason}).encode()  # fmt: skip
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-ID: {uuid.uuid4().hex}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)
