"""What a killed test session leaves on the machine's broker goes away by itself.

A session deletes its queues when it ends (tests/conftest.py); one killed before that cannot. On a local
broker, `scripts/ensure-rabbitmq.sh` sets a policy that deletes a `tftest_` queue after an hour without use:
a CI run once failed because the shared broker, restarted, never finished recovering 1,065 such queues.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pika
import pytest

from tests.conftest import session_namespace
from tests.harness import wait_until
from ticketflow import local

POLICY = "ticketflow-test-queues-expire"


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def local_broker(infra):
    if os.environ.get("TEST_AMQP_URL") or infra.amqp_url != local.DEFAULT_AMQP_URL:
        pytest.skip("the session's broker is not the machine's own: the script sets no policy there")
    if shutil.which("rabbitmqctl") is None or _rabbitmqctl("status").returncode != 0:
        pytest.skip("rabbitmqctl cannot reach the local node here (not root?)")
    return infra.amqp_url


def _policy_of(queue: str) -> str | None:
    listed = _rabbitmqctl("list_queues", "name", "policy", "--no-table-headers")
    for line in listed.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == queue:
            return fields[1] if len(fields) > 1 else ""
    return None


def test_the_script_expires_a_test_sessions_queues_after_an_hour_unused(local_broker):
    script = local.REPO_ROOT / "scripts" / "ensure-rabbitmq.sh"
    result = subprocess.run([str(script)], env={**os.environ, "AMQP_URL": local_broker}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    policies = _rabbitmqctl("list_policies", "--formatter", "json")
    assert policies.returncode == 0, policies.stderr
    ours = [p for p in json.loads(policies.stdout) if p["name"] == POLICY]
    assert len(ours) == 1
    assert ours[0]["pattern"] == "^tftest_"
    assert ours[0]["apply-to"] == "queues"
    assert json.loads(ours[0]["definition"]) == {"expires": 3600000}

    test_queue = f"{session_namespace()}_leftover.probe"
    other_queue = f"not{session_namespace()}.probe"  # a name of anyone else's: untouched
    connection = pika.BlockingConnection(pika.URLParameters(local_broker))
    try:
        channel = connection.channel()
        channel.queue_declare(test_queue, durable=True)
        channel.queue_declare(other_queue, durable=True)
        try:
            wait_until(lambda: _policy_of(test_queue) == POLICY, message="the test queue takes the policy")
            assert _policy_of(other_queue) != POLICY  # (another policy of the broker may match it)
        finally:
            channel.queue_delete(test_queue)
            channel.queue_delete(other_queue)
    finally:
        connection.close()
