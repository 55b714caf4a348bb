"""Stream one exact object version from S3 to a local temporary file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.models import DocumentRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_READ_BYTES = 1 << 20


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


def _classify(exc: ClientError, document: DocumentRef) -> Exception:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in ("NoSuchKey", "NoSuchVersion", "404"):
        return ObjectMissingError(f"{document.document_id}: {code}")
    if code in ("PreconditionFailed", "412"):
        return ObjectChangedError(f"{document.document_id}: ETag no longer matches")
    if code == "InvalidArgument" and document.version_id:
        # S3 answers a malformed or foreign version id this way.
        return ObjectMissingError(f"{document.document_id}: no such version")
    return exc


def head(s3: S3Client, document: DocumentRef) -> dict[str, Any]:
    """HEAD the exact version.

    Raises:
        ObjectMissingError, ObjectChangedError: the version is gone or was replaced.
    """
    try:
        return dict(s3.head_object(**_get_kwargs(document)))
    except ClientError as exc:
        raise _classify(exc, document) from exc


@contextlib.contextmanager
def spooled(s3: S3Client, document: DocumentRef, directory: str | None = None) -> Iterator[Path]:
    """Download the exact version to a temporary file, removed on every exit path.

    Raises:
        ObjectMissingError, ObjectChangedError: the version is gone or was replaced.
    """
    fd, name = tempfile.mkstemp(prefix="docpipe-", suffix=".pdf", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = s3.get_object(**_get_kwargs(document))
            except ClientError as exc:
                raise _classify(exc, document) from exc
            etag = str(response.get("ETag", "")).strip('"')
            if document.etag and not document.version_id and etag != document.etag.strip('"'):
                raise ObjectChangedError(f"{document.document_id}: ETag is now {etag}")
            body = response["Body"]
            for block in iter(lambda: body.read(_READ_BYTES), b""):
                out.write(block)
        yield path
    finally:
        path.unlink(missing_ok=True)
