"""The deployment files agree with the code: docker-compose.yml, deploy/rabbitmq and deploy/k8s.

Ports come from shared.config, commands from ticketflow.cli, variable names from the source, queues and
bindings from shared.topology: when the code changes and a deployment file does not, a test here fails.
The portal (port 8000) is deployed like the services but has no queue: its broker user may do nothing but ask
the queues' counts (its admins' health page); it reaches the apis at TICKETFLOW_<SERVICE>_URL.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from services.portal.handlers import SERVICE as PORTAL
from services.portal.handlers import api_urls
from shared import metrics
from shared.config import DEFAULT_RETRY_DELAYS, PORTAL_PORT, SERVICE_PORTS, ConfigError, Settings, load_settings
from shared.events import EVENT_TYPES, PUBLISHED_BY
from shared.topology import SUBSCRIPTIONS, declare_service_topology, queue_name, retry_queue_name
from ticketflow.cli import api_command, worker_command

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
RABBITMQ_DIR = ROOT / "deploy" / "rabbitmq"
K8S_DIR = ROOT / "deploy" / "k8s"
NAMESPACE = "ticketflow"
METRICS_PORT = 9100
DEPLOYED_PORTS = {**SERVICE_PORTS, PORTAL: PORTAL_PORT}  # every api and worker the deployment files run
API_URL_NAMES = {f"TICKETFLOW_{service.upper()}_URL": service for service in SERVICE_PORTS}  # the portal's
REQUIRED_IN_PRODUCTION = {"TICKETFLOW_JWT_SECRET"}  # load_settings({}).require_secret() stops without it
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([?-])([^}]*))?\}")
ENV_READ = re.compile(r'(?:env\.get|environ\.get|environ\[|getenv|_[a-z_]+\(env,)\s*\(?\s*"([A-Z][A-Z0-9_]*)"')


class RecordingChannel:
    """A pika channel's declaring methods, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name):
        if name not in ("exchange_declare", "queue_declare", "queue_bind"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

    def declared_queues(self) -> dict[str, dict | None]:
        return {args[0]: kwargs.get("arguments") for name, args, kwargs in self.calls if name == "queue_declare"}


def known_env_names() -> set[str]:
    """Every environment variable the code reads (load_settings, gunicorn_conf, runtime, workers), and the
    portal's TICKETFLOW_<SERVICE>_URL, whose names api_urls builds (test_api_url_names_are_the_portals)."""
    names: set[str] = set(API_URL_NAMES)
    for folder in ("shared", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(ENV_READ.findall(path.read_text()))
    return names


def in_network_api_urls() -> dict[str, str]:
    """Where the portal reaches each api in compose and in the cluster: the `<service>-api` host at its port."""
    return {service: f"http://{service}-api:{port}" for service, port in SERVICE_PORTS.items()}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with `env` standing in for .env."""

    def replace(match: re.Match) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name} is required: {rest}")
        return rest if kind == "-" else ""

    return INTERPOLATION.sub(replace, value).replace("$$", "$")


def conf_settings(text: str) -> dict[str, str]:
    """`key = value` lines of a rabbitmq.conf, without comments."""
    pairs = [line.split("#")[0].split("=", 1) for line in text.splitlines() if "=" in line.split("#")[0]]
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("generate_definitions", RABBITMQ_DIR / "generate_definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def definitions() -> dict:
    return json.loads((RABBITMQ_DIR / "definitions.json").read_text())


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S_DIR / name).read_text()) if doc]
    return docs


def by_kind(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == kind}


# --- the setting behind the quorum queues ------------------------------------------------------------


def test_queue_type_is_classic_unless_quorum_is_asked_for():
    assert load_settings({}).queue_type == "classic"
    assert load_settings({"TICKETFLOW_QUEUE_TYPE": ""}).queue_type == "classic"
    assert load_settings({"TICKETFLOW_QUEUE_TYPE": "quorum"}).queue_type == "quorum"
    assert load_settings({"TICKETFLOW_QUEUE_TYPE": " Quorum "}).queue_type == "quorum"


@pytest.mark.parametrize("value", ["stream", "lazy", "quorum,classic"])
def test_an_unknown_queue_type_stops_the_process(value):
    with pytest.raises(ConfigError, match="TICKETFLOW_QUEUE_TYPE"):
        load_settings({"TICKETFLOW_QUEUE_TYPE": value})


def test_classic_queues_are_declared_exactly_as_before():
    """No x-queue-type for classic: brokers holding the old queues must not refuse the declaration."""
    channel = RecordingChannel()
    declare_service_topology(channel, load_settings({}), "intake", ["ticket.created"])
    queues = channel.declared_queues()
    assert queues.pop("ticketflow.intake") is None
    assert queues.pop("ticketflow.intake.dead") is None
    assert queues == {
        f"ticketflow.intake.retry.{int(d * 1000)}ms": {
            "x-message-ttl": int(d * 1000),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "ticketflow.intake",
        }
        for d in DEFAULT_RETRY_DELAYS
    }


def test_quorum_adds_the_queue_type_to_every_queue_and_keeps_the_retry_arguments():
    settings = load_settings({"TICKETFLOW_QUEUE_TYPE": "quorum"})
    channel = RecordingChannel()
    declare_service_topology(channel, settings, "sla", ["ticket.created"])
    queues = channel.declared_queues()
    assert all(arguments["x-queue-type"] == "quorum" for arguments in queues.values())
    retry = queues[retry_queue_name(settings, "sla", 5.0)]
    assert retry == {
        "x-message-ttl": 5000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "ticketflow.sla",
        "x-queue-type": "quorum",
    }


# --- deploy/rabbitmq ---------------------------------------------------------------------------------


def test_definitions_are_what_the_generator_writes_from_the_code(generator):
    expected = generator.render(generator.build_definitions())
    for path in (RABBITMQ_DIR / "definitions.json", K8S_DIR / "rabbitmq" / "definitions.json"):
        assert path.read_text() == expected, f"{path} is stale: run deploy/rabbitmq/generate_definitions.py"


def test_definitions_declare_what_each_service_declares_with_quorum_queues(definitions):
    settings = load_settings({"TICKETFLOW_NAMESPACE": NAMESPACE, "TICKETFLOW_QUEUE_TYPE": "quorum"})
    expected_queues, expected_bindings = {}, set()
    for service, types in SUBSCRIPTIONS.items():
        channel = RecordingChannel()
        declare_service_topology(channel, settings, service, list(types))
        expected_queues.update(channel.declared_queues())
        expected_bindings |= {
            (args[0], args[1], kw["routing_key"]) for name, args, kw in channel.calls if name == "queue_bind"
        }
    assert {q["name"]: q["arguments"] for q in definitions["queues"]} == expected_queues
    assert all(q["durable"] and q["vhost"] == "/" for q in definitions["queues"])
    assert {(b["destination"], b["source"], b["routing_key"]) for b in definitions["bindings"]} == expected_bindings
    assert [(e["name"], e["type"], e["durable"]) for e in definitions["exchanges"]] == [
        ("ticketflow.events", "topic", True),
        *[(f"ticketflow.{service}.requeue", "direct", True) for service in SUBSCRIPTIONS],
    ]
    retry = {q["name"] for q in definitions["queues"] if ".retry." in q["name"]}
    assert retry == {retry_queue_name(settings, s, d) for s in SUBSCRIPTIONS for d in DEFAULT_RETRY_DELAYS}


def test_every_queue_has_exactly_one_policy_and_limits_are_policies(definitions):
    names = {q["name"] for q in definitions["queues"]}
    for queue in names:
        matching = [p for p in definitions["policies"] if re.search(p["pattern"], queue)]
        assert len(matching) == 1, (queue, [p["name"] for p in matching])
    for service in SUBSCRIPTIONS:
        queue = f"{NAMESPACE}.{service}"
        (policy,) = [p for p in definitions["policies"] if re.search(p["pattern"], queue)]
        assert policy["definition"]["delivery-limit"] > 0
        assert policy["definition"]["dead-letter-routing-key"] == f"{queue}.dead" in names
    (dead,) = [p for p in definitions["policies"] if re.search(p["pattern"], f"{NAMESPACE}.notify.dead")]
    assert dead["definition"]["max-length"] > 0
    # each service's user and the portal's, without a password: that lives in compose's .env or a k8s Secret
    assert {u["name"] for u in definitions["users"]} == {f"ticketflow-{s}" for s in [*SERVICE_PORTS, PORTAL]}
    assert all(u["password_hash"] == "" and "password" not in u for u in definitions["users"])


def test_rabbitmq_conf_loads_the_definitions_folder_and_enables_management_and_prometheus():
    settings = conf_settings((RABBITMQ_DIR / "rabbitmq.conf").read_text())
    assert settings["load_definitions"] == "/etc/rabbitmq/definitions.d"
    assert {"vm_memory_high_watermark.relative", "disk_free_limit.absolute", "max_message_size"} <= set(settings)
    assert int(settings["max_message_size"]) >= 1024 * 1024
    plugins = (RABBITMQ_DIR / "enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins


# --- docker-compose.yml ------------------------------------------------------------------------------


def test_the_source_scan_finds_the_variables_the_code_reads():
    assert {
        "AMQP_URL",
        "MONGO_URL",
        "TICKETFLOW_JWT_SECRET",
        "TICKETFLOW_QUEUE_TYPE",
        "TICKETFLOW_AUTO_CLOSE_HOURS",
        "WEB_CONCURRENCY",
        "PROMETHEUS_MULTIPROC_DIR",
        "TICKETFLOW_METRICS_PORT",
    } <= known_env_names()


def test_api_url_names_are_the_portals():
    """The names known_env_names adds are the ones the portal reads, one per api."""
    urls = api_urls({name: f"http://{service}.example:1/" for name, service in API_URL_NAMES.items()})
    assert urls == {service: f"http://{service}.example:1" for service in SERVICE_PORTS}
    assert api_urls({}) == {service: f"http://127.0.0.1:{port}" for service, port in SERVICE_PORTS.items()}


def test_compose_names_every_service(compose):
    expected = {"mongo", "rabbitmq", "mailpit"} | {f"{s}-{kind}" for s in DEPLOYED_PORTS for kind in ("api", "worker")}
    assert expected <= set(compose["services"])
    assert compose["services"]["mongo"]["image"].startswith("mongo:7")
    assert re.fullmatch(r"rabbitmq:3\.1[3-9][\w.-]*-management", compose["services"]["rabbitmq"]["image"])


@pytest.mark.parametrize("service", DEPLOYED_PORTS)
def test_compose_runs_the_api_as_the_cli_does_on_its_port(compose, service):
    port = DEPLOYED_PORTS[service]
    api = compose["services"][f"{service}-api"]
    expected = api_command(service, port, host="0.0.0.0")
    assert Path(expected[0]).name == api["command"][0] == "gunicorn"
    assert api["command"][1:] == expected[1:]
    assert api["ports"] == [f"{port}:{port}"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(api["healthcheck"]["test"])
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"] in api["tmpfs"]


@pytest.mark.parametrize("service", DEPLOYED_PORTS)
def test_compose_runs_the_worker_unpublished_with_a_liveness_healthcheck(compose, service):
    worker = compose["services"][f"{service}-worker"]
    assert worker["command"] == ["python", *worker_command(service)[1:]]
    assert "ports" not in worker  # so that `docker compose up --scale <service>-worker=N` works
    assert worker["environment"]["TICKETFLOW_METRICS_PORT"] == str(METRICS_PORT)
    assert f"127.0.0.1:{METRICS_PORT}/livez" in " ".join(worker["healthcheck"]["test"])
    stop_timeout = _stop_timeout(worker["environment"])
    assert _seconds(worker["stop_grace_period"]) > stop_timeout  # the worker ends by itself before Docker kills it


def test_compose_services_start_after_healthy_dependencies(compose):
    services = compose["services"]
    for service in DEPLOYED_PORTS:
        for name in (f"{service}-api", f"{service}-worker"):
            depends = services[name]["depends_on"]
            assert depends["mongo"]["condition"] == "service_healthy", name
            if service == PORTAL:  # no broker: it does not wait for one
                assert "rabbitmq" not in depends, name
            else:
                assert depends["rabbitmq"]["condition"] == "service_healthy", name
            assert services[name]["healthcheck"]["test"], name
            for dependency, how in depends.items():
                if how["condition"] == "service_healthy":
                    assert services[dependency]["healthcheck"]["test"], dependency
    # the portal serves nothing without the apis; its worker looks tickets up in intake and mails the links
    portal_api = services[f"{PORTAL}-api"]["depends_on"]
    assert {f"{s}-api" for s in SERVICE_PORTS} <= set(portal_api)
    assert all(portal_api[f"{s}-api"]["condition"] == "service_healthy" for s in SERVICE_PORTS)
    portal_worker = services[f"{PORTAL}-worker"]["depends_on"]
    assert portal_worker["intake-api"]["condition"] == portal_worker["mailpit"]["condition"] == "service_healthy"


def test_compose_uses_one_image_built_from_the_deploy_dockerfile(compose):
    ticketflow = [spec for name, spec in compose["services"].items() if name.endswith(("-api", "-worker"))]
    assert len({spec["image"] for spec in ticketflow}) == 1
    assert all(spec["build"]["dockerfile"] == "deploy/Dockerfile" for spec in ticketflow)
    assert (ROOT / "deploy" / "Dockerfile").is_file()
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile and "pip wheel" in dockerfile and "\nCMD" not in dockerfile


def test_the_image_installs_the_runtime_dependencies_and_no_extra():
    """The `tool` extra (the `ticketflow` command's own needs) is not in the image; aiosmtpd is intake's mail in."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=~!\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}

    assert "aiosmtpd" in names(project["dependencies"])
    assert names(project["optional-dependencies"]["tool"]) == set()  # `run` supervises with its own code
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "pip install --no-index --find-links=/wheels ticketflow\n" in dockerfile  # no [extra]
    # the package's own folders go in, so `ticketflow token` works in a container (deploy/README.md)
    for folder in ("shared", "services", "ticketflow"):
        assert f"COPY {folder} ./{folder}" in dockerfile
        assert f"!{folder}/" in (ROOT / ".dockerignore").read_text().splitlines()


def test_compose_environment_is_what_the_code_reads_and_fails_fast_without_secrets(compose):
    known = known_env_names()
    dotenv = {"TICKETFLOW_JWT_SECRET": "j" * 32, **COMPOSE_PASSWORDS}
    for name, spec in compose["services"].items():
        if not name.endswith(("-api", "-worker")):
            continue
        env = spec["environment"]
        assert set(env) <= known, (name, set(env) - known)
        assert REQUIRED_IN_PRODUCTION <= set(env)
        assert env["TICKETFLOW_JWT_SECRET"].startswith("${TICKETFLOW_JWT_SECRET:?"), "no default secret"
        assert "TICKETFLOW_DEV" not in env
        values = {key: interpolate(str(value), dotenv) for key, value in env.items()}
        settings = load_settings(values)
        assert settings.require_secret() == dotenv["TICKETFLOW_JWT_SECRET"]
        assert (settings.namespace, settings.queue_type) == (NAMESPACE, "quorum")
        service = name.rsplit("-", 1)[0]  # its own broker user: it may publish only its own event types
        if service == PORTAL:  # the apis on the compose network; its api's broker user reads queue counts only
            if name == f"{PORTAL}-worker":  # no broker
                assert "AMQP_URL" not in env and settings.amqp_url == Settings.amqp_url
            else:
                assert settings.amqp_url == f"amqp://ticketflow-{service}:pw-{service}@rabbitmq:5672/%2F"
            assert api_urls(values) == in_network_api_urls()
            assert all(f"{s}-api" in compose["services"] for s in SERVICE_PORTS)
        else:
            assert settings.amqp_url == f"amqp://ticketflow-{service}:pw-{service}@rabbitmq:5672/%2F"
            if name == "search-worker":  # `ticketflow search reindex` there reads an empty database from intake
                assert api_urls(values)["intake"] == in_network_api_urls()["intake"]
                assert set(env) & set(API_URL_NAMES) == {"TICKETFLOW_INTAKE_URL"}
            else:
                assert not set(env) & set(API_URL_NAMES)
        with pytest.raises(KeyError, match="TICKETFLOW_JWT_SECRET"):
            interpolate(env["TICKETFLOW_JWT_SECRET"], {})


def test_compose_rabbitmq_imports_the_topology_and_the_user_the_services_log_in_as(compose, definitions):
    rabbitmq = compose["services"]["rabbitmq"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in rabbitmq["volumes"] if volume.startswith("./"))
    assert mounts["./deploy/rabbitmq/definitions.json"] == "/etc/rabbitmq/definitions.d/10-topology.json"
    assert mounts["./deploy/rabbitmq/rabbitmq.conf"] == "/etc/rabbitmq/rabbitmq.conf"
    assert mounts["./deploy/rabbitmq/enabled_plugins"] == "/etc/rabbitmq/enabled_plugins"
    assert all((ROOT / source).is_file() for source in mounts)
    (users_mount,) = rabbitmq["configs"]
    assert users_mount["target"] == "/etc/rabbitmq/definitions.d/20-users.json"
    users = json.loads(interpolate(compose["configs"][users_mount["source"]]["content"], COMPOSE_PASSWORDS))
    passwords = {"ticketflow": "0123abcd"} | {f"ticketflow-{s}": f"pw-{s}" for s in [*SERVICE_PORTS, PORTAL]}
    _assert_users_can_use_the_topology(users, passwords, definitions)
    conf = conf_settings((RABBITMQ_DIR / "rabbitmq.conf").read_text())
    assert int(conf["total_memory_available_override_value"]) == 2 * 1024**3
    assert rabbitmq["mem_limit"] == "2g"


COMPOSE_PASSWORDS = {"RABBITMQ_PASSWORD": "0123abcd"} | {
    f"RABBITMQ_{service.upper()}_PASSWORD": f"pw-{service}" for service in [*SERVICE_PORTS, PORTAL]
}


def _assert_users_can_use_the_topology(users: dict, passwords: dict[str, str], definitions: dict) -> None:
    """The users file sets every password (the operators' ticketflow, each service's user and the portal's); the
    operators' user may use the whole topology; each service's user its own queues and requeue exchange, and the
    events exchange (read and write, not configure), where it publishes only what it produces, and nothing else
    (not the default exchange, which reaches any queue: test_broker_permissions.py tries it on a broker); the
    portal's may configure, write and read nothing (passive declares need no permission)."""
    assert {u["name"]: u["password"] for u in users["users"]} == passwords
    permissions = users["permissions"] + definitions["permissions"]
    resources = [q["name"] for q in definitions["queues"]] + [e["name"] for e in definitions["exchanges"]]
    for user in passwords:
        (permission,) = [p for p in permissions if p["user"] == user and p["vhost"] == "/"]
        if user == f"ticketflow-{PORTAL}":
            for kind in ("configure", "write", "read"):
                assert not any(re.search(permission[kind], name) for name in [*resources, "amq.default"]), kind
            assert not [t for t in definitions["topic_permissions"] if t["user"] == user]
            continue
        service = user.removeprefix("ticketflow-")
        if service not in SUBSCRIPTIONS:  # the operators' user
            for kind in ("configure", "write", "read"):
                assert all(re.search(permission[kind], name) for name in resources), (user, kind)
            continue
        own = {
            name for name in resources if name == f"{NAMESPACE}.{service}" or name.startswith(f"{NAMESPACE}.{service}.")
        }
        events = f"{NAMESPACE}.events"
        for kind, allowed in (("configure", own), ("write", own | {events}), ("read", own | {events})):
            assert {name for name in [*resources, "amq.default"] if re.search(permission[kind], name)} == allowed, (
                user,
                kind,
            )
    _assert_each_service_publishes_only_its_own_events(definitions)


def _assert_each_service_publishes_only_its_own_events(definitions: dict) -> None:
    exchange = f"{NAMESPACE}.events"
    for service in SERVICE_PORTS:
        (topic,) = [t for t in definitions["topic_permissions"] if t["user"] == f"ticketflow-{service}"]
        assert (topic["vhost"], topic["exchange"]) == ("/", exchange)
        allowed = {kind for kind in EVENT_TYPES if re.search(topic["write"], kind)}
        assert allowed == set(PUBLISHED_BY[service]), service
        assert not re.search(topic["write"], "ticket.created.extra") and not re.search(topic["write"], "x")


# --- deploy/k8s --------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_and_each_parses():
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {path.name for path in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    for name in listed:
        for doc in yaml.safe_load_all((K8S_DIR / name).read_text()):
            assert doc is None or {"apiVersion", "kind", "metadata"} <= set(doc), name
    generated = [item["files"] for item in kustomization["configMapGenerator"]]
    assert generated == [["definitions.json=rabbitmq/definitions.json"]]


def _containers(deployment: dict) -> list[dict]:
    return deployment["spec"]["template"]["spec"]["containers"]


def _env_names(container: dict, config_maps: dict[str, dict]) -> set[str]:
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(config_maps[source["configMapRef"]["name"]]["data"])
    return names


@pytest.mark.parametrize("service", DEPLOYED_PORTS)
def test_k8s_api_matches_the_code(manifests, service):
    port = DEPLOYED_PORTS[service]
    deployments, services = by_kind(manifests, "Deployment"), by_kind(manifests, "Service")
    (container,) = _containers(deployments[f"{service}-api"])
    expected = api_command(service, port, host="0.0.0.0")
    assert container["command"] == ["gunicorn", *expected[1:]]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    # an api stays in its Service while the broker is away (its events wait in the outbox): /readyz without it;
    # the portal's /readyz asks no broker
    assert (container["readinessProbe"]["httpGet"]["path"], container["readinessProbe"]["httpGet"]["port"]) == (
        "/readyz" if service == PORTAL else "/readyz?ignore=rabbitmq",
        port,
    )
    assert (container["livenessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["port"]) == (
        "/healthz",
        port,
    )
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
    (service_port,) = services[f"{service}-api"]["spec"]["ports"]
    assert service_port["port"] == port
    assert (
        services[f"{service}-api"]["spec"]["selector"]
        == deployments[f"{service}-api"]["spec"]["selector"]["matchLabels"]
    )
    hpa = by_kind(manifests, "HorizontalPodAutoscaler")[f"{service}-api"]
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["name"] == f"{service}-api"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    pdb = by_kind(manifests, "PodDisruptionBudget")[f"{service}-api"]
    assert pdb["spec"]["selector"] == deployments[f"{service}-api"]["spec"]["selector"]
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    annotations = deployments[f"{service}-api"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    multiproc = {e["name"]: e.get("value") for e in container["env"]}["PROMETHEUS_MULTIPROC_DIR"]
    assert {"/tmp", multiproc} <= mounts


@pytest.mark.parametrize("service", [s for s in SERVICE_PORTS if s != "search"])  # search: below
def test_k8s_worker_matches_the_code_and_scales_on_its_queue(manifests, service):
    (container,) = _containers(by_kind(manifests, "Deployment")[f"{service}-worker"])
    assert container["command"] == ["python", *worker_command(service)[1:]]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TICKETFLOW_METRICS_PORT"] == str(METRICS_PORT)
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": METRICS_PORT}
    _assert_the_grace_period_outlasts_the_stop(manifests, f"{service}-worker", env)
    scaled = by_kind(manifests, "ScaledObject")[f"{service}-worker"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == f"{service}-worker"
    assert scaled["spec"]["minReplicaCount"] >= 1  # the worker also runs the outbox relay and timers
    trigger = next(t for t in scaled["spec"]["triggers"] if t["type"] == "rabbitmq")
    settings = load_settings({"TICKETFLOW_NAMESPACE": NAMESPACE})
    assert (trigger["type"], trigger["metadata"]["queueName"]) == ("rabbitmq", queue_name(settings, service))
    auth = by_kind(manifests, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    (host,) = auth["spec"]["secretTargetRef"]
    assert host["parameter"] == "host"
    assert host["key"] in by_kind(manifests, "Secret")[host["name"]]["stringData"]


def test_k8s_notify_worker_also_scales_on_the_notifications_waiting(manifests):
    triggers = by_kind(manifests, "ScaledObject")["notify-worker"]["spec"]["triggers"]
    assert [t["type"] for t in triggers] == ["rabbitmq", "prometheus"]
    metadata = triggers[1]["metadata"]
    assert metadata["query"] == f"max({metrics.NOTIFY_PENDING._name})"  # each worker exports the same count
    assert metadata["serverAddress"].startswith("http") and float(metadata["threshold"]) > 0


def _assert_the_grace_period_outlasts_the_stop(manifests, name: str, env: dict) -> None:
    """Kubernetes kills a pod terminationGracePeriodSeconds after SIGTERM: the worker must have ended by itself."""
    stop_timeout = _stop_timeout(by_kind(manifests, "ConfigMap")["ticketflow-config"]["data"], env)
    assert by_kind(manifests, "Deployment")[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > (
        stop_timeout
    )


def _stop_timeout(*envs: dict) -> float:
    """TICKETFLOW_STOP_TIMEOUT as the worker reads it from these environments (the last one that sets it wins)."""
    values = [env["TICKETFLOW_STOP_TIMEOUT"] for env in envs if env.get("TICKETFLOW_STOP_TIMEOUT")]
    return load_settings({"TICKETFLOW_STOP_TIMEOUT": values[-1]} if values else {}).stop_timeout


def _seconds(duration: str) -> float:
    """A compose duration such as 30s or 1m30s, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[unit] for n, unit in re.findall(r"([\d.]+)([hms])", duration))


def test_k8s_portal_worker_runs_once_with_its_metrics_probes(manifests):
    """No queue, so no KEDA: one replica (its check-status requests are not claimed: two would email twice),
    replaced by Recreate so that a rollout never runs two."""
    deployment = by_kind(manifests, "Deployment")[f"{PORTAL}-worker"]
    (container,) = _containers(deployment)
    assert container["command"] == ["python", *worker_command(PORTAL)[1:]]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TICKETFLOW_METRICS_PORT"] == str(METRICS_PORT)
    assert container["startupProbe"]["httpGet"] == {"path": "/metrics", "port": METRICS_PORT}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": METRICS_PORT}
    _assert_the_grace_period_outlasts_the_stop(manifests, f"{PORTAL}-worker", env)
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]["type"]) == (1, "Recreate")
    assert f"{PORTAL}-worker" not in by_kind(manifests, "ScaledObject")
    assert f"{PORTAL}-worker" not in by_kind(manifests, "HorizontalPodAutoscaler")
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
    assert "SMTP_URL" in env  # it mails the links


def test_k8s_search_worker_is_the_index_s_one_writer_and_its_apis_share_its_volume(manifests):
    """One replica, replaced by Recreate, no KEDA: a second worker would only wait for the first's index lock.
    The api pods mount the same ReadWriteOnce claim, so they are scheduled on the worker's node."""
    deployments = by_kind(manifests, "Deployment")
    worker, api = deployments["search-worker"], deployments["search-api"]
    (container,) = _containers(worker)
    assert container["command"] == ["python", *worker_command("search")[1:]]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TICKETFLOW_METRICS_PORT"] == str(METRICS_PORT)
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": METRICS_PORT}
    _assert_the_grace_period_outlasts_the_stop(manifests, "search-worker", env)
    assert (worker["spec"]["replicas"], worker["spec"]["strategy"]["type"]) == (1, "Recreate")
    assert "search-worker" not in by_kind(manifests, "ScaledObject")
    claims = by_kind(manifests, "PersistentVolumeClaim")
    assert claims["search-index"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    for deployment in (worker, api):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        volume = next(v for v in pod["volumes"] if v.get("persistentVolumeClaim"))
        assert volume["persistentVolumeClaim"]["claimName"] == "search-index"
        mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TICKETFLOW_SEARCH_INDEX_DIR"] == mount["mountPath"]
        assert pod["securityContext"]["fsGroup"] == 10001
    (term,) = api["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["labelSelector"]["matchLabels"] == worker["spec"]["selector"]["matchLabels"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    # and the worker, recreated, goes back to the node where the api pods hold the volume (preferred: on the
    # first deploy there is no api pod)
    (back,) = worker["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert back["podAffinityTerm"]["labelSelector"]["matchLabels"] == api["spec"]["selector"]["matchLabels"]
    assert back["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_compose_gives_each_api_and_worker_the_memory_limit_kubernetes_gives_it(compose, manifests):
    """Compose set no memory limit but RabbitMQ's (an operator's review): a leaking process took the host's memory."""
    limits = {}
    for doc in manifests:
        if doc.get("kind") == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                limits[doc["metadata"]["name"]] = container["resources"]["limits"]["memory"]
    as_compose = {"512Mi": "512m", "256Mi": "256m", "1536Mi": "1536m", "1Gi": "1g"}
    for name, limit in limits.items():
        assert compose["services"][name]["mem_limit"] == as_compose[limit], name
    assert compose["services"]["mongo"]["mem_limit"] == "2g" and compose["services"]["rabbitmq"]["mem_limit"] == "2g"


def test_compose_search_api_and_worker_share_the_index_volume(compose):
    for name in ("search-api", "search-worker"):
        spec = compose["services"][name]
        assert spec["volumes"] == [f"search-index:{spec['environment']['TICKETFLOW_SEARCH_INDEX_DIR']}"], name
    assert "search-index" in compose["volumes"]
    assert "chown -R 10001:10001 /var/lib/ticketflow" in (ROOT / "deploy" / "Dockerfile").read_text()


def test_k8s_config_points_the_portal_at_the_apis_services(manifests):
    config = by_kind(manifests, "ConfigMap")["ticketflow-config"]["data"]
    assert api_urls(config) == in_network_api_urls()
    services = by_kind(manifests, "Service")
    for service, port in SERVICE_PORTS.items():
        (service_port,) = services[f"{service}-api"]["spec"]["ports"]
        assert service_port["port"] == port
    settings = load_settings({**config, "TICKETFLOW_JWT_SECRET": "j" * 32})
    assert settings.portal_url.startswith("https://")  # the portal's cookies are Secure


def test_k8s_containers_use_known_variables_secrets_and_one_image(manifests):
    known, config_maps = known_env_names(), by_kind(manifests, "ConfigMap")
    secrets = by_kind(manifests, "Secret")
    operator_secret = _mongodb_connection_secret(manifests)
    images = set()
    for name, deployment in by_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        for container in pod["containers"]:
            images.add(container["image"])
            names = _env_names(container, config_maps)
            assert names <= known, (name, names - known)
            service = name.rsplit("-", 1)[0]
            broker = set() if name == f"{PORTAL}-worker" else {"AMQP_URL"}  # the portal's worker uses no broker
            assert broker | {"MONGO_URL"} | REQUIRED_IN_PRODUCTION <= names, name
            assert broker or "AMQP_URL" not in names, name
            assert "TICKETFLOW_DEV" not in names
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            for item in container["env"]:
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref is None:
                    continue
                if ref["name"] == operator_secret:
                    assert ref["key"] == "connectionString.standard"
                elif ref.get("optional"):  # set by the operator when needed (the previous JWT secret)
                    assert ref["key"] not in secrets[ref["name"]]["stringData"], (name, ref)
                else:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], (name, ref)
            refs = {i["name"]: i["valueFrom"]["secretKeyRef"] for i in container["env"] if "valueFrom" in i}
            assert refs["TICKETFLOW_JWT_SECRET"]["name"] == "ticketflow-jwt"
            # while the secret changes, every process that checks what the old one signed must have it too
            assert refs["TICKETFLOW_JWT_PREVIOUS_SECRET"] == {
                "name": "ticketflow-jwt",
                "key": "TICKETFLOW_JWT_PREVIOUS_SECRET",
                "optional": True,
            }, name
            if broker:  # its own broker user, which publishes only its own event types (the portal's: counts only)
                amqp = (refs["AMQP_URL"]["name"], refs["AMQP_URL"]["key"])
                assert amqp == ("ticketflow-rabbitmq", f"amqp-url-{service}")
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert images == {image["name"] for image in kustomization["images"]}
    settings = load_settings(
        {**config_maps["ticketflow-config"]["data"], "TICKETFLOW_JWT_SECRET": "j" * 32, "AMQP_URL": "amqp://x"}
    )
    assert (settings.namespace, settings.queue_type) == (NAMESPACE, "quorum")


def _mongodb_connection_secret(manifests) -> str:
    """The Secret the MongoDB Community Operator writes: <resource>-<auth db>-<user>."""
    (mongodb,) = by_kind(manifests, "MongoDBCommunity").values()
    (user,) = mongodb["spec"]["users"]
    return f"{mongodb['metadata']['name']}-{user['db']}-{user['name']}"


def test_k8s_mongodb_is_a_three_member_replica_set_with_a_role_per_service_database(manifests):
    (mongodb,) = by_kind(manifests, "MongoDBCommunity").values()
    assert mongodb["apiVersion"] == "mongodbcommunity.mongodb.com/v1"
    assert (mongodb["spec"]["members"], mongodb["spec"]["type"]) == (3, "ReplicaSet")
    assert mongodb["spec"]["version"].startswith("7.0.")
    (user,) = mongodb["spec"]["users"]
    assert user["passwordSecretRef"]["name"] in by_kind(manifests, "Secret")
    settings = load_settings({"TICKETFLOW_NAMESPACE": NAMESPACE})
    assert {role["db"] for role in user["roles"]} == {settings.database_name(s) for s in DEPLOYED_PORTS}


def test_k8s_rabbitmq_cluster_imports_the_same_definitions_and_settings(manifests, definitions):
    (cluster,) = by_kind(manifests, "RabbitmqCluster").values()
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1" and cluster["spec"]["replicas"] == 3
    name = cluster["metadata"]["name"]
    secrets = by_kind(manifests, "Secret")
    amqp_url = secrets["ticketflow-rabbitmq"]["stringData"]["amqp-url"]
    assert f"@{name}.{NAMESPACE}.svc:5672/" in amqp_url
    additional = cluster["spec"]["rabbitmq"]["additionalConfig"]
    assert len(additional) <= 2000  # the CRD's limit
    compose_conf = conf_settings((RABBITMQ_DIR / "rabbitmq.conf").read_text())
    del compose_conf["total_memory_available_override_value"]  # the operator sets it from the memory limit
    k8s_conf = conf_settings(additional)
    reconciliation = {k: k8s_conf.pop(k) for k in list(k8s_conf) if k.startswith("quorum_queue.continuous_membership")}
    assert k8s_conf == compose_conf
    assert reconciliation["quorum_queue.continuous_membership_reconciliation.target_group_size"] == "3"
    operator_plugins = {"rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_peer_discovery_k8s"}
    plugins = set(re.findall(r"\w+", (RABBITMQ_DIR / "enabled_plugins").read_text()))
    assert set(cluster["spec"]["rabbitmq"]["additionalPlugins"]) == plugins - operator_plugins
    pod = cluster["spec"]["override"]["statefulSet"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: (m["name"], m["subPath"]) for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    topology_volume, _ = mounts[f"{k8s_conf['load_definitions']}/10-topology.json"]
    assert volumes[topology_volume]["configMap"]["name"] == "ticketflow-rabbitmq-definitions"
    users_volume, users_key = mounts[f"{k8s_conf['load_definitions']}/20-users.json"]
    assert volumes[users_volume]["secret"]["secretName"] == "ticketflow-rabbitmq"
    users = json.loads(secrets["ticketflow-rabbitmq"]["stringData"][users_key])
    urls = {key: url for key, url in secrets["ticketflow-rabbitmq"]["stringData"].items() if key.startswith("amqp-url")}
    passwords = dict(re.match(r"amqp://([^:]*):([^@]*)@", url).groups() for url in urls.values())
    assert set(urls) == {"amqp-url"} | {f"amqp-url-{s}" for s in [*SERVICE_PORTS, PORTAL]}
    _assert_users_can_use_the_topology(users, passwords, definitions)


def test_k8s_mail_in_is_alive_while_it_answers_smtp_not_while_its_port_takes_connections(manifests):
    """A wedged asyncio loop still completes TCP handshakes from the listen backlog: liveness and readiness hold an
    SMTP exchange (NOOP answered 250), as compose's healthcheck does."""
    (container,) = _containers(by_kind(manifests, "Deployment")["intake-mail"])
    for probe in ("livenessProbe", "readinessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:2] == ["python", "-c"] and "noop()[0] == 250" in command[2]
        assert "127.0.0.1', 2525" in command[2]


@pytest.mark.parametrize("service", DEPLOYED_PORTS)
def test_k8s_api_pods_let_gunicorn_finish_the_requests_under_way(manifests, service):
    """SIGTERM comes after the preStop's sleep; gunicorn then has graceful_timeout for the requests under way,
    which must end before Kubernetes kills the pod."""
    from shared import gunicorn_conf

    deployment = by_kind(manifests, "Deployment")[f"{service}-api"]
    (container,) = _containers(deployment)
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pre_stop + gunicorn_conf.graceful_timeout < grace
