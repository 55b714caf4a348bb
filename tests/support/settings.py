"""Settings as a test needs them, from the ones the test stack gives."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from infra.settings import ReviewSettings, Settings


def hashing_by_default(settings: Settings) -> Settings:
    """``settings`` with hashed object keys left to their default (on when encrypting);
    the test stack pins them off for readable IDs."""
    temporal = dataclasses.replace(settings.temporal, hash_object_keys=None)
    return dataclasses.replace(settings, temporal=temporal)


def with_pipeline(settings: Settings, tmp_path: Path, **fields: Any) -> Settings:
    """``settings`` with these pipeline fields and a spool directory of this test's own
    (so that a test can assert nothing is left in it)."""
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    pipeline = dataclasses.replace(settings.pipeline, spool_dir=str(spool), **fields)
    return dataclasses.replace(settings, pipeline=pipeline)


def with_review(settings: Settings, **fields: Any) -> Settings:
    """``settings`` whose review verdicts wait for a decision (the test stack's do not),
    with these review fields (``deadline``, ``on_deadline``, ``off``)."""
    return dataclasses.replace(settings, review=ReviewSettings(**fields))
