"""CPU time of the services on this machine, read from /proc: where a run's CPU went.

The consumers, PostgreSQL and Kafka run in processes of their own. On a 2-core machine they
share the cores, so the rate the machine could reach at best is its cores divided by the CPU
all of them spend per event (docs/PERFORMANCE.md, "the CPU budget").

Linux only: elsewhere `machine_cpu_seconds` returns None and the bench leaves the figures out.
"""

import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

PROC = Path("/proc")

# Which processes make up each service: (pid, command name, full command line) -> belongs.
Matcher = Callable[[int, str, str], bool]
SERVICES: Mapping[str, Matcher] = {
    "postgresql": lambda pid, comm, cmdline: comm == "postgres",
    "kafka": lambda pid, comm, cmdline: "kafka.Kafka" in cmdline,
}


def cpu_seconds(matches: Matcher, proc: Path = PROC) -> float | None:
    """User and system CPU of every process that matches, including the children it has
    waited for: a PostgreSQL backend that ended is counted in the postmaster's children."""
    if not (proc / "self" / "stat").exists():
        return None
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended while being read
            continue
        # The command name is in parentheses and may hold spaces: the fields follow the last ")".
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if not matches(int(entry.name), comm, cmdline):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), 11-14 after the name.
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / ticks_per_second


def machine_cpu_seconds(consumer_pids: Collection[int]) -> dict[str, float] | None:
    """CPU seconds used so far by the consumer processes (together) and by each service's
    processes, or None without /proc."""
    found = {
        "consumer": cpu_seconds(lambda pid, comm, cmdline: pid in consumer_pids),
        **{name: cpu_seconds(matches) for name, matches in SERVICES.items()},
    }
    if any(seconds is None for seconds in found.values()):
        return None
    return {name: seconds for name, seconds in found.items() if seconds is not None}


def cpu_budget(
    events: int,
    before: Mapping[str, float] | None,
    after: Mapping[str, float] | None,
    cores: int | None = None,
) -> dict[str, float] | None:
    """Microseconds of CPU per event for the consumers and each service between two readings,
    their total, and the events per second the machine's cores could carry at that cost (the
    ceiling)."""
    if before is None or after is None or events <= 0:
        return None
    used = {name: after[name] - before[name] for name in after}
    budget = {f"{name}_us": round(seconds / events * 1e6, 1) for name, seconds in used.items()}
    total = sum(used.values()) / events
    budget["total_us"] = round(total * 1e6, 1)
    budget["cores"] = cores or os.cpu_count() or 1
    budget["ceiling_per_s"] = round(budget["cores"] / total, 1) if total > 0 else 0.0
    return budget
