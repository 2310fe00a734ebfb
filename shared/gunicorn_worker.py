"""gunicorn's sync worker with a time limit on reading each request.

A sync worker serves one connection at a time. A client that sends part of a request and then nothing held its
worker until gunicorn's `timeout` killed it (30 s): six such connections stalled an api of five workers. Now:

- a connection that sends no byte within GUNICORN_READ_TIMEOUT seconds (10 by default) of being accepted is
  closed without a word (a browser's preconnect, a load balancer's TCP check: nothing to log);
- while its request is read, each read that waits longer than that gives up: a request line or headers cut
  short end the connection (gunicorn logs it), a body cut short is a 408 (shared.web);
- the answer is written with no such limit, as slowly as the client reads it (a 10 MiB file to a slow phone):
  the limit is taken off when the app starts its answer.

A client that sends a byte just often enough still holds a worker: on a network others reach, the apis and the
portal sit behind a proxy that buffers whole requests before it passes them on (deploy/README.md).

The class name must not end in "SyncWorker": gunicorn swaps such a class for its threaded worker when
GUNICORN_THREADS is above 1, which would drop the limit without a word (GUNICORN_THREADS applies to
GUNICORN_WORKER_CLASS=gthread).
"""

from __future__ import annotations

import os
import select

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

READ_TIMEOUT = float(os.environ.get("GUNICORN_READ_TIMEOUT", "10"))


class ReadTimeoutWorker(SyncWorker):
    def accept(self, listener):
        client, addr = listener.accept()
        util.close_on_exec(client)
        readable, _, _ = select.select([client], [], [], READ_TIMEOUT)
        if not readable:  # nothing sent at all: an idle connection, closed quietly
            self.log.debug("closing a connection from %s that sent nothing in %g s", addr, READ_TIMEOUT)
            util.close(client)
            return
        client.settimeout(READ_TIMEOUT)  # blocking, as the sync worker's own, each read limited
        self.handle(listener, client, addr)

    def handle_request(self, listener, req, client, addr):
        app = self.wsgi

        def answered(environ, start_response):
            def start(*args, **kwargs):  # the request is read: its answer goes out as slowly as the client reads
                client.settimeout(None)
                return start_response(*args, **kwargs)

            return app(environ, start)

        self.wsgi = answered
        try:
            return super().handle_request(listener, req, client, addr)
        finally:
            self.wsgi = app
