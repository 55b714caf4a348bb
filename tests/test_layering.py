"""Imports point down only: the rooms of the house and which ones each may use.

From the bottom up: ``pipeline`` (the checks, the workflow and its activities: it imports
nothing of ours), ``infra`` (the ground: settings, clients, telemetry, processes, the
embedded stack; it speaks the pipeline's values), ``consumers`` and ``workers`` (the two
kinds of process, each on the ground and the pipeline, never on each other), and on top
``infra.app``, the command-line application, which may use every room. Every import
statement counts, also those inside functions and ``TYPE_CHECKING`` blocks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("pipeline", "infra", "consumers", "workers", "app")
# Which rooms each room may import from (its own always).
MAY_USE = {
    "pipeline": set(),
    "infra": {"pipeline"},
    "consumers": {"infra", "pipeline"},
    "workers": {"infra", "pipeline"},
    "app": {"infra", "pipeline", "consumers", "workers"},
}


def room_of_module(module: str) -> str | None:
    """The room a dotted module name is in, or None when it is not ours."""
    parts = module.split(".")
    if parts[0] == "infra" and len(parts) > 1 and parts[1] == "app":
        return "app"
    return parts[0] if parts[0] in ROOMS else None


def room_of_file(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    room = room_of_module(".".join(relative.parts))
    assert room is not None, path
    return room


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def layering_violations(files: list[Path]) -> list[str]:
    """``path:line imports module`` for every import that points the wrong way."""
    wrong = []
    for path in files:
        source = room_of_file(path)
        for line, module in imported_modules(path):
            target = room_of_module(module)
            if target is not None and target != source and target not in MAY_USE[source]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({source}) imports {module}")
    return wrong


def _our_files() -> list[Path]:
    return sorted(
        path
        for room in ("pipeline", "infra", "consumers", "workers")
        for path in (ROOT / room).rglob("*.py")
    )


def test_every_import_points_down() -> None:
    assert layering_violations(_our_files()) == []


def test_the_rules_have_teeth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Imports that point up or sideways, in each room: every one must be caught.
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    up = {
        "pipeline/bad.py": "from infra.settings import Settings",
        "infra/bad.py": "def f():\n    from consumers.intake import run_intake",
        "infra/worse.py": "import infra.app.cli",
        "consumers/bad.py": "from workers.worker import run_worker",
        "workers/bad.py": "import infra.app.demo as demo",
    }
    for name, text in up.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    down = tmp_path / "infra" / "app" / "fine.py"
    down.parent.mkdir(parents=True)
    down.write_text("from consumers.intake import run_intake\nfrom workers import worker\n")
    files = sorted(tmp_path.rglob("*.py"))
    assert len(layering_violations(files)) == len(up)


def test_the_pipeline_uses_no_room_of_ours_but_its_own() -> None:
    for path in (ROOT / "pipeline").rglob("*.py"):
        targets = {room_of_module(module) for _, module in imported_modules(path)}
        assert targets <= {None, "pipeline"}, path
