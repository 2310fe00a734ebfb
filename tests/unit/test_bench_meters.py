"""The benchmarks' meters: the store's command counters read from serverStatus, and RSS per process kind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from benchmarks.meters import (
    LIMIT_MB,
    RssPeaks,
    command_deltas,
    command_totals,
    data_calls,
    finish,
    kinds_of,
    print_rss,
    print_store_calls,
)
from tests.harness import wait_until

# MongoDB 7's shape: extra counters beside `total`, and a bare number for unknown commands
MONGODB_STATUS = {
    "metrics": {
        "commands": {
            "<UNKNOWN>": 3,
            "find": {"failed": 0, "total": 40},
            "update": {"arrayFilters": 0, "failed": 1, "pipeline": 0, "total": 12},
            "isMaster": {"failed": 0, "total": 5},
            "createIndexes": {"validator": {"failed": 0, "total": 1}},  # a group of counters, no total of its own
        }
    }
}


def test_command_totals_are_read_from_the_nested_counters():
    assert command_totals(MONGODB_STATUS) == {"find": 40, "update": 12, "isMaster": 5}
    assert command_totals({"ok": 1}) == {}  # a server without metrics: nothing counted, no error


def test_deltas_leave_out_what_was_not_called_and_count_new_commands():
    before = {"find": 40, "update": 12}
    after = {"find": 47, "update": 12, "findAndModify": 2}
    assert command_deltas(before, after) == {"find": 7, "findAndModify": 2}


def test_connection_upkeep_is_not_a_data_call():
    assert data_calls({"find": 7, "isMaster": 3, "ismaster": 1, "hello": 2, "serverStatus": 1, "insert": 1}) == 8


def test_the_store_table_divides_by_the_units(capsys):
    print_store_calls("calls", {"tf": ({"find": 30, "hello": 4}, 10), "bare": ({"insert": 31}, 1)})
    lines = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines["find"] == ["3.00", "0.00"]
    assert lines["insert"] == ["0.00", "31.00"]
    assert lines["upkeep"] == ["calls", "4", "0"]


def test_a_gunicorn_like_tree_splits_into_master_and_workers():
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    master = subprocess.Popen([sys.executable, "-c", code + "time.sleep(60)"], start_new_session=True)
    alone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        wait_until(lambda: "api workers" in kinds_of({"api": [master.pid]}), 30)
        kinds = kinds_of({"api": [master.pid], "worker": [alone.pid]})
        assert kinds["api master"] == [master.pid]
        assert len(kinds["api workers"]) == 1
        assert kinds["worker"] == [alone.pid]  # no children: its kind as it is
    finally:
        for proc in (master, alone):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_rss_peaks_sample_until_stopped():
    peaks = RssPeaks(lambda: {"me": [os.getpid()], "gone": [2**22 + 1]}, every=0.01).start()
    wait_until(lambda: peaks.samples >= 3)
    found = peaks.stop()
    assert found["me"] > 1.0  # MB: a Python process is far larger than 1 MB
    assert found["gone"] == 0.0  # a process that is not there is not an error


@pytest.mark.parametrize(("peak", "passed"), [(LIMIT_MB - 1, True), (LIMIT_MB + 1, False)])
def test_rss_verdict_only_for_the_limited_kinds(capsys, peak, passed):
    columns = {"steady": {"tf-intake-api workers": peak, "rabbitmq": 500.0}, "max": {"tf-intake-api workers": 20.0}}
    assert print_rss("RSS", columns, lambda kind: kind.startswith("tf-")) is passed
    out = capsys.readouterr().out
    assert ("FAIL" in out) is not passed
    assert [line for line in out.splitlines() if "rabbitmq" in line][0].rstrip().endswith("500.0")


def test_a_benchmark_stops_its_own_processes_even_when_its_cleanup_fails():
    class Process:
        terminated = False

        def terminate(self):
            self.terminated = True

    class Log:
        closed = False

        def close(self):
            self.closed = True

    def broker_gone():
        raise ConnectionError("the broker does not answer")

    procs, log = [Process(), Process()], Log()
    with pytest.raises(ConnectionError):
        finish(broker_gone, procs, log)
    assert all(proc.terminated for proc in procs) and log.closed
