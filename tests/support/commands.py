"""Running ``docpipe`` as a person does: a command in its own process, or the stack's
command line on ports of the test's choosing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.processes import docpipe_env
from infra.settings import Settings
from infra.settings_env import to_env
from tests.support.preloaded import Preloaded

# In the order the ports are given.
_PORT_OPTIONS = (
    "--temporal-port",
    "--ui-port",
    "--kafka-port",
    "--s3-port",
    "--codec-port",
    "--review-port",
)


def docpipe_stack_command(command: str, state_dir: Path, ports: list[int]) -> list[str]:
    """``docpipe dev`` or ``docpipe demo`` as a child process, on the given six ports
    (Temporal, UI, Kafka, S3, codec server, review page)."""
    port_flags = zip(_PORT_OPTIONS, ports, strict=True)
    return [
        sys.executable,
        "-m",
        "app",
        command,
        "--state-dir",
        str(state_dir),
        *(arg for option, port in port_flags for arg in (option, str(port))),
    ]


def run_docpipe(
    args: Sequence[str], env: Mapping[str, str], timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """``docpipe ARGS`` in the environment ``env``, as a process of its own (forked from
    the preloaded one: ``tests.support.preloaded``), run to its end: what it printed, and
    its exit code. After ``timeout_s`` seconds it is killed and ``TimeoutExpired`` raised."""
    with tempfile.TemporaryDirectory(prefix="docpipe-command-") as folder:
        stdout, stderr = Path(folder, "stdout"), Path(folder, "stderr")
        child = Preloaded.here().fork(args, env=env, stdout=stdout, stderr=stderr)
        try:
            code = child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
            raise
        return subprocess.CompletedProcess(
            ["docpipe", *args], code, stdout.read_text(), stderr.read_text()
        )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment of a ``docpipe`` process run with ``settings`` (and no other
    ``DOCPIPE_*`` variables)."""
    return docpipe_env(to_env(settings), os.environ)


def docpipe_cli(settings: Settings, *args: str, timeout_s: float = 60) -> str:
    """Run ``docpipe ARGS`` with ``settings`` (``run_docpipe``); assert it succeeded and
    return what it printed."""
    result = run_docpipe(args, settings_env(settings), timeout_s)
    assert result.returncode == 0, result.stderr
    return result.stdout


def json_after_header(output: str) -> dict[str, Any]:
    """The JSON document a command prints after its header lines (``recheck --wait
    --json``)."""
    start = output.index("\n{") + 1
    parsed: dict[str, Any] = json.loads(output[start:])
    return parsed
