"""A worker's log, after damaged and real-world documents: one record per line, no noise.

Damaged documents make libraries complain (qpdf on stderr, pikepdf and pypdf through
logging, warnings at import); an operator reads the worker's log to follow checks, so what
they say arrives there as one line each, with the check it concerns, once per document.
"""

from __future__ import annotations

from pathlib import Path

from infra.clients import s3_client
from infra.clients import temporal_client
from infra.settings import Settings
from pipeline.models import DocumentRef
from tests.conftest import StartComponent
from tests.support import damaged
from tests.support import hostile
from tests.support.checks import start_check
from tests.support.corpus import CORPUS
from tests.support.logs import LOG_LINE
from tests.support.logs import log_problems
from tests.support.settings import with_pipeline

DAMAGED = {
    **damaged.DAMAGED,
    "not-xmp-metadata": damaged.not_xmp_metadata,
    "truncated": hostile.truncated,
    "garbled-middle": hostile.garbled_middle,
    "not-a-pdf": hostile.not_a_pdf,
    "self-referencing-tree": hostile.self_referencing_tree,
}


def _documents() -> dict[str, bytes]:
    documents = {f"damaged/{name}.pdf": build() for name, build in DAMAGED.items()}
    if CORPUS.is_dir():
        for path in sorted(CORPUS.rglob("*.pdf")):
            documents[f"corpus/{path.relative_to(CORPUS)}"] = path.read_bytes()
    return documents


async def test_damaged_documents_leave_a_log_of_single_lines(
    settings: Settings, tmp_path: Path, start_component: StartComponent
) -> None:
    settings = with_pipeline(settings, tmp_path, pool_size=2)
    worker = start_component(["worker", "--log-level", "debug"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    s3 = s3_client(settings.s3)
    bucket = settings.s3.documents_buckets[0]
    handles = []
    for key, body in _documents().items():
        put = s3.put_object(Bucket=bucket, Key=key, Body=body)
        document = DocumentRef(bucket=bucket, key=key, version_id=put["VersionId"])
        handles.append(await start_check(client, settings, document))
    for handle in handles:
        await handle.result()
    assert worker.alive

    assert log_problems(worker.log_path) == []
    text = worker.log_path.read_text()
    assert "Traceback" not in text and "\n\n" not in text
    # What libraries said reached the log as records, with their check, once per document.
    libraries = [
        match
        for match in map(LOG_LINE.match, text.splitlines())
        if match and match["logger"].startswith(("pikepdf", "pypdf", "parser.stderr"))
    ]
    lines = [m.group(0).split(" ", 2)[2] for m in libraries]
    assert len(lines) == len(set(lines)), "a library's line repeated for one document"
    assert all("[workflow docpipe/" in line for line in lines)
