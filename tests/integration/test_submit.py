"""``docpipe submit`` of many files: one S3 client, a few uploads at once, each event
published as soon as its upload is done. Against the real broker and the moto server."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from app import submit as submit_module
from app.submit import SubmitError
from app.submit import submit_files
from infra.clients import s3_client
from infra.ports import free_ports
from infra.settings import Settings
from tests.support.commands import run_docpipe
from tests.support.commands import settings_env
from tests.support.pdfs import make_pdf
from tests.support.reports import read_topic
from tests.support.s3_faults import S3Faults

FILES = 24


def _files(tmp_path: Path, count: int) -> list[Path]:
    paths = []
    for n in range(count):
        path = tmp_path / f"letter-{n:02d}.pdf"
        path.write_bytes(make_pdf(["text"] * (1 + n % 3)))
        paths.append(path)
    return paths


class _Watched:
    """The one S3 client submit makes, counting clients and the most puts at once."""

    def __init__(self, together: int = 0) -> None:
        # The first ``together`` puts wait for each other: they must be in flight at once.
        self._together = threading.Barrier(together, timeout=30) if together else None
        self.clients = 0
        self.started = 0
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()
        self.faults: S3Faults | None = None

    def client(self, settings: Any) -> Any:
        self.clients += 1
        client = s3_client(settings)
        if self.faults is not None:
            self.faults.install(client)
        client.meta.events.register("before-send.s3.PutObject", self._began)
        client.meta.events.register("after-call.s3.PutObject", self._ended)
        client.meta.events.register("after-call-error.s3.PutObject", self._ended)
        return client

    def _began(self, **_: Any) -> None:
        with self._lock:
            self.started += 1
            self.running += 1
            self.most = max(self.most, self.running)
            first = self._together is not None and self.started <= self._together.parties
        if first and self._together is not None:
            self._together.wait()

    def _ended(self, **_: Any) -> None:
        with self._lock:
            self.running -= 1


@pytest.fixture
def watched(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> _Watched:
    watched = _Watched(together=getattr(request, "param", 0))
    monkeypatch.setattr(submit_module, "s3_client", watched.client)
    return watched


@pytest.mark.parametrize("watched", [4], indirect=True)
async def test_many_files_upload_a_few_at_once_with_one_client(
    settings: Settings, tmp_path: Path, watched: _Watched
) -> None:
    files = _files(tmp_path, FILES)
    submissions = await submit_files(settings, files, key_prefix="batch/", concurrency=4)
    assert [s.path for s in submissions] == files
    assert watched.clients == 1
    # Four puts were in flight at once (the first four waited for each other: one at a
    # time would have broken the barrier), and never more.
    assert watched.most == 4
    s3 = s3_client(settings.s3)
    for submission in submissions:
        document = submission.document
        head = s3.head_object(Bucket=document.bucket, Key=document.key)
        assert head["ContentLength"] == submission.path.stat().st_size == document.size
        assert document.key == f"batch/{submission.path.name}"
    events = await read_topic(settings, settings.kafka.uploads_topic, count=FILES)
    published = sorted(json.loads(record.value)["key"] for record in events)
    assert published == sorted(s.document.key for s in submissions)


async def test_a_refused_upload_stops_the_submit_and_names_the_file(
    settings: Settings, tmp_path: Path, watched: _Watched
) -> None:
    files = _files(tmp_path, 6)
    watched.faults = S3Faults("PutObject", status=403, code="AccessDenied", key="refused/letter-03")
    with pytest.raises(SubmitError) as refused:
        await submit_files(settings, files, key_prefix="refused/", concurrency=2)
    assert "letter-03.pdf" in str(refused.value) and "refused" in str(refused.value)
    # Whatever was published names an object that is there: no event without its upload.
    events = await read_topic(settings, settings.kafka.uploads_topic, count=0, settle_s=1.0)
    s3 = s3_client(settings.s3)
    for record in events:
        event = json.loads(record.value)
        assert event["key"] != "refused/letter-03.pdf"
        s3.head_object(Bucket=event["bucket"], Key=event["key"], VersionId=event["version_id"])


def test_submit_facing_an_unreachable_s3_says_so_on_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    (closed,) = free_ports(1)
    unreachable = dataclasses.replace(
        settings, s3=dataclasses.replace(settings.s3, endpoint_url=f"http://127.0.0.1:{closed}")
    )
    (path,) = _files(tmp_path, 1)
    done = run_docpipe(["submit", str(path)], settings_env(unreachable), timeout_s=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"docpipe: cannot reach S3 at http://127.0.0.1:{closed} (set by DOCPIPE_S3_ENDPOINT_URL)"
    ]
