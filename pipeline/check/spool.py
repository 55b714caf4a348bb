"""Documents spooled to local files for the parser processes, and kept a little while.

One exact object version is streamed from S3 to a temporary file (never held in memory);
an inspected document's file waits on a small shelf for its page check, which usually
follows on the same worker within a second and so neither downloads nor indexes it again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from botocore.exceptions import ClientError
from opentelemetry import trace

from pipeline.failures import S3Failure
from pipeline.failures import classify_s3
from pipeline.failures import describe_s3
from pipeline.failures import s3_status
from pipeline.models import DocumentRef
from pipeline.pdf.repair import repair_files
from pipeline.reasons import Reason

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_tracer = trace.get_tracer("docpipe.pipeline")
_READ_BYTES = 1 << 20
_PREFIX = "docpipe-spool-"


class ObjectUnavailableError(Exception):
    """The version the check was started for cannot be had, for good: a document problem
    (its reason says which), reported instead of retried."""

    reason: Reason


class ObjectMissingError(ObjectUnavailableError):
    """The object (or the version the check was started for) no longer exists."""

    reason = Reason.OBJECT_MISSING


class ObjectChangedError(ObjectUnavailableError):
    """The object's content is no longer the version the check was started for."""

    reason = Reason.OBJECT_CHANGED


class ObjectForbiddenError(ObjectUnavailableError):
    """S3 refuses docpipe the object (403: a bucket policy, a KMS key it may not use)."""

    reason = Reason.OBJECT_FORBIDDEN


def _get_kwargs(document: DocumentRef) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Bucket": document.bucket, "Key": document.key}
    if document.version_id:
        kwargs["VersionId"] = document.version_id
    elif document.etag:
        kwargs["IfMatch"] = document.etag if document.etag.startswith('"') else f'"{document.etag}"'
    return kwargs


def _classify(exc: ClientError, document: DocumentRef) -> ObjectUnavailableError | None:
    status, code = s3_status(exc)
    if status == 412 or code in ("PreconditionFailed", "412"):
        return ObjectChangedError(f"{document.document_id}: ETag no longer matches")
    if code == "InvalidArgument" and document.version_id:
        # S3 answers a malformed or foreign version id this way.
        return ObjectMissingError(f"{document.document_id}: no such version")
    kind = classify_s3(exc)
    if kind is S3Failure.MISSING:
        return ObjectMissingError(f"{document.document_id}: {code or status}")
    if kind is S3Failure.ACCESS_DENIED:
        return ObjectForbiddenError(f"{document.document_id}: {describe_s3(exc)}")
    # Anything else is infrastructure (5xx, throttling, another 4xx): the caller re-raises
    # it as it is, and the activity retries.
    return None


def _of_version(document: DocumentRef, request: Callable[..., Any]) -> dict[str, Any]:
    """``request`` (HEAD or GET) of the exact version.

    Raises:
        ObjectUnavailableError: the version is gone, was replaced, or may not be read.
    """
    try:
        return dict(request(**_get_kwargs(document)))
    except ClientError as exc:
        gone = _classify(exc, document)
        if gone is None:
            raise
        raise gone from exc


def head(s3: S3Client, document: DocumentRef) -> dict[str, Any]:
    """HEAD the exact version.

    Raises:
        ObjectUnavailableError: the version is gone, was replaced, or may not be read.
    """
    return _of_version(document, s3.head_object)


class DownloadStoppedError(Exception):
    """The download was stopped before it ended (its check was cancelled)."""


