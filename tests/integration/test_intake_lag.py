"""The intake's lag, on the real broker, Temporal and moto (the intake in this process)."""

from __future__ import annotations

from temporalio.client import Client

from consumers.intake import UploadIntake
from infra.clients import s3_client
from infra.settings import Settings
from tests.support.intake import (
    Message,
    native_event,
    publish,
    running,
    unique_prefix,
    upload,
    wait_committed,
)
from tests.support.polling import async_wait_for


async def test_a_restarted_intake_with_everything_committed_is_not_behind(
    settings: Settings, client: Client
) -> None:
    prefix = unique_prefix("lag")
    documents = [upload(settings, f"{prefix}/doc-{n}.pdf") for n in range(6)]
    messages = [Message(native_event(d), partition=n % 3) for n, d in enumerate(documents)]
    async with running(UploadIntake(settings, client, s3_client(settings.s3))):
        await wait_committed(settings, await publish(settings, messages), 30)

    # The next intake has nothing to fetch: every partition holds messages, all committed.
    again = UploadIntake(settings, client, s3_client(settings.s3))
    async with running(again):

        async def every_end_known() -> dict[tuple[str, int], int] | None:
            lag = again.lag()
            return lag if len(lag) == 3 else None

        lag = await async_wait_for(every_end_known, 30, "the end of every partition")
    assert lag == {(settings.kafka.uploads_topic, p): 0 for p in range(3)}
