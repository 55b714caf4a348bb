"""Documents from S3: read into memory (the exact version, within a size, or a clear
refusal), and spooled to files that nothing leaves behind."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline.check.spool import ObjectMissingError
from pipeline.check.spool import Spooler
from pipeline.check.spool import read_bytes
from pipeline.models import DocumentRef
from tests.support.activities import DOCS
from tests.support.activities import in_process_s3
from tests.support.polling import async_wait_for


def test_the_exact_version_is_read_into_memory() -> None:
    with in_process_s3() as s3:
        first = s3.put_object(Bucket=DOCS, Key="a.pdf", Body=b"%PDF-first")["VersionId"]
        s3.put_object(Bucket=DOCS, Key="a.pdf", Body=b"%PDF-second")
        assert read_bytes(s3, DocumentRef(DOCS, "a.pdf", version_id=first), 100) == b"%PDF-first"


def test_a_document_over_the_limit_is_refused() -> None:
    with in_process_s3() as s3:
        version = s3.put_object(Bucket=DOCS, Key="big.pdf", Body=b"x" * 101)["VersionId"]
        with pytest.raises(ValueError, match="larger than 100 bytes"):
            read_bytes(s3, DocumentRef(DOCS, "big.pdf", version_id=version), 100)


def test_a_missing_object_says_so() -> None:
    with in_process_s3() as s3, pytest.raises(ObjectMissingError):
        read_bytes(s3, DocumentRef(DOCS, "gone.pdf", etag="e1"), 100)


class _HeldBody:
    """An S3 body that hands out its first block, then waits for ``go`` before each next."""

    def __init__(self, body: Any, reading: threading.Event, go: threading.Event) -> None:
        self._body, self._reading, self._go = body, reading, go
        self._blocks = 0

    def read(self, size: int) -> bytes:
        if self._blocks:
            self._reading.set()
            self._go.wait(timeout=60)
        self._blocks += 1
        return bytes(self._body.read(min(size, 1000)))


class _HeldS3:
    """A real (moto) S3 client whose downloads stop after their first block until ``go``."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.reading, self.go = threading.Event(), threading.Event()

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        response = dict(self._s3.get_object(**kwargs))
        response["Body"] = _HeldBody(response["Body"], self.reading, self.go)
        return response


def _files(directory: Path) -> list[Path]:
    return list(directory.iterdir())


async def test_a_check_cancelled_while_downloading_leaves_no_file(tmp_path: Path) -> None:
    with in_process_s3() as s3:
        version = s3.put_object(Bucket=DOCS, Key="a.pdf", Body=b"%PDF-" + b"x" * 5000)
        document = DocumentRef(DOCS, "a.pdf", version_id=version["VersionId"])
        held = _HeldS3(s3)
        spooler = Spooler(held, directory=str(tmp_path))  # type: ignore[arg-type]

        async def check() -> None:
            async with spooler.spooled(document):
                raise AssertionError("the download was held; it cannot have ended")

        async def reading() -> bool:
            return held.reading.is_set()

        async def removed() -> bool:
            return not _files(tmp_path)

        checking = asyncio.create_task(check())
        await async_wait_for(reading, 30, "the download to start")
        assert len(_files(tmp_path)) == 1, "its file is being written"
        checking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await checking
        # The download goes on for nobody until it sees that it was stopped.
        held.go.set()
        await async_wait_for(removed, 30, "the file removed")
