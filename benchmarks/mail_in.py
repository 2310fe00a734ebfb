"""Mails per second through intake's mail-in listener into tickets, against POST /tickets, same store, same run.

    .venv/bin/python benchmarks/mail_in.py [--seconds 15] [--clients 8] [--workers 2] [--mail-processes 2]

One intake api under gunicorn (--workers processes) and --mail-processes mail processes sharing one SMTP port
(SO_REUSEPORT), on MONGO_URL / AMQP_URL when set, else on a FerretDB of its own and the local RabbitMQ. Two
loads, one after the other, each from 2 processes of --clients/2 threads after a 2 s warm-up:

  intake   POST /tickets with a requester-scoped portal token (as the portal does)
  mail     a new mail (text, a signature) over SMTP; each thread keeps its connection open as an MTA does, and
           times MAIL FROM .. DATA .. 250: the 250 comes only once the ticket is stored

Prints tickets per second, p50/p99 latency and errors of each, the ratio mail / intake, and checks that every
mail answered 250 is one ticket.
"""

from __future__ import annotations

import argparse
import os
import secrets
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.intake_post import _cleanup, _declare_intake_queue, gunicorn, store_url  # noqa: E402
from benchmarks.meters import finish  # noqa: E402
from benchmarks.portal_post import SECRET, _intake_once, drive  # noqa: E402
from ticketflow.local import broker_for_benchmark, free_port, port_answers  # noqa: E402

BODY = "Since Monday the VPN drops every hour, for a minute or two.\n\n-- \nAna Ruiz\nACME Corp, floor 3\n"


def _mail(i: int, run: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Ana Ruiz <ana.{run}.{i % 500}@example.com>"
    message["To"] = "help@help.example.com"
    message["Subject"] = f"VPN drops every hour ({i})"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example.com>"
    message.set_content(BODY)
    return message


def _thread(kind: str, port: int, deadline: float, out: list, run: str) -> None:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=60) if kind == "mail" else None
    i = 0
    while time.monotonic() < deadline:
        start = time.perf_counter()
        if smtp is not None:
            try:
                ok = smtp.send_message(_mail(i, run)) == {}
            except smtplib.SMTPException:
                ok = False
        else:
            ok = _intake_once(port, i)
        out.append((ok, time.perf_counter() - start))
        i += 1
    if smtp is not None:
        smtp.quit()


def _load(kind: str, port: int, seconds: float, threads: int, queue) -> None:
    deadline, results, run = time.monotonic() + seconds, [], uuid.uuid4().hex[:6]
    workers = [
        threading.Thread(target=_thread, args=(kind, port, deadline, results, f"{run}{n}")) for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mail-processes", type=int, default=2)
    args = parser.parse_args()
    namespace, tmp = f"bench_{secrets.token_hex(3)}", Path(tempfile.mkdtemp(prefix="ticketflow-bench-"))
    procs: list[subprocess.Popen] = []
    amqp_url = broker_for_benchmark()  # first: a broker that cannot start leaves no store behind
    mongo_url = store_url(tmp, procs)
    intake_port, smtp_port = free_port(), free_port()
    env = {**os.environ, "AMQP_URL": amqp_url, "MONGO_URL": mongo_url, "TICKETFLOW_NAMESPACE": namespace,
           "TICKETFLOW_JWT_SECRET": SECRET, "PYTHONPATH": str(ROOT),
           "TICKETFLOW_INBOUND_SMTP": f"127.0.0.1:{smtp_port}",
           "TICKETFLOW_REQUESTER_TICKETS_PER_HOUR": "1000000"}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp / "servers.log", "w")  # noqa: SIM115 - closed at the end
    try:
        _declare_intake_queue(env)
        procs.append(gunicorn("services.intake.api:create_app()", intake_port, env, args.workers, log))
        for _ in range(args.mail_processes):
            command = [sys.executable, "-m", "services.intake.mail"]
            procs.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while not port_answers("127.0.0.1", smtp_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        results = {}
        for kind, port in (("intake", intake_port), ("mail", smtp_port)):
            results[kind] = found = drive(kind, port, args.seconds, args.clients, load=_load)
            print(f"{kind:>7}: {found['requests_per_second']:8.1f} tickets/s  p50 {found['p50_ms']:6.1f} ms"
                  f"  p99 {found['p99_ms']:6.1f} ms  errors {found['errors']}", flush=True)  # fmt: skip
        ratio = results["mail"]["requests_per_second"] / results["intake"]["requests_per_second"]
        print(f"  ratio: {ratio:.2f} (mail / intake); {args.workers} gunicorn workers, {args.mail_processes} mail "
              f"processes, {args.clients} clients, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        from pymongo import MongoClient

        tickets = MongoClient(mongo_url)[f"{namespace}_intake"]["tickets"]
        by_mail = tickets.count_documents({"source": "email"})
        print(f"  tickets from mail: {by_mail} (warm-up included; every mail answered 250 is one)")
    finally:
        for proc in reversed(procs[1:] if not os.environ.get("MONGO_URL") else procs):
            proc.terminate()
            proc.wait(15)
        finish(lambda: _cleanup(env), procs, log)


if __name__ == "__main__":
    main()
