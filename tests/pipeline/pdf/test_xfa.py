"""Sensitive data in an XFA form's data: what people filled into a form that keeps its
values as XML, apart from the fields any page shows. Searched once for the document, in
either shape of the ``/XFA`` entry; a value a hybrid form's fields hold too counts where
the fields are; a hostile packet is read within its bounds, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.facts import DocumentFeatures
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.xfa import MAX_XFA_NODES
from tests.support.feature_pdfs import SEEDED
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.pdf_edits import FILLED
from tests.support.pdf_edits import fill_in
from tests.support.pdf_edits import with_xfa

(EMAIL, MASKED_EMAIL), _ = SEEDED["email"]
(IBAN, MASKED_IBAN), (OTHER_IBAN, _other) = SEEDED["iban"]
(PHONE, _masked), _ = SEEDED["phone"]
XFA_DATA = "http://www.xfa.org/schema/xfa-data/1.0/"


def _datasets(data: str, description: str = "") -> bytes:
    return (
        f'<xfa:datasets xmlns:xfa="{XFA_DATA}"><xfa:data>{data}</xfa:data>'
        f"<xfa:dataDescription>{description}</xfa:dataDescription></xfa:datasets>"
    ).encode()


def _features(path: Path, pdf: bytes) -> DocumentFeatures:
    path.write_bytes(pdf)
    features = inspect_document(path).features
    assert features.read_error is None
    return features


@pytest.mark.parametrize("packets", [True, False], ids=["packets", "one-stream"])
def test_an_xfa_forms_data_is_searched_for_the_document(tmp_path: Path, packets: bool) -> None:
    # A rich text value's words lie between its tags; the data description is no value.
    data = f"<form1><iban>{IBAN}</iban><note><p>Mail <b>{EMAIL}</b> today</p></note></form1>"
    datasets = _datasets(data, description=f"<form1><iban>{PHONE}</iban></form1>")
    pdf = with_xfa(make_feature_pdf(["text"]), datasets, packets=packets)
    features = _features(tmp_path / "xfa.pdf", pdf)
    assert features.xfa
    assert features.field_sensitive == {"email": 1, "iban": 1}
    assert features.field_sensitive_samples == {"email": [MASKED_EMAIL], "iban": [MASKED_IBAN]}
    assert features.fields_off_pages == 4  # the IBAN, "Mail", the address and "today"


def test_a_hybrid_forms_value_counts_where_its_field_is(tmp_path: Path) -> None:
    # The fields hold the e-mail address and the IBAN (a page shows them), and the XFA data
    # repeats them, with an IBAN of its own.
    filled = fill_in(make_feature_pdf(["form"]), FILLED)
    data = f"<f><email>{FILLED['email']}</email><a>{IBAN}</a><b>{OTHER_IBAN}</b></f>"
    features = _features(tmp_path / "hybrid.pdf", with_xfa(filled, _datasets(data)))
    assert features.field_sensitive == {"iban": 1}
    assert features.fields_off_pages == 1


def test_hostile_xfa_packets_are_read_within_their_bounds_or_not_at_all(tmp_path: Path) -> None:
    text = make_feature_pdf(["text"])
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "' + EMAIL.encode() + b'">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<xfa:datasets xmlns:xfa="' + XFA_DATA.encode() + b'"><xfa:data>&b;</xfa:data>'
        b"</xfa:datasets>"
    )
    huge = _datasets(f"<f><v>{EMAIL}</v>{'<v>x</v>' * 130_000}</f>")
    deep = _datasets(f"{'<v>x</v>' * MAX_XFA_NODES}<v>{EMAIL}</v>")
    within = _datasets(f"{'<v>x</v>' * (MAX_XFA_NODES - 10)}<v>{EMAIL}</v>")
    broken = _datasets(f"<f><v>{EMAIL}</v>")
    for name, datasets, found in (
        ("laughs", laughs, {}),
        ("huge", huge, {}),
        ("deep", deep, {}),
        ("within", within, {"email": 1}),
        ("broken", broken, {}),
    ):
        features = _features(tmp_path / f"{name}.pdf", with_xfa(text, datasets))
        assert features.field_sensitive == found, name
