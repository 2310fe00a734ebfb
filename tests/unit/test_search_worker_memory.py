"""search's worker keeps glibc to two malloc arenas (services/search/engine.py limit_malloc_arenas), first thing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.search import worker


def _in_a_process(code: str, *args: str, **env: str) -> str:
    environ = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"} | env
    command = [sys.executable, "-c", code, *args]
    done = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


HEAPS = """
import ctypes, os, sys, tempfile, threading
from services.search.engine import limit_malloc_arenas
if sys.argv[1] == "cap":
    print(limit_malloc_arenas())
libc = ctypes.CDLL(None)
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
together = threading.Barrier(8)
def allocate():  # eight threads alive at once, each allocating: glibc gives each an arena, up to its cap
    together.wait()
    libc.malloc(100_000)
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "info.xml")
    out = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, out)
    libc.fclose(out)
    print(open(path).read().count("<heap nr="))
"""


def test_the_writing_process_keeps_two_malloc_arenas_however_many_threads_allocate():
    assert int(_in_a_process(HEAPS, "free")) > 2  # the main arena and one per thread: 9 here
    assert _in_a_process(HEAPS, "cap").split() == ["True", "2"]


def test_an_operators_malloc_arena_max_is_left_alone():
    code = "from services.search.engine import limit_malloc_arenas; print(limit_malloc_arenas())"

    assert _in_a_process(code, MALLOC_ARENA_MAX="4") == "False"


def test_the_worker_caps_them_before_anything_else(monkeypatch):
    calls = []

    def settings_next():
        calls.append("settings")
        raise SystemExit

    monkeypatch.setattr(worker, "limit_malloc_arenas", lambda: calls.append("arenas"))
    monkeypatch.setattr(worker, "load_settings", settings_next)
    with pytest.raises(SystemExit):
        worker.main()

    assert calls == ["arenas", "settings"]
