"""The order tests are handed to pytest-xdist's processes in: each process starts with
its share of the slow tests.

``--dist worksteal`` first gives each of its N processes one contiguous block of the
collected tests (the first process the first len/N tests, and so on), and an idle
process later steals the second half of the busiest one's queue. With every slow test
sorted to the front, the first block held them all: one process ran them one after
another while the others ran the quick ones, and the run ended on a queue of slow tests
(the last minute of ``make test`` ran on one or two processes). Dealt round-robin to the
front of every block, each process starts with its slow tests, whose waiting (heartbeat
timeouts, restarts) then overlaps everyone's work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def block_sizes(total: int, processes: int) -> list[int]:
    """How pytest-xdist's work-stealing scheduler first splits ``total`` tests among
    ``processes`` idle processes: each gets the remaining tests divided by the processes
    still to serve."""
    sizes = []
    for served in range(processes):
        size = total // (processes - served)
        sizes.append(size)
        total -= size
    return sizes


def slow_first_in_each_block(
    items: Sequence[T], processes: int, slow: Callable[[T], bool]
) -> list[T]:
    """``items`` reordered so that each process's first block starts with its share of
    the slow ones (dealt round-robin in their collected order), then quick ones; one
    process: the slow ones first."""
    slow_items = [item for item in items if slow(item)]
    quick = iter(item for item in items if not slow(item))
    ordered: list[T] = []
    for index, size in enumerate(block_sizes(len(items), max(1, processes))):
        block = slow_items[index :: max(1, processes)]
        ordered.extend(block)
        ordered.extend(next(quick) for _ in range(size - len(block)))
    return ordered
