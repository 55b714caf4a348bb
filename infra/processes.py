"""Child processes that docpipe starts, watches and stops by PID.

Each child runs in its own session (Ctrl-C reaches only docpipe, which stops children in
order) and asks the kernel to kill it when docpipe dies, so no child outlives its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from typing import Protocol

_PR_SET_PDEATHSIG = 1
# A line in which a server reports why it stops: Go's and Rust's panics, Temporal's
# `Error: ...` and `level=ERROR`, and the like.
_FAILURE_LINE = re.compile(r"^(panic|fatal|error)\b|panicked at|level=(error|fatal)\b", re.I)


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies. Runs in a child
    between fork and exec (or in a forked child). The signal follows the *thread* that
    forked: fork children from a thread that lives as long as they should (the main one)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ChildProcess(Protocol):
    """What ``ManagedProcess`` uses of a child: ``subprocess.Popen``'s own methods."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class ManagedProcess:
    """A child process with its output in a log file.

    Args:
        name: short name for messages ("temporal", "worker", ...).
        argv: the command.
        log_path: stdout and stderr go here (appended).
        env: the child's whole environment.
        cwd: the child's working directory.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str],
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_path.open("ab")
        # Where this child's output starts: a server started again appends to its log.
        self._log_start = self._log.tell()
        self.process = self._start(argv, env, cwd)

    def _start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None) -> ChildProcess:
        """Start the child: in its own session, its output in the log, killed when this
        process dies."""
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    @property
    def pid(self) -> int:
        """The child's PID: what it is stopped by."""
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Whether the child still runs."""
        return self.process.poll() is None

    def tail(self, lines: int = 5) -> str:
        """The last lines of the child's log, joined on one line."""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip().splitlines()
            return " | ".join(text[-lines:])
        return ""

    def exit_reason(self, lines: int = 5) -> str:
        """What this child wrote to its log of why it stopped: its first line that reports
        a failure (a panic's message comes long before the end of its stack trace), then
        its last lines. What earlier runs wrote to the same log is not read."""
        with contextlib.suppress(OSError), self.log_path.open("rb") as log:
            log.seek(self._log_start)
            text = log.read().decode(errors="replace").strip().splitlines()
            last = text[-lines:]
            first = next((line for line in text if _FAILURE_LINE.search(line)), None)
            if first is not None and first not in last:
                last = [first[:500], "...", *last]
            return " | ".join(last)
        return ""

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM), if it still runs."""
        if self.alive:
            self.process.terminate()

    def wait_or_kill(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the child to exit, then SIGKILL it."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        self._log.close()
        return code

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds. Returns the exit code."""
        self.terminate()
        return self.wait_or_kill(timeout)


def stop_all(processes: Sequence[ManagedProcess], timeout: float = 10.0) -> None:
    """Stop several children at once, newest first, each within ``timeout`` seconds."""
    for process in reversed(processes):
        process.terminate()
    for process in reversed(processes):
        process.wait_or_kill(timeout)


def docpipe_process(
    command: Sequence[str],
    *,
    settings_env: Mapping[str, str],
    log_path: Path,
    base_env: Mapping[str, str],
) -> ManagedProcess:
    """Run a ``docpipe`` subcommand (``worker``, ``consume``...) as a child process.

    Args:
        command: the subcommand and its arguments.
        settings_env: ``DOCPIPE_*`` variables (see ``infra.settings_env.to_env``).
        base_env: the rest of the environment, usually ``os.environ``.
    """
    return ManagedProcess(
        command[0],
        [sys.executable, "-m", "app", *command],
        log_path=log_path,
        env=docpipe_env(settings_env, base_env),
    )


def docpipe_env(settings_env: Mapping[str, str], base_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a ``docpipe`` child: ``base_env`` without its ``DOCPIPE_*``
    variables, ``settings_env``, and output unbuffered (its log is read as it runs)."""
    env = {k: v for k, v in base_env.items() if not k.startswith("DOCPIPE_")}
    env.update(settings_env)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- the process table (Linux /proc): what tests and benchmarks watch -------------------


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _child_pids(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return children


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        for child in _child_pids(frontier.pop()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def parser_pids(pid: int) -> set[int]:
    """The parser processes below ``pid``: a worker's multiprocessing children, spawned, or
    forked from its fork server (which is not one of them)."""
    fork_servers = _child_pids(pid)
    found = set()
    for child in descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        forked = b"multiprocessing.forkserver" in cmdline and child not in fork_servers
        if b"spawn_main" in cmdline or forked:
            found.add(child)
    return found


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so ``finally`` blocks (and stack.stop) run."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
