"""Sensitive data a document holds in its metadata, the information entries (author,
title, subject, keywords, custom ones) and the XMP packet (any schema): found like a
page's (counts and masked samples), reported apart from the pages, and enough for the
``sensitive_data`` reason. Dates and machine-made IDs are not searched, a value in both
counts once, and a hostile dictionary or packet is read up to its bound."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pypdf import PdfReader
from pypdf.generic import ByteStringObject
from pypdf.generic import NameObject
from pypdf.generic import NumberObject
from pypdf.generic import TextStringObject

from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.metadata import metadata_text
from pipeline.pdf.sensitive import find_sensitive
from pipeline.pdf.xmp import MAX_XMP_NODES
from pipeline.pdf.xmp import read_xmp
from pipeline.reasons import Reason
from tests.support.feature_pdfs import SEEDED
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.pdf_edits import with_xmp
from tests.support.reports import report_of_file

(EMAIL, MASKED_EMAIL), _ = SEEDED["email"]
(IBAN, MASKED_IBAN), _ = SEEDED["iban"]
(PHONE, MASKED_PHONE), _ = SEEDED["phone"]
CARD = SEEDED["payment_card"][0][0]
# A real date whose digits the card detector would take for a card number.
CARD_LIKE_DATE = "D:20240115093000-05'00'"


def _with_info(path: Path, info: dict[str, str]) -> Path:
    path.write_bytes(make_feature_pdf(["text"], metadata=info))
    return path


def test_an_author_and_keywords_holding_sensitive_data_make_the_document_sensitive(
    tmp_path: Path,
) -> None:
    path = _with_info(
        tmp_path / "meta.pdf",
        {"/Author": f"Jane <{EMAIL}>", "/Keywords": f"refund {IBAN}", "/Title": "Letter"},
    )
    features = inspect_document(path).features
    assert features.metadata_sensitive == {"email": 1, "iban": 1}
    assert features.metadata_sensitive_samples == {"email": [MASKED_EMAIL], "iban": [MASKED_IBAN]}

    report = report_of_file(path)
    found = report["checks"]["sensitive_data"]
    # The page holds nothing; the document's information entries do.
    assert (found["total"], found["pages"]["count"]) == (0, 0)
    assert found["metadata"] == {
        "total": 2,
        "by_type": {
            "email": {"count": 1, "samples": [MASKED_EMAIL]},
            "iban": {"count": 1, "samples": [MASKED_IBAN]},
        },
    }
    assert Reason.SENSITIVE_DATA in report["verdict"]["reasons"]
    written = json.dumps(report)
    assert EMAIL not in written and IBAN not in written


def test_dates_are_not_searched_and_a_plain_document_has_no_metadata_findings(
    tmp_path: Path,
) -> None:
    assert find_sensitive(CARD_LIKE_DATE).counts == {"payment_card": 1}
    path = _with_info(
        tmp_path / "dated.pdf",
        {"/CreationDate": CARD_LIKE_DATE, "/ModDate": CARD_LIKE_DATE, "/Title": "Minutes"},
    )
    assert inspect_document(path).features.metadata_sensitive == {}
    report = report_of_file(path)
    assert report["checks"]["sensitive_data"]["metadata"] == {"total": 0, "by_type": {}}
    assert Reason.SENSITIVE_DATA not in report["verdict"]["reasons"]


def test_a_dictionary_of_huge_entries_is_read_up_to_its_bound() -> None:
    # Entries past the first hundred, and text past 100,000 characters, are not read.
    late = {"/Late": TextStringObject(EMAIL)}
    many = {f"/Custom{n:03}": TextStringObject("x") for n in range(99)}
    assert EMAIL in metadata_text({**many, **late})
    assert EMAIL not in metadata_text({**many, "/Custom099": TextStringObject("x"), **late})
    huge = {"/Subject": TextStringObject("y" * 100_000), "/Author": TextStringObject(EMAIL)}
    assert metadata_text(huge) == "y" * 100_000
    # Names, numbers and binary strings are no one's text.
    others = {
        "/Title": TextStringObject("Letter"),
        "/Count": NumberObject(3),
        "/Kind": NameObject("/Invoice"),
        "/Raw": ByteStringObject(EMAIL.encode()),
    }
    assert metadata_text(others) == "Letter"


# --- XMP ----------------------------------------------------------------------------------

_RDF = 'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
# As an office suite writes it: the author again (as in the information entries), keywords
# as an attribute, a custom schema's property, and IDs whose digits pass for a card number.
_OFFICE_XMP = f"""<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF {_RDF}>
  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
    pdf:Producer="Office" pdf:Keywords="refund {IBAN}"/>
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:creator><rdf:Seq><rdf:li>Jane &lt;{EMAIL}&gt;</rdf:li></rdf:Seq></dc:creator>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Letter</rdf:li></rdf:Alt></dc:title>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmp:CreateDate="2024-01-15T09:30:00-05:00" xmpMM:DocumentID="xmp.did:{CARD}">
   <xmpMM:InstanceID>xmp.iid:{CARD}</xmpMM:InstanceID>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:case="http://example.com/ns/case/">
   <case:Note>call <![CDATA[{PHONE}]]></case:Note>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def _with_both(path: Path, info: dict[str, str], packet: str) -> Path:
    path.write_bytes(with_xmp(make_feature_pdf(["text"], metadata=info), packet))
    return path


