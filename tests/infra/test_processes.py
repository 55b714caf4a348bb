"""Child processes: what their logs say when they exit."""

from __future__ import annotations

import sys
from pathlib import Path

from infra.processes import ManagedProcess

_PANICS = (
    "import sys\n"
    "print('level=WARN msg=starting')\n"
    "print('panic: runtime error: invalid memory address or nil pointer dereference')\n"
    "for frame in range(40):\n"
    "    print(f'\\tframe {frame}')\n"
    "sys.exit(2)\n"
)


def test_the_exit_reason_names_a_panic_that_a_long_stack_trace_follows(tmp_path: Path) -> None:
    child = ManagedProcess(
        "server", [sys.executable, "-c", _PANICS], log_path=tmp_path / "server.log", env={}
    )
    assert child.wait_or_kill(timeout=30) == 2
    reason = child.exit_reason()
    assert reason.startswith("panic: runtime error: invalid memory address")
    assert reason.endswith("frame 39")
    assert "starting" not in reason


def test_the_exit_reason_of_a_quiet_log_is_its_last_lines(tmp_path: Path) -> None:
    child = ManagedProcess(
        "server",
        [sys.executable, "-c", "print('one'); print('two')"],
        log_path=tmp_path / "server.log",
        env={},
    )
    assert child.wait_or_kill(timeout=30) == 0
    assert child.exit_reason() == "one | two"


def test_the_exit_reason_is_read_from_this_run_of_a_log_that_earlier_runs_wrote_to(
    tmp_path: Path,
) -> None:
    log = tmp_path / "server.log"
    log.write_text("panic: an earlier run's\n")
    child = ManagedProcess("server", [sys.executable, "-c", "print('fine')"], log_path=log, env={})
    assert child.wait_or_kill(timeout=30) == 0
    assert child.exit_reason() == "fine"
