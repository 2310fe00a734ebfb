"""Prometheus metrics shared by every service (multi-process aware under gunicorn)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_LATENCY = Histogram(
    "ticketflow_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVENTS_PUBLISHED = Counter("ticketflow_events_published_total", "Events confirmed by the broker", ["service", "type"])
EVENTS_CONSUMED = Counter(
    "ticketflow_events_consumed_total", "Events consumed (outcome ok or duplicate)", ["service", "type", "outcome"]
)
EVENTS_RETRIED = Counter("ticketflow_events_retried_total", "Events sent to a retry queue", ["service", "type"])
EVENTS_DEAD_LETTERED = Counter(
    "ticketflow_events_dead_lettered_total", "Messages moved to the dead-letter queue", ["service", "reason"]
)


def render() -> tuple[bytes, str]:
    """The metrics of this process, or of every process of the service when they share a multiprocess folder."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# sla only: how long after a threshold passed its warning or breach was stored for publishing
SLA_ALERT_LAG = Histogram(
    "ticketflow_sla_alert_lag_seconds",
    "Time from a threshold passing to its sla.warning or sla.breached being stored (breaches include the grace)",
    ["type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
)


# notify only, set by its worker's timer: what KEDA scales notify's worker on (deploy/k8s/notify.yaml)
NOTIFY_PENDING = Gauge(
    "ticketflow_notify_pending",
    "Notifications not yet sent and not dead (pending or failed, to be tried again), counted up to 10000",
    multiprocess_mode="livemax",
)
NOTIFY_OLDEST_PENDING = Gauge(
    "ticketflow_notify_oldest_pending_seconds",
    "Seconds the most overdue notification has waited past its next attempt (0: none is due)",
    multiprocess_mode="livemax",
)
