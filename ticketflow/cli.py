"""The `ticketflow` command: development tokens, the whole local system (supervised), a demo, status, mail."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from shared.config import PORTAL_PORT, SERVICE_PORTS
from ticketflow import local

FERRETDB_PORT = 27017
MAIL_PORT = 8025  # the default SMTP_URL points here
INBOUND_SMTP = "127.0.0.1:2525"  # intake's mail in under `run`


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ticketflow", description="ticketflow help-desk backend")
    commands = parser.add_subparsers(dest="command", required=True)

    token = commands.add_parser("token", help="print a bearer token for development")
    token.add_argument("--role", required=True, help="portal, agent or admin")
    token.add_argument("--agent-id", help="required with --role agent")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    token.add_argument("--sub", help="the token's subject (default: the agent id, the requester email or the role)")
    token.add_argument("--requester-email", help="portal only: act for this one requester (their tickets only)")
    token.add_argument("--ticket-id", help="with --requester-email: for this one ticket only")
    token.set_defaults(handler=_token)

    run = commands.add_parser(
        "run", help="run every service (api + worker) locally, restarting what dies, until Ctrl-C"
    )
    run.add_argument(
        "--base-port", type=int, default=PORTAL_PORT, metavar="PORT",
        help=f"the portal's port; the apis take the next five (default {PORTAL_PORT}: the apis on 8001 to 8005)",
    )  # fmt: skip
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="fill a running system with a small help desk and walk tickets through")
    _add_url_arguments(demo)
    demo.add_argument("--wait", type=float, default=30.0, help="seconds to wait for readiness and each step (30)")
    demo.add_argument("--portal-url", metavar="URL", help="the portal, for the demo's accounts (default BASE_URL:8000)")
    demo.set_defaults(handler=_demo)

    status = commands.add_parser("status", help="each service's readiness and queues, open tickets, recent breaches")
    _add_url_arguments(status)
    status.set_defaults(handler=_status)

    sink = commands.add_parser("mailsink", help="a local SMTP server that saves every message as an .eml file")
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--port", type=int, default=MAIL_PORT)
    sink.add_argument("--dir", type=Path, default=_mail_dir(), help="where messages go (default .run/mail)")
    sink.set_defaults(handler=_mailsink)

    mail = commands.add_parser("mail", help="print the latest messages the local SMTP sink received")
    mail.add_argument("--last", type=int, default=5, help="how many (default 5)")
    mail.add_argument("--dir", type=Path, default=_mail_dir(), help="the sink's folder (default .run/mail)")
    mail.set_defaults(handler=_mail)

    send = commands.add_parser("send-mail", help="send a mail to intake's mail in, as a requester would")
    send.add_argument("--from", dest="sender", required=True, help="the requester's address")
    send.add_argument("--to", default="help@localhost", help="the help desk's address (default help@localhost)")
    send.add_argument("--subject", default="", help="the subject (with --reply-to: Re: and the original's)")
    send.add_argument("--body", required=True, help="what the requester writes")
    send.add_argument("--reply-to", type=Path, metavar="EML", help="answer this mail (an .eml in .run/mail, say)")
    send.add_argument("--smtp", default=INBOUND_SMTP, help=f"intake's mail in, host:port (default {INBOUND_SMTP})")
    send.set_defaults(handler=_send_mail)

    search = commands.add_parser("search", help="the search service's index")
    search_commands = search.add_subparsers(dest="search_command", required=True)
    reindex = search_commands.add_parser(
        "reindex", help="rebuild the index beside the one in use and switch to it; the service keeps answering"
    )
    reindex.add_argument(
        "--intake-url", metavar="URL",
        help="intake's API, read when search's database holds no ticket (default TICKETFLOW_INTAKE_URL or :8001)",
    )  # fmt: skip
    reindex.set_defaults(handler=_search_reindex)

    dead = commands.add_parser("dead-letters", help="read a service's dead letters; move them back once fixed")
    dead_commands = dead.add_subparsers(dest="dead_command", required=True)
    listing = dead_commands.add_parser("list", help="how many each service has, why, and the first of them")
    listing.add_argument("services", nargs="*", metavar="SERVICE", help="intake, assignment, ... (default: all)")
    listing.add_argument("--limit", type=int, default=20, help="how many to show a service (default 20)")
    listing.set_defaults(handler=_dead_letters_list)
    move = dead_commands.add_parser(
        "replay", help="move a service's dead letters back to its queue, each with every retry again"
    )
    move.add_argument("service", metavar="SERVICE")
    move.add_argument("--reason", help="only those dead for this reason (failed, rejected, unhandled, ...)")
    move.add_argument("--event-id", help="only the one event of this id")
    move.add_argument("--limit", type=int, help="at most this many")
    move.set_defaults(handler=_dead_letters_replay)

    account = commands.add_parser("account", help="portal accounts of agents and admins")
    account_commands = account.add_subparsers(dest="account_command", required=True)
    create = account_commands.add_parser("create", help="add an account (the first admin, say) through the portal")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=("agent", "admin"))
    create.add_argument("--agent-id", help="the agent's id in assignment (required for agents)")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin; else a one-time link is printed"
    )
    create.add_argument("--portal-url", default=f"http://127.0.0.1:{PORTAL_PORT}", help="the portal (default :8000)")
    create.set_defaults(handler=_account_create)
    for verb, words in (("disable", "stop an account signing in (its sessions end at once)"),
                        ("enable", "let a disabled account sign in again")):  # fmt: skip
        change = account_commands.add_parser(verb, help=words)
        change.add_argument("--email", required=True)
        change.add_argument("--portal-url", default=create.get_default("portal_url"), help="the portal (default :8000)")
        change.set_defaults(handler=_account_change, disabled=verb == "disable")
    for verb, words in (("delete", "delete a disabled account for good (what it did stays on the tickets)"),
                        ("password-link", "print a one-time link to set an account's password (3 days)")):  # fmt: skip
        other = account_commands.add_parser(verb, help=words)
        other.add_argument("--email", required=True)
        other.add_argument("--portal-url", default=create.get_default("portal_url"), help="the portal (default :8000)")
        other.set_defaults(handler=_account_delete if verb == "delete" else _account_password_link)

    args = parser.parse_args(argv)
    return args.handler(args)


def _token(args: argparse.Namespace) -> int:
    from shared.auth import issue_token, lifetime_cap
    from shared.config import load_settings

    if args.ttl <= 0:
        return _usage_error("--ttl must be a positive number of seconds")
    settings = load_settings()
    requester = args.requester_email or None
    longest = lifetime_cap(args.role, requester, settings.token_max_hours, settings.portal_token_max_hours)
    if longest is not None and args.ttl > longest * 3600:  # the apis would refuse it (401): said here instead
        server = args.role == "portal" and requester is None  # the cap of the portal server's own token
        return _usage_error(
            f"--ttl {args.ttl} is longer than the apis take ({longest:g} hours: {int(longest * 3600)} seconds, "
            f"TICKETFLOW_{'PORTAL_' if server else ''}TOKEN_MAX_HOURS)"
        )
    secret = settings.require_secret()
    try:
        token = issue_token(
            secret,
            args.role,
            agent_id=args.agent_id,
            ttl=args.ttl,
            sub=args.sub,
            requester_email=args.requester_email,
            ticket_id=args.ticket_id,
        )
        print(token)
    except ValueError as exc:
        return _usage_error(str(exc))
    return 0


def _account_create(args: argparse.Namespace) -> int:
    from ticketflow import accounts

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    return accounts.create(args.portal_url, args.email, args.role, args.agent_id, password)


def _account_change(args: argparse.Namespace) -> int:
    from ticketflow import accounts

    return accounts.change(args.portal_url, args.email, args.disabled)


def _account_delete(args: argparse.Namespace) -> int:
    from ticketflow import accounts

    return accounts.delete(args.portal_url, args.email)


def _account_password_link(args: argparse.Namespace) -> int:
    from ticketflow import accounts

    return accounts.password_link(args.portal_url, args.email)


def _search_reindex(args: argparse.Namespace) -> int:
    """Where `run` keeps the index unless TICKETFLOW_SEARCH_INDEX_DIR says otherwise; print what was done."""
    import dataclasses

    from services.search import handlers
    from services.search.reindex import reindex
    from shared.config import load_settings

    settings = load_settings()
    if not os.environ.get("TICKETFLOW_SEARCH_INDEX_DIR"):
        settings = dataclasses.replace(settings, search_index_dir=str(search_index_dir(local.REPO_ROOT / ".run")))
    intake_url = (
        args.intake_url or os.environ.get("TICKETFLOW_INTAKE_URL") or f"http://127.0.0.1:{SERVICE_PORTS['intake']}"
    )
    svc = handlers.bootstrap(settings)
    svc.ensure_storage()
    done = reindex(svc, intake_url)
    imported = done["imported_from_intake"]
    print(f"ticketflow: indexed {done['indexed']} tickets into {done['generation']} (now in use)")
    if imported:
        print(f"ticketflow: search's database was empty: {imported} tickets taken from intake's API ({intake_url})")
    if done["names_from_intake"]:
        print(f"ticketflow: {done['names_from_intake']} tickets learnt their requester's name from intake's API")
    return 0


def _dead_letters_list(args: argparse.Namespace) -> int:
    from shared.config import load_settings
    from ticketflow import deadletters

    if args.limit < 0:
        return _usage_error("--limit must be 0 or more")
    try:
        return deadletters.list_command(load_settings(), args.services, args.limit)
    except deadletters.DeadLetterError as exc:
        return _fail(str(exc))


def _dead_letters_replay(args: argparse.Namespace) -> int:
    from shared.config import load_settings
    from ticketflow import deadletters

    if args.limit is not None and args.limit <= 0:
        return _usage_error("--limit must be a positive number")
    try:
        return deadletters.replay_command(load_settings(), args.service, args.reason, args.event_id, args.limit)
    except deadletters.DeadLetterError as exc:
        return _fail(str(exc))


def search_index_dir(run_dir: Path) -> Path:
    """Where `ticketflow run` keeps search's index."""
    return run_dir / "search"


