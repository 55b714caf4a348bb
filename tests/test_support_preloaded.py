"""The forking process the tests start ``docpipe`` commands from: each command is a
process of its own, run as ``docpipe`` runs it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from infra.processes import pid_alive
from tests.support.commands import run_docpipe
from tests.support.polling import wait_for
from tests.support.preloaded import ForkedProcess
from tests.support.preloaded import Preloaded

_ENV = {**os.environ, "DOCPIPE_KAFKA_GROUP_ID": "group-of-this-test"}


def test_a_command_runs_with_its_environment_and_its_output_in_its_files() -> None:
    done = run_docpipe(["config"], _ENV)
    assert done.returncode == 0, done.stderr
    assert "DOCPIPE_KAFKA_GROUP_ID=group-of-this-test\n" in done.stdout
    assert done.stderr == ""
    # The environment was the command's alone: the next one has its own.
    again = run_docpipe(["config"], {**_ENV, "DOCPIPE_KAFKA_GROUP_ID": "another"})
    assert "DOCPIPE_KAFKA_GROUP_ID=another\n" in again.stdout
    assert "DOCPIPE_KAFKA_GROUP_ID" not in os.environ


def test_a_command_that_exits_with_a_usage_error_says_so_on_stderr() -> None:
    done = run_docpipe(["no-such-command"], _ENV)
    assert done.returncode == 2
    assert "invalid choice: 'no-such-command'" in done.stderr
    assert done.stdout == ""


def test_a_command_runs_in_its_own_session_and_is_killed_by_its_pid(tmp_path: Path) -> None:
    # A worker with no Temporal to reach tries again and again: it runs until stopped.
    unreachable = {**_ENV, "DOCPIPE_TEMPORAL_ADDRESS": "127.0.0.1:1", "DOCPIPE_CODEC_MODE": "none"}
    worker = ForkedProcess("worker", ["worker"], log_path=tmp_path / "worker.log", env=unreachable)
    try:
        wait_for(
            lambda: "cannot reach Temporal" in worker.log_path.read_text(errors="replace"),
            60,
            "the worker to say it cannot reach Temporal",
        )
        assert worker.alive
        assert os.getsid(worker.pid) == worker.pid
        assert os.getppid() != worker.pid and os.getsid(0) != worker.pid
        with pytest.raises(subprocess.TimeoutExpired):
            worker.process.wait(timeout=0.1)
        worker.process.send_signal(signal.SIGKILL)
        assert worker.process.wait(timeout=30) == -signal.SIGKILL
        assert not worker.alive and not pid_alive(worker.pid)
    finally:
        worker.stop(timeout=10)


def test_the_forking_process_is_one_per_test_process_and_started_again_if_it_ended() -> None:
    first = Preloaded.here()
    assert Preloaded.here() is first
    first._process.kill()
    first._process.wait(timeout=30)
    wait_for(lambda: first._ended, 30, "the replies to end")
    with pytest.raises(RuntimeError, match="has exited"):
        first.fork(["config"], env=_ENV, stdout=Path(os.devnull), stderr=Path(os.devnull))
    assert Preloaded.here() is not first
    assert run_docpipe(["config"], _ENV).returncode == 0
