"""The `ticketflow` command's demo, status, mailsink and mail commands, and the mail sink `run` adds."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from shared.config import SERVICE_PORTS
from ticketflow import cli, demo, local, mailsink, status
from ticketflow.local import free_port, free_ports


@pytest.fixture
def captured(monkeypatch) -> dict:
    """Replace what each command runs with a recorder of its arguments."""
    calls: dict = {}
    monkeypatch.setattr(demo, "main", lambda urls, wait, portal: calls.update(demo=(urls, wait, portal)) or 0)
    monkeypatch.setattr(status, "main", lambda urls: calls.update(status=urls) or 0)
    monkeypatch.setattr(mailsink, "serve", lambda host, port, folder: calls.update(mailsink=(host, port, folder)) or 0)
    monkeypatch.setattr(mailsink, "print_latest", lambda folder, count: calls.update(mail=(folder, count)) or 0)
    return calls


def test_demo_and_status_find_each_service_at_the_base_url_unless_told_otherwise(captured):
    assert cli.main(["demo"]) == 0
    assert captured["demo"] == (
        {name: f"http://127.0.0.1:{port}" for name, port in SERVICE_PORTS.items()},
        30.0,
        "http://127.0.0.1:8000",
    )
    assert cli.main(["status", "--base-url", "http://10.0.0.5/", "--sla-url", "http://sla.internal:9000/"]) == 0
    assert captured["status"] == {
        "intake": "http://10.0.0.5:8001",
        "assignment": "http://10.0.0.5:8002",
        "sla": "http://sla.internal:9000",
        "notify": "http://10.0.0.5:8004",
        "search": "http://10.0.0.5:8005",
    }
    assert cli.main(["demo", "--wait", "5", "--notify-url", "http://127.0.0.1:4000"]) == 0
    assert captured["demo"][0]["notify"] == "http://127.0.0.1:4000" and captured["demo"][1] == 5.0
    assert cli.main(["demo", "--base-url", "http://10.0.0.5", "--portal-url", "http://help.internal/"]) == 0
    assert captured["demo"][2] == "http://help.internal"


def test_mailsink_and_mail_default_to_port_8025_and_the_run_folder(captured, tmp_path):
    assert cli.main(["mailsink"]) == 0
    assert captured["mailsink"] == ("127.0.0.1", 8025, local.REPO_ROOT / ".run" / "mail")
    assert cli.main(["mail"]) == 0
    assert captured["mail"] == (local.REPO_ROOT / ".run" / "mail", 5)
    assert cli.main(["mail", "--last", "2", "--dir", str(tmp_path)]) == 0
    assert captured["mail"] == (tmp_path, 2)


def test_a_bad_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["demo", "--wait", "soon"])
    assert stopped.value.code == 2
    assert "invalid float value" in capsys.readouterr().err


def test_the_mail_sink_saves_each_message_as_eml_prints_a_line_and_mail_reads_it(tmp_path, capsys):
    printed: list[str] = []
    port = free_port()
    sink = mailsink.start("127.0.0.1", port, tmp_path / "mail", echo=lambda line, **kw: printed.append(line))
    try:
        for n, subject in enumerate(["[#100001] Printer on floor 3 will not print", "[#100002] VPN drops"], 1):
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "helpdesk@localhost", "ana@example.com", subject
            message.set_content(f"Hello Ana,\n\nwe got your ticket number {n}.\n")
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
                client.send_message(message)
    finally:
        sink.stop()

    saved = sorted((tmp_path / "mail").glob("*.eml"))
    assert [path.name.endswith(f"-{n}.eml") for n, path in enumerate(saved, 1)] == [True, True]
    assert saved[0].name[:8].isdigit() and "T" in saved[0].name  # a UTC time first: names sort in order
    assert b"Subject: [#100001] Printer on floor 3 will not print" in saved[0].read_bytes()
    assert printed[0].startswith("mail to ana@example.com: [#100001] Printer on floor 3 will not print")

    assert cli.main(["mail", "--dir", str(tmp_path / "mail"), "--last", "1"]) == 0
    out = capsys.readouterr().out
    assert "To: ana@example.com" in out and "From: helpdesk@localhost" in out
    assert "Subject: [#100002] VPN drops" in out and "we got your ticket number 2." in out
    assert "[#100001]" not in out  # only the last one


def test_mail_with_no_messages_says_so(tmp_path, capsys):
    assert cli.main(["mail", "--dir", str(tmp_path)]) == 0
    assert "no mail in" in capsys.readouterr().out


def test_status_with_everything_down_says_down_and_exits_1(monkeypatch, capsys):
    monkeypatch.setenv("AMQP_URL", f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
    urls = [f"--{service}-url=http://127.0.0.1:{free_port()}" for service in SERVICE_PORTS]

    assert cli.main(["status", *urls]) == 1

    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(tuple(SERVICE_PORTS))}
    assert {service: row[1] for service, row in rows.items()} == dict.fromkeys(SERVICE_PORTS, "down")
    assert "RabbitMQ does not answer" in out
    assert "assignment api down" in out and "sla api down" in out
    assert out.rstrip().splitlines()[-1].startswith("not ready: intake api down")


def test_demo_without_a_running_system_says_to_start_it(capsys):
    urls = [f"--{service}-url=http://127.0.0.1:{free_port()}" for service in SERVICE_PORTS]

    assert cli.main(["demo", "--wait", "0.2", *urls]) == 1

    assert "Start the system with `make run`" in capsys.readouterr().out


def test_demo_without_a_secret_says_so_in_one_line(monkeypatch):
    monkeypatch.delenv("TICKETFLOW_JWT_SECRET")
    monkeypatch.delenv("TICKETFLOW_DEV", raising=False)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["demo"])
    assert "TICKETFLOW_JWT_SECRET is not set" in str(stopped.value.code)
    assert "\n" not in str(stopped.value.code)


class FakeSupervisor:
    """The supervisor, recording the processes instead of starting them."""

    def __init__(self) -> None:
        self.processes: dict[str, tuple[list[str], dict]] = {}

    def add(self, name: str, argv: list[str], env: dict) -> None:
        self.processes[name] = (argv, env)

    def run(self) -> int:
        FakeSupervisor.last = self
        return 0


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    """`ticketflow run` with a broker and a MongoDB said to answer, its .run/ in tmp_path, nothing started."""
    from ticketflow import supervisor

    monkeypatch.setattr(supervisor, "Supervisor", FakeSupervisor)
    monkeypatch.setattr(local, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(local, "amqp_answers", lambda url: True)
    monkeypatch.setattr(local, "port_answers", lambda host, port, timeout=0.5: False)
    monkeypatch.setenv("MONGO_URL", "mongodb://127.0.0.1:27017")
    monkeypatch.delenv("SMTP_URL", raising=False)


def test_run_starts_a_mail_sink_that_notify_sends_to_and_says_where_mails_are(fake_run, tmp_path, capsys):
    assert cli.main(["run"]) == 0

    processes = FakeSupervisor.last.processes
    command, _ = processes["mail"]
    assert "mailsink" in command and "--port" in command and "8025" in command
    assert str(tmp_path / ".run" / "mail") in command
    assert processes["notify-worker"][1]["SMTP_URL"] == "smtp://127.0.0.1:8025"
    out = capsys.readouterr().out
    assert ".run/mail/*.eml" in out and "mail --last" in out
    assert "http://127.0.0.1:8001/docs" in out


def test_run_leaves_mail_to_smtp_url_when_it_is_set(fake_run, monkeypatch, capsys):
    monkeypatch.setenv("SMTP_URL", "smtp://relay.example.com:25")

    assert cli.main(["run"]) == 0

    assert "mail" not in FakeSupervisor.last.processes
    assert FakeSupervisor.last.processes["notify-worker"][1]["SMTP_URL"] == "smtp://relay.example.com:25"
    assert "notify sends to smtp://relay.example.com:25" in capsys.readouterr().out


def test_run_refuses_when_the_mail_port_is_taken(fake_run, monkeypatch, capsys):
    monkeypatch.setattr(local, "port_answers", lambda host, port, timeout=0.5: port == cli.MAIL_PORT)

    assert cli.main(["run"]) == 1

    assert "port 8025 is taken; set SMTP_URL" in capsys.readouterr().err


def test_run_moved_to_other_ports_tells_the_portal_and_the_banner(fake_run, capsys):
    assert cli.main(["run", "--base-port", "9100"]) == 0

    processes = FakeSupervisor.last.processes
    assert processes["portal-api"][0][-2] == "127.0.0.1:9100" and processes["notify-api"][0][-2] == "127.0.0.1:9104"
    portal_env = processes["portal-api"][1]
    assert portal_env["TICKETFLOW_INTAKE_URL"] == "http://127.0.0.1:9101"
    assert portal_env["TICKETFLOW_PORTAL_URL"] == "http://127.0.0.1:9100"
    out = capsys.readouterr().out
    assert "http://127.0.0.1:9102/docs" in out and "http://127.0.0.1:9100/login" in out
    assert "127.0.0.1:8001" not in out


def test_run_at_the_usual_ports_leaves_the_portal_to_its_defaults(fake_run):
    assert cli.main(["run"]) == 0

    processes = FakeSupervisor.last.processes
    assert processes["intake-api"][0][-2] == "127.0.0.1:8001"
    assert "TICKETFLOW_INTAKE_URL" not in processes["portal-api"][1]


@pytest.mark.parametrize("base_port", ["65531", "0", "-5"])
def test_run_refuses_a_base_port_without_room_for_six(fake_run, capsys, base_port):
    assert cli.main(["run", "--base-port", base_port]) == 1

    assert "--base-port must leave room for six ports" in capsys.readouterr().err


def test_run_starts_search_with_its_index_under_the_run_folder(fake_run, tmp_path):
    assert cli.main(["run"]) == 0

    processes = FakeSupervisor.last.processes
    assert processes["search-api"][0][-2] == "127.0.0.1:8005" and "search-worker" in processes
    assert processes["search-worker"][1]["TICKETFLOW_SEARCH_INDEX_DIR"] == str(tmp_path / ".run" / "search")
    assert processes["search-api"][1]["TICKETFLOW_SEARCH_INDEX_DIR"] == str(tmp_path / ".run" / "search")


# --- secrets are never printed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
        ("at amqp://notify:s3cr@t@rabbit:5672/tf; start it", "at amqp://notify:***@rabbit:5672/tf; start it"),
        ("mongodb://tf:pw@db1,db2:27017/tf?replicaSet=rs", "mongodb://tf:***@db1,db2:27017/tf?replicaSet=rs"),
        ("smtps://mailer:hunter2@mail:465 and amqps://a:b@c/", "smtps://mailer:***@mail:465 and amqps://a:***@c/"),
        ("smtp://relay.example.com:25", "smtp://relay.example.com:25"),
        ("amqp://user@host/", "amqp://user@host/"),
    ],
)
def test_masked_shows_every_url_password_as_stars(text, expected):
    assert local.masked(text) == expected


def test_run_banner_shows_the_urls_without_their_passwords(fake_run, monkeypatch, capsys):
    monkeypatch.setenv("AMQP_URL", "amqp://intake:amqp-pw-1@rabbit:5672/%2F")
    monkeypatch.setenv("MONGO_URL", "mongodb://tf:mongo-pw-2@db:27017")
    monkeypatch.setenv("SMTP_URL", "smtp://mailer:smtp-pw-3@relay.example.com:25")

    assert cli.main(["run"]) == 0

    out = capsys.readouterr().out
    assert "amqp://intake:***@rabbit:5672/%2F" in out and "mongodb://tf:***@db:27017" in out
    assert "smtp://mailer:***@relay.example.com:25" in out
    assert not {"amqp-pw-1", "mongo-pw-2", "smtp-pw-3"} & set(out.replace(":", " ").replace("@", " ").split())


def test_run_without_a_broker_does_not_print_its_password(fake_run, monkeypatch, capsys):
    monkeypatch.setenv("AMQP_URL", "amqp://intake:amqp-pw-1@rabbit:5672/%2F")
    monkeypatch.setattr(local, "amqp_answers", lambda url: False)

    assert cli.main(["run"]) == 1

    err = capsys.readouterr().err
    assert "amqp://intake:***@rabbit" in err and "amqp-pw-1" not in err


def test_status_does_not_print_the_broker_password(monkeypatch, capsys):
    monkeypatch.setenv("AMQP_URL", f"amqp://status:amqp-pw-1@127.0.0.1:{free_port()}/%2F")
    urls = [f"--{service}-url=http://127.0.0.1:{free_port()}" for service in SERVICE_PORTS]

    assert cli.main(["status", *urls]) == 1

    out = capsys.readouterr().out
    assert "amqp://status:***@127.0.0.1" in out and "amqp-pw-1" not in out


def test_demo_does_not_print_a_password_of_a_url(capsys):
    port = free_port()
    urls = [f"--{service}-url=http://demo:demo-pw-4@127.0.0.1:{port}" for service in SERVICE_PORTS]

    assert cli.main(["demo", "--wait", "0.2", *urls]) == 1

    out = capsys.readouterr().out
    assert "demo:***@127.0.0.1" in out and "demo-pw-4" not in out


def test_token_prints_a_requester_scoped_portal_token(monkeypatch, capsys):
    from shared.auth import decode_token

    secret = "s" * 32
    monkeypatch.setenv("TICKETFLOW_JWT_SECRET", secret)
    argv = ["token", "--role", "portal", "--requester-email", "Ana@Example.com", "--ticket-id", "t-1"]
    assert cli.main(argv) == 0
    principal = decode_token(secret, capsys.readouterr().out.strip())
    assert (principal.role, principal.requester_email, principal.ticket_id) == ("portal", "ana@example.com", "t-1")
    assert cli.main(["token", "--role", "admin", "--requester-email", "ana@example.com"]) != 0


def test_free_ports_are_different_ports_nothing_listens_on():
    from ticketflow.local import port_answers

    ports = free_ports(12)
    assert len(set(ports)) == 12  # one system's services never share one
    assert not any(port_answers("127.0.0.1", port, timeout=0.2) for port in ports)
    # below the range the kernel gives outgoing connections, which could take a port before its server binds it
    assert all(local.LISTEN_FROM <= port < local._first_ephemeral() for port in ports)


def test_a_benchmark_starts_the_machines_broker_only_when_it_does_not_answer(monkeypatch):
    started = []
    monkeypatch.setattr(local.subprocess, "run", lambda cmd, **kw: started.append((cmd, kw["env"]["AMQP_URL"])))
    monkeypatch.setenv("AMQP_URL", "amqp://elsewhere:5672/%2F")
    assert local.broker_for_benchmark() == "amqp://elsewhere:5672/%2F"  # set: used as it is, nothing started
    monkeypatch.delenv("AMQP_URL")
    monkeypatch.setattr(local, "amqp_answers", lambda url: True)
    assert local.broker_for_benchmark() == local.DEFAULT_AMQP_URL
    assert started == []
    monkeypatch.setattr(local, "amqp_answers", lambda url: False)
    assert local.broker_for_benchmark() == local.DEFAULT_AMQP_URL
    assert started == [([str(local.REPO_ROOT / "scripts" / "ensure-rabbitmq.sh")], local.DEFAULT_AMQP_URL)]


@pytest.mark.parametrize(
    ("url", "vhost"),
    [("amqp://guest:guest@127.0.0.1:5672/%2F", "/"), ("amqp://g:g@localhost", "/"), ("amqp://g:g@localhost/", "/"),
     ("amqp://g:g@localhost/dev", "dev"), ("amqps://g:g@localhost:5671/team%2Fa", "team/a")],
)  # fmt: skip
def test_the_scripts_read_the_virtual_host_of_amqp_url_as_pika_does(url, vhost):
    """scripts/ensure-rabbitmq.sh sets its policy in AMQP_URL's virtual host (`local.py amqp-vhost URL`)."""
    import pika

    assert local.amqp_vhost(url) == vhost == pika.URLParameters(url).virtual_host


