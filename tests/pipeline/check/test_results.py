"""Write-once result storage, against moto's in-process S3."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pipeline.check.results import ChunkWrite
from pipeline.check.results import ResultConflictError
from pipeline.check.results import ResultStore
from pipeline.check.results import StoredChunkError
from pipeline.check.results import chunk_bytes
from pipeline.check.results import chunk_key
from pipeline.check.results import to_json_bytes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Client]:
    """One in-process S3 for the module; every test gets its own bucket."""
    aws_dir = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as monkeypatch:
        # No real AWS configuration may leak in; moto supplies fake credentials itself.
        monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_dir / "config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws_dir / "credentials"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def bucket(s3: S3Client) -> str:
    name = f"docpipe-results-{next(_bucket_numbers)}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(s3: S3Client, bucket: str) -> ResultStore:
    return ResultStore(s3, bucket)


def test_mock_honours_if_none_match(s3: S3Client, bucket: str) -> None:
    """The premise of write_once: a conditional put on an existing key fails with 412."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"


def test_write_once_creates(store: ResultStore, s3: S3Client, bucket: str) -> None:
    assert store.write_once("r/report.json", b'{"a":1}', "application/json") is True
    obj = s3.get_object(Bucket=bucket, Key="r/report.json")
    assert obj["Body"].read() == b'{"a":1}'
    assert obj["ContentType"] == "application/json"


def test_write_once_same_bytes_again_is_not_a_new_write(store: ResultStore) -> None:
    assert store.write_once("r/report.json", b"same", "application/json") is True
    assert store.write_once("r/report.json", b"same", "application/json") is False
    assert store.read("r/report.json") == b"same"


def test_write_once_different_bytes_is_a_conflict(store: ResultStore) -> None:
    assert store.write_once("r/report.json", b"ours", "application/json") is True
    with pytest.raises(ResultConflictError, match=r"r/report\.json"):
        store.write_once("r/report.json", b"theirs", "application/json")
    # The first result is never overwritten.
    assert store.read("r/report.json") == b"ours"


def test_read_missing_key_is_none(store: ResultStore) -> None:
    assert store.read("no/such/key") is None


def test_read_missing_bucket_raises(s3: S3Client) -> None:
    with pytest.raises(ClientError):
        ResultStore(s3, "no-such-bucket").read("k")


def _pages(first: int, last: int) -> list[dict[str, Any]]:
    return [
        {
            "page": n,
            "text_chars": n * 10,
            "blank": n % 2 == 0,
            "error": None,
            "note": "r\u00e9sum\u00e9",
        }
        for n in range(first, last + 1)
    ]


def test_chunk_round_trip(store: ResultStore, s3: S3Client, bucket: str) -> None:
    pages = _pages(51, 100)
    assert store.write_chunk("results/doc", pages) == ChunkWrite("written", pages)
    assert list(store.iter_chunks("results/doc", [51])) == pages
    assert store.read_chunk("results/doc", 51, 100) == pages
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="results/doc/")
    assert [o["Key"] for o in listed["Contents"]] == ["results/doc/pages/0000051.jsonl"]


def test_chunk_rewrite_with_same_pages_is_idempotent(store: ResultStore) -> None:
    assert store.write_chunk("p", _pages(1, 3)).outcome == "written"
    assert store.write_chunk("p", _pages(1, 3)) == ChunkWrite("already_there", _pages(1, 3))


def test_the_first_write_of_a_chunk_wins(store: ResultStore) -> None:
    first = _pages(1, 3)
    assert store.write_chunk("p", first).outcome == "written"
    # A redone chunk whose page 2 came out otherwise (a timeout under load before the
    # crash, parsed in time after it): the stored results stand, and are handed back.
    redone = [dict(page, text_chars=0) if page["page"] == 2 else page for page in first]
    assert store.write_chunk("p", redone) == ChunkWrite("kept_first", first)
    assert store.read("p/pages/0000001.jsonl") == chunk_bytes(first)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (chunk_bytes(_pages(1, 4)), "holds pages 1-4, not pages 1-3"),
        (chunk_bytes(_pages(2, 4)), "holds pages 2-4, not pages 1-3"),
        (b"", "holds no pages"),
        (b"not json\n", "not page results"),
        (b'{"no_page": 1}\n', "not page results"),
    ],
)
def test_a_stored_chunk_that_is_not_its_pages_is_refused(
    store: ResultStore, s3: S3Client, bucket: str, body: bytes, message: str
) -> None:
    s3.put_object(Bucket=bucket, Key="p/pages/0000001.jsonl", Body=body)
    with pytest.raises(StoredChunkError, match=message):
        store.read_chunk("p", 1, 3)
    with pytest.raises(StoredChunkError, match=message):
        store.write_chunk("p", _pages(1, 3))
    assert store.read("p/pages/0000001.jsonl") == body, "never overwritten"


