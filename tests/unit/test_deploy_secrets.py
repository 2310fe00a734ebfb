"""Every placeholder secret of deploy/k8s/secrets.yaml is refused at start, like the JWT one.

A cluster applied with a `replace-me` left in must not come up half-secured: each placeholder value,
put where the pods read it, stops load_settings (or require_secret) with a clear message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared.config import SERVICE_PORTS, ConfigError, load_settings, placeholder_addresses

K8S_DIR = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
PLACEHOLDER = "replace-me"


def documents() -> list[dict]:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S_DIR / name).read_text()) if doc]
    return docs


def env_vars_of(docs: list[dict], secret: str, key: str) -> set[str]:
    """The variables of every container that reads `key` of Secret `secret`."""
    names = set()
    for doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef", {})
                if (ref.get("name"), ref.get("key")) == (secret, key):
                    names.add(var["name"])
            for source in container.get("envFrom", []):
                if source.get("secretRef", {}).get("name") == secret:
                    names.add(key)
    return names


def placeholder_secrets() -> list[tuple[str, str, str]]:
    found = []
    for doc in documents():
        if doc["kind"] == "Secret":
            for key, value in (doc.get("stringData") or {}).items():
                if PLACEHOLDER in value:
                    found.append((doc["metadata"]["name"], key, value))
    return found


def refused(name: str, value: str) -> str:
    with pytest.raises(ConfigError) as stopped:
        load_settings({name: value}).require_secret()
    return str(stopped.value)


def test_the_manifests_hold_placeholders_to_check():
    names = {(secret, key) for secret, key, _ in placeholder_secrets()}
    assert {("ticketflow-jwt", "TICKETFLOW_JWT_SECRET"), ("ticketflow-rabbitmq", "amqp-url")} <= names
    assert {("ticketflow-rabbitmq", f"amqp-url-{service}") for service in SERVICE_PORTS} <= names
    assert {("ticketflow-mongodb-password", "password"), ("ticketflow-smtp", "SMTP_URL")} <= names


@pytest.mark.parametrize("secret,key,value", placeholder_secrets(), ids=lambda v: str(v)[:40])
def test_every_placeholder_secret_stops_the_services_that_read_it(secret, key, value):
    docs = documents()
    variables = env_vars_of(docs, secret, key)
    if secret == "ticketflow-mongodb-password":  # the operator builds MONGO_URL from it
        password = value
        value = f"mongodb://ticketflow:{password}@ticketflow-mongodb-0.ticketflow-mongodb-svc:27017/admin"
        variables = {"MONGO_URL"}
    elif key == "users.json":  # RabbitMQ's own import: each password is in an amqp-url*, checked there
        amqp_urls = [v for s, k, v in placeholder_secrets() if s == secret and k.startswith("amqp-url")]
        for user in json.loads(value)["users"]:
            assert any(f"//{user['name']}:{user['password']}@" in url for url in amqp_urls), user["name"]
        return
    elif key == "amqp-url":  # the operators' user: KEDA reads queue lengths with it, no ticketflow process
        assert any(
            target.get("name") == secret and target.get("key") == key
            for doc in docs
            for target in doc.get("spec", {}).get("secretTargetRef", [])
        ), "KEDA's TriggerAuthentication reads it"
        assert refused("AMQP_URL", value)
        return
    assert variables, f"no container reads {secret}/{key}: which check covers it?"
    for name in variables:
        message = refused(name, value)
        assert name in message and PLACEHOLDER in message


@pytest.mark.parametrize(
    "name,value",
    [
        ("TICKETFLOW_JWT_SECRET", "replace-me"),
        (
            "TICKETFLOW_JWT_SECRET",
            "replace-me-with-a-long-random-string-of-64-bytes",
        ),  # long enough, still a placeholder
        ("AMQP_URL", "amqp://ticketflow:replace-me@rabbit:5672/%2F"),
        ("MONGO_URL", "mongodb://ticketflow:REPLACE-ME@a:27017,b:27017/admin?replicaSet=rs"),
        ("SMTP_URL", "smtps://user:changeme@smtp.example.com:465"),
    ],
)
def test_placeholders_are_refused_with_a_clear_message(name, value):
    assert "placeholder" in refused(name, value)


def test_real_values_pass():
    settings = load_settings(
        {
            "TICKETFLOW_JWT_SECRET": "0123456789abcdef" * 4,
            "AMQP_URL": "amqp://ticketflow:5f1c0a9e@rabbit:5672/%2F",
            "MONGO_URL": "mongodb://ticketflow:9a8b7c6d@a:27017/admin",
            "SMTP_URL": "smtp+starttls://user:s3cr3t@smtp.example.com:587",
        }
    )
    assert settings.require_secret() == "0123456789abcdef" * 4


def test_the_example_addresses_of_the_deploy_files_are_said_at_start():
    """deploy/k8s/config.yaml ships help.example.com: emails would link to pages nobody serves, from an address
    nobody reads. The workers that send them say so (a desk may try the files before it has its addresses)."""
    config = next(doc for doc in documents() if doc["kind"] == "ConfigMap" and "NOTIFY_FROM" in doc.get("data", {}))
    said = placeholder_addresses(load_settings(config["data"]))
    assert [line.split(" ")[0] for line in said] == ["TICKETFLOW_PORTAL_URL", "NOTIFY_FROM"]
    assert "help.example.com, an example domain" in said[0] and "link to pages nobody serves" in said[0]
    assert "come from an address nobody reads" in said[1]
    own = {"TICKETFLOW_PORTAL_URL": "https://help.acme.io/desk", "NOTIFY_FROM": "Help <help@acme.io>"}
    assert placeholder_addresses(load_settings(own)) == []
    assert placeholder_addresses(load_settings({})) == []  # make run's own: 127.0.0.1 and helpdesk@localhost
