"""One S3 client per stack for the test process.

Building a boto3 client costs about 13 ms of CPU, even from the session the process keeps
(``infra.clients.s3_client``): a test that polls S3 ten times a second with a new client
each time would spend an eighth of a core on them, beside the worker it watches.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from infra.clients import s3_client
from infra.settings import S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@functools.cache
def shared_s3(settings: S3Settings) -> S3Client:
    """The test process's client for the stack ``settings`` point to (boto3 clients are
    thread-safe)."""
    return s3_client(settings)
