"""Stream one exact object version from S3 to a local temporary file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.models import DocumentRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_READ_BYTES = 1 << 20
_PREFIX = "docpipe-spool-"


class ObjectMissingError(Exception):
    """The object (or the version the check was started for) no longer exists."""


class ObjectChangedError(Exception):
    """The object's content is no longer the version the check was started for."""


def _get_kwargs(document: DocumentRef) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Bucket": document.bucket, "Key": document.key}
    if document.version_id:
        kwargs["VersionId"] = document.version_id
    elif document.etag:
        kwargs["IfMatch"] = document.etag if document.etag.startswith('"') else f'"{document.etag}"'
    return kwargs


def _classify(exc: ClientError, document: DocumentRef) -> Exception | None:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in ("NoSuchKey", "NoSuchVersion", "404"):
        return ObjectMissingError(f"{document.document_id}: {code}")
    if code in ("PreconditionFailed", "412"):
        return ObjectChangedError(f"{document.document_id}: ETag no longer matches")
    if code == "InvalidArgument" and document.version_id:
        # S3 answers a malformed or foreign version id this way.
        return ObjectMissingError(f"{document.document_id}: no such version")
    # Anything else is infrastructure (5xx, throttling, access): the caller re-raises it
    # as it is, and the activity retries.
    return None


def head(s3: S3Client, document: DocumentRef) -> dict[str, Any]:
    """HEAD the exact version.

    Raises:
        ObjectMissingError, ObjectChangedError: the version is gone or was replaced.
    """
    try:
        return dict(s3.head_object(**_get_kwargs(document)))
    except ClientError as exc:
        gone = _classify(exc, document)
        if gone is None:
            raise
        raise gone from exc


def download(s3: S3Client, document: DocumentRef, directory: str | None = None) -> Path:
    """Download the exact version to a new temporary file; the caller removes it.

    Nothing is left behind when the download fails.

    Raises:
        ObjectMissingError, ObjectChangedError: the version is gone or was replaced.
    """
    # The PID in the name lets a later worker remove what a killed one left behind.
    fd, name = tempfile.mkstemp(prefix=f"{_PREFIX}{os.getpid()}-", suffix=".pdf", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = s3.get_object(**_get_kwargs(document))
            except ClientError as exc:
                gone = _classify(exc, document)
                if gone is None:
                    raise
                raise gone from exc
            etag = str(response.get("ETag", "")).strip('"')
            if document.etag and not document.version_id and etag != document.etag.strip('"'):
                raise ObjectChangedError(f"{document.document_id}: ETag is now {etag}")
            body = response["Body"]
            for block in iter(lambda: body.read(_READ_BYTES), b""):
                out.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


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
