"""Configuration from the environment: every setting a process reads, checked once at start-up."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEV_SECRET = "ticketflow-dev-secret-not-for-production"
DEFAULT_RETRY_DELAYS = (1.0, 5.0, 30.0, 120.0, 600.0)
QUEUE_TYPES = ("classic", "quorum")
BROKER_TOPOLOGIES = ("declare", "definitions")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL")  # the names logging knows
# Every service and the port of its HTTP API. Add a service here and `ticketflow run` starts it.
SERVICE_PORTS: dict[str, int] = {"intake": 8001, "assignment": 8002, "sla": 8003, "notify": 8004, "search": 8005}
PORTAL_PORT = 8000  # the portal (services/portal): the web UI, a client of the APIs above
# Values that stand for a secret in examples and manifests (deploy/k8s/secrets.yaml): never a real one.
PLACEHOLDERS = ("replace-me", "replace_me", "changeme", "change-me")
SECRET_URLS = ("AMQP_URL", "MONGO_URL", "SMTP_URL", "TICKETFLOW_IMAP_URL", "TICKETFLOW_OPENSEARCH_URL")
SEARCH_ENGINES = (
    "embedded",
    "opensearch",
)  # search's index: tantivy on a volume, or an OpenSearch cluster  # their passwords come from Secrets


class ConfigError(SystemExit):
    """A configuration problem that stops the process with a clear message."""

    def __init__(self, message: str) -> None:
        super().__init__(f"ticketflow: configuration error: {message}")


@dataclass(frozen=True)
class Settings:
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    mongo_url: str = "mongodb://127.0.0.1:27017"
    namespace: str = "ticketflow"
    jwt_secret: str | None = None
    jwt_previous_secret: str | None = None  # during a change of secret: what the old one signed is still accepted
    smtp_url: str = "smtp://127.0.0.1:8025"
    notify_from: str = "helpdesk@localhost"
    notify_escalation_email: str = ""  # who hears of a breach no agent or lead would (notify's UNHEARD); "": nobody
    auto_close_hours: float = 72.0
    dev: bool = False
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    mongo_timeout_ms: int = 5000
    sla_breach_grace: float = 0.1  # seconds a breach waits past its deadline for an event already on its way
    sla_lookahead: float = 1.0  # seconds ahead the sla timer reads clocks falling due
    smtp_timeout: float = 10.0  # seconds for each SMTP connection and command
    webhook_timeout: float = 5.0  # seconds a webhook delivery may take in all (resolve, connect, send, answer)
    # networks a webhook may point into although they are not public (loopback for local development)
    webhook_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    notify_senders: int = 8  # notifications a notify worker sends at once (0: it only records them)
    queue_type: str = "classic"  # RabbitMQ type of the service, retry and dead queues: classic | quorum
    # declare: every publisher declares every service's queues and bindings (one broker user that may do it all);
    # definitions: the broker holds them from deploy/rabbitmq/definitions.json, each service declares only its own
    # (its user may touch nothing else: shared.topology)
    broker_topology: str = "declare"
    outbox_sweep_interval: float = 30.0  # seconds between sweeps for events a dead process left unpublished
    auto_close_interval: float = 60.0  # seconds between intake's auto-close passes
    reconcile_interval: float = 30.0  # seconds between assignment's checks of the agents' open counts
    log_level: str = "INFO"
    metrics_port: int | None = None  # the worker's /metrics and /livez port (None: no such server)
    liveness_seconds: float = 60.0  # a worker's /livez fails past this long without the broker or in one timer run
    stop_timeout: float = 20.0  # seconds a worker has, from SIGTERM, to finish and exit before it exits anyway
    token_max_hours: float = 24.0  # the longest lifetime (exp - iat) of an agent's, admin's or requester's token
    portal_token_max_hours: float | None = 24.0  # the same for the portal server's own token (None: no cap)
    requester_tickets_per_hour: int = 200  # tickets one requester address may open per hour (each mails a receipt)
    requester_messages_per_hour: int = 600  # messages one requester address may add per hour
    portal_tickets_per_client_hour: int = 60  # requests one client address may open per hour with the portal's form
    portal_failed_sign_ins_per_client_hour: int = 100  # failed sign-ins from one client address an hour, any emails
    max_clock_skew: float = 300.0  # seconds an event's occurred_at may lie ahead of now; later ones are dead-lettered
    portal_url: str = "http://127.0.0.1:8000"  # the portal's public base URL: requesters' links point under it
    time_zone: str = "UTC"  # the desk's: times in emails (an SLA warning's deadline) are written in it
    link_days: float = 30.0  # days a requester's link (in each email) opens their ticket
    trusted_proxies: int = 0  # proxies in front of the portal whose X-Forwarded-For/-Proto it believes
    inbound_smtp: str = "127.0.0.1:2525"  # host:port intake's mail process listens on for an MTA's relayed mail
    imap_url: str | None = None  # imaps://user:pass@host[:port]/MAILBOX intake's mail process polls (None: none)
    imap_poll_seconds: float = 30.0  # between polls of a server without IDLE; IDLE is renewed as often
    inbound_addresses: tuple[str, ...] = ()  # addresses (fnmatch patterns, lowercase) mail is taken for; (): any
    inbound_topics: tuple[tuple[str, str], ...] = ()  # (recipient address, topic) of a new ticket; else "general"
    # authserv-ids of the MTAs in front whose Authentication-Results mail in believes: a mail they found failing
    # DMARC is kept for the agents, never posted as its From (docs/mail-in.md); (): none, From believed as is
    inbound_verified_by: tuple[str, ...] = ()
    # search's index: generations under <dir>/<namespace>, shared by its worker (the one writer) and api (readers)
    search_index_dir: str = ".run/search"
    search_engine: str = "embedded"  # embedded | opensearch (docs/search.md)
    opensearch_url: str | None = None  # http(s)://user:pass@host:9200 of the cluster, when search_engine=opensearch
    opensearch_ca: str | None = None  # a PEM file of the CA that signed the cluster's certificate (None: the system's)

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.events"

    def database_name(self, service: str) -> str:
        return f"{self.namespace}_{service}"

    def require_secret(self) -> str:
        """The JWT secret; stops the process when it is missing outside dev mode."""
        if self.jwt_secret:
            _refuse_placeholder("TICKETFLOW_JWT_SECRET", self.jwt_secret)
            if len(self.jwt_secret.encode()) < 32:
                raise ConfigError("TICKETFLOW_JWT_SECRET must be at least 32 bytes long (HS256 needs a 256-bit key).")
            return self.jwt_secret
        if self.dev:
            return DEV_SECRET
        raise ConfigError(
            "TICKETFLOW_JWT_SECRET is not set. Set it to a long random string "
            "(or TICKETFLOW_DEV=1 for a local development secret)."
        )

    def accepted_secrets(self) -> tuple[str, ...]:
        """The secrets a token or a requester's link may be signed with: the secret, and while the secret changes,
        the one before it (TICKETFLOW_JWT_PREVIOUS_SECRET; what is signed now is signed with the secret alone)."""
        current = self.require_secret()
        if not self.jwt_previous_secret:
            return (current,)
        _refuse_placeholder("TICKETFLOW_JWT_PREVIOUS_SECRET", self.jwt_previous_secret)
        if len(self.jwt_previous_secret.encode()) < 32:
            raise ConfigError("TICKETFLOW_JWT_PREVIOUS_SECRET must be at least 32 bytes long, as the secret.")
        return (current, self.jwt_previous_secret)


RESERVED_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606: the deploy files' placeholders


def placeholder_addresses(settings: Settings) -> list[str]:
    """What the emails' sender and links would carry from the deploy files' examples (RFC 2606's domains, as in
    deploy/k8s/config.yaml): one sentence each, for the workers that send them to say at start. Not refused: a
    desk may try a copy of the deploy files before it has its addresses."""
    said = []
    host = (urlsplit(settings.portal_url).hostname or "").lower()
    sender = settings.notify_from.rpartition("@")[2].strip(" >").lower()
    for name, where in (("TICKETFLOW_PORTAL_URL", host), ("NOTIFY_FROM", sender)):
        if any(where == domain or where.endswith(f".{domain}") for domain in RESERVED_DOMAINS):
            said.append(
                f"{name} is at {where}, an example domain: requesters' emails will "
                + (
                    "link to pages nobody serves"
                    if name == "TICKETFLOW_PORTAL_URL"
                    else "come from an address nobody reads"
                )
                + "; set it to the desk's own (deploy/README.md)"
            )
    return said


def _refuse_placeholder(name: str, value: str) -> None:
    """Stop on a secret left at its placeholder (deploy/k8s/secrets.yaml ships them deliberately unusable)."""
    lowered = value.lower()
    for placeholder in PLACEHOLDERS:
        if placeholder in lowered:
            raise ConfigError(
                f"{name} still holds the placeholder {placeholder!r}: set the real secret "
                "(deploy/k8s/secrets.yaml, or your secret store) before starting."
            )


def _time_zone(env: dict, name: str) -> str:
    """An IANA time zone name (Europe/Paris); UTC when unset."""
    value = (env.get(name) or "UTC").strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        said = f"{name} must be a time zone such as Europe/Paris or America/New_York, got {value!r}"
        raise ConfigError(said) from None
    return value


def _float(env: dict, name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _delays(raw: str | None) -> tuple[float, ...]:
    if not raw:
        return DEFAULT_RETRY_DELAYS
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"TICKETFLOW_RETRY_DELAYS must be seconds separated by commas, got {raw!r}") from None
    if not delays or any(d <= 0 for d in delays):
        raise ConfigError("TICKETFLOW_RETRY_DELAYS needs at least one delay, each greater than 0")
    return delays


def _one_of(env: dict, name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices`, whatever the case and surrounding blanks of the value set."""
    raw = env.get(name)
    wanted = (raw or default).strip().lower()
    found = next((choice for choice in choices if choice.lower() == wanted), None)
    if found is None:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return found


