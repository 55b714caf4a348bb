"""Every command facing a server that does not answer says so on one line and exits 1.

Run as a new user would, with docpipe's servers pointed at loopback ports where nothing
listens: no traceback, no "Unclosed" noise, the address and the setting that points there.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from infra.ports import free_ports
from tests.support.commands import run_docpipe
from tests.support.polling import wait_for
from tests.support.preloaded import ForkedProcess

TEMPORAL, KAFKA, S3 = (f"127.0.0.1:{port}" for port in free_ports(3))
SETTINGS = {
    "DOCPIPE_TEMPORAL_ADDRESS": TEMPORAL,
    "DOCPIPE_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
    "DOCPIPE_S3_ENDPOINT_URL": f"http://{S3}",
    # No keyring is needed to find out that nothing answers.
    "DOCPIPE_CODEC_MODE": "none",
}
WORKFLOW_ID = "docpipe/documents/a.pdf@v1"
DOCUMENT_ID = "documents/a.pdf@v1"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCPIPE_")}
    return {**env, **SETTINGS, "PYTHONUNBUFFERED": "1"}


def _case(command: list[str], what: str, address: str, setting: str) -> Any:
    # Named by the command alone: the addresses are free ports, different in each test
    # process, and test processes must collect the same tests.
    return pytest.param(command, what, address, setting, id=" ".join(command))


@pytest.mark.parametrize(
    ("command", "what", "address", "setting"),
    [
        _case(["status", WORKFLOW_ID], "Temporal", TEMPORAL, "DOCPIPE_TEMPORAL_ADDRESS"),
        _case(["list"], "Temporal", TEMPORAL, "DOCPIPE_TEMPORAL_ADDRESS"),
        _case(["report", WORKFLOW_ID], "Temporal", TEMPORAL, "DOCPIPE_TEMPORAL_ADDRESS"),
        _case(["report", DOCUMENT_ID], "S3", f"http://{S3}", "DOCPIPE_S3_ENDPOINT_URL"),
        _case(["reprocess", DOCUMENT_ID], "Temporal", TEMPORAL, "DOCPIPE_TEMPORAL_ADDRESS"),
        _case(["temporal", "setup"], "Temporal", TEMPORAL, "DOCPIPE_TEMPORAL_ADDRESS"),
        _case(["dlq", "list"], "the Kafka broker", KAFKA, "DOCPIPE_KAFKA_BOOTSTRAP_SERVERS"),
        _case(["dlq", "replay"], "the Kafka broker", KAFKA, "DOCPIPE_KAFKA_BOOTSTRAP_SERVERS"),
        # The broker first: no file is uploaded whose event could not be published.
        _case(["submit", "SAMPLE"], "the Kafka broker", KAFKA, "DOCPIPE_KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_a_command_says_what_it_cannot_reach_on_one_line(
    command: list[str], what: str, address: str, setting: str, tmp_path: Path
) -> None:
    if command == ["submit", "SAMPLE"]:
        sample = tmp_path / "a.pdf"
        sample.write_bytes(b"%PDF-1.4\n")
        command = ["submit", str(sample)]
    done = run_docpipe(command, _env(), timeout_s=120)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [f"docpipe: cannot reach {what} at {address} (set by {setting})"]
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr


def test_a_worker_started_before_temporal_waits_and_says_so(tmp_path: Path) -> None:
    worker = ForkedProcess("worker", ["worker"], log_path=tmp_path / "worker.log", env=_env())
    try:

        def tries() -> int:
            text = worker.log_path.read_text(errors="replace")
            return text.count(f"cannot reach Temporal at {TEMPORAL}")

        wait_for(lambda: tries() >= 3, 60, "three tries to reach Temporal")
        assert worker.alive, "the worker waits; it does not exit"
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=30) == 0
    finally:
        worker.stop(timeout=10)
    assert "Traceback" not in worker.log_path.read_text(errors="replace")
