"""Log lines: formats, libraries' records on one line, warnings and exceptions nobody could
catch through logging."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.utils import CryptographyDeprecationWarning

from infra.logs import THIRD_PARTY_WARNINGS
from infra.logs import JsonFormatter
from infra.logs import TextFormatter
from infra.logs import configure_logging
from infra.logs import is_third_party_warning


def _record(name: str = "pipeline.check.activities", **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, "f", 1, "report for %s", ("d",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def _failed(name: str) -> logging.LogRecord:
    try:
        raise ValueError("Metadata seems to be XML\nbut not XMP")
    except ValueError:
        record = logging.LogRecord(
            name, logging.WARNING, "f", 1, "Error occurred parsing XMP\n\n", (), sys.exc_info()
        )
    return record


def test_log_formats_carry_the_ids() -> None:
    ids = {"document_id": "documents/a.pdf@v1", "workflow_id": "docpipe/documents/a.pdf@v1"}
    entry = json.loads(JsonFormatter().format(_record(**ids)))
    assert entry["message"] == "report for d" and entry["level"] == "info"
    assert entry["document_id"] == ids["document_id"]
    assert entry["workflow_id"] == ids["workflow_id"]
    assert "document_id" not in json.loads(JsonFormatter().format(_record()))
    text = TextFormatter().format(_record(**ids))
    assert text.endswith("report for d [workflow docpipe/documents/a.pdf@v1]")


def test_a_library_record_with_a_traceback_is_one_line() -> None:
    text = TextFormatter().format(_failed("pikepdf.models.metadata._xmp"))
    assert "\n" not in text and "Traceback" not in text
    assert text.endswith(
        "pikepdf.models.metadata._xmp: Error occurred parsing XMP "
        "(ValueError: Metadata seems to be XML but not XMP)"
    )
    entry = json.loads(JsonFormatter().format(_failed("pikepdf.models.metadata._xmp")))
    assert entry["exception"] == "ValueError: Metadata seems to be XML but not XMP"


def test_docpipe_errors_keep_their_traceback() -> None:
    text = TextFormatter().format(_failed("pipeline.check.activities"))
    assert "Traceback (most recent call last)" in text


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level, show = list(root.handlers), root.level, warnings.showwarning
    configure_logging("debug", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    warnings.showwarning = show


def test_warnings_are_logged_as_one_line_naming_their_module(captured: io.StringIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a thing\nis deprecated", DeprecationWarning, stacklevel=1)
    (line,) = captured.getvalue().splitlines()
    assert " WARNING py.warnings: DeprecationWarning in tests.infra.test_logs (line " in line
    assert line.endswith(": a thing is deprecated")


def test_known_third_party_warnings_are_logged_at_debug(captured: io.StringIO) -> None:
    from pyhanko.sign.signers import pdf_cms

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn_explicit(
            "DSA is deprecated and support will be removed",
            CryptographyDeprecationWarning,
            pdf_cms.__file__ or "",
            20,
        )
    (line,) = captured.getvalue().splitlines()
    assert (
        " DEBUG py.warnings: CryptographyDeprecationWarning in pyhanko.sign.signers.pdf_cms" in line
    )


def test_the_third_party_list_matches_only_what_it_names() -> None:
    dsa = "DSA is deprecated and support will be removed in a future release."
    assert is_third_party_warning(CryptographyDeprecationWarning, "pyhanko.sign.x", dsa)
    assert not is_third_party_warning(CryptographyDeprecationWarning, "pipeline.pdf.integrity", dsa)
    assert not is_third_party_warning(DeprecationWarning, "pyhanko.sign.x", dsa)
    assert not is_third_party_warning(CryptographyDeprecationWarning, "pyhanko.x", "RC4 is")
    assert all(known.why for known in THIRD_PARTY_WARNINGS)


# A process that logs as docpipe's do, then drops an object whose __del__ fails.
_UNRAISABLE = """
import sys
from infra.logs import configure_logging

configure_logging("info", sys.argv[1])

class Spool:
    def __del__(self):
        raise OSError("cannot remove the spooled copy\\nof a document")

Spool()
"""


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_exception_nobody_can_catch_is_logged_as_one_line(log_format: str) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _UNRAISABLE, log_format],
        capture_output=True,
        text=True,
        check=True,
    )
    (line,) = ran.stderr.splitlines()
    if log_format == "json":
        entry = json.loads(line)
        assert (entry["level"], entry["logger"]) == ("warning", "py.unraisable")
        assert entry["message"] == "Exception ignored in Spool.__del__"
        assert entry["exception"] == "OSError: cannot remove the spooled copy of a document"
    else:
        assert line.endswith(
            " WARNING py.unraisable: Exception ignored in Spool.__del__ "
            "(OSError: cannot remove the spooled copy of a document)"
        )
