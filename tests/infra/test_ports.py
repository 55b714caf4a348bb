"""Choosing ports: below the kernel's ephemeral range, never one another process chose."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from pathlib import Path

from infra import ports
from infra.ports import FIRST_CHOSEN_PORT
from infra.ports import LOOPBACK
from infra.ports import ephemeral_start
from infra.ports import free_ports
from infra.stack import StackConfig

_CHOOSE_ONE_AND_WAIT = (
    "import sys; from infra.ports import free_ports; "
    "print(free_ports(1)[0], flush=True); sys.stdin.read()"
)
_RANGE = range(FIRST_CHOSEN_PORT, ephemeral_start())


def test_chosen_ports_are_distinct_bindable_and_outside_the_kernels_own_range() -> None:
    chosen = free_ports(6) + free_ports(6)
    assert len(set(chosen)) == 12
    assert all(FIRST_CHOSEN_PORT <= port < ephemeral_start() for port in chosen)
    for port in chosen:
        with socket.socket() as sock:
            sock.bind((LOOPBACK, port))
    # What the kernel hands out on its own (the Temporal dev server's internal ports,
    # outgoing connections) lies above: it cannot be one of these.
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        assert sock.getsockname()[1] >= ephemeral_start()


def test_a_port_chosen_by_another_process_is_skipped_until_that_process_ends() -> None:
    other = subprocess.Popen(
        [sys.executable, "-c", _CHOOSE_ONE_AND_WAIT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdin is not None and other.stdout is not None
    try:
        theirs = int(other.stdout.readline())
        assert ports._choose([theirs, *_RANGE], 1) != [theirs]
    finally:
        other.stdin.close()
        other.stdout.close()
        assert other.wait(timeout=30) == 0
    assert ports._choose([theirs], 1) == [theirs]


def test_a_port_something_listens_on_or_this_process_chose_is_skipped() -> None:
    mine = free_ports(1)[0]
    with socket.socket() as listening:
        listening.bind((LOOPBACK, 0))
        listening.listen()
        taken = listening.getsockname()[1]
        [chosen] = ports._choose([mine, taken, *_RANGE], 1)
    assert chosen not in (mine, taken)


def test_a_stack_on_free_ports_has_every_port_chosen_but_those_it_is_given(
    tmp_path: Path,
) -> None:
    config = StackConfig.on_free_ports(tmp_path, review_port=1234)
    chosen = {
        item.name: getattr(config, item.name)
        for item in dataclasses.fields(config)
        if item.name.endswith("_port") and item.name != "review_port"
    }
    assert len(chosen) == 5 and len(set(chosen.values())) == 5
    assert all(FIRST_CHOSEN_PORT <= port < ephemeral_start() for port in chosen.values())
    assert config.review_port == 1234
