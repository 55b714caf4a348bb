"""PartitionOffsets: the commit position moves only below finished messages."""

from __future__ import annotations

import random

import pytest

from consumers.offsets import PartitionOffsets


def _fetched(*offsets: int) -> PartitionOffsets:
    tracker = PartitionOffsets()
    for offset in offsets:
        tracker.fetched(offset)
    return tracker


def test_nothing_to_commit_before_the_first_fetch() -> None:
    tracker = PartitionOffsets()
    assert tracker.position is None
    assert tracker.to_commit() is None
    assert tracker.unfinished == 0


def test_nothing_to_commit_while_the_first_message_is_unfinished() -> None:
    tracker = _fetched(10, 11, 12)
    tracker.finished(11)
    tracker.finished(12)
    # 10 is where fetching started: the group's committed position already.
    assert tracker.position == 10
    assert tracker.to_commit() is None
    assert tracker.unfinished == 1


def test_in_order_completion_commits_past_the_last() -> None:
    tracker = _fetched(0, 1, 2)
    for offset in (0, 1, 2):
        tracker.finished(offset)
    assert tracker.to_commit() == 3


def test_out_of_order_completion_commits_only_below_the_oldest_unfinished() -> None:
    tracker = _fetched(5, 6, 7, 8, 9)
    tracker.finished(8)
    tracker.finished(6)
    assert tracker.to_commit() is None  # 5 is unfinished
    tracker.finished(5)
    assert tracker.to_commit() == 7  # 7 is unfinished
    tracker.finished(9)
    assert tracker.to_commit() == 7
    tracker.finished(7)
    assert tracker.to_commit() == 10
    assert tracker.unfinished == 0


def test_gaps_in_offsets_are_not_waited_for() -> None:
    # Compaction and transaction markers leave holes; the broker never delivers them.
    tracker = _fetched(3, 7, 8, 20)
    tracker.finished(3)
    assert tracker.to_commit() == 7
    tracker.finished(8)
    tracker.finished(7)
    assert tracker.to_commit() == 20
    tracker.finished(20)
    assert tracker.to_commit() == 21


def test_committed_position_is_not_offered_again() -> None:
    tracker = _fetched(0, 1, 2)
    tracker.finished(0)
    assert tracker.to_commit() == 1
    tracker.committed(1)
    assert tracker.to_commit() is None
    tracker.finished(1)
    assert tracker.to_commit() == 2
    # An older acknowledgement arriving late does not move the mark back.
    tracker.committed(2)
    tracker.committed(1)
    assert tracker.to_commit() is None


def test_fetching_more_after_all_finished_keeps_the_position_until_done() -> None:
    tracker = _fetched(0)
    tracker.finished(0)
    tracker.committed(1)
    tracker.fetched(1)
    assert tracker.position == 1
    assert tracker.to_commit() is None
    tracker.finished(1)
    assert tracker.to_commit() == 2


def test_revocation_drops_unfinished_work_uncommitted() -> None:
    # On revoke the intake commits to_commit() and throws the tracker away; the next
    # owner starts from that position, so the unfinished messages are delivered again.
    tracker = _fetched(0, 1, 2, 3)
    tracker.finished(0)
    tracker.finished(2)
    assert tracker.to_commit() == 1
    assert tracker.unfinished == 2
    # Reassigned later: a fresh tracker starts from the committed position.
    fresh = _fetched(1, 2, 3)
    fresh.finished(1)
    fresh.finished(2)
    fresh.finished(3)
    assert fresh.to_commit() == 4


def test_fetch_going_backwards_is_refused() -> None:
    tracker = _fetched(4, 5)
    with pytest.raises(ValueError, match="fetched after"):
        tracker.fetched(5)
    with pytest.raises(ValueError, match="fetched after"):
        tracker.fetched(2)


@pytest.mark.parametrize("offset", [3, 99])
def test_finishing_what_is_not_in_flight_is_refused(offset: int) -> None:
    tracker = _fetched(3, 4)
    tracker.finished(3)
    with pytest.raises(ValueError, match="not in flight"):
        tracker.finished(offset)


@pytest.mark.parametrize("seed", range(20))
def test_random_completion_order_never_commits_an_unfinished_message(seed: int) -> None:
    rng = random.Random(seed)
    offsets = sorted(rng.sample(range(200), 60))
    tracker = _fetched(*offsets)
    done: set[int] = set()
    for offset in rng.sample(offsets, len(offsets)):
        tracker.finished(offset)
        done.add(offset)
        position = tracker.to_commit()
        if position is not None:
            assert all(o in done for o in offsets if o < position)
            unfinished = [o for o in offsets if o not in done]
            assert position == (min(unfinished) if unfinished else offsets[-1] + 1)
            tracker.committed(position)
    assert tracker.position == offsets[-1] + 1
