"""A scanned document through a real worker: OCR finds its IBAN, and its chunk says so."""

from __future__ import annotations

import json
from pathlib import Path

from infra.clients import s3_client
from infra.clients import temporal_client
from infra.settings import Settings
from pipeline.models import DocumentRef
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.scans import known_pages
from tests.support.scans import scan_pdf
from tests.support.settings import with_pipeline


async def test_a_scanned_document_with_an_iban_is_reviewed_for_sensitive_data_found_by_ocr(
    settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings = with_pipeline(settings, tmp_path, pool_size=2)
    start_component(["worker"], settings)
    pages = known_pages(2, seed=5)
    s3 = s3_client(settings.s3)
    bucket = settings.s3.documents_buckets[0]
    put = s3.put_object(
        Bucket=bucket, Key="ocr/scan.pdf", Body=scan_pdf([page.text for page in pages])
    )
    document = DocumentRef(bucket=bucket, key="ocr/scan.pdf", version_id=put["VersionId"])

    client = await temporal_client(settings.temporal, settings.codec)
    summary = await (await start_check(client, settings, document)).result()

    assert (summary.verdict, summary.reasons) == ("review", ["sensitive_data"])
    report = json.loads(
        s3.get_object(Bucket=summary.report_bucket, Key=summary.report_key)["Body"].read()
    )
    found = report["checks"]["sensitive_data"]["by_type"]
    assert (found["iban"]["count"], found["email"]["count"]) == (2, 2)
    assert report["checks"]["ocr"]["pages_read"] == {"count": 2, "pages": [1, 2]}
    (chunk,) = report["pages"]["chunks"]
    body = s3.get_object(Bucket=settings.s3.results_bucket, Key=chunk)["Body"].read()
    lines = [json.loads(line) for line in body.splitlines()]
    assert [line["text_source"] for line in lines] == ["ocr", "ocr"]
    assert all(line["ocr_confidence"] > 60 and line["sensitive"]["iban"] == 1 for line in lines)
    # Masked samples only: no IBAN, address or name of the scans is stored.
    for page in pages:
        for raw in (*page.ibans, *page.emails, page.text.split()[3]):
            assert raw not in body.decode()
            assert raw not in json.dumps(report)
