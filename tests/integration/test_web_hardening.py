"""Web plumbing every service shares: /docs from our own origin, nosniff everywhere, a cached /readyz that keeps
its broker connection."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import socket
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

from services.intake.api import create_app
from shared import bus, mongo, web
from tests.harness import TcpProxy, auth_header, wait_until
from tests.integration.conftest import in_process_app
from tests.integration.test_portal_search import portal, stub  # noqa: F401

# The Swagger UI files /docs serves, from the pinned flask-swagger-ui package (pyproject.toml).
# Upgrading the package changes these: check the new files, then record their sums here.
SWAGGER_UI_VERSION = "5.34.0"
SWAGGER_UI_SHA256 = {
    "swagger-ui.css": "c3cfe8248c4b0b89673600fb829924eafbac6de4bc4b2b06f5f5243483074d0a",
    "swagger-ui-bundle.js": "3f6abf70480db7e07914df4c98a77385f22ea585eaf457a3e6415ba0eae2d167",
    "favicon-32x32.png": "3ed612f41e050ca5e7000cad6f1cbe7e7da39f65fca99c02e99e6591056e5837",
    "favicon-16x16.png": "af24ad604dd7b3bcda8f975ab973075f4a2f70a4087944a12f8ef8b63a3e07c2",
}
SERVICES = ("intake", "assignment", "sla", "notify")


def test_docs_reference_no_other_origin_and_carry_a_self_only_csp(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "/openapi.json" in html
    assert not re.search(r"(?i)(https?:)?//", html), "the page names another origin"
    assert "<script>" not in html  # no inline script: the CSP needs no 'unsafe-inline' for scripts
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/docs/assets/") for s in sources)
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "http" not in csp and "*" not in csp
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source


def test_docs_assets_are_the_recorded_files_of_the_pinned_swagger_ui(client):
    assert web.SWAGGER_UI_VERSION == SWAGGER_UI_VERSION
    assert (web.swagger_ui_dist() / "VERSION").read_text().strip() == f"v{SWAGGER_UI_VERSION}"
    for name, digest in SWAGGER_UI_SHA256.items():
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 200, name
        assert hashlib.sha256(response.get_data()).hexdigest() == digest, f"{name} is not the recorded file"
    init = client.get("/docs/assets/init.js")
    assert init.status_code == 200 and init.mimetype == "text/javascript"
    assert "validatorUrl: null" in init.get_data(as_text=True)  # Swagger UI would call its online validator
    for name in ("VERSION", "..%2Fflask_swagger_ui.py", "LICENSE", "nope.js"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name


@pytest.mark.parametrize("service", SERVICES)
def test_every_response_of_every_service_says_nosniff(infra, service):
    with in_process_app(service) as app:
        client = app.test_client()
        answers = [
            client.get("/healthz"),
            client.get("/metrics"),
            client.get("/openapi.json"),
            client.get("/docs"),
            client.get("/docs/assets/swagger-ui.css"),
            client.get("/no-such-route"),
            client.post("/healthz"),
            client.get("/openapi.json", headers=auth_header("admin")),
        ]
        for response in answers:
            assert response.headers.get("X-Content-Type-Options") == "nosniff", (service, response.status_code)


def test_readyz_probes_the_broker_at_most_once_in_a_short_while(client, monkeypatch):
    opened = []

    def counting(probe):
        opened.append(time.monotonic())
        return True

    monkeypatch.setattr(bus.BrokerProbe, "answers", counting)
    monkeypatch.setattr(web, "READY_CACHE_SECONDS", 60.0)  # "a short while" that a busy machine cannot outlast
    first, second = client.get("/readyz"), client.get("/readyz")
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()
    assert len(opened) == 1
    monkeypatch.setattr(web, "READY_CACHE_SECONDS", 0.0)  # the while has passed
    assert client.get("/readyz").status_code == 200
    assert len(opened) == 2  # the answer is fresh again after a short while


def test_readyz_ignoring_the_broker_still_reports_it_and_answers_by_the_rest(client, monkeypatch):
    """Kubernetes' readiness probe of an api asks /readyz?ignore=rabbitmq: a broker away keeps the pods serving."""
    monkeypatch.setattr(bus.BrokerProbe, "answers", lambda probe: False)
    monkeypatch.setattr(web, "READY_CACHE_SECONDS", 0.0)
    assert client.get("/readyz").status_code == 503
    ignoring = client.get("/readyz?ignore=rabbitmq")
    assert ignoring.status_code == 200
    assert ignoring.get_json() == {"status": "ready", "checks": {"mongodb": True, "rabbitmq": False}}
    assert client.get("/readyz?ignore=mongodb").status_code == 503  # another name: the broker still counts
    monkeypatch.setattr(web.mongo, "ping", lambda settings: False)
    assert client.get("/readyz?ignore=rabbitmq").status_code == 503  # the store is still asked
    assert client.get("/readyz?ignore=rabbitmq,mongodb").status_code == 200


