"""Priority lanes and fair shares: where a check waits when workers are busy.

A check is started with a Temporal ``Priority``: its ``priority_key`` puts live uploads
ahead of re-checks and backfills (lower numbers go first), and its ``fairness_key`` shares
workers between tenants within one priority (round robin between keys), so that one
tenant's flood of uploads does not starve another's single upload. Every task of the
check (its workflow tasks and activities) inherits both.

Pure functions: imported by the intake, the CLI and the workflow sandbox.
"""

from __future__ import annotations

import hashlib

from temporalio.common import Priority

from pipeline.models import DocumentRef

# Temporal's own limit on a fairness key.
MAX_FAIRNESS_KEY_BYTES = 64
# The server's default range of priority keys; its default priority is the middle (3).
HIGHEST_PRIORITY, LOWEST_PRIORITY = 1, 5

# How a document's fairness key is made (DOCPIPE_TEMPORAL_FAIRNESS_KEY).
FAIRNESS_PREFIX = "prefix"  # the bucket and the key's first segment: "documents/acme"
FAIRNESS_BUCKET = "bucket"  # the bucket alone
FAIRNESS_NONE = "none"  # no fair shares: first come, first served within a priority
FAIRNESS_FIELD = "field:"  # "field:tenant": that field of the upload event, else the prefix
FAIRNESS_MODES = (FAIRNESS_PREFIX, FAIRNESS_BUCKET, FAIRNESS_NONE, FAIRNESS_FIELD + "<name>")


def check_fairness_mode(mode: str) -> str:
    """``mode`` if it names a way to make fairness keys.

    Raises:
        ValueError: it does not.
    """
    if mode in (FAIRNESS_PREFIX, FAIRNESS_BUCKET, FAIRNESS_NONE):
        return mode
    if mode.startswith(FAIRNESS_FIELD) and mode[len(FAIRNESS_FIELD) :].strip():
        return mode
    raise ValueError(f"{mode!r} is not one of {', '.join(FAIRNESS_MODES)}")


def event_field(mode: str) -> str | None:
    """The upload event field that ``mode`` takes fairness keys from, if it does."""
    return mode[len(FAIRNESS_FIELD) :].strip() if mode.startswith(FAIRNESS_FIELD) else None


def _fit(text: str) -> str:
    raw = text.encode()
    if len(raw) <= MAX_FAIRNESS_KEY_BYTES:
        return text
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return raw[: MAX_FAIRNESS_KEY_BYTES - len(digest) - 1].decode(errors="ignore") + "~" + digest


def fairness_key(
    document: DocumentRef, mode: str, *, tenant: str | None = None, hashed: bool = False
) -> str | None:
    """The fairness key of a document's check under ``mode`` (None: no fair shares).

    Args:
        tenant: the upload event's field named by a ``field:<name>`` mode, if it had one.
        hashed: object keys are sensitive (``DOCPIPE_TEMPORAL_HASH_OBJECT_KEYS``): the
            key's first segment is hashed like the key itself.
    """
    if mode == FAIRNESS_NONE:
        return None
    if mode.startswith(FAIRNESS_FIELD) and tenant:
        return _fit(tenant)
    if mode == FAIRNESS_BUCKET:
        return _fit(document.bucket)
    first, slash, _ = document.key.partition("/")
    if not slash:
        # A key without a folder has no tenant segment: the bucket is its share.
        return _fit(document.bucket)
    if hashed:
        first = "sha256:" + hashlib.sha256(first.encode()).hexdigest()[:16]
    return _fit(f"{document.bucket}/{first}")


def lane(priority_key: int, fairness: str | None) -> Priority:
    """The ``Priority`` a check is started with."""
    return Priority(priority_key=priority_key, fairness_key=fairness or None)


def describe_lane(priority: Priority) -> str:
    """How the UI summary and ``docpipe status`` name a check's lane."""
    text = f"priority {priority.priority_key or 'default'}"
    if priority.fairness_key:
        text += f", share {priority.fairness_key}"
    return text
