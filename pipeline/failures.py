"""Which failures are worth waiting out, and which retrying will not change.

One classification for everything that talks to S3 or Temporal: the intake, the
activities, ``docpipe reprocess`` and ``docpipe submit``. Outages (5xx, throttling,
timeouts, connections, an unreachable or overloaded Temporal) are *transient*: waited out
with backoff. A refusal of one request (403, other 4xx, an invalid argument) is
*permanent* for what was asked: retried a few times at most, then reported as what it is.
Credentials that stop working (Temporal's ``PERMISSION_DENIED``/``UNAUTHENTICATED``) refuse
every request alike: they count as transient, so that a broken deploy waits instead of
turning every message into a dead letter.
"""

from __future__ import annotations

from enum import Enum

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError
from botocore.exceptions import ParamValidationError
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode


class S3Failure(Enum):
    """What an S3 error means for the object asked about."""

    # No such object or version (404, NoSuchKey, NoSuchVersion).
    MISSING = "missing"
    # S3 is down, slow or throttling, or the connection failed: wait it out.
    TRANSIENT = "transient"
    # 403: this role may not read the object (a policy, a KMS key it cannot use).
    ACCESS_DENIED = "access_denied"
    # Any other 4xx: the request itself is refused (a misrouted bucket, a bad argument).
    REJECTED = "rejected"


_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
    }
)


def s3_status(exc: ClientError) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a client error; 0 when S3 sent no status."""
    response = exc.response
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status, str(response.get("Error", {}).get("Code") or "")


def classify_s3(exc: BaseException) -> S3Failure | None:
    """What an exception from an S3 call means; None when it is not an S3 failure."""
    if isinstance(exc, ParamValidationError):
        return S3Failure.REJECTED
    if isinstance(exc, BotoCoreError):
        return S3Failure.TRANSIENT
    if not isinstance(exc, ClientError):
        return None
    status, code = s3_status(exc)
    if status == 404 or code in _MISSING_CODES:
        return S3Failure.MISSING
    if status >= 500 or status in (0, 408, 429) or code in _TRANSIENT_CODES:
        return S3Failure.TRANSIENT
    if status == 403:
        return S3Failure.ACCESS_DENIED
    return S3Failure.REJECTED


def describe_s3(exc: BaseException) -> str:
    """An S3 error in a few words: its code and status (never the object's content)."""
    if isinstance(exc, ClientError):
        status, code = s3_status(exc)
        return f"{code} ({status})" if code and code != str(status) else f"HTTP {status}"
    return type(exc).__name__


_TRANSIENT_STATUSES = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.UNAUTHENTICATED,
        # What a start can miss is its namespace: a deployment's fault, every start's alike.
        RPCStatusCode.NOT_FOUND,
    }
)


def temporal_refused(exc: BaseException) -> bool | None:
    """True when Temporal refused the request for good (invalid argument, failed
    precondition, a payload over its limit), False when the failure is worth waiting out
    (an outage, or credentials or a namespace that a deployment got wrong), None when
    ``exc`` is not a Temporal failure."""
    if not isinstance(exc, RPCError):
        return None
    return exc.status not in _TRANSIENT_STATUSES
