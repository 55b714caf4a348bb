"""What the views share: which check a name means."""

from __future__ import annotations

import pytest

from app.lookups import workflow_id_of


def test_status_takes_workflow_or_document_ids() -> None:
    assert workflow_id_of("docpipe/documents/a.pdf@v1") == "docpipe/documents/a.pdf@v1"
    assert workflow_id_of("documents/a.pdf@v1") == "docpipe/documents/a.pdf@v1"
    with pytest.raises(LookupError, match="give a workflow ID"):
        workflow_id_of("a.pdf")