SIMILAR_MODEL = "TICKETFLOW_SIMILAR_MODEL"  # search's similar re-ranked by meaning: on (the default) | off


def similar_model_on(env) -> bool:
    """SIMILAR_MODEL's value: services/search/semantic.py reads it at each question (a benchmark switches it
    between two); load_settings checks it once, so that a process with a wrong value does not start."""
    return _one_of(env, SIMILAR_MODEL, ("on", "off"), "on") == "on"


def _positive(env: dict, name: str, default: float) -> float:
    """A finite number greater than 0 (seconds between two runs of a timer, a limit)."""
    value = _float(env, name, default)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a number greater than 0, got {env.get(name)!r}")
    return value


def _networks(name: str, raw: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDRs separated by commas (127.0.0.0/8,::1/128,10.20.0.0/16); a bare address is a network of one."""
    networks = []
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"{name} must be IPv4 or IPv6 networks in CIDR notation separated by commas "
                f"(like 127.0.0.0/8,::1/128), got {part.strip()!r}"
            ) from None
    return tuple(networks)


def _count(env: dict, name: str, default: int, least: int = 1) -> int:
    """A whole number of at least `least` (a limit, a count)."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    if not raw.strip().isdigit() or int(raw) < least:
        raise ConfigError(f"{name} must be a whole number of at least {least}, got {raw!r}")
    return int(raw)


def _base_url(env: dict, name: str, default: str) -> str:
    """An http(s) URL without a trailing slash."""
    raw = (env.get(name) or default).strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be an http(s):// base URL (like https://help.example.com), got {raw!r}")
    return raw.rstrip("/")


def _words(raw: str | None) -> list[str]:
    """Comma- or space-separated items, lowercased."""
    return [item.strip().lower() for item in (raw or "").replace(",", " ").split() if item.strip()]


def _host_port(env: dict, name: str, default: str) -> str:
    raw = (env.get(name) or default).strip()
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be host:port, like 127.0.0.1:2525; got {raw!r}")
    return raw


def _topics(raw: str | None) -> tuple[tuple[str, str], ...]:
    """`address=topic` pairs, comma-separated (TICKETFLOW_INBOUND_TOPICS)."""
    pairs = []
    for item in _words(raw):
        address, sep, topic = item.partition("=")
        if not sep or "@" not in address or not topic:
            raise ConfigError(
                "TICKETFLOW_INBOUND_TOPICS takes address=topic pairs, like network@help.example.com=network; "
                f"got {item!r}"
            )
        pairs.append((address, topic))
    return tuple(pairs)


def _opensearch_url(env: dict) -> str | None:
    """Required with TICKETFLOW_SEARCH_ENGINE=opensearch; an http(s) URL."""
    raw = (env.get("TICKETFLOW_OPENSEARCH_URL") or "").strip() or None
    engine = (env.get("TICKETFLOW_SEARCH_ENGINE") or "").strip().lower()
    if raw is None and engine == "opensearch":
        raise ConfigError(
            "TICKETFLOW_SEARCH_ENGINE=opensearch needs TICKETFLOW_OPENSEARCH_URL (like http://opensearch:9200)"
        )
    if raw is not None and (urlsplit(raw).scheme not in ("http", "https") or not urlsplit(raw).netloc):
        raise ConfigError("TICKETFLOW_OPENSEARCH_URL must be an http(s):// URL (like http://opensearch:9200)")
    return raw


def _port(raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"TICKETFLOW_METRICS_PORT must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def load_settings(env: dict | None = None) -> Settings:
    """Read the settings from the environment (os.environ by default)."""
    env = os.environ if env is None else env
    for name in SECRET_URLS:
        _refuse_placeholder(name, env.get(name) or "")
    namespace = env.get("TICKETFLOW_NAMESPACE") or "ticketflow"
    if not namespace.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"TICKETFLOW_NAMESPACE may hold letters, digits, - and _ only, got {namespace!r}")
    similar_model_on(env)  # checked here; read where it is used (services/search/semantic.py)
    escalation = (env.get("NOTIFY_ESCALATION_EMAIL") or "").strip()
    if escalation and not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+", escalation):
        raise ConfigError(f"NOTIFY_ESCALATION_EMAIL must be one email address (name@domain), got {escalation!r}")
    return Settings(
        amqp_url=env.get("AMQP_URL") or Settings.amqp_url,
        mongo_url=env.get("MONGO_URL") or Settings.mongo_url,
        namespace=namespace,
        jwt_secret=env.get("TICKETFLOW_JWT_SECRET") or None,
        jwt_previous_secret=env.get("TICKETFLOW_JWT_PREVIOUS_SECRET") or None,
        smtp_url=env.get("SMTP_URL") or Settings.smtp_url,
        notify_from=env.get("NOTIFY_FROM") or Settings.notify_from,
        notify_escalation_email=escalation,
        auto_close_hours=_float(env, "TICKETFLOW_AUTO_CLOSE_HOURS", 72.0),
        dev=env.get("TICKETFLOW_DEV", "") in ("1", "true", "yes"),
        retry_delays=_delays(env.get("TICKETFLOW_RETRY_DELAYS")),
        mongo_timeout_ms=int(_float(env, "TICKETFLOW_MONGO_TIMEOUT_MS", 5000)),
        sla_breach_grace=_float(env, "TICKETFLOW_SLA_BREACH_GRACE", 0.1),
        sla_lookahead=max(_float(env, "TICKETFLOW_SLA_LOOKAHEAD", 1.0), 0.05),
        smtp_timeout=max(_float(env, "TICKETFLOW_SMTP_TIMEOUT", 10.0), 0.1),
        webhook_timeout=max(_float(env, "TICKETFLOW_WEBHOOK_TIMEOUT", 5.0), 0.1),
        webhook_allowed_networks=_networks(
            "TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS", env.get("TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS")
        ),
        notify_senders=int(_float(env, "TICKETFLOW_NOTIFY_SENDERS", 8)),
        queue_type=_one_of(env, "TICKETFLOW_QUEUE_TYPE", QUEUE_TYPES, "classic"),
        broker_topology=_one_of(env, "TICKETFLOW_BROKER_TOPOLOGY", BROKER_TOPOLOGIES, "declare"),
        outbox_sweep_interval=_positive(env, "TICKETFLOW_OUTBOX_SWEEP_INTERVAL", 30.0),
        auto_close_interval=_positive(env, "TICKETFLOW_AUTO_CLOSE_INTERVAL", 60.0),
        reconcile_interval=_positive(env, "TICKETFLOW_RECONCILE_INTERVAL", 30.0),
        log_level=_one_of(env, "TICKETFLOW_LOG_LEVEL", LOG_LEVELS, "INFO"),
        metrics_port=_port(env.get("TICKETFLOW_METRICS_PORT")),
        liveness_seconds=_positive(env, "TICKETFLOW_LIVENESS_SECONDS", 60.0),
        stop_timeout=_positive(env, "TICKETFLOW_STOP_TIMEOUT", 20.0),
        max_clock_skew=_positive(env, "TICKETFLOW_MAX_CLOCK_SKEW", 300.0),
        portal_url=_base_url(env, "TICKETFLOW_PORTAL_URL", Settings.portal_url),
        time_zone=_time_zone(env, "TICKETFLOW_TIME_ZONE"),
        link_days=_positive(env, "TICKETFLOW_LINK_DAYS", 30.0),
        trusted_proxies=_count(env, "TICKETFLOW_TRUSTED_PROXIES", 0, least=0),
        inbound_smtp=_host_port(env, "TICKETFLOW_INBOUND_SMTP", Settings.inbound_smtp),
        imap_url=env.get("TICKETFLOW_IMAP_URL") or None,
        imap_poll_seconds=_positive(env, "TICKETFLOW_IMAP_POLL_SECONDS", 30.0),
        inbound_addresses=tuple(_words(env.get("TICKETFLOW_INBOUND_ADDRESSES"))),
        inbound_topics=_topics(env.get("TICKETFLOW_INBOUND_TOPICS")),
        inbound_verified_by=tuple(_words(env.get("TICKETFLOW_INBOUND_VERIFIED_BY"))),
        search_index_dir=env.get("TICKETFLOW_SEARCH_INDEX_DIR") or Settings.search_index_dir,
        search_engine=_one_of(env, "TICKETFLOW_SEARCH_ENGINE", SEARCH_ENGINES, "embedded"),
        opensearch_url=_opensearch_url(env),
        opensearch_ca=env.get("TICKETFLOW_OPENSEARCH_CA") or None,
        requester_tickets_per_hour=_count(env, "TICKETFLOW_REQUESTER_TICKETS_PER_HOUR", 200),
        requester_messages_per_hour=_count(env, "TICKETFLOW_REQUESTER_MESSAGES_PER_HOUR", 600),
        portal_tickets_per_client_hour=_count(env, "TICKETFLOW_PORTAL_TICKETS_PER_CLIENT_HOUR", 60),
        portal_failed_sign_ins_per_client_hour=_count(env, "TICKETFLOW_PORTAL_FAILED_SIGN_INS_PER_CLIENT_HOUR", 100),
        token_max_hours=_positive(env, "TICKETFLOW_TOKEN_MAX_HOURS", 24.0),
        # a server token reads every ticket: capped as the others, unless the operator gives it longer
        portal_token_max_hours=_positive(env, "TICKETFLOW_PORTAL_TOKEN_MAX_HOURS", 24.0),
    )


def refuse_dev_on_public_bind(settings: Settings, binds: list[str]) -> None:
    """Dev mode (a published, well-known JWT key) listens on this host only: stop on any other address."""
    if not settings.dev:
        return
    public = [bind for bind in binds if not _loopback_bind(bind)]
    if public:
        raise ConfigError(
            f"TICKETFLOW_DEV=1 refuses to listen on {', '.join(public)}: dev mode signs tokens with a published key, "
            "so it serves this host only. Bind 127.0.0.1 (or ::1, localhost, a unix socket), "
            "or unset TICKETFLOW_DEV and set TICKETFLOW_JWT_SECRET."
        )


def _loopback_bind(bind: str) -> bool:
    """Whether a gunicorn bind address (host:port, [v6]:port, host, unix:path, fd://n) is on this host only."""
    if bind.startswith("unix:"):
        return True
    if bind.startswith("fd://"):
        return False  # an inherited socket: where it listens is unknown here
    if bind.startswith("["):
        host = bind[1 : bind.find("]")] if "]" in bind else ""
    elif bind.count(":") == 1:
        host = bind.split(":", 1)[0]
    else:
        host = bind
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # empty (every address) or a name that might resolve anywhere


def fail(message: str) -> None:
    """Print one clear line and stop."""
    print(f"ticketflow: {message}", file=sys.stderr)
    raise SystemExit(1)
