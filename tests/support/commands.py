"""Running ``docpipe`` as a person does: a command in its own process, or the stack's
command line on ports of the test's choosing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.settings import Settings
from infra.settings_env import to_env

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


def docpipe_cli(settings: Settings, *args: str, timeout_s: float = 60) -> str:
    """Run ``docpipe ARGS`` as a new process with ``settings`` (and no other DOCPIPE_*
    variables); assert it succeeded and return what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCPIPE_")}
    result = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={**env, **to_env(settings)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def json_after_header(output: str) -> dict[str, Any]:
    """The JSON document a command prints after its header lines (``recheck --wait
    --json``)."""
    start = output.index("\n{") + 1
    parsed: dict[str, Any] = json.loads(output[start:])
    return parsed
