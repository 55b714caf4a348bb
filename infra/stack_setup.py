"""What docpipe needs on the embedded stack's fresh servers: its search attributes, topics
and buckets. Each step may be repeated; the stack retries them until the server serves.

The stack's API is synchronous (it works the same from a pytest fixture, a CLI command and
code that already runs an event loop), so the asynchronous clients run here on a private
loop in a helper thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from infra.settings import S3Settings
from infra.settings import Settings

T = TypeVar("T")


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private event loop in a helper thread."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(factory())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="stack-setup")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def prepare_temporal(settings: Settings) -> list[str]:
    """Register docpipe's search attributes in the settings' namespace.

    Returns:
        The attributes that were new.
    """
    # Clients are imported when used: the stack's callers need not load them.
    from infra.clients import temporal_client
    from infra.temporal_setup import register_search_attributes

    async def setup() -> list[str]:
        client = await temporal_client(settings.temporal, settings.codec)
        return await register_search_attributes(client, settings.temporal.namespace)

    return run_coroutine(setup)


def create_topics(bootstrap_servers: str, topics: Sequence[str], partitions: int) -> None:
    """Create topics that do not exist yet (explicitly: auto-created ones get the
    broker's default partition count)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [
                NewTopic(t, num_partitions=partitions, replication_factor=1)
                for t in topics
                if t not in existing
            ]
            if wanted:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(wanted)
        finally:
            await admin.close()

    run_coroutine(create)


def prepare_buckets(s3_settings: S3Settings) -> None:
    """Create the documents buckets (versioned) and the results bucket the settings name."""
    from infra.clients import s3_client

    s3 = s3_client(s3_settings)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in s3_settings.documents_buckets:
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
        # Upstream buckets are versioned: every upload is its own document version.
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if s3_settings.results_bucket not in existing:
        s3.create_bucket(Bucket=s3_settings.results_bucket)