def download(
    s3: S3Client,
    document: DocumentRef,
    directory: str | None = None,
    stop: threading.Event | None = None,
) -> Path:
    """Download the exact version to a new temporary file; the caller removes it.

    Nothing is left behind when the download fails or is stopped (``stop`` set: checked
    between blocks).

    Raises:
        ObjectUnavailableError: the version is gone, was replaced, or may not be read.
        DownloadStoppedError: ``stop`` was set.
    """
    # The PID in the name lets a later worker remove what a killed one left behind.
    fd, name = tempfile.mkstemp(prefix=f"{_PREFIX}{os.getpid()}-", suffix=".pdf", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            response = _of_version(document, s3.get_object)
            etag = str(response.get("ETag", "")).strip('"')
            if document.etag and not document.version_id and etag != document.etag.strip('"'):
                raise ObjectChangedError(f"{document.document_id}: ETag is now {etag}")
            body = response["Body"]
            for block in iter(lambda: body.read(_READ_BYTES), b""):
                if stop is not None and stop.is_set():
                    raise DownloadStoppedError(document.document_id)
                out.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def read_bytes(s3: S3Client, document: DocumentRef, max_bytes: int) -> bytes:
    """The exact version's bytes, in memory only (the review page draws its pages).

    Raises:
        ObjectUnavailableError: the version is gone, was replaced, or may not be read.
        ValueError: it is larger than ``max_bytes``.
    """
    body = _of_version(document, s3.get_object)["Body"]
    try:
        data = body.read(max_bytes + 1)
    finally:
        body.close()
    if len(data) > max_bytes:
        raise ValueError(f"the document is larger than {max_bytes} bytes")
    return bytes(data)


def sweep_stale_spools(directory: str | None = None) -> list[Path]:
    """Remove spooled files whose worker process is gone (killed before cleaning up).

    Returns:
        The files removed.
    """
    removed = []
    for path in Path(directory or tempfile.gettempdir()).glob(f"{_PREFIX}*.pdf"):
        pid_text = path.name[len(_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or _process_exists(int(pid_text)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class SpooledFile:
    """A document's local file; set ``keep`` to shelve it for the document's page check."""

    path: Path
    keep: bool = False


class _Shelf:
    """Spooled files of inspected documents, waiting for their page check on this worker.

    Page checks usually follow their inspection on the same worker within a second; a
    check that runs elsewhere (or never) leaves its file here until it is pushed out by
    newer ones or waited ``linger_s``.
    """

    def __init__(self, size: int, linger_s: float = 120.0) -> None:
        self.size = size
        self._linger_s = linger_s
        self._files: collections.OrderedDict[DocumentRef, tuple[Path, float]] = (
            collections.OrderedDict()
        )

    def take(self, document: DocumentRef) -> Path | None:
        """The document's file, now the caller's to remove; None if not kept here."""
        kept = self._files.pop(document, None)
        return kept[0] if kept else None

    def put(self, document: DocumentRef, path: Path) -> list[Path]:
        """Keep ``path`` for the document; returns the files pushed out, to remove."""
        previous = self._files.pop(document, None)
        self._files[document] = (path, time.monotonic())
        pushed = [previous[0]] if previous else []
        while len(self._files) > self.size:
            pushed.append(self._files.popitem(last=False)[1][0])
        return pushed

    def expired(self, *, everything: bool = False) -> list[Path]:
        """Forget the files kept longer than the linger time; returns them, to remove."""
        now = time.monotonic()
        old = [
            key
            for key, (_, since) in self._files.items()
            if everything or now - since >= self._linger_s
        ]
        return [self._files.pop(key)[0] for key in old]


async def _nothing_to_forget(path: Path) -> None:
    return None


class Spooler:
    """Where one worker spools documents, and keeps inspected ones for their page checks.

    Args:
        s3: the client documents are downloaded with.
        directory: where files go; None means the system's temporary directory.
        shelve: keep an inspected document's file for its page check (useful only on a
            worker that also checks pages).
        forget: called before a file is removed (the parser processes close it, so that
            its space is really freed).
    """

    # Inspected documents whose files wait for their page check, at most.
    SHELVED_DOCUMENTS = 4

    def __init__(
        self,
        s3: S3Client,
        *,
        directory: str | None = None,
        shelve: bool = True,
        forget: Callable[[Path], Awaitable[None]] = _nothing_to_forget,
    ) -> None:
        self._s3 = s3
        self._directory = directory
        self._forget = forget
        self._shelf = _Shelf(size=self.SHELVED_DOCUMENTS if shelve else 0)

    @contextlib.asynccontextmanager
    async def spooled(self, document: DocumentRef) -> AsyncIterator[SpooledFile]:
        """The document spooled to a local file: kept from its inspection, or downloaded.

        The file is removed on exit unless the block sets ``keep`` (and this worker
        shelves): then it waits for the document's page check, so that the check neither
        downloads it again nor indexes its pages again.

        Raises:
            ObjectUnavailableError: the version is gone, was replaced, or may not be read.
        """
        await self._remove(*self._shelf.expired())
        path = self._shelf.take(document)
        if path is None:
            with _tracer.start_as_current_span(
                "docpipe.download", attributes={"docpipe.bucket": document.bucket}
            ):
                path = await self._download(document)
        spooled = SpooledFile(path)
        try:
            yield spooled
        finally:
            if spooled.keep and self._shelf.size:
                await self._remove(*self._shelf.put(document, path))
            else:
                await self._remove(path)

    async def _download(self, document: DocumentRef) -> Path:
        """:func:`download` in a thread, which a cancelled check stops and cleans up after.

        Cancelling the wait does not stop the thread: left alone, it would write the whole
        file for nobody, every attempt of a check cancelled while downloading leaving one
        more file on the worker's disk.
        """
        stop = threading.Event()
        downloading = asyncio.ensure_future(
            asyncio.to_thread(download, self._s3, document, self._directory, stop)
        )
        try:
            return await asyncio.shield(downloading)
        except asyncio.CancelledError:
            stop.set()
            # Stopped, it removes its file itself; finished first, its file is removed here.
            downloading.add_done_callback(_remove_downloaded)
            raise

    async def _remove(self, *paths: Path) -> None:
        for path in paths:
            await self._forget(path)
            await asyncio.to_thread(_unlink_with_repairs, path)

    def close(self) -> None:
        """Remove the files kept for page checks (the worker is stopping)."""
        for path in self._shelf.expired(everything=True):
            _unlink_with_repairs(path)


def _remove_downloaded(downloading: asyncio.Future[Path]) -> None:
    if downloading.cancelled() or downloading.exception() is not None:
        return
    downloading.result().unlink(missing_ok=True)


def _unlink_with_repairs(path: Path) -> None:
    """Remove a spooled file and what repairing it made (its repaired copy, parts)."""
    path.unlink(missing_ok=True)
    for made in repair_files(path):
        made.unlink(missing_ok=True)
