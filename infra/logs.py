"""Log lines of every docpipe process: one record, one line, with the check it concerns.

Every process (worker, consumer, the CLI's commands, and the worker's parser processes)
logs through :func:`configure_logging`:

- ``text`` (for people) or ``json`` (one object per line, for log pipelines), with the
  document and workflow ID of the line when it has them;
- a library's record stays one line, its exception (if any) cut to ``Type: message``: a
  damaged document makes libraries complain, and their tracebacks are noise to an
  operator. docpipe's own errors keep their traceback (they are bugs);
- Python warnings go through ``logging`` too (logger ``py.warnings``, one line naming the
  module that raised them), never raw to stderr. The third-party warnings listed in
  :data:`THIRD_PARTY_WARNINGS` are logged at DEBUG only; the test suite ignores them, and
  turns every other warning into an error;
- so do the exceptions Python cannot raise to anyone (in a ``__del__``, a weak reference's
  callback, a garbage-collected generator): one line (logger ``py.unraisable``) naming
  where it was ignored, instead of a raw traceback that would break JSON lines.

Only the standard library is imported here (and OpenTelemetry's API, for trace IDs in JSON
lines), so that a parser process can use it without the worker's clients.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import warnings
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TextIO

# Fields a record may carry (``extra=``) that both formats show.
LOG_FIELDS = ("document_id", "workflow_id")
# docpipe's own packages: their exceptions keep the traceback.
OWN_PACKAGES = ("app", "bench", "consumers", "docpipe", "infra", "pipeline", "tests", "workers")
WARNINGS_LOGGER = "py.warnings"
UNRAISABLE_LOGGER = "py.unraisable"


@dataclass(frozen=True)
class KnownWarning:
    """A warning a dependency raises that docpipe cannot act on.

    Attributes:
        category: dotted name of the warning's class.
        module: regular expression of the module the warning is attributed to.
        message: regular expression its message starts with.
        why: what it hides, and when it may be dropped.
    """

    category: str
    module: str
    message: str
    why: str

    def filter_spec(self) -> str:
        """The same rule as a ``-W``/pytest ``filterwarnings`` entry that ignores it."""
        return f"ignore:{self.message}:{self.category}:{self.module}"

    def matches(self, category: type[Warning], module: str, message: str) -> bool:
        """Whether a warning of ``category`` raised in ``module`` is this one."""
        names = {f"{klass.__module__}.{klass.__qualname__}" for klass in category.__mro__}
        return (
            self.category in names
            and re.match(self.module, module) is not None
            and re.match(self.message, message, flags=re.I) is not None
        )


# The one place that lists third-party warnings docpipe lets pass: each one is raised
# inside a dependency (never by docpipe's code), and says nothing an operator can act on.
THIRD_PARTY_WARNINGS = (
    KnownWarning(
        category="cryptography.utils.CryptographyDeprecationWarning",
        module=r"pyhanko\.",
        message="DSA is deprecated",
        why=(
            "cryptography 51 deprecates DSA; pyHanko imports DSAPrivateKey when it is "
            "imported (pyhanko/sign/signers/pdf_cms.py). docpipe signs nothing and never "
            "uses DSA; drop this once pyHanko stops importing it."
        ),
    ),
)


def is_third_party_warning(category: type[Warning], module: str, message: str) -> bool:
    """Whether a warning is one of :data:`THIRD_PARTY_WARNINGS`."""
    return any(known.matches(category, module, message) for known in THIRD_PARTY_WARNINGS)


def _module_of(filename: str) -> str:
    """The dotted name of the module loaded from ``filename`` (else the file's name)."""
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) == filename:
            return name
    return filename


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` for docpipe's processes: one log line, naming the module."""
    module = _module_of(filename)
    text = " ".join(str(message).split())
    level = logging.DEBUG if is_third_party_warning(category, module, text) else logging.WARNING
    logging.getLogger(WARNINGS_LOGGER).log(
        level, "%s in %s (line %d): %s", category.__name__, module, lineno, text
    )


def capture_warnings() -> None:
    """Send Python warnings through ``logging`` as one line each, from now on."""
    warnings.showwarning = _log_warning


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """``sys.unraisablehook`` for docpipe's processes: one log record, naming where.

    Where is the qualified name of the function or the type of the object it was ignored
    in, never the object's ``repr``, which may hold anything (document text included).
    """
    target = unraisable.object
    where = getattr(target, "__qualname__", None) or type(target).__qualname__
    error = unraisable.exc_value
    try:
        logging.getLogger(UNRAISABLE_LOGGER).warning(
            "%s %s",
            unraisable.err_msg or "Exception ignored in",
            where,
            exc_info=None
            if error is None
            else (unraisable.exc_type, error, unraisable.exc_traceback),
        )
    except Exception:  # logging itself is gone (the interpreter is shutting down)
        sys.__unraisablehook__(unraisable)


def capture_unraisable() -> None:
    """Log the exceptions Python cannot raise as one line each, from now on."""
    sys.unraisablehook = _log_unraisable


def is_own(logger_name: str) -> bool:
    """Whether ``logger_name`` belongs to docpipe's own code."""
    return logger_name.split(".", 1)[0] in OWN_PACKAGES


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of blanks folded into single spaces."""
    return " ".join(text.split())


def exception_summary(record: logging.LogRecord) -> str:
    """``Type: message`` of the record's exception, on one line ('' when it has none)."""
    if not record.exc_info or record.exc_info[1] is None:
        return ""
    exc = record.exc_info[1]
    return one_line(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__


class TextFormatter(logging.Formatter):
    """``time level logger: message``, then the workflow ID when the line has one.

    A library's record is one line whatever it holds; docpipe's own errors keep their
    traceback on the lines below.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """A line for people, with the check's workflow ID when it has one."""
        if is_own(record.name):
            text = super().format(record)
        else:
            text = f"{self.formatTime(record)} {record.levelname} {record.name}: "
            text += one_line(record.getMessage())
            summary = exception_summary(record)
            if summary:
                text += f" ({summary})"
        workflow_id = getattr(record, "workflow_id", None)
        if workflow_id and workflow_id not in record.getMessage():
            text += f" [workflow {workflow_id}]"
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, IDs, trace, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object, for log pipelines."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in LOG_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        entry.update(_trace_ids())
        if record.exc_info:
            entry["exception"] = (
                self.formatException(record.exc_info)
                if is_own(record.name)
                else exception_summary(record)
            )
        return json.dumps(entry, ensure_ascii=False, default=str)


def _trace_ids() -> dict[str, str]:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - a dependency of docpipe
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (``text`` or ``json``)."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


# Connection chatter from the clients drowns docpipe's own lines (and pikepdf announces
# at INFO, in every parser process, that it passes qpdf's messages to logging).
QUIET_LOGGERS = ("aiokafka", "botocore", "urllib3", "temporalio.activity", "pikepdf._core")


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Log to ``stream`` (stderr) at ``level`` in ``log_format``; warnings included."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    quiet_clients()
    capture_warnings()
    capture_unraisable()


def quiet_clients() -> None:
    """Only warnings and errors from the loggers of :data:`QUIET_LOGGERS`."""
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


class OneLineFormatter(logging.Formatter):
    """The message alone, on one line, with ``(Type: message)`` of its exception."""

    def format(self, record: logging.LogRecord) -> str:
        """What a parser process hands the worker to log as its own record."""
        text = one_line(record.getMessage())
        summary = exception_summary(record)
        return f"{text} ({summary})" if summary else text


def parser_logging(
    log_format: str, job_lines: logging.Handler, page_lines: logging.Handler
) -> None:
    """Logging in a parser process (``pipeline.pdf.parser_process.LoggingSetup``).

    Args:
        log_format: the worker's, for the lines the process writes to its log directly.
        job_lines: collects each job's records for the worker to log: one line each.
        page_lines: writes the page lines to the worker's log at once.
    """
    job_lines.setFormatter(OneLineFormatter())
    page_lines.setFormatter(formatter(log_format))
    quiet_clients()
    capture_warnings()
    capture_unraisable()
