"""The bench's CPU budget: where a run's CPU went, read from /proc, and what the cores carry."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

from bench.cpu import cpu_budget, cpu_seconds, machine_cpu_seconds

BUSY = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_cpu_seconds_counts_a_process_and_the_children_it_waited_for() -> None:
    marker = f"cpu-probe-{uuid.uuid4().hex}"
    script = (
        BUSY
        + "import subprocess, sys\n"
        + f"subprocess.run([sys.executable, '-c', {BUSY!r}], check=True)\n"
        + "print('ready', flush=True)\n"
        + "sys.stdin.read()\n"
    )
    probe = subprocess.Popen(
        [sys.executable, "-c", script, marker],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert probe.stdout is not None and probe.stdout.readline() == "ready\n"
        used = cpu_seconds(lambda pid, comm, cmdline: marker in cmdline)
        # Its own 0.3 s and the ended child's 0.3 s (counted in the parent's children).
        assert used is not None and 0.5 <= used < 5
        assert cpu_seconds(lambda pid, comm, cmdline: pid == probe.pid) == used
        assert cpu_seconds(lambda pid, comm, cmdline: "no-such-process" + marker in cmdline) == 0
    finally:
        probe.kill()
        probe.wait()


def test_cpu_seconds_is_none_without_proc(tmp_path: Path) -> None:
    assert cpu_seconds(lambda pid, comm, cmdline: True, proc=tmp_path) is None


def test_cpu_budget_divides_each_share_by_the_events_and_the_cores_by_the_total() -> None:
    budget = cpu_budget(
        1000,
        before={"consumer": 1.0, "postgresql": 10.0, "kafka": 3.0},
        after={"consumer": 1.2, "postgresql": 10.05, "kafka": 3.05},
        cores=2,
    )
    assert budget == {
        "consumer_us": 200.0,
        "postgresql_us": 50.0,
        "kafka_us": 50.0,
        "total_us": 300.0,
        "cores": 2,
        "ceiling_per_s": 6666.7,
    }
    assert cpu_budget(1000, None, {"consumer": 1.0}) is None
    assert cpu_budget(0, {}, {}) is None


def test_machine_cpu_seconds_names_the_consumers_and_each_service() -> None:
    readings = machine_cpu_seconds({os.getpid()})
    assert readings is not None
    assert set(readings) == {"consumer", "postgresql", "kafka"}
    assert readings["consumer"] > 0  # this very process has run
