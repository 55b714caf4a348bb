"""What the benchmarks share: the stack and the docpipe processes they run, the CPU
seconds and memory of processes, read from /proc (Linux), and how they print their figures."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from typing import TypeVar

from infra.processes import ManagedProcess
from infra.processes import descendants
from infra.processes import docpipe_process
from infra.settings import ReviewSettings
from infra.settings import Settings
from infra.settings_env import to_env
from infra.stack import EmbeddedStack
from infra.stack import StackConfig

T = TypeVar("T")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The benchmarks time checks to their report: a review verdict ends there, as it did before
# human review, instead of waiting for a decision no one sends.
BENCH_BASE = Settings(review=ReviewSettings(off=("all",)))


def add_state_dir_option(parser: argparse.ArgumentParser) -> None:
    """``--state-dir``: where the stack keeps Temporal's database, /dev/shm by default
    (where there is one), so that a shared machine's disk does not set the pace."""
    parser.add_argument(
        "--state-dir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the stack keeps Temporal's database (default: /dev/shm, so that the "
        "fsync latency of a shared machine's disk does not add to every step)",
    )


def _cpu_s(pid: int, *, reaped: bool = False) -> float:
    """CPU seconds (user + system) of one process; with ``reaped``, also of its children
    that ended and were waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def cpu_snapshot(pids: Mapping[str, int], parsers_of: int | None = None) -> dict[str, float]:
    """CPU seconds so far of each named process, and of ``parsers_of``'s descendants
    (the worker's parser processes, plus those it already reaped) as ``parsers``."""
    snapshot = {name: _cpu_s(pid) for name, pid in pids.items()}
    if parsers_of is not None:
        reaped = _cpu_s(parsers_of, reaped=True) - _cpu_s(parsers_of)
        snapshot["parsers"] = reaped + sum(_cpu_s(pid) for pid in descendants(parsers_of))
    return snapshot


def cpu_per_unit_ms(
    before: Mapping[str, float], after: Mapping[str, float], units: float
) -> dict[str, float]:
    """CPU milliseconds of each process per unit of work (a document, 1,000 pages)."""
    return {name: round(1000 * (after[name] - before.get(name, 0.0)) / units, 1) for name in after}


def start_worker_and_consumer(settings: Settings, logs: Path) -> list[ManagedProcess]:
    """A ``docpipe worker`` and a ``docpipe consume`` for ``settings``, logging under
    ``logs``; the caller stops them."""
    return [
        docpipe_process(
            [command],
            settings_env=to_env(settings),
            log_path=logs / f"{command}.log",
            base_env=os.environ,
        )
        for command in ("worker", "consume")
    ]


def _tree_rss_kb(pid: int) -> int:
    """RSS of a process and all its descendants, in KiB."""
    total, frontier, seen = 0, [pid], set()
    while frontier:
        current = frontier.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0])
            for task in Path(f"/proc/{current}/task").iterdir():
                frontier.extend(int(p) for p in (task / "children").read_text().split())
        except (OSError, IndexError):
            continue
    return total


class RssSampler:
    """Samples a process tree's RSS every 50 ms in a thread; keeps the peak."""

    def __init__(self, pid: int, *, enabled: bool = True) -> None:
        self.pid = pid
        self.enabled = enabled
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()


def print_figures(figures: Mapping[str, Any], *summary: str) -> None:
    """Print what a run measured: ``summary``, a line each for people, after a blank line,
    then every figure as one JSON line, the last, for scripts that compare runs."""
    print()
    for line in summary:
        print(line)
    print(json.dumps(figures))


def run_in_work_dir(measure: Callable[[Path], Coroutine[Any, Any, T]]) -> T:
    """Run ``measure(work)`` to its end in an event loop of its own, ``work`` a temporary
    directory (its documents, logs) that is removed after."""
    with tempfile.TemporaryDirectory(prefix="docpipe-bench-") as work:
        return asyncio.run(measure(Path(work)))


@contextmanager
def bench_stack(state_dir: str | None) -> Iterator[EmbeddedStack]:
    """An embedded stack on free ports with the benchmarks' settings, its state in a
    temporary directory below ``state_dir`` (``add_state_dir_option``)."""
    with (
        tempfile.TemporaryDirectory(prefix="docpipe-bench-stack-", dir=state_dir) as state,
        EmbeddedStack(StackConfig.on_free_ports(Path(state)), BENCH_BASE) as stack,
    ):
        yield stack
