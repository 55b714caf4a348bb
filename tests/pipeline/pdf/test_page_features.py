"""Every page check on generated documents: text, images, sizes, annotations, links,
actions and sensitive data of each kind of page, and the bounds a hostile page meets.

Expectations come from the generator's constants (``tests.support.feature_pdfs``): what was
put into a page is what the checks must find, and the decoys must not be found.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.page_checks import check_pages
from pipeline.pdf.page_checks import paper_size
from tests.support.feature_pdfs import LINK_URLS
from tests.support.feature_pdfs import PAGE_KINDS
from tests.support.feature_pdfs import SEEDED
from tests.support.hostile import build_pdf
from tests.support.pdfs import make_pdf
from tests.support.reports import report_of_file

KINDS = list(PAGE_KINDS)


@pytest.fixture(scope="module")
def pages(everything: Path) -> dict[str, PageResult]:
    results = check_pages(open_pdf(everything), 1, len(KINDS))
    assert all(r.error_type is None for r in results)
    return dict(zip(KINDS, results, strict=True))


def test_text_and_words(pages: dict[str, PageResult]) -> None:
    text = pages["text"]
    assert text.text_chars > 100
    # "Page 1." + TEXT twice: the generator's words, counted on the extracted text.
    assert 30 <= text.words <= 45
    for kind in ("blank", "image"):
        assert pages[kind].text_chars == 0 and pages[kind].words == 0


def test_blank_and_needs_ocr(pages: dict[str, PageResult]) -> None:
    assert [kind for kind, r in pages.items() if r.blank] == ["blank"]
    assert [kind for kind, r in pages.items() if r.image_only] == ["image"]
    assert pages["image"].image_count == 1
    assert pages["mixed"].image_count == 1 and not pages["mixed"].image_only


def test_rotation(pages: dict[str, PageResult]) -> None:
    assert {kind: r.rotation for kind, r in pages.items() if r.rotation} == {"rotated": 90}


def test_page_sizes_and_paper(pages: dict[str, PageResult]) -> None:
    assert (pages["letter"].width_pt, pages["letter"].height_pt) == (612.0, 792.0)
    assert (pages["legal"].width_pt, pages["legal"].height_pt) == (612.0, 1008.0)
    assert (pages["landscape"].width_pt, pages["landscape"].height_pt) == (841.89, 595.28)
    assert pages["letter"].paper_size == "Letter"
    assert pages["legal"].paper_size == "Legal"
    assert pages["landscape"].paper_size == "A4"
    assert pages["text"].paper_size == "A4"


@pytest.mark.parametrize(
    ("width", "height", "paper"),
    [
        (595, 842, "A4"),
        (842, 595, "A4"),
        (612, 792, "Letter"),
        (792, 612, "Letter"),
        (612, 1008, "Legal"),
        (420.94, 595.28, "other"),  # A5
        (0, 0, "other"),
    ],
)
def test_paper_size_classes(width: float, height: float, paper: str) -> None:
    assert paper_size(width, height) == paper


def test_annotations_by_subtype(pages: dict[str, PageResult]) -> None:
    assert pages["annotated"].annotations == {"FreeText": 1, "Highlight": 1, "Text": 2}
    assert pages["links"].annotations == {"Link": 4}
    assert pages["form"].annotations == {"Widget": 5}
    assert pages["attachment"].annotations == {"FileAttachment": 1}
    assert pages["text"].annotations == {}


def test_links_and_external_hosts(pages: dict[str, PageResult]) -> None:
    links = pages["links"]
    assert links.links == 4
    # The internal link and the mail link are links, but name no external host.
    assert links.external_links == len(LINK_URLS)
    assert links.link_hosts == ["docs.example.org", "www.example.com"]
    assert "someone@example.com" not in str(links.to_json())


def test_form_widgets_on_the_page(pages: dict[str, PageResult]) -> None:
    assert pages["form"].form_widgets == 5
    assert sum(r.form_widgets for r in pages.values()) == 5


def test_page_actions(pages: dict[str, PageResult]) -> None:
    # The page's open action and the link's action.
    assert pages["script"].javascript_actions == 2
    assert pages["launch"].launch_actions == 1
    others = [k for k, r in pages.items() if r.javascript_actions or r.launch_actions]
    assert sorted(others) == ["launch", "script"]


def test_sensitive_data_counts_and_masks(pages: dict[str, PageResult]) -> None:
    sensitive = pages["sensitive"]
    assert sensitive.sensitive == {kind: len(values) for kind, values in sorted(SEEDED.items())}
    for kind, values in SEEDED.items():
        assert sensitive.sensitive_samples[kind] == [masked for _, masked in values]
    assert pages["decoys"].sensitive == {}
    assert [kind for kind, r in pages.items() if r.sensitive] == ["sensitive"]


def test_raw_sensitive_values_never_leave_the_page_check(pages: dict[str, PageResult]) -> None:
    rendered = str([r.to_json() for r in pages.values()])
    for values in SEEDED.values():
        for value, _ in values:
            assert value not in rendered


def test_page_results_turn_into_plain_json_values(pages: dict[str, PageResult]) -> None:
    for result in pages.values():
        data = result.to_json()
        assert data == dataclasses.asdict(result)
        assert json.loads(json.dumps(data)) == data


def test_a_page_of_many_annotations_keeps_the_first_kinds_and_hosts_with_all_counts(
    pdf_dir: Path,
) -> None:
    # A kind whose name is not a plain name, 25 links to 25 hosts (the last first), then
    # 25 more kinds, twice: more kinds and hosts than a page result keeps (20 of each).
    links = [
        b"<< /Subtype /Link /A << /S /URI /URI (https://h%02d.example/) >> >>" % n
        for n in reversed(range(25))
    ]
    kinds = [b"<< /Subtype /Kind%02d >>" % n for n in range(25)] * 2
    annotations = [b"<< /Subtype /Not_a_plain_name >>", *links, *kinds]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Annots [%s] >>" % (
        b" ".join(annotations)
    )
    data = build_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
            3: page,
        }
    )
    path = pdf_dir / "many-annotations.pdf"
    path.write_bytes(data)
    [result] = check_pages(open_pdf(path), 1, 1)
    assert result.error_type is None
    # The first 20 kinds met, each with every annotation of its kind, the later ones too.
    assert result.annotations == {
        "Link": 25,
        "Unknown": 1,
        **{f"Kind{n:02d}": 2 for n in range(18)},
    }
    assert (result.links, result.external_links) == (25, 25)
    # The first 20 hosts met (h24 down to h05), in order.
    assert result.link_hosts == [f"h{n:02d}.example" for n in range(5, 25)]


def test_a_broken_page_is_an_error_and_the_others_are_checked(pdf_dir: Path) -> None:
    from pypdf import PdfReader
    from pypdf import PdfWriter
    from pypdf.generic import NameObject
    from pypdf.generic import NumberObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["text"] * 3))))
    # A page whose media box is a number, not a rectangle: the page cannot be measured.
    writer.pages[1][NameObject("/MediaBox")] = NumberObject(7)
    path = pdf_dir / "broken-page.pdf"
    with path.open("wb") as out:
        writer.write(out)
    results = check_pages(open_pdf(path), 1, 3)
    assert [r.error_type is not None for r in results] == [False, True, False]
    assert results[1].error_type == "ValueError"
    assert results[1].error and "/MediaBox" in results[1].error
    report = report_of_file(path)
    assert report["checks"]["page_errors"]["pages"] == [2]
    assert report["verdict"] == {
        "verdict": "review",
        "reasons": ["page_errors"],
        "informational": [],
    }