def _packet(body: str) -> str:
    return f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF {_RDF}>{body}</rdf:RDF></x:xmpmeta>'


def test_xmp_values_of_any_schema_are_searched_and_an_author_in_both_counts_once(
    tmp_path: Path,
) -> None:
    assert find_sensitive(f"xmp.did:{CARD}").counts == {"payment_card": 1}
    path = _with_both(tmp_path / "office.pdf", {"/Author": f"Jane <{EMAIL}>"}, _OFFICE_XMP)
    features = inspect_document(path).features
    assert features.metadata_sensitive == {"email": 1, "iban": 1, "phone": 1}
    assert features.metadata_sensitive_samples == {
        "email": [MASKED_EMAIL],
        "iban": [MASKED_IBAN],
        "phone": [MASKED_PHONE],
    }
    report = report_of_file(path)
    assert report["checks"]["sensitive_data"]["metadata"]["total"] == 3
    assert Reason.SENSITIVE_DATA in report["verdict"]["reasons"]
    written = json.dumps(report)
    assert not any(raw in written for raw in (EMAIL, IBAN, PHONE))


def test_unreadable_xmp_leaves_the_information_entries_searched(tmp_path: Path) -> None:
    broken = "<x:xmpmeta><rdf:RDF><unclosed"
    path = _with_both(tmp_path / "broken.pdf", {"/Author": EMAIL}, broken)
    assert inspect_document(path).features.metadata_sensitive == {"email": 1}


def test_a_packet_of_many_values_or_nodes_is_read_up_to_its_bound() -> None:
    def read(packet: str, max_values: int = 100) -> tuple[str, ...]:
        pdf = with_xmp(make_feature_pdf(["text"]), packet)
        return read_xmp(PdfReader(io.BytesIO(pdf)), max_values).values

    dc = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
    items = "".join(f"<rdf:li>v{n}</rdf:li>" for n in range(150))
    many = _packet(
        f"<rdf:Description {dc}><dc:subject><rdf:Bag>{items}</rdf:Bag>"
        "</dc:subject></rdf:Description>"
    )
    assert read(many) == tuple(f"v{n}" for n in range(100))
    empty = "<rdf:li/>" * MAX_XMP_NODES
    deep = _packet(
        f"<rdf:Description {dc}><dc:subject><rdf:Bag>{empty}<rdf:li>late</rdf:li>"
        "</rdf:Bag></dc:subject></rdf:Description>"
    )
    assert read(deep) == ()
    assert read(deep.replace(empty, "")) == ("late",)
