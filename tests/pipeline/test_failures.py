"""Which S3 and Temporal failures are outages to wait out, and which are refusals."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
)
from temporalio.service import RPCError, RPCStatusCode

from pipeline.failures import S3Failure, classify_s3, describe_s3, temporal_refused


def _client_error(status: int, code: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {}}
    response["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(response, "HeadObject")


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (404, "404", S3Failure.MISSING),  # a HEAD's answer has no body: the code is the status
        (404, "NoSuchKey", S3Failure.MISSING),
        (404, "NoSuchVersion", S3Failure.MISSING),
        (403, "403", S3Failure.ACCESS_DENIED),
        (403, "AccessDenied", S3Failure.ACCESS_DENIED),
        (400, "400", S3Failure.REJECTED),
        (400, "AuthorizationHeaderMalformed", S3Failure.REJECTED),
        (301, "PermanentRedirect", S3Failure.REJECTED),
        (409, "OperationAborted", S3Failure.REJECTED),
        (500, "InternalError", S3Failure.TRANSIENT),
        (503, "SlowDown", S3Failure.TRANSIENT),
        (429, "TooManyRequests", S3Failure.TRANSIENT),
        (400, "RequestTimeout", S3Failure.TRANSIENT),
        (403, "RequestTimeTooSkewed", S3Failure.TRANSIENT),
    ],
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
        (RPCStatusCode.NOT_FOUND, True),
        (RPCStatusCode.UNAVAILABLE, False),
        (RPCStatusCode.DEADLINE_EXCEEDED, False),
        (RPCStatusCode.RESOURCE_EXHAUSTED, False),
        # Credentials that stop working refuse everything alike: waited out, not a letter.
        (RPCStatusCode.PERMISSION_DENIED, False),
        (RPCStatusCode.UNAUTHENTICATED, False),
    ],
)
def test_temporal_errors(status: RPCStatusCode, refused: bool) -> None:
    assert temporal_refused(RPCError("m", status, b"")) is refused


def test_what_is_not_a_temporal_error_is_not_classified() -> None:
    assert temporal_refused(RuntimeError("a bug")) is None