def test_reading_a_chunk_that_is_not_there_is_none(store: ResultStore) -> None:
    assert store.read_chunk("p", 1, 3) is None


def test_stored_chunks_are_listed_by_first_page(
    store: ResultStore, s3: S3Client, bucket: str
) -> None:
    for first in (1, 21, 61):
        store.write_chunk("p", _pages(first, first + 9))
    # Not chunk files of this prefix: other names, a deeper folder, a neighbour prefix.
    for key in ("p/pages/notes.txt", "p/pages/x/0000031.jsonl", "p2/pages/0000041.jsonl"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    assert store.stored_chunk_pages("p") == {1, 21, 61}
    # A checkpoint already vouches for the chunks up to page 21: only later ones listed.
    assert store.stored_chunk_pages("p", after_page=21) == {61}
    assert store.stored_chunk_pages("nothing/here") == set()


def test_listing_stored_chunks_pages_through_many(store: ResultStore) -> None:
    firsts = {1 + index for index in range(1100)}
    for first in firsts:
        store.write_chunk("many", _pages(first, first))
    assert store.stored_chunk_pages("many") == firsts


def test_iter_chunks_yields_pages_in_chunk_order_whatever_finishes_first(
    store: ResultStore,
) -> None:
    firsts = [1 + 10 * index for index in range(23)]
    for first in reversed(firsts):
        store.write_chunk("p", _pages(first, first + 9))
    pages = [result["page"] for result in store.iter_chunks("p", firsts, ahead=4)]
    assert pages == list(range(1, 231))


def test_iter_chunks_of_no_chunks_is_empty(store: ResultStore) -> None:
    assert list(store.iter_chunks("p", [])) == []


def test_iter_missing_chunk_raises_file_not_found(store: ResultStore) -> None:
    store.write_chunk("p", _pages(1, 10))
    store.write_chunk("p", _pages(21, 30))
    results = store.iter_chunks("p", [1, 11, 21])
    assert [next(results)["page"] for _ in range(10)] == list(range(1, 11))
    with pytest.raises(FileNotFoundError, match="0000011"):
        next(results)


def test_chunk_bytes_are_one_canonical_line_per_page() -> None:
    data = chunk_bytes([{"page": 1, "b": 2, "a": 1}, {"page": 2}])
    assert data == b'{"a":1,"b":2,"page":1}\n{"page":2}\n'
    assert chunk_bytes([]) == b""


def test_chunk_key_layout() -> None:
    assert chunk_key("results/doc", 1) == "results/doc/pages/0000001.jsonl"
    assert chunk_key("results/doc", 1_000_001) == "results/doc/pages/1000001.jsonl"


def test_chunk_key_lexical_order_is_page_order() -> None:
    firsts = [1, 2, 9, 10, 51, 100, 101, 999, 1001, 10_001, 999_951, 1_000_001]
    keys = [chunk_key("p", first) for first in firsts]
    assert sorted(keys) == keys
    assert sorted(reversed(keys)) == keys


def test_to_json_bytes_is_canonical() -> None:
    one = {"b": [1, {"y": 2, "x": 1}], "a": "\u00e9", "c": None}
    other = {"c": None, "a": "\u00e9", "b": [1, {"x": 1, "y": 2}]}
    assert to_json_bytes(one) == to_json_bytes(other)
    assert to_json_bytes(one) == '{"a":"\u00e9","b":[1,{"x":1,"y":2}],"c":null}'.encode()
    assert json.loads(to_json_bytes(one)) == one
