"""gunicorn's sync worker with a read timeout on each connection.

A sync worker serves one connection at a time. A client that sends part of a request and then nothing (or stops
reading the answer) held its worker until gunicorn's `timeout` killed it (30 s): six such connections stalled an
api of five workers. Each connection's socket now gives up after GUNICORN_READ_TIMEOUT seconds (10 by default)
without a byte: the worker answers the next client. A client that sends a byte just often enough still holds a
worker: on a network others reach, the apis and the portal sit behind a proxy that buffers whole requests before
it passes them on (deploy/README.md).
"""

from __future__ import annotations

import os

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

READ_TIMEOUT = float(os.environ.get("GUNICORN_READ_TIMEOUT", "10"))


class TimedSyncWorker(SyncWorker):
    def accept(self, listener):
        client, addr = listener.accept()
        client.settimeout(READ_TIMEOUT)  # blocking, as the sync worker's own, with a limit on each read and write
        util.close_on_exec(client)
        self.handle(listener, client, addr)