def _usage_error(message: str) -> int:
    print(f"ticketflow: {message}", file=sys.stderr)
    return 2


def _add_url_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", default="http://127.0.0.1", help="each service at its port on this host")
    for service, port in SERVICE_PORTS.items():
        parser.add_argument(f"--{service}-url", metavar="URL", help=f"{service}'s API (default BASE_URL:{port})")


def service_urls(base_url: str = "http://127.0.0.1", overrides: dict[str, str | None] | None = None) -> dict:
    """Each service's API: base_url with the service's port, unless overridden."""
    urls = {service: f"{base_url.rstrip('/')}:{port}" for service, port in SERVICE_PORTS.items()}
    urls.update({service: url.rstrip("/") for service, url in (overrides or {}).items() if url})
    return urls


def _urls(args: argparse.Namespace) -> dict[str, str]:
    return service_urls(args.base_url, {service: getattr(args, f"{service}_url") for service in SERVICE_PORTS})


def _demo(args: argparse.Namespace) -> int:
    from ticketflow import demo

    portal = (args.portal_url or f"{args.base_url.rstrip('/')}:{PORTAL_PORT}").rstrip("/")
    return demo.main(_urls(args), args.wait, portal)


def _status(args: argparse.Namespace) -> int:
    from ticketflow import status

    return status.main(_urls(args))


