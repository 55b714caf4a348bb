"""Scanned PDFs made from known text: for the OCR tests, the demo sample and the benchmark.

A scan here is what a scanner gives: each page of a text PDF (fpdf2) rendered to a
grayscale picture (pypdfium2, about 200 dpi), optionally turned a little and speckled,
and put back as one full-page image per page with no text layer. Everything is seeded,
so the same arguments give the same bytes and the same words to look for.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

from fpdf import FPDF
from PIL import Image
from PIL import ImageOps
from PIL import TiffImagePlugin

from tests.support.hostile import build_pdf

# A4 in points: the pages of the text PDFs and of the scans.
A4_PT = (595.28, 841.89)
JPEG, CCITT = "jpeg", "ccitt"


@dataclass(frozen=True, kw_only=True)
class ScanStyle:
    """How a page is scanned.

    Attributes:
        dpi: resolution of the picture.
        lying_deg: the page lies on the glass turned this much counter-clockwise: 90 or
            270 sideways, 180 upside down.
        rotate_deg: the page lies this much askew on the glass (counter-clockwise).
        noise: share of pixels flipped to black or white (dust, speckle).
        encoding: ``jpeg`` (grayscale DCT) or ``ccitt`` (1-bit, CCITT Group 4, as faxes).
        quality: JPEG quality.
    """

    dpi: int = 200
    lying_deg: int = 0
    rotate_deg: float = 0.0
    noise: float = 0.0
    encoding: str = JPEG
    quality: int = 75


CLEAN = ScanStyle()
NOISY = ScanStyle(rotate_deg=1.5, noise=0.004)
FAX = ScanStyle(encoding=CCITT)

# Fake people, for pages whose words are known (no real person's data).
_FIRST = ("Alice", "Bruno", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines")
_LAST = ("Moreau", "Lindqvist", "Okafor", "Brandt", "Castillo", "Novak", "Haddad", "Ito")
_WORDS = [
    "account",
    "statement",
    "transfer",
    "balance",
    "contract",
    "signed",
    "received",
    "payment",
    "invoice",
    "period",
    "amount",
    "customer",
    "reference",
    "agreement",
    "office",
    "letter",
    "request",
    "confirm",
    "address",
    "delivery",
    "service",
    "notice",
    "copy",
    "number",
    "schedule",
    "review",
    "document",
    "original",
    "attached",
    "thank",
    "regards",
]


def iban(country: str, bban: str) -> str:
    """A valid IBAN (ISO 13616 check digits) for ``bban``, printed in groups of four."""
    digits = "".join(str(int(char, 36)) for char in bban + country + "00")
    check = 98 - int(digits) % 97
    compact = f"{country}{check:02d}{bban}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


@dataclass(frozen=True)
class KnownPage:
    """The text of one page, and the sensitive values on it (as printed)."""

    text: str
    emails: tuple[str, ...] = ()
    ibans: tuple[str, ...] = ()


def known_pages(count: int, *, seed: int = 24, lines: int = 18) -> list[KnownPage]:
    """``count`` pages of plain sentences, each naming a fake person, an e-mail address
    and an IBAN (all generated from ``seed``)."""
    rng = random.Random(seed)
    pages = []
    for number in range(1, count + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first.lower()}.{last.lower()}@example.com"
        account = iban("DE", "".join(rng.choice("0123456789") for _ in range(18)))
        body = [
            " ".join(rng.choice(_WORDS) for _ in range(rng.randint(7, 10))).capitalize() + "."
            for _ in range(lines)
        ]
        text = "\n".join(
            [
                f"Page {number}. Dear {first} {last},",
                *body[: lines // 2],
                f"Please write to {email} with any question.",
                f"The amount goes to account {account} this month.",
                *body[lines // 2 :],
            ]
        )
        pages.append(KnownPage(text=text, emails=(email,), ibans=(account,)))
    return pages


def text_pdf(pages: Sequence[str], *, font_size: float = 12) -> bytes:
    """A text PDF: one A4 page per string, its lines as given (wrapped if too long)."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    pdf.set_font("helvetica", size=font_size)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, font_size * 0.6, text)
    return bytes(pdf.output())


