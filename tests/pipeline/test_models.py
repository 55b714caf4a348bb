"""DocumentRef: identity, versions, workflow IDs and results prefixes."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from pipeline.models import MAX_RESULTS_PREFIX_BYTES
from pipeline.models import MAX_WORKFLOW_ID_BYTES
from pipeline.models import CheckRequest
from pipeline.models import DocumentRef
from pipeline.models import workflow_id_for


@pytest.mark.parametrize(
    ("bucket", "key", "version_id", "etag"),
    [
        ("", "a.pdf", "v1", None),
        ("docs", "", "v1", None),
        ("docs", "a.pdf", None, None),
        ("docs", "a.pdf", "", ""),
    ],
)
def test_document_ref_requires_bucket_key_and_version(
    bucket: str, key: str, version_id: str | None, etag: str | None
) -> None:
    with pytest.raises(ValueError):
        DocumentRef(bucket=bucket, key=key, version_id=version_id, etag=etag)


def test_version_prefers_version_id_over_etag() -> None:
    ref = DocumentRef(bucket="docs", key="a.pdf", version_id="v-123", etag='"abc"')
    assert ref.version == "v-123"


def test_version_strips_quotes_from_etag() -> None:
    ref = DocumentRef(bucket="docs", key="a.pdf", etag='"d41d8cd98f00b204"')
    assert ref.version == "d41d8cd98f00b204"
    unquoted = DocumentRef(bucket="docs", key="a.pdf", etag="d41d8cd98f00b204")
    assert unquoted.version == "d41d8cd98f00b204"
    assert unquoted.workflow_id == ref.workflow_id


def test_workflow_id_format() -> None:
    ref = DocumentRef(bucket="docs", key="in/a.pdf", version_id="v1")
    assert ref.document_id == "docs/in/a.pdf@v1"
    assert ref.workflow_id == "docpipe/docs/in/a.pdf@v1"
    etag_ref = DocumentRef(bucket="docs", key="in/a.pdf", etag='"e1"')
    assert etag_ref.workflow_id == "docpipe/docs/in/a.pdf@e1"


def test_a_hashed_workflow_id_names_bucket_key_hash_and_version_but_not_the_key() -> None:
    ref = DocumentRef(bucket="docs", key="in/secret.pdf", version_id="v1")
    digest = hashlib.sha256(b"in/secret.pdf").hexdigest()
    assert ref.check_workflow_id(True) == f"docpipe/docs/sha256:{digest}@v1"
    assert ref.check_workflow_id(False) == ref.workflow_id
    assert workflow_id_for(ref.document_id, hashed=True) == ref.check_workflow_id(True)
    request = CheckRequest(document=ref, results_bucket="r", results_prefix="p")
    assert request.workflow_id == ref.workflow_id
    hashed = dataclasses.replace(request, hash_object_key=True)
    assert hashed.workflow_id == ref.check_workflow_id(True)


def test_a_hashed_workflow_id_of_a_long_key_fits_and_hides_it() -> None:
    ref = DocumentRef(bucket="docs", key="secret/" + "x" * 2000, version_id="v1")
    wid = ref.check_workflow_id(True)
    assert len(wid.encode()) <= MAX_WORKFLOW_ID_BYTES
    assert "secret" not in wid


def test_workflow_id_is_deterministic_and_version_sensitive() -> None:
    a = DocumentRef(bucket="docs", key="a.pdf", version_id="v1", size=10)
    b = DocumentRef(bucket="docs", key="a.pdf", version_id="v1", size=None)
    c = DocumentRef(bucket="docs", key="a.pdf", version_id="v2")
    assert a.workflow_id == b.workflow_id
    assert a.workflow_id != c.workflow_id


def test_long_key_workflow_id_fits_and_keeps_its_prefix() -> None:
    key = "folder/" + "x" * 2000
    ref = DocumentRef(bucket="docs", key=key, version_id="v1")
    wid = ref.workflow_id
    assert len(wid.encode()) <= MAX_WORKFLOW_ID_BYTES
    assert MAX_WORKFLOW_ID_BYTES == 255
    assert wid.startswith("docpipe/docs/folder/xxx")
    assert wid == DocumentRef(bucket="docs", key=key, version_id="v1").workflow_id


def test_long_keys_differing_only_at_the_end_get_different_ids() -> None:
    stem = "y" * 2000
    first = DocumentRef(bucket="docs", key=stem + "-1.pdf", version_id="v1")
    second = DocumentRef(bucket="docs", key=stem + "-2.pdf", version_id="v1")
    assert first.workflow_id != second.workflow_id
    # Same version, different long key: still different.
    third = DocumentRef(bucket="docs", key=stem + "-1.pdf", version_id="v2")
    assert first.workflow_id != third.workflow_id


def test_multibyte_key_is_cut_on_a_character_boundary() -> None:
    # "docpipe/docs1/" is 14 bytes; each euro sign is 3 bytes, so a byte cut lands
    # mid-character unless the code takes care.
    bucket = "docs1"
    key = "\u20ac" * 700
    ref = DocumentRef(bucket=bucket, key=key, version_id="v1")
    wid = ref.workflow_id
    encoded = wid.encode("utf-8")
    assert len(encoded) <= MAX_WORKFLOW_ID_BYTES
    assert encoded.decode("utf-8", errors="strict") == wid
    assert "\ufffd" not in wid
    kept, _, digest = wid.rpartition("~")
    assert ("docpipe/" + ref.document_id).startswith(kept)
    assert kept.startswith(f"docpipe/{bucket}/\u20ac")
    assert len(digest) == 16
    # Nothing more than a partial character was dropped.
    assert len(encoded) >= MAX_WORKFLOW_ID_BYTES - 3


def test_results_prefix_starts_with_root() -> None:
    ref = DocumentRef(bucket="docs", key="in/a.pdf", version_id="v1")
    assert ref.results_prefix("results") == "results/docs/in/a.pdf@v1"
    assert ref.results_prefix("/results/") == "results/docs/in/a.pdf@v1"
    assert ref.results_prefix("") == "docs/in/a.pdf@v1"


def test_results_prefix_is_bounded_for_long_keys() -> None:
    stem = "z" * 2000
    first = DocumentRef(bucket="docs", key=stem + "a", version_id="v1")
    second = DocumentRef(bucket="docs", key=stem + "b", version_id="v1")
    prefix = first.results_prefix("results")
    assert prefix.startswith("results/docs/zzz")
    assert len(prefix.encode()) <= MAX_RESULTS_PREFIX_BYTES
    assert prefix != second.results_prefix("results")


def test_results_prefix_multibyte_long_key_stays_valid() -> None:
    ref = DocumentRef(bucket="docs", key="\u00e9\u4e2d" * 600, version_id="v1")
    prefix = ref.results_prefix("results")
    encoded = prefix.encode("utf-8")
    assert len(encoded) <= MAX_RESULTS_PREFIX_BYTES
    assert encoded.decode("utf-8") == prefix
    kept = prefix.rpartition("~")[0]
    assert f"results/{ref.document_id}".startswith(kept)