def _mail_dir() -> Path:
    return local.REPO_ROOT / ".run" / "mail"


def _mailsink(args: argparse.Namespace) -> int:
    from ticketflow import mailsink

    return mailsink.serve(args.host, args.port, args.dir)


def _send_mail(args: argparse.Namespace) -> int:
    from ticketflow import mailsend

    host, _, port = args.smtp.rpartition(":")
    mail = mailsend.build(args.sender, args.to, args.subject, args.body, args.reply_to)
    return mailsend.send(host, int(port), mail)


def _mail(args: argparse.Namespace) -> int:
    from ticketflow import mailsink

    return mailsink.print_latest(args.dir, args.last)


def _run(args: argparse.Namespace) -> int:
    from ticketflow.supervisor import Supervisor

    ports = run_ports(args.base_port)
    if not all(0 < port < 65536 for port in ports.values()):
        return _fail(f"--base-port must leave room for six ports (1 to {65535 - 5}), got {args.base_port}")
    run_dir = local.REPO_ROOT / ".run"
    run_dir.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.pop("TICKETFLOW_METRICS_PORT", None)  # one port for six workers: five would fail and restart forever
    env.setdefault("TICKETFLOW_SEARCH_INDEX_DIR", str(search_index_dir(run_dir)))
    supervisor = Supervisor()

    amqp_url = env.get("AMQP_URL") or local.DEFAULT_AMQP_URL
    if not local.amqp_answers(amqp_url):
        return _fail(f"RabbitMQ does not answer at {amqp_url}; start it (rabbitmq-server -detached) or set AMQP_URL")
    if not env.get("MONGO_URL"):
        problem = _add_ferretdb(supervisor, env, run_dir)
        if problem:
            return _fail(problem)
    mail_dir = None
    if not env.get("SMTP_URL"):
        if local.port_answers("127.0.0.1", MAIL_PORT):
            return _fail(
                f"port {MAIL_PORT} is taken; set SMTP_URL=smtp://127.0.0.1:{MAIL_PORT} to send to the server that "
                "listens there, or stop it"
            )
        mail_dir = _mail_dir()
        sink = [sys.executable, "-m", "ticketflow.cli", "mailsink", "--port", str(MAIL_PORT), "--dir", str(mail_dir)]
        supervisor.add("mail", sink, env=dict(env))
        env["SMTP_URL"] = f"smtp://127.0.0.1:{MAIL_PORT}"
    if not env.get("TICKETFLOW_JWT_SECRET"):
        env["TICKETFLOW_DEV"] = "1"
        print("ticketflow: TICKETFLOW_JWT_SECRET is not set: dev mode (TICKETFLOW_DEV=1, a fixed dev secret)")

    if args.base_port != PORTAL_PORT:  # the portal calls the apis, and mails link to the portal, at their ports
        env.update(
            {f"TICKETFLOW_{service.upper()}_URL": f"http://127.0.0.1:{ports[service]}" for service in SERVICE_PORTS}
        )
        env.setdefault("TICKETFLOW_PORTAL_URL", f"http://127.0.0.1:{ports['portal']}")
    for service, port in ports.items():
        service_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(_fresh_metrics_dir(run_dir, service))}
        supervisor.add(f"{service}-api", api_command(service, port), env=service_env)
        supervisor.add(f"{service}-worker", worker_command(service), env=service_env)
    intake_env = {**env, "TICKETFLOW_INBOUND_SMTP": env.get("TICKETFLOW_INBOUND_SMTP") or INBOUND_SMTP}
    supervisor.add("intake-mail", mail_command(), env=intake_env)

    _print_banner(
        dev=env.get("TICKETFLOW_DEV") == "1",
        mail_dir=mail_dir,
        smtp_url=env.get("SMTP_URL"),
        amqp_url=amqp_url,
        mongo_url=env.get("MONGO_URL"),
        inbound_smtp=intake_env["TICKETFLOW_INBOUND_SMTP"],
        ports=ports,
    )
    return supervisor.run()  # until Ctrl-C / SIGTERM; a process that ends is started again


