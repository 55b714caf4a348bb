"""The order tests reach pytest-xdist's processes in (``tests/support/ordering.py``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.ordering import block_sizes, slow_first_in_each_block


def test_block_sizes_add_up_and_differ_by_one_at_most() -> None:
    sizes = block_sizes(1127, 6)
    assert sum(sizes) == 1127 and max(sizes) - min(sizes) <= 1
    assert block_sizes(2, 6) == [0, 0, 0, 0, 1, 1]


def test_each_block_starts_with_its_share_of_the_slow_tests() -> None:
    items = [f"quick{n}" for n in range(10)] + ["slow1", "slow2", "slow3", "slow4"]
    ordered = slow_first_in_each_block(items, 3, lambda item: item.startswith("slow"))
    assert sorted(ordered) == sorted(items)
    blocks = [ordered[0:4], ordered[4:9], ordered[9:14]]
    assert [block[0] for block in blocks] == ["slow1", "slow2", "slow3"]
    assert blocks[0][1] == "slow4"
    assert slow_first_in_each_block(items, 1, lambda item: item.startswith("slow"))[:4] == [
        "slow1",
        "slow2",
        "slow3",
        "slow4",
    ]


def test_every_xdist_process_begins_with_a_slow_test(tmp_path: Path) -> None:
    """A real work-stealing run of three processes: each runs a slow test first."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from tests.support.ordering import slow_first_in_each_block

            def pytest_configure(config):
                config.addinivalue_line("markers", "slow: slow")

            def pytest_collection_modifyitems(config, items):
                processes = int(getattr(config, "workerinput", {}).get("workercount", 1))
                items[:] = slow_first_in_each_block(
                    items, processes, lambda item: item.get_closest_marker("slow") is not None
                )
            """
        )
    )
    tests = ["import os, pytest", "def _log(name):"]
    tests.append("    with open(os.environ['LOG'], 'a') as f:")
    tests.append("        f.write(os.environ['PYTEST_XDIST_WORKER'] + ' ' + name + '\\n')")
    for number in range(12):
        slow = number % 4 == 3
        tests += ["@pytest.mark.slow" if slow else "", f"def test_{number}():"]
        tests.append(f"    _log('{'slow' if slow else 'quick'}{number}')")
    (tmp_path / "test_many.py").write_text("\n".join(tests) + "\n")
    log = tmp_path / "order.log"
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    result = subprocess.run(
        [*command, "-n", "3", "--dist", "worksteal"],
        env={"PATH": "/usr/bin:/bin", "LOG": str(log), "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    first: dict[str, str] = {}
    for line in log.read_text().splitlines():
        worker, name = line.split()
        first.setdefault(worker, name)
    assert len(first) == 3 and all(name.startswith("slow") for name in first.values()), first
