"""Every reason code docpipe gives, in one place: what operators and upstream teams read.

A reason names what is wrong or what was found, never how docpipe noticed. Members are
plain strings too (``Reason.BLANK_PAGES == "blank_pages"``), so reports, search
attributes, Kafka headers and workflow histories carry exactly the strings documented in
the README and docs/REPORT.md. Imported by the workflow sandbox: no side effects.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """A reason code. The groups below say which are which."""

    # The document could not be checked page by page: always reject.
    NOT_PDF = "not_pdf"
    UNREADABLE = "unreadable"
    ENCRYPTED = "encrypted"
    TOO_LARGE = "too_large"
    OBJECT_MISSING = "object_missing"
    OBJECT_CHANGED = "object_changed"
    # S3 refuses docpipe the object (403): a bucket policy, a KMS key it may not use.
    OBJECT_FORBIDDEN = "object_forbidden"
    # What a check can find in a document it could read: rejected, reviewed or ignored,
    # as the verdict policy says.
    JAVASCRIPT = "javascript"
    LAUNCH_ACTIONS = "launch_actions"
    EMBEDDED_FILES = "embedded_files"
    XFA_FORMS = "xfa_forms"
    PAGE_ERRORS = "page_errors"
    BLANK_PAGES = "blank_pages"
    # Image-only pages: not read (OCR is off), read with low confidence, or not readable.
    NEEDS_OCR = "needs_ocr"
    OCR_LOW_CONFIDENCE = "ocr_low_confidence"
    OCR_FAILED = "ocr_failed"
    SENSITIVE_DATA = "sensitive_data"
    FORMS = "forms"
    ROTATED_PAGES = "rotated_pages"
    MIXED_PAGE_SIZES = "mixed_page_sizes"
    EXTERNAL_LINKS = "external_links"
    # Signatures and repair: a digest that does not match what was signed; content changed
    # in a revision after a signature (beyond DSS, document timestamps and later signing);
    # pages checked on a copy qpdf repaired; a signed document (informational).
    SIGNATURE_BROKEN = "signature_broken"
    MODIFIED_AFTER_SIGNING = "modified_after_signing"
    REPAIRED = "repaired"
    SIGNED = "signed"
    # An upload event the intake refused (its dead letter's reason), with TOO_LARGE (the
    # event) and OBJECT_MISSING (the object it names).
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    WRONG_SHAPE = "wrong_shape"
    MISSING_BUCKET = "missing_bucket"
    MISSING_KEY = "missing_key"
    WRONG_TYPE = "wrong_type"
    BUCKET_NOT_ALLOWED = "bucket_not_allowed"
    BAD_KEY = "bad_key"
    # An event the intake could not start a check for, retrying would not change it.
    S3_ACCESS_DENIED = "s3_access_denied"
    S3_REQUEST_REJECTED = "s3_request_rejected"
    START_REJECTED = "start_rejected"


# The document could not be checked at all: these always reject, in this order.
PROBLEMS = (
    Reason.NOT_PDF,
    Reason.UNREADABLE,
    Reason.ENCRYPTED,
    Reason.TOO_LARGE,
    Reason.OBJECT_MISSING,
    Reason.OBJECT_CHANGED,
    Reason.OBJECT_FORBIDDEN,
)
# What a check can find in a document it could read, in the order reports list them.
FINDINGS = (
    Reason.JAVASCRIPT,
    Reason.LAUNCH_ACTIONS,
    Reason.SIGNATURE_BROKEN,
    Reason.MODIFIED_AFTER_SIGNING,
    Reason.REPAIRED,
    Reason.EMBEDDED_FILES,
    Reason.XFA_FORMS,
    Reason.PAGE_ERRORS,
    Reason.BLANK_PAGES,
    Reason.NEEDS_OCR,
    Reason.OCR_FAILED,
    Reason.OCR_LOW_CONFIDENCE,
    Reason.SENSITIVE_DATA,
    Reason.FORMS,
    Reason.ROTATED_PAGES,
    Reason.MIXED_PAGE_SIZES,
    Reason.EXTERNAL_LINKS,
    Reason.SIGNED,
)
# Every reason a verdict can give, in the order reports list them.
VERDICT_REASONS = (*PROBLEMS, *FINDINGS)
# Why the intake refused an event while reading it (before asking S3 anything).
EVENT_REFUSALS = (
    Reason.NOT_UTF8,
    Reason.NOT_JSON,
    Reason.WRONG_SHAPE,
    Reason.MISSING_BUCKET,
    Reason.MISSING_KEY,
    Reason.WRONG_TYPE,
    Reason.TOO_LARGE,
    Reason.BUCKET_NOT_ALLOWED,
    Reason.BAD_KEY,
)
# Why the intake gave up on a well-formed event: the object it names is missing, or S3 or
# Temporal refused what the event needs, for good.
INTAKE_REFUSALS = (
    Reason.OBJECT_MISSING,
    Reason.S3_ACCESS_DENIED,
    Reason.S3_REQUEST_REJECTED,
    Reason.START_REJECTED,
)
# Every reason a dead letter can carry.
DEAD_LETTERS = (*EVENT_REFUSALS, *INTAKE_REFUSALS)
