"""What the inspection learns about a document as a whole: its features and signatures.

Counts and flags only, never names or text of the document: these values travel in
activity results and land in the report. Imported by the workflow sandbox (through
``pipeline.models``): values only.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field


@dataclass(frozen=True)
class SignatureFacts:
    """One signature field, as counts and flags: never a name (signer, subject or field).

    Nothing here says whether the signer is trusted: certificate chains are not checked.
    """

    # "signature" (/Sig) or "timestamp" (a document timestamp, /DocTimeStamp).
    kind: str = "signature"
    signed: bool = False
    # The signature dictionary's /SubFilter, e.g. "adbe.pkcs7.detached" (cut to 60).
    sub_filter: str | None = None
    # When the signer says it signed (signed attributes, else /M), ISO 8601.
    signing_time: str | None = None
    # The digest over the /ByteRange matches the one the signer signed.
    intact: bool | None = None
    # The signer's signature over that digest verifies with the certificate it carries.
    signature_valid: bool | None = None
    # The revision the signature covers (1: the original document).
    revision: int | None = None
    # entire_file, entire_revision, contiguous_block or unclear.
    coverage: str | None = None
    # What the revisions after the signed one change: none, lta_updates (DSS, document
    # timestamps), form_filling, annotations, other or suspicious.
    changes_after: str | None = None
    # The changes after it go beyond what docpipe counts as harmless (see docs/REPORT.md).
    modified_after: bool = False
    # Why the signature could not be examined completely.
    error: str | None = None


@dataclass(frozen=True)
class DocumentFeatures:
    """What a whole document holds, beyond its pages. Small: it travels in workflow history.

    Only counts, flags and short strings (metadata values are cut to 120 characters);
    never document text. Title, author, subject and keywords are not read.
    """

    # Revision of the standard security handler, when encrypted.
    encryption_revision: int | None = None
    # Encrypted, but opens with the empty user password (so its pages are checked).
    empty_user_password: bool = False
    # Where document-level JavaScript is: names_tree, open_action, document_actions,
    # form_actions.
    javascript: list[str] = field(default_factory=list)
    # Launch actions outside pages (open action, document or form field actions).
    launch_actions: int = 0
    # Files in the document's EmbeddedFiles name tree.
    embedded_files: int = 0
    acroform: bool = False
    form_fields: int = 0
    xfa: bool = False
    producer: str | None = None
    creator: str | None = None
    created: str | None = None
    modified: str | None = None
    # Sensitive data in the document's metadata, its information entries (author, title,
    # subject, keywords, custom ones) and its XMP packet (any schema; machine-made IDs
    # aside): counts by type and masked samples, as a page's.
    metadata_sensitive: dict[str, int] = field(default_factory=dict)
    metadata_sensitive_samples: dict[str, list[str]] = field(default_factory=dict)
    # Sensitive data in the text files of the EmbeddedFiles name tree (the first 20 files;
    # pipeline.pdf.attachments): counts by type and masked samples, and how many files
    # were read, and not read (not text, past the first 20, or not decodable).
    attachment_sensitive: dict[str, int] = field(default_factory=dict)
    attachment_sensitive_samples: dict[str, list[str]] = field(default_factory=dict)
    attachments_read: int = 0
    attachments_not_read: int = 0
    # Sensitive data in the values of form fields that no page shows (no widget of theirs
    # is on a page: pipeline.pdf.form_values; a page's fields count on that page) and in
    # an XFA form's data: counts by type and masked samples, and how many values were read.
    field_sensitive: dict[str, int] = field(default_factory=dict)
    field_sensitive_samples: dict[str, list[str]] = field(default_factory=dict)
    fields_off_pages: int = 0
    # Sensitive data in the titles of the document's bookmarks (its outline): counts by
    # type and masked samples, and how many titles were read.
    outline_sensitive: dict[str, int] = field(default_factory=dict)
    outline_sensitive_samples: dict[str, list[str]] = field(default_factory=dict)
    outline_items: int = 0
    # Set when the catalog could not be read completely (the pages may still be fine).
    read_error: str | None = None
    # pypdf could not read the file as it is, and the pages checked are those of a copy
    # qpdf repaired: why it could not (``repair_cause``) and qpdf's warnings (samples).
    repaired: bool = False
    repair_cause: str | None = None
    repair_warnings: list[str] = field(default_factory=list)
    # Revisions of the file (1 + incremental updates) and the byte offset where each ends
    # (the first ones, at most 100); None when not examined.
    revisions: int | None = None
    revision_ends: list[int] = field(default_factory=list)
    # Signature fields (all of them) and the first ones' facts (at most 20).
    signature_fields: int = 0
    signatures: list[SignatureFacts] = field(default_factory=list)
    # Some signature's later revisions change more than DSS, timestamps or signing.
    modified_after_signing: bool = False
    # Why revisions and signatures could not be examined.
    integrity_error: str | None = None
    # What the XMP metadata claims (not validated): PDF/A part and conformance, PDF/UA part.
    pdfa_part: int | None = None
    pdfa_conformance: str | None = None
    pdfua_part: int | None = None