def run_ports(base_port: int) -> dict[str, int]:
    """Each service's api port and the portal's under `run --base-port`: the usual ones moved by the same step."""
    return {
        service: port - PORTAL_PORT + base_port for service, port in {**SERVICE_PORTS, "portal": PORTAL_PORT}.items()
    }


def _add_ferretdb(supervisor, env: dict, run_dir: Path) -> str | None:
    """Manage a FerretDB on 127.0.0.1:27017 and point MONGO_URL at it; a problem message otherwise."""
    binary = local.ferretdb_binary()
    if not binary.is_file():
        return f"FerretDB is not built at {binary}; run `make tools`, or set MONGO_URL to a MongoDB you run"
    if local.port_answers("127.0.0.1", FERRETDB_PORT):
        return (
            f"port {FERRETDB_PORT} is taken; set MONGO_URL=mongodb://127.0.0.1:{FERRETDB_PORT} to use "
            "the server that listens there, or stop it"
        )
    data_dir = run_dir / "ferretdb"
    data_dir.mkdir(exist_ok=True)
    supervisor.add("ferretdb", local.ferretdb_command(data_dir, FERRETDB_PORT), env=dict(env))
    env["MONGO_URL"] = f"mongodb://127.0.0.1:{FERRETDB_PORT}"
    print(f"ticketflow: MONGO_URL is not set: starting FerretDB at {env['MONGO_URL']} (data in {data_dir})")
    return None


