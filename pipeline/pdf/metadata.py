"""A document's metadata: its information entries and XMP, what they claim, and the
sensitive data they hold (runs in a parser process)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pypdf import PdfReader

from pipeline.facts import DocumentFeatures
from pipeline.pdf.objects import text_string
from pipeline.pdf.sensitive import find_sensitive
from pipeline.pdf.sensitive import joined_up_to
from pipeline.pdf.xmp import Xmp
from pipeline.pdf.xmp import read_xmp

# The document information entries and XMP values searched for sensitive data: the first
# ones of each, and at most a page of text's worth of them all.
_MAX_METADATA_ENTRIES = 100
_MAX_METADATA_CHARS = 100_000
_METADATA_DATES = frozenset({"/CreationDate", "/ModDate"})


def information(reader: PdfReader) -> Mapping[str, Any]:
    """The document information entries (the trailer's ``/Info``)."""
    return reader.metadata or {}


def metadata_text(info: Mapping[str, Any], xmp_values: Iterable[str] = ()) -> str:
    """The text of the document information entries, dates aside (their digits are no
    one's data), then the XMP metadata's values that do not repeat one already read (an
    author is often in both): what the sensitive-data search reads, bounded like a page's
    annotations."""
    seen: set[str] = set()

    def entries() -> Iterator[str]:
        for key in itertools.islice(info, _MAX_METADATA_ENTRIES):
            if key not in _METADATA_DATES:
                text = text_string(info[key])
                seen.add(text.strip())
                yield text

    def new_values() -> Iterator[str]:
        for value in xmp_values:
            if value not in seen:
                seen.add(value)
                yield value

    return joined_up_to(itertools.chain(entries(), new_values()), _MAX_METADATA_CHARS)


def with_metadata(reader: PdfReader, features: DocumentFeatures) -> DocumentFeatures:
    """What the XMP metadata claims, and the sensitive data of the information entries and
    the XMP metadata."""
    try:
        xmp = read_xmp(reader, _MAX_METADATA_ENTRIES)
    except Exception:
        # Unparsable XMP claims nothing and holds nothing read; the rest of the document
        # is not the worse for it.
        xmp = Xmp()
    sensitive = find_sensitive(metadata_text(information(reader), xmp.values))
    return replace(
        features,
        pdfa_part=xmp.claims.pdfa_part,
        pdfa_conformance=xmp.claims.pdfa_conformance,
        pdfua_part=xmp.claims.pdfua_part,
        metadata_sensitive=sensitive.counts,
        metadata_sensitive_samples=sensitive.samples,
    )
