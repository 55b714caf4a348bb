"""The order the test processes take the tests in (``tests/conftest.py``)."""

from __future__ import annotations

from tests.conftest import dealt


def _worksteal_runs(items: list[str], processes: int) -> list[list[str]]:
    """The runs pytest-xdist's work stealing first hands each test process."""
    runs, start = [], 0
    for k in range(processes):
        size = (len(items) - start) // (processes - k)
        runs.append(items[start : start + size])
        start += size
    return runs


def test_each_test_process_starts_with_its_share_of_the_slow_tests() -> None:
    slow = [f"slow{n}" for n in range(29)]
    rest = [f"fast{n}" for n in range(1133)]
    ordered = dealt(slow, rest, 6)
    assert sorted(ordered) == sorted(slow + rest)
    runs = _worksteal_runs(ordered, 6)
    for k, run in enumerate(runs):
        assert run[: len(slow[k::6])] == slow[k::6]
    # The fast tests keep their order (a module's tests stay together).
    assert [name for name in ordered if name.startswith("fast")] == rest


def test_one_process_runs_the_slow_tests_first() -> None:
    assert dealt(["s1", "s2"], ["f1", "f2", "f3"], 1) == ["s1", "s2", "f1", "f2", "f3"]


def test_more_slow_tests_than_room_still_runs_every_test_once() -> None:
    ordered = dealt([f"s{n}" for n in range(10)], ["f1"], 4)
    assert sorted(ordered) == sorted([f"s{n}" for n in range(10)] + ["f1"])
    assert ordered[:3] == ["s0", "s4", "s8"]