def test_readyz_keeps_one_broker_connection_across_probes_and_tells_when_the_broker_goes(infra, settings, monkeypatch):
    """Probes 10 s apart (Kubernetes') are each past the cache: they still open no connection each."""
    opened = []
    real = bus.pika.BlockingConnection

    def counting(params):
        opened.append(params.client_properties["connection_name"])
        return real(params)

    monkeypatch.setattr(bus.pika, "BlockingConnection", counting)
    monkeypatch.setattr(web, "READY_CACHE_SECONDS", 0.0)  # every call probes
    amqp = urlsplit(infra.amqp_url)
    mongo.close_client()
    with TcpProxy(amqp.hostname, amqp.port or 5672) as proxy:
        app = create_app(dataclasses.replace(settings, amqp_url=proxy.rewrite(infra.amqp_url)))
        client = app.test_client()
        for _ in range(3):
            answer = client.get("/readyz")
            assert answer.status_code == 200 and answer.get_json()["checks"]["rabbitmq"] is True
        assert opened == [f"{settings.namespace}.readyz"]
        proxy.stop()  # the kept connection is cut, and a new one is refused
        wait_until(lambda: client.get("/readyz").get_json()["checks"]["rabbitmq"] is False, timeout=30)
        assert client.get("/readyz").status_code == 503
        proxy.start()
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30)
        app.extensions["ticketflow.readyz"].close()
    mongo.close_client()


LISTS = {"intake": "/tickets", "assignment": "/queue", "sla": "/breaches", "notify": "/notifications"}


@pytest.mark.parametrize("service", LISTS)
def test_a_query_of_bytes_that_are_not_utf8_is_a_bad_request_not_a_server_error(infra, service):
    """Bytes sent as they are (not percent-encoded) in the query: werkzeug's strict decoding would raise in the
    view; every service says 400 before any view reads it, a percent-encoded one is the view's to judge."""
    with in_process_app(service) as app:
        client = app.test_client()
        path = LISTS[service]
        wsgi = {"QUERY_STRING": "status=\xc3&limit=\xff&q=caf\xe9"}  # WSGI's str: each byte as a latin-1 character
        raw = client.get(path, environ_overrides=wsgi, headers=auth_header("admin"))
        assert raw.status_code == 400 and raw.mimetype == "application/problem+json", raw.data[:200]
        assert "not UTF-8" in raw.get_json()["detail"]
        encoded = client.get(path, query_string="limit=%C3", headers=auth_header("admin"))
        assert encoded.status_code == 422, encoded.data[:200]


def test_a_chunked_json_body_over_the_limit_is_too_large_not_bad_json(client):
    """Without Content-Length werkzeug stops reading at the limit and says nothing: the body would be cut and
    blamed for its JSON. One byte more is read to know."""
    description = "d" * (web.MAX_BODY + 10)
    body = ('{"subject": "s", "description": "' + description + '", "topic": "general", '
            '"requester": {"name": "N", "email": "n@example.com"}}').encode()  # fmt: skip

    headers = {**auth_header("admin"), "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    as_gunicorn = {"wsgi.input_terminated": True}  # a chunked body, de-chunked by the server: no length is known
    answer = client.post("/tickets", input_stream=io.BytesIO(body), headers=headers, environ_overrides=as_gunicorn)
    assert answer.status_code == 413 and answer.mimetype == "application/problem+json", answer.data[:300]
    small = b'{"subject": "s", "description": "d", "topic": "general", "requester": {"name": "N", "email": "n@x.org"}}'
    fine = client.post("/tickets", input_stream=io.BytesIO(small), headers=headers, environ_overrides=as_gunicorn)
    assert fine.status_code == 201, fine.data[:300]


def test_a_portal_page_asked_with_bytes_that_are_not_utf8_says_bad_request_on_a_page(portal):  # noqa: F811
    answer = portal.test_client().get("/", environ_overrides={"QUERY_STRING": "x=\xff"})
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert "not UTF-8" in answer.get_data(as_text=True)


@pytest.mark.slow
def test_a_client_that_stalls_in_its_body_gets_a_408_and_frees_its_worker(spawn_api):
    """Under gunicorn, one worker: a client sends its headers and part of its body, then nothing. The worker gives
    up on it after GUNICORN_READ_TIMEOUT (1 s here) with a 408, and serves the next client (it was held until
    gunicorn's 30 s timeout killed it, the stalled client getting no answer)."""
    api = spawn_api("intake", env={"WEB_CONCURRENCY": "1", "GUNICORN_READ_TIMEOUT": "1"})
    port = int(api.url.rsplit(":", 1)[1])
    stalled = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = "POST /tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    stalled.sendall(head.encode() + b'{"subject": ')
    answer = b""
    while b"\r\n\r\n" not in answer:  # however long the machine takes: the answer, not a closed socket
        chunk = stalled.recv(4096)
        assert chunk, f"closed without an answer: {answer!r}"
        answer += chunk
    stalled.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    with urllib.request.urlopen(f"{api.url}/healthz", timeout=60) as response:
        assert response.status == 200
