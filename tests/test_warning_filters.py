"""The suite's own warning filters let pass exactly what they name, in a real pytest run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.warning_filters import SDK_DEADLOCK_INTERRUPT

# Two objects whose __del__ raise: the SDK's deadlock interrupt, and an ordinary bug.
_TESTS = """
from temporalio.worker._workflow import _InterruptDeadlockError


class Interrupted:
    def __del__(self):
        raise _InterruptDeadlockError()


class Broken:
    def __del__(self):
        raise ValueError("a bug")


def test_interrupted():
    Interrupted()


def test_broken():
    Broken()
"""


def test_only_the_sdks_deadlock_interrupt_passes_as_unraisable(tmp_path: Path) -> None:
    # The SDK's private name is imported here on purpose: if it changes, this fails, and
    # the filter must follow it.
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\nfilterwarnings =\n    error\n    {SDK_DEADLOCK_INTERRUPT}\n"
    )
    (tmp_path / "test_unraisable.py").write_text(_TESTS)
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-p",
            "no:asyncio",
            "-rA",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert "PASSED test_unraisable.py::test_interrupted" in ran.stdout, ran.stdout
    assert "FAILED test_unraisable.py::test_broken" in ran.stdout, ran.stdout
    assert "ValueError: a bug" in ran.stdout
    assert ran.returncode == 1
