"""`docpipe demo --once` as a newcomer runs it, twice on the same state directory."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from app.demo import sample_files
from infra.ports import free_ports
from tests.support.commands import docpipe_stack_command


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _run_demo(state_dir: Path, ports: list[int]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*docpipe_stack_command("demo", state_dir, ports), "--once", "--timeout", "120"],
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_demo_once_twice_on_the_same_state(tmp_path: Path) -> None:
    for run in (1, 2):
        ports = free_ports(6)
        result = _run_demo(tmp_path, ports)
        assert result.returncode == 0, f"run {run}:\n{result.stdout}\n{result.stderr}"
        table = result.stdout
        for sample in sample_files():
            assert f"demo/{sample.name}" in table, f"run {run}: {sample.name} missing"
        # The table's rows: document, pages, verdict, reasons.
        rows = [line.split() for line in table.splitlines() if len(line.split()) >= 4]
        lines = {row[0]: row for row in rows}
        assert lines["demo/contract.pdf"][1:3] == ["6", "pass"]
        assert lines["demo/protected.pdf"][2:4] == ["reject", "encrypted"]
        # A scanned letter whose IBAN and e-mail address OCR finds, and a photo OCR reads
        # no words from.
        assert lines["demo/scanned.pdf"][1:5] == ["2", "review", "ocr_failed,", "sensitive_data"]
        assert lines["demo/with-blank-page.pdf"][2:4] == ["review", "blank_pages"]
        assert lines["demo/invoice.pdf"][1:4] == ["2", "review", "sensitive_data"]
        assert table.count("report    s3://docpipe-results/") == len(sample_files())
        assert "UI        http://127.0.0.1:" in table
        assert "ERROR" not in table
        login = f"log in to the review page as dev: http://127.0.0.1:{ports[5]}/login#token="
        assert login in result.stderr
        # The review verdicts wait for a decision, and count as reported.
        assert table.count("review    awaiting a decision: docpipe review show") == 3
        assert "docpipe review list" in result.stderr
        # Nothing of the demo keeps running after it exits.
        assert all(_port_free(port) for port in ports), f"run {run}: a server still listens"
    assert (tmp_path / "temporal.db").exists()
