"""How busy the machine was while a phase ran, and with what: a slow machine or a slow product.

Linux only (``/proc``). For each phase: the 1-minute load average at its start and end, and the
CPU the machine spent (from ``/proc/stat``), split into the bench's own (this process, its
children: the simulator, the gateway, the cold runners, the latency proxy; and the PostgreSQL
server with its backends) and everything else on the machine, each in cores (1.0 = one core
busy for the whole phase); and which other processes took the most of it (by name).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
TOP_OTHERS = 3


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    load_1m: float
    busy_ticks: int  # the whole machine's, every core
    ours_ticks: int
    others_ticks: dict[int, int]  # each other process's own ticks (utime + stime)


def _machine_busy_ticks() -> int:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return user + nice + system + irq + softirq + steal


def _idle_ticks_per_cpu() -> dict[int, int]:
    idle: dict[int, int] = {}
    for line in Path("/proc/stat").read_text().splitlines()[1:]:
        name, *fields = line.split()
        if not name.startswith("cpu"):
            break
        idle[int(name[3:])] = int(fields[3]) + int(fields[4])  # idle + iowait
    return idle


def idlest_cpu(allowed: set[int], over_s: float = 0.3) -> int:
    """The allowed core that was idle the longest over the last ``over_s`` seconds: a process
    pinned to a core that another is keeping busy measures that other process."""
    before = _idle_ticks_per_cpu()
    time.sleep(over_s)
    after = _idle_ticks_per_cpu()
    return max(sorted(allowed), key=lambda cpu: after.get(cpu, 0) - before.get(cpu, 0))


def _processes() -> dict[int, tuple[int, int, int]]:
    """Every process: pid -> (parent pid, utime + stime ticks with its waited-for children's,
    its own alone)."""
    found: dict[int, tuple[int, int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        after_name = raw.rsplit(")", 1)[1].split()
        parent = int(after_name[1])
        own = int(after_name[11]) + int(after_name[12])  # utime, stime
        ticks = own + int(after_name[13]) + int(after_name[14])  # + cutime, cstime
        found[int(entry.name)] = (parent, ticks, own)
    return found


class MachineMeter:
    """Samples the machine; ``roots`` are the processes whose whole trees are the bench's own
    (this process, and the PostgreSQL server, which pg_ctl detaches from it)."""

    def __init__(self, postgres_data_dir: Path | None = None) -> None:
        self.postgres_data_dir = postgres_data_dir
        self.phases: dict[str, dict[str, Any]] = {}

    def _roots(self) -> set[int]:
        roots = {os.getpid()}
        pid_file = self.postgres_data_dir / "postmaster.pid" if self.postgres_data_dir else None
        if pid_file is not None and pid_file.exists():
            roots.add(int(pid_file.read_text().split("\n", 1)[0]))
        return roots

    def sample(self) -> Sample:
        everyone = _processes()
        children: dict[int, list[int]] = {}
        for pid, (parent, _, _) in everyone.items():
            children.setdefault(parent, []).append(pid)
        ours, pending, tree = 0, list(self._roots()), set()
        while pending:
            pid = pending.pop()
            tree.add(pid)
            if pid in everyone:
                ours += everyone[pid][1]
            pending.extend(children.get(pid, ()))
        others = {pid: own for pid, (_, _, own) in everyone.items() if pid not in tree}
        return Sample(time.monotonic(), os.getloadavg()[0], _machine_busy_ticks(), ours, others)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Record how busy the machine was while the block ran, as ``self.phases[name]``."""
        before = self.sample()
        try:
            yield
        finally:
            self.phases[name] = between(before, self.sample())


def between(before: Sample, after: Sample) -> dict[str, Any]:
    seconds = max(after.at - before.at, 1e-9)

    def cores(ticks: int) -> float:
        return round(ticks / TICKS_PER_S / seconds, 2)

    busy = after.busy_ticks - before.busy_ticks
    # A process that ended during the phase takes its ticks with it: never below zero.
    ours = max(0, min(busy, after.ours_ticks - before.ours_ticks))
    # The other processes that took the most CPU in the phase (one that started meanwhile
    # counts from zero; one that ended is not seen).
    spent = {
        pid: ticks - before.others_ticks.get(pid, 0) for pid, ticks in after.others_ticks.items()
    }
    shown = [p for p in spent if cores(spent[p]) >= 0.01]  # not the ones that hardly ran
    top = sorted(shown, key=lambda p: -spent[p])[:TOP_OTHERS]
    return {
        "seconds": round(seconds, 1),
        "load_1m": [round(before.load_1m, 2), round(after.load_1m, 2)],
        "cpus": os.cpu_count(),
        "busy_cores": cores(busy),
        "bench_cores": cores(ours),
        "other_cores": cores(busy - ours),
        "top_others": [{"name": _name(pid), "pid": pid, "cores": cores(spent[pid])} for pid in top],
    }


def _name(pid: int) -> str:
    """What the process runs, shortly: its command's first words, without their folders."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        words = [os.path.basename(a.decode(errors="replace")) for a in argv[:3] if a]
        return " ".join(words)[:40] or Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "(ended)"