def render_pages(pdf: bytes, *, dpi: int = 200) -> list[Image.Image]:
    """Each page of ``pdf`` as a grayscale picture at ``dpi`` (pypdfium2)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        return [
            document[index].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            for index in range(len(document))
        ]
    finally:
        document.close()


def degrade(image: Image.Image, style: ScanStyle, *, seed: int = 0) -> Image.Image:
    """``image`` as the scanner of ``style`` sees it: turned, speckled, thresholded."""
    if style.lying_deg:
        image = image.rotate(style.lying_deg, expand=True)
    if style.rotate_deg:
        image = image.rotate(
            style.rotate_deg, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=255
        )
    if style.noise:
        rng = random.Random(seed)
        pixels = image.load()
        assert pixels is not None
        width, height = image.size
        for _ in range(int(width * height * style.noise)):
            pixels[rng.randrange(width), rng.randrange(height)] = rng.choice((0, 255))
    if style.encoding == CCITT:
        return image.point(lambda value: 255 if value > 160 else 0).convert("1")
    return image


@dataclass(frozen=True)
class PageImage:
    """One image XObject drawn on a page: its dictionary entries, its data, where it goes.

    ``entries`` are the stream dictionary's entries besides /Type, /Subtype and /Length
    (``b"/Width 10 /Height 10 /ColorSpace /DeviceGray /BitsPerComponent 8"``); ``rect``
    is (x, y, width, height) in points.
    """

    entries: bytes
    data: bytes
    rect: tuple[float, float, float, float]


def encode(image: Image.Image, style: ScanStyle) -> PageImage:
    """``image`` as a full-page A4 image XObject, encoded as ``style`` says."""
    width, height = image.size
    rect = (0.0, 0.0, *A4_PT)
    if style.encoding == CCITT:
        return PageImage(
            b"/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 "
            b"/Filter /CCITTFaxDecode /DecodeParms << /K -1 /Columns %d /Rows %d "
            b"/BlackIs1 false >>" % (width, height, width, height),
            _group4(image.convert("1")),
            rect,
        )
    out = io.BytesIO()
    image.convert("L").save(out, format="JPEG", quality=style.quality)
    return PageImage(
        b"/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Filter /DCTDecode" % (width, height),
        out.getvalue(),
        rect,
    )


def _group4(image: Image.Image) -> bytes:
    """The CCITT Group 4 data of a 1-bit picture (the single strip of a G4 TIFF)."""
    out = io.BytesIO()
    # The Group 4 coder writes 0 bits as white runs, and PDF's CCITT filter reads white
    # runs as white (/BlackIs1 false); Pillow's 1-bit white is a 1 bit, hence the inversion.
    # One strip holds every row.
    inverted = ImageOps.invert(image.convert("L")).convert("1")
    inverted.save(out, format="TIFF", compression="group4", tiffinfo={278: image.height})
    tiff = TiffImagePlugin.TiffImageFile(io.BytesIO(out.getvalue()))
    offsets, counts = tiff.tag_v2[273], tiff.tag_v2[279]
    assert len(offsets) == 1, "the G4 TIFF has more than one strip"
    return out.getvalue()[offsets[0] : offsets[0] + counts[0]]


def image_pdf(
    pages: Sequence[Sequence[PageImage]],
    *,
    page_size: tuple[float, float] = A4_PT,
    extra: Mapping[int, bytes] | None = None,
) -> bytes:
    """A PDF whose pages draw exactly these images, and nothing else (no text layer).

    ``extra`` adds objects (numbered from 10,000) that image entries may refer to.
    """
    objects: dict[int, bytes] = {1: b"<< /Type /Catalog /Pages 2 0 R >>", **(extra or {})}
    kids = []
    number = 3
    for images in pages:
        page, content = number, number + 1
        number += 2
        names, drawing = [], []
        for index, image in enumerate(images):
            objects[number] = (
                b"<< /Type /XObject /Subtype /Image %s /Length %d >>\nstream\n"
                % (image.entries, len(image.data))
                + image.data
                + b"\nendstream"
            )
            names.append(b"/Im%d %d 0 R" % (index, number))
            x, y, w, h = image.rect
            drawing.append(b"q %.4f 0 0 %.4f %.4f %.4f cm /Im%d Do Q" % (w, h, x, y, index))
            number += 1
        stream = b"\n".join(drawing)
        objects[content] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
        objects[page] = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] " % page_size + (
            b"/Resources << /XObject << %s >> >> /Contents %d 0 R >>" % (b" ".join(names), content)
        )
        kids.append(b"%d 0 R" % page)
    objects[2] = b"<< /Type /Pages /Count %d /Kids [%s] >>" % (len(kids), b" ".join(kids))
    return build_pdf(objects)


def scan_images(
    texts: Sequence[str], style: ScanStyle = CLEAN, *, font_size: float = 12
) -> list[Image.Image]:
    """The pictures a scanner of ``style`` takes of text pages (one per string)."""
    pdf = text_pdf(texts, font_size=font_size)
    return [
        degrade(image, style, seed=index)
        for index, image in enumerate(render_pages(pdf, dpi=style.dpi))
    ]


def scan_pdf(texts: Sequence[str], style: ScanStyle = CLEAN) -> bytes:
    """A scanned PDF of text pages: one full-page image per page, no text layer."""
    return image_pdf([[encode(image, style)] for image in scan_images(texts, style)])


def scanned_document(count: int, style: ScanStyle = CLEAN, *, seed: int = 24) -> bytes:
    """A scan of ``count`` pages from :func:`known_pages` (``seed``)."""
    return scan_pdf([page.text for page in known_pages(count, seed=seed)], style)


# The demo's scanned letter: a fake bank's letter to a fake customer.
LETTER_EMAIL = "clara.lindqvist@example.com"
LETTER_IBAN = iban("DE", "370400440532013000")
LETTER = f"""Example Savings Bank - Customer Service
12 Harbour Street, 20095 Hamburg

