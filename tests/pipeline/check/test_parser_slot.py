"""How parser processes start and end: forked from a fork server that has loaded the
parsing code, and never outliving the process that asked for them, however it dies."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from infra.processes import descendants
from infra.processes import parser_pids
from infra.processes import pid_alive
from pipeline.check.parser_slot import parser_context
from pipeline.pdf.bounds import bind_to_parent
from pipeline.pdf.bounds import parent_of
from tests.support.polling import wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork servers are Linux's")


@contextlib.contextmanager
def _owner(mode: str) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """A process that owns parser processes (``tests.support.pool_owner``), and the PIDs
    it prints once they run."""
    # What it says (a killed owner's resource tracker counts its leftovers) is kept apart.
    with (
        tempfile.TemporaryFile() as said,
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.pool_owner", mode],
            stdout=subprocess.PIPE,
            stderr=said,
            text=True,
        ) as process,
    ):
        assert process.stdout is not None
        line = process.stdout.readline()
        said.seek(0)
        assert line, said.read().decode(errors="replace")
        pids = [int(pid) for pid in line.split()]
        try:
            yield process, pids
        finally:
            if process.poll() is None:
                process.kill()


@pytest.fixture
def owner() -> Iterator[subprocess.Popen[str]]:
    """A process that owns a pool of two started parser processes."""
    with _owner("pool") as (process, _):
        yield process


def test_a_killed_owner_takes_its_fork_server_and_parser_processes_along(
    owner: subprocess.Popen[str],
) -> None:
    parsers = parser_pids(owner.pid)
    assert len(parsers) == 2
    (server,) = {parent_of(pid) for pid in parsers}
    assert server is not None and server != owner.pid and parent_of(server) == owner.pid
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


def test_a_parser_process_whose_fork_server_outlives_the_owner_ends_too() -> None:
    # A fork server that does not die with its owner (as one that failed to load
    # pipeline.pdf.fork_server would not): the process under it notices by itself.
    with _owner("chain") as (owner, (server, bound)):
        assert parent_of(bound) == server and parent_of(server) == owner.pid
        owner.kill()
        owner.wait()
        try:
            wait_for(lambda: not pid_alive(bound), 10, "the bound process to end")
            # The stand-in imported the parser pool, as a worker does: that alone binds no
            # process to its parent.
            assert pid_alive(server)
        finally:
            os.kill(server, signal.SIGKILL)
