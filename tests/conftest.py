"""Shared fixtures: one embedded stack per test session, fresh names per test."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import os
import sys
import warnings
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from infra.logs import QUIET_LOGGERS
from infra.logs import THIRD_PARTY_WARNINGS
from infra.processes import ManagedProcess
from infra.processes import stop_all
from infra.settings import KafkaSettings
from infra.settings import PipelineSettings
from infra.settings import ReviewSettings
from infra.settings import Settings
from infra.settings import TemporalSettings
from infra.stack import EmbeddedStack
from infra.stack import StackConfig
from tests.support.commands import settings_env
from tests.support.preloaded import ForkedProcess
from tests.support.preloaded import Preloaded
from tests.support.warning_filters import SDK_DEADLOCK_INTERRUPT
from tests.support.workflow_servers import local_environment

T = TypeVar("T")

_names = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """Ignore the third-party warnings listed in ``infra.logs`` (and only those), and the
    Temporal SDK's deadlock interrupt landing where it cannot be raised."""
    for known in THIRD_PARTY_WARNINGS:
        config.addinivalue_line("filterwarnings", known.filter_spec())
    config.addinivalue_line("filterwarnings", SDK_DEADLOCK_INTERRUPT)


@pytest.fixture(autouse=True)
def _logging_back_as_it_was() -> Iterator[None]:
    """A test that sets up logging as a process does (``infra.logs.configure_logging``,
    e.g. through ``app.cli.run``) leaves the next tests as it found them: the root
    logger's handlers and level, the quieted clients' levels, and pytest's hooks for
    warnings and unraisable exceptions (which fail a test on such exceptions).

    Left in place, its handler writes to the test's captured stderr, closed once the
    test ends: a later test that logs in a server thread then sees "--- Logging error ---"
    where it looks for tracebacks."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    unraisable, show_warning = sys.unraisablehook, warnings.showwarning
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, quiet_level in quiet.items():
        logging.getLogger(name).setLevel(quiet_level)
    sys.unraisablehook, warnings.showwarning = unraisable, show_warning


def pytest_sessionfinish() -> None:
    """The process the tests fork ``docpipe`` commands from ends with the session (the
    commands are stopped by then, each by its test)."""
    Preloaded.end_here()


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collecting imported (the SDKs, moto, pypdf, every test module: some 220,000
    objects the garbage collector tracks) lives as long as the test process: frozen out
    of the collector, it is not traversed again by every full collection that the tests'
    own objects set off. That is an eighth of the CPU of the in-process PDF tests."""
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, each test process starting with its share of them: their
    waiting then overlaps with the rest, and none is left to start near the end."""
    slow = [item for item in items if item.get_closest_marker("slow")]
    rest = [item for item in items if not item.get_closest_marker("slow")]
    items[:] = dealt(slow, rest, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def dealt(slow: list[T], rest: list[T], processes: int) -> list[T]:
    """``slow`` then ``rest``, in an order whose even split into ``processes`` runs of
    consecutive items gives each run a share of ``slow`` at its head.

    pytest-xdist's work stealing hands process k the k-th of such runs, each as long as
    what is left divided by the processes left, and a process that runs out takes the
    second half of another's queue. The slow tests at the head of each queue so start at
    once; dealt to one queue, the later of them would wait behind the first, or be taken
    over only when the run nears its end.
    """
    ordered: list[T] = []
    left = len(slow) + len(rest)
    rest_left = iter(rest)
    for k in range(processes):
        size = left // (processes - k)
        share = slow[k::processes]
        ordered += share + list(itertools.islice(rest_left, max(size - len(share), 0)))
        left -= size
    ordered += rest_left
    return ordered


# A consumer joining after another left waits for the session timeout: keep it short.
# Readable workflow IDs (keys in clear) for the tests that are not about hashing them;
# those about it restore the default (tests/support/settings.hashing_by_default).
# Review verdicts end at their report, as they did before human review, but for the tests
# of review (tests/support/settings.with_review).
_TEST_BASE = Settings(
    kafka=KafkaSettings(session_timeout_ms=2000),
    temporal=TemporalSettings(hash_object_keys=False),
    pipeline=PipelineSettings(chunk_pages=10, heartbeat_timeout_s=5.0, pool_size=2),
    review=ReviewSettings(off=("all",)),
)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """Temporal dev server, broker and moto on free loopback ports, for the whole session."""
    config = StackConfig.on_free_ports(tmp_path_factory.mktemp("stack"))
    with EmbeddedStack(config, _TEST_BASE) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The locked Temporal dev server with docpipe's search attributes, one per test module
    that asks for it (its tests run in the module's event loop): for tests that need a
    real server and none of the stack."""
    async with local_environment() as started:
        yield started


@pytest.fixture
def settings(stack: EmbeddedStack) -> Settings:
    """Settings pointed at the stack, with topics, group and task queue of this test only."""
    n = next(_names)
    base = stack.settings()
    kafka = dataclasses.replace(
        base.kafka,
        uploads_topic=f"uploads-{n}",
        dlq_topic=f"uploads-{n}.dlq",
        results_topic=f"results-{n}",
        group_id=f"intake-{n}",
    )
    stack.create_topics([kafka.uploads_topic, kafka.dlq_topic, kafka.results_topic])
    return dataclasses.replace(
        base,
        kafka=kafka,
        temporal=dataclasses.replace(base.temporal, task_queue=f"docpipe-{n}"),
        s3=dataclasses.replace(base.s3, results_prefix=f"results-{n}"),
    )


StartComponent = Callable[..., ManagedProcess]


@pytest.fixture
def start_component(tmp_path: Path) -> Iterator[StartComponent]:
    """Start ``docpipe <command>`` processes (forked from this test process's preloaded
    one: ``tests.support.preloaded``); every one is stopped (by PID) after the test."""
    started: list[ManagedProcess] = []

    def start(command: list[str], settings: Settings) -> ManagedProcess:
        process = ForkedProcess(
            command[0],
            command,
            log_path=tmp_path / f"{command[0]}-{len(started)}.log",
            env=settings_env(settings),
        )
        started.append(process)
        return process

    yield start
    stop_all(started, timeout=15)
