"""Commit positions of partitions whose messages finish out of order.

Kafka keeps one committed position per partition, meaning "every message below this offset
is done". The intake works on several messages of a partition at once and they finish in
any order, so the position may only advance to the oldest message that is not finished yet.
"""

from __future__ import annotations

from collections import deque


class PartitionOffsets:
    """Which fetched messages of one partition are finished, and what may be committed.

    Offsets must be reported in the order they were fetched (increasing). They may have
    gaps: compacted topics and transaction markers skip offsets, and a gap is never
    waited for.
    """

    def __init__(self) -> None:
        # Fetched offsets, oldest first; finished ones are popped from the left lazily.
        self._fetched: deque[int] = deque()
        self._unfinished: set[int] = set()
        self._next: int | None = None
        self._committed: int | None = None

    @property
    def unfinished(self) -> int:
        """How many fetched messages are not finished."""
        return len(self._unfinished)

    def fetched(self, offset: int) -> None:
        """A message was handed out for work.

        Raises:
            ValueError: the offset is not above every offset fetched before.
        """
        if self._next is not None and offset < self._next:
            raise ValueError(f"offset {offset} fetched after {self._next - 1}")
        if self._committed is None:
            # Fetching starts at the group's committed position: nothing to commit below it.
            self._committed = offset
        self._fetched.append(offset)
        self._unfinished.add(offset)
        self._next = offset + 1

    def finished(self, offset: int) -> None:
        """A fetched message is done for good (started or dead-lettered).

        Raises:
            ValueError: the offset was not fetched, or is already finished.
        """
        try:
            self._unfinished.remove(offset)
        except KeyError:
            raise ValueError(f"offset {offset} is not in flight") from None
        while self._fetched and self._fetched[0] not in self._unfinished:
            self._fetched.popleft()

    @property
    def position(self) -> int | None:
        """Every message below this offset is finished; None before the first fetch."""
        if self._fetched:
            return self._fetched[0]
        return self._next

    def to_commit(self) -> int | None:
        """The position to commit, if it moved past what was last committed."""
        position = self.position
        if position is None or (self._committed is not None and position <= self._committed):
            return None
        return position

    @property
    def committed_offset(self) -> int | None:
        """The last position committed (or where fetching began); None before a fetch."""
        return self._committed

    def committed(self, offset: int) -> None:
        """The broker acknowledged a commit of ``offset``."""
        if self._committed is None or offset > self._committed:
            self._committed = offset
