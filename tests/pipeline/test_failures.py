"""Which S3 and Temporal failures are outages to wait out, and which are refusals."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectTimeoutError
from botocore.exceptions import EndpointConnectionError
from botocore.exceptions import ParamValidationError
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from pipeline.failures import S3Failure
from pipeline.failures import classify_s3
from pipeline.failures import describe_s3
from pipeline.failures import temporal_refused


def _client_error(status: int, code: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {}}
    response["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(response, "HeadObject")


# S3's answers (status, code) by what they mean. A HEAD's answer has no body: its code is
# the status.
S3_ANSWERS = {
    S3Failure.MISSING: [(404, "404"), (404, "NoSuchKey"), (404, "NoSuchVersion")],
    S3Failure.ACCESS_DENIED: [(403, "403"), (403, "AccessDenied")],
    S3Failure.REJECTED: [
        (400, "400"),
        (400, "AuthorizationHeaderMalformed"),
        (301, "PermanentRedirect"),
        (409, "OperationAborted"),
    ],
    S3Failure.TRANSIENT: [
        (500, "InternalError"),
        (503, "SlowDown"),
        (429, "TooManyRequests"),
        (400, "RequestTimeout"),
        (403, "RequestTimeTooSkewed"),
    ],
}


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [(status, code, kind) for kind, answers in S3_ANSWERS.items() for status, code in answers],
)
def test_s3_errors_by_status_and_code(status: int, code: str, kind: S3Failure) -> None:
    assert classify_s3(_client_error(status, code)) is kind


def test_s3_connection_failures_are_outages_and_a_bad_parameter_a_refusal() -> None:
    assert classify_s3(EndpointConnectionError(endpoint_url="http://x")) is S3Failure.TRANSIENT
    assert classify_s3(ConnectTimeoutError(endpoint_url="http://x")) is S3Failure.TRANSIENT
    assert classify_s3(ParamValidationError(report="bad key")) is S3Failure.REJECTED
    assert classify_s3(ValueError("not S3")) is None


def test_an_s3_error_is_described_by_its_code_and_status() -> None:
    assert describe_s3(_client_error(403, "AccessDenied")) == "AccessDenied (403)"
    assert describe_s3(_client_error(403, "403")) == "HTTP 403"
    assert describe_s3(EndpointConnectionError(endpoint_url="x")) == "EndpointConnectionError"


@pytest.mark.parametrize(
    ("status", "refused"),
    [
        (RPCStatusCode.INVALID_ARGUMENT, True),
        (RPCStatusCode.FAILED_PRECONDITION, True),
        (RPCStatusCode.UNAVAILABLE, False),
        (RPCStatusCode.DEADLINE_EXCEEDED, False),
        (RPCStatusCode.RESOURCE_EXHAUSTED, False),
        # Credentials that stop working refuse everything alike: waited out, not a letter.
        (RPCStatusCode.PERMISSION_DENIED, False),
        (RPCStatusCode.UNAUTHENTICATED, False),
        # A start finds nothing missing but its namespace: waited out too.
        (RPCStatusCode.NOT_FOUND, False),
    ],
)
def test_temporal_errors(status: RPCStatusCode, refused: bool) -> None:
    assert temporal_refused(RPCError("m", status, b"")) is refused


def test_what_is_not_a_temporal_error_is_not_classified() -> None:
    assert temporal_refused(RuntimeError("a bug")) is None
