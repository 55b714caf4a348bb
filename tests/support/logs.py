"""What a process's log must look like to an operator: one record per line, nothing raw."""

from __future__ import annotations

import re
from pathlib import Path

from infra.logs import is_own

# "2026-12-06 01:02:03,456 WARNING some.logger: message"
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"(?P<logger>[\w.\-]+): (?P<message>\S.*)$"
)


def log_problems(path: Path) -> list[str]:
    """The lines of a text log that are not records of their own (a raw traceback, a blank
    line, what a library printed), or that a library logged above WARNING."""
    problems = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        match = LOG_LINE.match(line)
        if match is None:
            problems.append(f"{number}: {line!r}")
        elif not is_own(match["logger"]) and match["level"] in ("ERROR", "CRITICAL"):
            problems.append(f"{number} (a library's error): {line!r}")
    return problems
