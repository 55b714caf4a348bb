"""How parser processes start and end: forked from a fork server that has loaded the
parsing code, and never outliving the process that asked for them, however it dies."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.processes import descendants, parser_pids, pid_alive
from pipeline.check.parser_slot import parser_context
from pipeline.pdf.bounds import bind_to_parent
from tests.support.polling import wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork servers are Linux's")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def owner() -> Iterator[subprocess.Popen[str]]:
    """A process that owns a pool of two started parser processes."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.support.pool_owner"], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        process.stdout.readline()
        yield process
        if process.poll() is None:
            process.kill()


def test_a_killed_owner_takes_its_fork_server_and_parser_processes_along(
    owner: subprocess.Popen[str],
) -> None:
    parsers = parser_pids(owner.pid)
    assert len(parsers) == 2
    (server,) = {_parent(pid) for pid in parsers}
    assert server != owner.pid and _parent(server) == owner.pid
    everything = descendants(owner.pid)
    # Stopped ones too: they cannot notice anything themselves.
    for pid in parsers:
        os.kill(pid, signal.SIGSTOP)
    owner.kill()
    owner.wait()
    wait_for(lambda: not [p for p in everything if pid_alive(p)], 10, "the owner's processes")


def _bound_to(owner_pid: int) -> None:
    bind_to_parent(owner_pid)


@pytest.mark.parametrize("start", ["forkserver", "spawn"])
def test_a_parser_process_asked_for_by_another_process_ends_at_once(start: str) -> None:
    context = parser_context() if start == "forkserver" else multiprocessing.get_context("spawn")
    for owner_pid, code in ((os.getpid(), 0), (os.getpid() + 1_000_000, 1)):
        child = context.Process(target=_bound_to, args=(owner_pid,))
        child.start()
        child.join(timeout=30)
        assert child.exitcode == code, (start, owner_pid)
