"""The embedded stack: ready when started, nothing left behind when stopped or killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from infra.clients import s3_client
from infra.ports import free_ports
from infra.processes import descendants
from infra.processes import pid_alive
from infra.stack import EmbeddedStack
from infra.stack import StackConfig
from infra.stack_errors import StackError
from tests.support.commands import docpipe_stack_command
from tests.support.polling import wait_for


def _dev_command(state_dir: Path, ports: list[int]) -> list[str]:
    return docpipe_stack_command("dev", state_dir, ports)


def test_stop_leaves_no_child_process(tmp_path: Path) -> None:
    stack = EmbeddedStack(StackConfig.on_free_ports(tmp_path))
    stack.start()
    pids = stack.pids()
    assert len(pids) == 3
    assert descendants(os.getpid()) >= set(pids)
    # Temporal's database keeps a write-ahead log (infra/stack.py: TEMPORAL_SQLITE_PRAGMAS).
    assert (tmp_path / "temporal.db-wal").exists()
    # The stack is usable: buckets exist.
    names = {b["Name"] for b in s3_client(stack.settings().s3).list_buckets()["Buckets"]}
    assert {"documents", "docpipe-results"} <= names
    stack.stop()
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert stack.pids() == []
    stack.stop()  # safe to repeat


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_dev_command_leaves_no_orphans(tmp_path: Path, how: signal.Signals) -> None:
    dev = subprocess.Popen(
        _dev_command(tmp_path, free_ports(6)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As in a terminal: a test run started in the background ignores SIGINT, and its
        # children would inherit that (Python then installs no Ctrl-C handler).
        preexec_fn=_default_sigint,
    )
    try:
        assert dev.stdout is not None
        output = []
        for line in dev.stdout:
            output.append(line)
            if line.startswith("Running"):
                break
        assert any(line.startswith("Temporal UI") for line in output), output
        # Secure by default: a development key, and a codec server for the UI.
        assert any(line.startswith("Codec server  http://127.0.0.1:") for line in output)
        assert (tmp_path / "codec-keyring.json").stat().st_mode & 0o077 == 0
        # The review page, behind a reviewer token of the stack's own.
        [review] = [line for line in output if line.startswith("Review page")]
        assert "(log in as dev: http://127.0.0.1:" in review and "/login#token=" in review
        assert (tmp_path / "review-tokens").stat().st_mode & 0o077 == 0
        servers = descendants(dev.pid)
        assert len(servers) >= 3
        dev.send_signal(how)
        dev.wait(timeout=30)
        wait_for(
            lambda: not [pid for pid in servers if pid_alive(pid)],
            15,
            f"servers of a {how.name}ed `docpipe dev` to exit",
        )
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()
        if dev.stdout is not None:
            dev.stdout.close()


def test_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        config = StackConfig.on_free_ports(tmp_path, kafka_port=taken)
        with pytest.raises(StackError) as error:
            EmbeddedStack(config).start()
    message = str(error.value)
    assert "\n" not in message
    assert f"port {taken}" in message and "--kafka-port" in message


def test_taken_port_from_the_cli(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        ports = free_ports(6)
        ports[3] = holder.getsockname()[1]
        result = subprocess.run(
            _dev_command(tmp_path, ports), capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("docpipe: port")
    assert "--s3-port" in result.stderr


def test_missing_binary_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from infra import binaries

    monkeypatch.setattr(binaries, "_bin_dir", lambda: Path("/nonexistent"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(StackError, match="make install"):
        binaries.temporal_binary()
    with pytest.raises(StackError, match="make install"):
        binaries.moto_binary()
