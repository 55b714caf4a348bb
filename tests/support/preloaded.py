"""``docpipe`` commands forked from a process that has imported docpipe once.

A ``docpipe worker`` spends about a second of CPU importing the application (the
Temporal SDK, boto3, aiokafka, pypdf...) before it takes any work, and the integration
tests start some 150 workers, consumers and commands: 164 s of the suite's 570 s of CPU
(docs/BENCHMARKS.md, "The test suite's CPU"), 78 s forked from here. Here
one process per test process imports all of it once, single-threaded, and forks each
command from there. The command runs as ``docpipe`` runs it (``app.cli.main`` with its
arguments, environment, working directory and output files; its own session; killed
when its parent dies; ``app.__main__`` as its main module, so that its parser processes
import what a started one's do) and it is a real process of its own: it is stopped,
frozen and killed by PID. The entry points themselves (``python -m app``, the
``docpipe`` script) are tested as a person runs them (``tests/integration/test_entry_point.py``).

The forking process reads one request a line on its stdin (JSON: argv, environment,
working directory, output files) and writes a line on its stdout for each: the PID,
and later the exit code once it has reaped the command.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from typing import Any
from typing import ClassVar

from infra.processes import ManagedProcess
from infra.processes import die_with_parent

# What ``docpipe`` imports to run its commands: the command line with every command, and
# what the commands that serve import when they start.
PRELOADED = (
    "app.__main__",
    "app.cli",
    "app.review_backend",
    "app.review_server",
    "consumers.intake",
    "infra.telemetry",
    "workers.worker",
)


_PROJECT_ROOT = Path(__file__).resolve().parents[2]


# -- the forking process ---------------------------------------------------------------


def _serve() -> None:
    """Import ``PRELOADED``, then fork a command for each request until stdin closes."""
    for name in PRELOADED:
        importlib.import_module(name)
    # Forking is safe only while this process has one thread (the SDK's Rust runtime
    # starts its threads only when a client or worker is made).
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise SystemExit(f"{threads} threads after the imports: cannot fork safely")
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    pending = b""
    while True:
        with contextlib.suppress(InterruptedError):
            ready, _, _ = select.select([0, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            _report_exits()
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                pid = _fork(json.loads(line), close=(wake_r, wake_w))
                _reply({"pid": pid})


def _reply(message: dict[str, Any]) -> None:
    os.write(1, json.dumps(message).encode() + b"\n")


def _report_exits() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _reply({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _fork(request: dict[str, Any], close: tuple[int, int]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _become_command(request, close)
        app_main = sys.modules["app.cli"].main
        app_main(request["argv"])  # exits the process itself
    except SystemExit as exc:
        # As the interpreter ends on it: None is success, anything but a number a message.
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _become_command(request: dict[str, Any], close: tuple[int, int]) -> None:
    """In the forked child: what a ``docpipe`` process started by ``ManagedProcess`` has."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in close:
        os.close(fd)
    os.setsid()
    die_with_parent()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(out, fd)
        os.close(out)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # As PYTHONUNBUFFERED makes them: every write reaches the file at once.
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = _unbuffered(1)
    sys.stderr = _unbuffered(2)
    main = sys.modules["app.__main__"]
    sys.modules["__main__"] = main
    sys.argv = [str(main.__file__), *request["argv"]]


def _unbuffered(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )


# -- the test process's side -------------------------------------------------------------


class Preloaded:
    """The forking process of this test process, started at first use and ended with it
    (it exits when its stdin closes, and is killed when this process dies)."""

    _started: ClassVar[Preloaded | None] = None

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.preloaded"],
            # Where ``tests`` is a package, wherever pytest was started.
            cwd=_PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Not killed with this process's thread that started it: it ends when its
            # stdin closes, which this process's end does, however it ends.
            start_new_session=True,
        )
        self._changed = threading.Condition()
        self._pids: list[int] = []
        self._exits: dict[int, int] = {}
        self._ended = False
        self._lock = threading.Lock()
        threading.Thread(target=self._read, name="preloaded-replies", daemon=True).start()

    @classmethod
    def here(cls) -> Preloaded:
        """This test process's forking process (started again if it has ended)."""
        if cls._started is not None and cls._started._ended:
            cls.end_here()
        if cls._started is None:
            cls._started = cls()
        return cls._started

    @classmethod
    def end_here(cls) -> None:
        """End this test process's forking process, if it runs: it exits once its stdin
        is closed (commands it forked that still run are killed with it)."""
        started, cls._started = cls._started, None
        if started is not None:
            for pipe in (started._process.stdin, started._process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            try:
                started._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                started._process.kill()
                started._process.wait(timeout=30)

    def _read(self) -> None:
        assert self._process.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # closed by end_here
            self._read_replies(self._process.stdout)
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def _read_replies(self, replies: IO[bytes]) -> None:
        for line in replies:
            message = json.loads(line)
            with self._changed:
                if "pid" in message:
                    self._pids.append(message["pid"])
                else:
                    self._exits[message["exit"]] = message["code"]
                self._changed.notify_all()

    def fork(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        stdout: Path,
        stderr: Path,
        cwd: Path | None = None,
    ) -> ForkedChild:
        """Start ``docpipe ARGV``; its output appended to ``stdout`` and ``stderr``."""
        request = {
            "argv": list(argv),
            "env": dict(env),
            "stdout": str(stdout),
            "stderr": str(stderr),
            "cwd": str(cwd or Path.cwd()),
        }
        # One request at a time: the PIDs come back in the order asked.
        with self._lock:
            assert self._process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.write(json.dumps(request).encode() + b"\n")
                self._process.stdin.flush()
            with self._changed:
                if not self._changed.wait_for(lambda: self._pids or self._ended, timeout=60):
                    raise RuntimeError("the forking process did not answer in 60 s")
                if not self._pids:
                    raise RuntimeError(f"the forking process has exited: {self._process.wait()}")
                return ForkedChild(self, self._pids.pop(0))

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            return self._exits.get(pid)

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        """``pid``'s exit code once it has exited, None if it still runs after ``timeout``
        seconds."""
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or self._ended, timeout)
            if pid not in self._exits and self._ended:
                # Its children were killed with it (PR_SET_PDEATHSIG), their codes unreported.
                raise RuntimeError(f"the forking process has exited before {pid}")
            return self._exits.get(pid)


class ForkedChild:
    """A forked command, as ``subprocess.Popen`` shows a child (what ``ManagedProcess``
    and the tests use of it)."""

    def __init__(self, preloaded: Preloaded, pid: int) -> None:
        self._preloaded = preloaded
        self.pid = pid
        self.args = ["docpipe"]

    @property
    def returncode(self) -> int | None:
        return self._preloaded.exit_code(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self._preloaded.wait_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        # As Popen does: a child already reaped is not signalled (its PID may be reused).
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkedProcess(ManagedProcess):
    """A ``ManagedProcess`` for ``docpipe`` commands, forked by this test process's
    ``Preloaded`` instead of started from scratch. ``argv`` is the command's arguments
    (``["worker"]``), without the program."""

    def _start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None) -> ForkedChild:
        return Preloaded.here().fork(
            argv, env=env, stdout=self.log_path, stderr=self.log_path, cwd=cwd
        )


if __name__ == "__main__":
    _serve()
