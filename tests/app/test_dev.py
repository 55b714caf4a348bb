"""The embedded stack's command-line options and the StackConfig they make."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.dev import stack_config
from app.dev import stack_options
from infra.stack import StackConfig


def _parsed(*argv: str) -> argparse.Namespace:
    return argparse.ArgumentParser(parents=[stack_options()]).parse_args(list(argv))


def test_without_options_the_stack_has_stack_configs_defaults(tmp_path: Path) -> None:
    config = stack_config(_parsed("--state-dir", str(tmp_path)))
    assert config == StackConfig(state_dir=tmp_path.resolve())


def test_each_option_sets_its_field() -> None:
    config = stack_config(
        _parsed(
            *("--state-dir", "here", "--temporal-port", "1"),
            *("--ui-port", "2", "--kafka-port", "3", "--s3-port", "4"),
            *("--codec-port", "5", "--partitions", "6"),
        )
    )
    assert config.state_dir == Path("here").resolve()
    ports = (config.temporal_port, config.temporal_ui_port, config.kafka_port, config.s3_port)
    assert ports == (1, 2, 3, 4)
    assert (config.codec_port, config.partitions) == (5, 6)
