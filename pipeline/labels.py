"""How a document is named where operators look: search attribute values, the static
summary and details a workflow is started with.

Only identity and locations, never document content. Where object keys are sensitive
(``DOCPIPE_TEMPORAL_HASH_OBJECT_KEYS``), a SHA-256 of the key stands in for it. Imported
by the workflow sandbox: pure functions only.
"""

from __future__ import annotations

from pipeline.models import HASH_PREFIX
from pipeline.models import CheckRequest
from pipeline.models import DocumentRef
from pipeline.models import hashed_object_key

# Keyword search attributes are meant for short values; longer keys are cut.
_MAX_KEYWORD_CHARS = 2000


def object_key_value(key: str, hashed: bool) -> str:
    """The value of ``DocpipeObjectKey`` for an object key: the key, or ``sha256:<hex>``."""
    if hashed:
        return hashed_object_key(key)
    return key[:_MAX_KEYWORD_CHARS]


def document_label(document: DocumentRef, hashed: bool) -> str:
    """``<bucket>/<key>@<version>``, with the key hashed when keys are sensitive."""
    key = object_key_value(document.key, True)[: len(HASH_PREFIX) + 16] if hashed else document.key
    return f"{document.bucket}/{key}@{document.version}"


def static_summary(request: CheckRequest) -> str:
    """One line for the workflow list and the workflow's page: which document."""
    return f"docpipe check of {document_label(request.document, request.hash_object_key)}"


def static_details(request: CheckRequest) -> str:
    """The workflow's details (Temporal markdown): where the document and results are."""
    document = request.document
    hashed = request.hash_object_key
    key = object_key_value(document.key, True) if hashed else document.key
    lines = [
        f"**Document** `s3://{document.bucket}/{key}`" + (" (key hashed)" if hashed else ""),
        f"**Version** `{document.version}`"
        + (" (version id)" if document.version_id else " (ETag)"),
    ]
    if document.size is not None:
        lines.append(f"**Size** {document.size} bytes")
    if not hashed:
        lines.append(f"**Results** `s3://{request.results_bucket}/{request.results_prefix}/`")
    return "\n\n".join(lines)
