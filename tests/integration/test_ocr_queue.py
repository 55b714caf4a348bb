"""An OCR queue of its own: with ``DOCPIPE_TEMPORAL_OCR_TASK_QUEUE`` set, a scanned chunk
is checked by the ``docpipe worker --role ocr`` process, and a text document never
reaches it. Two real workers on the session's stack."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
from pypdf import PdfWriter

from infra.clients import s3_client
from infra.clients import temporal_client
from infra.settings import Settings
from pipeline.check.results import chunk_key
from pipeline.models import DocumentRef
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.crashes import assert_every_page_once
from tests.support.crashes import attempts
from tests.support.crashes import upload
from tests.support.crashes import upload_pages
from tests.support.pdfs import make_large_pdf
from tests.support.scans import known_pages
from tests.support.scans import scan_pdf


def _text_then_scanned(text_pages: int, scanned: list[str], path: Path) -> bytes:
    """A document of ``text_pages`` generated text pages, then scans of ``scanned``."""
    make_large_pdf(text_pages, path=path)
    writer = PdfWriter()
    writer.append(str(path))
    writer.append(io.BytesIO(scan_pdf(scanned)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.slow
async def test_a_scanned_chunk_goes_to_the_ocr_worker_and_a_text_document_never_does(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    temporal = dataclasses.replace(
        default_settings.temporal, ocr_task_queue=f"{default_settings.temporal.task_queue}-ocr"
    )
    settings = dataclasses.replace(default_settings, temporal=temporal)
    size = settings.pipeline.chunk_pages
    client = await temporal_client(settings.temporal, settings.codec)
    worker = start_component(["worker"], settings)
    ocr_worker = start_component(["worker", "--role", "ocr"], settings)

    text = upload_pages(settings, size + 10, tmp_path)
    summary = await (await start_check(client, settings, text)).result()
    assert summary.page_count == size + 10
    assert "sensitive_data" not in summary.reasons
    assert len(attempts(worker)) == 1
    assert attempts(ocr_worker) == [], "a text document reached the OCR worker"

    scanned = [page.text for page in known_pages(3)]
    body = _text_then_scanned(size, scanned, tmp_path / "text.pdf")
    document: DocumentRef = upload(settings, body, "partly-scanned.pdf")
    summary = await (await start_check(client, settings, document)).result()
    assert summary.page_count == size + 3
    # The page worker stored the text chunk; the OCR worker went on from the scanned one.
    assert attempts(worker)[-1] == (1, 1)
    assert attempts(ocr_worker) == [(1, size + 1)]
    assert_every_page_once(settings, document, size + 3)
    prefix = document.results_prefix(settings.s3.results_prefix)
    body = (
        s3_client(settings.s3)
        .get_object(Bucket=settings.s3.results_bucket, Key=chunk_key(prefix, size + 1))["Body"]
        .read()
    )
    pages = [json.loads(line) for line in body.splitlines()]
    assert [page["page"] for page in pages] == [size + 1, size + 2, size + 3]
    assert {page["text_source"] for page in pages} == {"ocr"}
    # What OCR read was checked: the scans carry e-mail addresses and IBANs, the text none.
    assert "sensitive_data" in summary.reasons
