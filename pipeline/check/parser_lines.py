"""What libraries said in parser processes, logged by the worker once per document.

A parser process hands back, with each job's outcome, the lines libraries logged or wrote
to stderr meanwhile (``parser_process.Logged``). The worker logs them here, as its own
records, with the document and workflow IDs of the check, at WARNING at most (a damaged
document makes libraries complain; the report says what it means), and each distinct
line once per document: a damaged page tree read by several processes and page ranges
makes the same complaint each time.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from pipeline.pdf.parser_process import LogLine

# Documents whose lines are remembered; the oldest is forgotten beyond this.
_DOCUMENTS = 256
# Distinct lines logged per document; one more line says the rest are left out.
MAX_LINES_PER_DOCUMENT = 40


class ParserLines:
    """Logs parser processes' lines, each distinct one once per document."""

    def __init__(self) -> None:
        self._said: collections.OrderedDict[str, set[tuple[str, str]]] = collections.OrderedDict()

    def log(self, lines: Iterable[LogLine], log_extra: Mapping[str, Any] | None) -> None:
        """Log ``lines`` said about the document of ``log_extra`` (its IDs), new ones only."""
        extra = dict(log_extra or {})
        document = str(extra.get("document_id", ""))
        said = self._said.setdefault(document, set())
        self._said.move_to_end(document)
        while len(self._said) > _DOCUMENTS:
            self._said.popitem(last=False)
        for line in lines:
            key = (line.logger, line.text)
            if key in said or len(said) > MAX_LINES_PER_DOCUMENT:
                continue
            said.add(key)
            logger = logging.getLogger(line.logger)
            if len(said) > MAX_LINES_PER_DOCUMENT:
                logger.warning(
                    "more lines from parser processes about this document are left out",
                    extra=extra,
                )
                continue
            logger.log(min(line.level, logging.WARNING), "%s", line.text, extra=extra)
