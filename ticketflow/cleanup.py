"""Removing a namespace's broker objects: test sessions and benchmarks clean up after themselves."""

from __future__ import annotations

import shutil
import subprocess

import pika
from pika.exceptions import AMQPError

from shared.bus import parameters
from shared.config import Settings
from shared.topology import SUBSCRIPTIONS, exchange_names, queue_name, retry_queue_name


def delete_topology(amqp_url: str, namespace: str) -> None:
    """Delete the exchanges and every queue of a namespace: those rabbitmqctl lists, else those the code names."""
    settings = Settings(amqp_url=amqp_url, namespace=namespace)
    names = _list_queues(namespace) if shutil.which("rabbitmqctl") else None
    if names is None:
        names = []
        for service in SUBSCRIPTIONS:
            base = queue_name(settings, service)
            names += [base, f"{base}.dead"] + [retry_queue_name(settings, service, d) for d in settings.retry_delays]

    connection = pika.BlockingConnection(parameters(settings, "cleanup"))
    try:
        for name in names:
            channel = connection.channel()
            try:
                channel.queue_delete(name)
                channel.close()
            except AMQPError:
                pass
        for exchange in exchange_names(settings):
            connection.channel().exchange_delete(exchange)
    finally:
        connection.close()


def _list_queues(namespace: str) -> list[str] | None:
    try:
        out = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line.strip() for line in out.splitlines() if line.strip().startswith(f"{namespace}.")]