Ms Clara Lindqvist
4 Mill Lane, 22767 Hamburg

Hamburg, 2 March 2026

Your new account

Dear Ms Lindqvist,

thank you for opening an account with us. Your account number is
{LETTER_IBAN}. Statements will be sent to {LETTER_EMAIL}
once a month.

Please keep this letter with your records and tell us at once if
any of the details above is wrong.

Kind regards,

Customer Service"""


def photo(width: int = 1200, height: int = 900, *, seed: int = 7) -> Image.Image:
    """A photo-like picture with no words: a sky, hills, a sun, grain."""
    from PIL import ImageDraw

    rng = random.Random(seed)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=200 - int(90 * y / height))
    draw.ellipse([width * 0.65, height * 0.1, width * 0.85, height * 0.35], fill=240)
    for offset, shade in ((0.55, 120), (0.7, 80)):
        points = [(0, height)]
        for x in range(0, width + 60, 60):
            points.append((x, int(height * offset + rng.uniform(-40, 40))))
        points.append((width, height))
        draw.polygon(points, fill=shade)
    grain = Image.effect_noise((width, height), 18)
    return Image.blend(image, grain, 0.15)


def scanned_letter() -> bytes:
    """The demo's scanned document: a letter carrying a fake IBAN and e-mail address (a
    full-page JPEG), and a page with a photo and no words on it."""
    (letter,) = scan_images([LETTER], font_size=13)
    out = io.BytesIO()
    photo().save(out, format="JPEG", quality=80)
    picture = PageImage(
        b"/Width 1200 /Height 900 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode",
        out.getvalue(),
        (60.0, 380.0, 475.0, 356.0),
    )
    return image_pdf([[encode(letter, CLEAN)], [picture]])
