"""How a document is named where operators look: labels, summaries, hashed keys."""

from __future__ import annotations

from pipeline.labels import object_key_value
from pipeline.labels import static_details
from pipeline.labels import static_summary
from pipeline.models import CheckRequest
from pipeline.models import DocumentRef

DOCUMENT = DocumentRef(bucket="documents", key="hr/salary of j.doe.pdf", version_id="v1", size=9)


def _request(hashed: bool) -> CheckRequest:
    return CheckRequest(
        document=DOCUMENT,
        results_bucket="results",
        results_prefix=DOCUMENT.results_prefix("results"),
        hash_object_key=hashed,
    )


def test_labels_name_the_document_or_hide_its_key() -> None:
    assert object_key_value(DOCUMENT.key, False) == DOCUMENT.key
    hashed = object_key_value(DOCUMENT.key, True)
    assert hashed.startswith("sha256:") and len(hashed) == 7 + 64
    assert static_summary(_request(False)) == f"docpipe check of {DOCUMENT.document_id}"
    assert "s3://results/results/documents/hr/salary" in static_details(_request(False))
    for text in (static_summary(_request(True)), static_details(_request(True))):
        assert "salary" not in text and "documents/" in text
    assert object_key_value("k" * 5000, False) == "k" * 2000