def test_dead_letters_say_in_one_line_what_stops_them(monkeypatch, capsys):
    monkeypatch.setenv("AMQP_URL", f"amqp://guest:secret@127.0.0.1:{free_port()}/%2F")

    assert cli.main(["dead-letters", "list", "intake"]) == 1
    said = capsys.readouterr().err
    assert said.startswith("ticketflow: RabbitMQ at ") and "does not answer" in said and "secret" not in said
    assert cli.main(["dead-letters", "replay", "billing"]) == 1
    said = capsys.readouterr().err
    assert "no service 'billing' consumes events; one of: assignment, intake, notify, search, sla" in said
    assert cli.main(["dead-letters", "replay", "intake", "--limit", "0"]) == 2
    assert "--limit must be a positive number" in capsys.readouterr().err


def test_token_refuses_a_lifetime_the_apis_would_refuse(monkeypatch, capsys):
    """A contract prober's find: `token --ttl 100000` printed a token every api answered 401."""
    from shared.auth import decode_token

    secret = "s" * 32
    monkeypatch.setenv("TICKETFLOW_JWT_SECRET", secret)
    monkeypatch.setenv("TICKETFLOW_TOKEN_MAX_HOURS", "2")

    assert cli.main(["token", "--role", "admin", "--ttl", "7201"]) != 0
    assert "longer than the apis take (2 hours: 7200 seconds, TICKETFLOW_TOKEN_MAX_HOURS)" in capsys.readouterr().err
    assert cli.main(["token", "--role", "admin", "--ttl", "7200"]) == 0
    assert decode_token(secret, capsys.readouterr().out.strip(), max_hours=2).role == "admin"
