"""A document read into memory: the exact version, within a size, or a clear refusal."""

from __future__ import annotations

import pytest

from pipeline.check.spool import ObjectMissingError, read_bytes
from pipeline.models import DocumentRef
from tests.support.activities import DOCS, in_process_s3


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
