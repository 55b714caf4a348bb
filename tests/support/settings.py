"""Settings as a test needs them, from the ones the test stack gives."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from infra.settings import KafkaSettings
from infra.settings import PipelineSettings
from infra.settings import ReviewSettings
from infra.settings import S3Settings
from infra.settings import Settings
from infra.settings import TemporalSettings


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


def production_like() -> Settings:
    """Settings as production sets them: every client section off its defaults, secrets
    included (a test of what is masked needs some)."""
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers="broker-1:9093,broker-2:9093",
            group_id="prod-intake",
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="svc-docpipe",
            sasl_password="kafka-s3cret",
            session_timeout_ms=30_000,
        ),
        temporal=TemporalSettings(
            address="ns.acct.tmprl.cloud:7233",
            namespace="ns.acct",
            page_task_queue="docpipe-pages",
            tls=True,
            api_key="temporal-key",
        ),
        s3=S3Settings(
            endpoint_url="",
            region="eu-central-1",
            access_key_id="AKIAEXAMPLE",
            secret_access_key="aws-s3cret",
            documents_buckets=("inbox", "archive"),
            results_bucket="results-prod",
            max_attempts=9,
        ),
        pipeline=PipelineSettings(
            chunk_pages=40, heartbeat_timeout_s=12.5, pool_size=4, graceful_shutdown_s=0.5
        ),
    )


def one_queue(queue: str, *, ocr_task_queue: str = "") -> Settings:
    """Settings that run a workflow and its page checks on ``queue`` (scanned pages on
    ``ocr_task_queue`` when named), keys in clear and results in the bucket ``results``: what
    the workflow tests on the time-skipping server start their checks with."""
    temporal = TemporalSettings(
        task_queue=queue,
        page_task_queue=queue,
        ocr_task_queue=ocr_task_queue,
        hash_object_keys=False,
    )
    return Settings(temporal=temporal, s3=S3Settings(results_bucket="results"))