def _fresh_metrics_dir(run_dir: Path, service: str) -> Path:
    """Prometheus multiprocess files are per run: stale ones would add old counts to new."""
    path = run_dir / "metrics" / service
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def gunicorn_executable() -> str:
    beside = Path(sys.executable).with_name("gunicorn")
    return str(beside) if beside.exists() else (shutil.which("gunicorn") or "gunicorn")


def api_command(service: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """The gunicorn command line of a service's API (the tests start it the same way)."""
    app = f"services.{service}.api:create_app()"
    return [gunicorn_executable(), "-c", "python:shared.gunicorn_conf", "--bind", f"{host}:{port}", app]


def worker_command(service: str) -> list[str]:
    return [sys.executable, "-m", f"services.{service}.worker"]


def mail_command() -> list[str]:
    """intake's mail process: the SMTP listener for mail in (and the IMAP poller when TICKETFLOW_IMAP_URL is set)."""
    return [sys.executable, "-m", "services.intake.mail"]


def _print_banner(
    dev: bool,
    mail_dir: Path | None = None,
    smtp_url: str | None = None,
    amqp_url: str | None = None,
    mongo_url: str | None = None,
    inbound_smtp: str = INBOUND_SMTP,
    ports: dict[str, int] | None = None,
) -> None:
    """What runs where; every URL's password shown as ***."""
    tool = "ticketflow" if shutil.which("ticketflow") else str(Path(sys.executable).with_name("ticketflow"))
    prefix = "TICKETFLOW_DEV=1 " if dev else ""
    token = f"{prefix}{tool} token --role portal"
    ports = ports or run_ports(PORTAL_PORT)
    print("ticketflow: starting; a process that dies is started again; Ctrl-C stops everything.")
    for service in SERVICE_PORTS:
        port = ports[service]
        base = f"http://127.0.0.1:{port}"
        print(f"  {service:<11} API {base}   docs {base}/docs   OpenAPI {base}/openapi.json")
    if amqp_url:
        print(f"  broker:     {local.masked(amqp_url)} (AMQP_URL)")
    if mongo_url:
        print(f"  database:   {local.masked(mongo_url)} (MONGO_URL)")
    if mail_dir is not None:
        print(
            f"  mail:       an SMTP sink on {smtp_url} keeps every email notify sends in {_relative(mail_dir)}/*.eml;"
        )
        print(f"              each shows as a `mail |` line below; read them with: {tool} mail --last 5")
    else:
        print(f"  mail:       notify sends to {local.masked(smtp_url or '')} (SMTP_URL)")
    smtp = "" if inbound_smtp == INBOUND_SMTP else f" --smtp {inbound_smtp}"
    print(f"  mail in:    intake takes mail on smtp://{inbound_smtp} (a new mail opens a ticket, a reply adds to it):")
    print(f"              {tool} send-mail{smtp} --from you@example.com --subject 'VPN drops' --body 'Since Monday.'")
    reply = "--reply-to .run/mail/<receipt>.eml --body 'Still down.'"
    print(f"              {tool} send-mail{smtp} --from you@example.com {reply}")
    portal = f"http://127.0.0.1:{ports['portal']}"
    print(f"  portal:     {portal}/ (requesters)   {portal}/login (agents)")
    print(f"  sign in:    {prefix}{tool} demo   prints the demo agents' and admin's passwords; or make an admin:")
    print(f"              {prefix}{tool} account create --email you@example.com --role admin")
    print(f"  a token:    {token}   (or --role admin, or --role agent --agent-id ID)")
    print(f'  try:        curl -H "Authorization: Bearer $({token})" http://127.0.0.1:{ports["intake"]}/topics')
    print(f"  a demo:     {prefix}{tool} demo   (a help desk with a dozen tickets); then {prefix}{tool} status")
    sys.stdout.flush()


def _relative(path: Path) -> str:
    """A path under the current folder as a relative one (shorter to read), else as it is."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _fail(message: str) -> int:
    print(f"ticketflow: {local.masked(message)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
