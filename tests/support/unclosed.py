"""What the tests ask of code that makes aiokafka clients: none left unclosed."""

from __future__ import annotations

import contextlib
import gc
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def no_kafka_client_left_unclosed() -> Iterator[None]:
    """Fails the test when an aiokafka producer or consumer made in the block is left to the
    garbage collector (with its connections), which reports it as unclosed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message)] == []
