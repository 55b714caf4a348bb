"""Imports point down only: the rooms of the house and which ones each may use.

From the bottom up:

- ``pipeline``: the contracts every process imports (models, reasons, policy, failures,
  lanes, labels, search attributes, starts). They import no other room of ours.
- ``pipeline.pdf``: what runs inside a parser process; on the contracts only, and without
  temporalio or boto3 (a parser process never talks to Temporal or S3).
- ``pipeline.check``: the document check (workflow, activities, chunk run, results), on
  the contracts and ``pipeline.pdf``.
- ``pipeline.recheck``: the bulk re-check, which starts document checks.
- ``infra``: the ground (settings, clients, telemetry, processes, the embedded stack); it
  speaks the contracts' values.
- ``consumers`` and ``workers``: the two kinds of process, each on the ground and the
  pipeline, never on each other.
- ``app``: on top, the command-line application, which may use every room.

Every import statement counts, also those inside functions and ``TYPE_CHECKING`` blocks;
relative imports are refused (a reader sees at once where a name comes from).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_ROOMS = ("pipeline", "infra", "consumers", "workers", "app")
SUB_ROOMS = ("pipeline.pdf", "pipeline.check", "pipeline.recheck")
# Which rooms each room may import from (its own always).
MAY_USE = {
    "pipeline": set(),
    "pipeline.pdf": {"pipeline"},
    "pipeline.check": {"pipeline", "pipeline.pdf"},
    "pipeline.recheck": {"pipeline", "pipeline.pdf", "pipeline.check"},
    "infra": {"pipeline"},
    "consumers": {"infra", "pipeline"},
    "workers": {"infra", "pipeline", "pipeline.pdf", "pipeline.check", "pipeline.recheck"},
    "app": {
        "infra",
        "pipeline",
        "pipeline.pdf",
        "pipeline.check",
        "pipeline.recheck",
        "consumers",
        "workers",
    },
}
# Third-party packages a room must not import.
MUST_NOT_USE = {"pipeline.pdf": ("temporalio", "boto3", "botocore", "mypy_boto3_s3", "aiokafka")}


def room_of_module(module: str) -> str | None:
    """The room a dotted module name is in, or None when it is not ours."""
    for room in SUB_ROOMS:
        if module == room or module.startswith(room + "."):
            return room
    top = module.split(".", 1)[0]
    return top if top in TOP_ROOMS else None


def room_of_file(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    room = room_of_module(".".join(relative.parts))
    assert room is not None, path
    return room


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement in a file; '.' for a relative import."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, "."))
            elif node.module:
                found.append((node.lineno, node.module))
    return found


def layering_violations(files: list[Path]) -> list[str]:
    """``path:line imports module`` for every import that points the wrong way."""
    wrong = []
    for path in files:
        source = room_of_file(path)
        where = path.relative_to(ROOT)
        for line, module in imported_modules(path):
            if module == ".":
                wrong.append(f"{where}:{line} ({source}) imports relatively")
                continue
            target = room_of_module(module)
            if target is not None and target != source and target not in MAY_USE[source]:
                wrong.append(f"{where}:{line} ({source}) imports {module}")
            if module.split(".", 1)[0] in MUST_NOT_USE.get(source, ()):
                wrong.append(f"{where}:{line} ({source}) imports {module}")
    return wrong


def _our_files() -> list[Path]:
    return sorted(path for room in TOP_ROOMS for path in (ROOT / room).rglob("*.py"))


def test_every_import_points_down() -> None:
    assert layering_violations(_our_files()) == []


def test_the_rules_have_teeth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Imports that point up or sideways, in each room: every one must be caught.
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    up = {
        "pipeline/bad.py": "from infra.settings import Settings",
        "pipeline/worse.py": "from pipeline.check.workflow import DocumentCheckWorkflow",
        "pipeline/pdf/bad.py": "from pipeline.check.pool import PagePool",
        "pipeline/pdf/worse.py": "import temporalio.activity",
        "pipeline/pdf/worst.py": "def f():\n    import boto3",
        "pipeline/check/bad.py": "from pipeline.recheck.models import RecheckSpec",
        "pipeline/check/worse.py": "from .pool import PagePool",
        "infra/bad.py": "def f():\n    from consumers.intake import run_intake",
        "infra/worse.py": "import app.cli",
        "consumers/bad.py": "from workers.worker import run_worker",
        "workers/bad.py": "import app.demo as demo",
    }
    down = {
        "app/fine.py": "from consumers.intake import run_intake\nfrom workers import worker",
        "pipeline/recheck/fine.py": "from pipeline.check.heartbeat import Heartbeater",
        "pipeline/check/fine.py": "from pipeline.pdf.pages import LeanReader\nimport temporalio",
        "pipeline/pdf/fine.py": "from pipeline.models import DocumentRef\nimport pypdf",
    }
    for name, text in {**up, **down}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    files = sorted(tmp_path.rglob("*.py"))
    assert len(layering_violations(files)) == len(up)
