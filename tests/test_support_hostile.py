"""The suite's own hostile documents are what they say they are."""

from __future__ import annotations

import re
import zlib

import pytest

from tests.support.hostile import deflated_repeat
from tests.support.hostile import flate_bomb

MIB = 1 << 20


@pytest.mark.parametrize("total", [0, 1, MIB - 1, MIB, 2 * MIB, 5 * MIB + 12345])
def test_a_deflated_repeat_inflates_to_exactly_its_copies(total: int) -> None:
    assert zlib.decompress(deflated_repeat(b"x", total)) == b"x" * total


def test_a_small_block_repeated_many_times_still_inflates_whole() -> None:
    data = deflated_repeat(b" ", 1000 * 64 + 7, block_size=64)
    assert zlib.decompress(data) == b" " * (1000 * 64 + 7)


def test_a_flate_bomb_inflates_a_thousandfold_to_its_size() -> None:
    document = flate_bomb(3)
    match = re.search(rb"/Length (\d+) /Filter /FlateDecode >>\nstream\n", document)
    assert match is not None
    length = int(match[1])
    compressed = document[match.end() : match.end() + length]
    assert length < 3 * MIB // 500
    assert len(zlib.decompress(compressed)) == 3 * MIB
