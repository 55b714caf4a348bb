"""Page results folded into running totals, one at a time, in bounded memory.

A summary over any number of pages is built in memory bounded by fixed caps (listed
pages, samples, hosts), never by the page count, and it can be handed on as plain JSON
(``to_state``) so that the report need not read the chunk files again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pipeline.pdf.page_checks import OTHER_PAPER
from pipeline.pdf.page_checks import PAPER_SIZES
from pipeline.pdf.page_checks import paper_size
from pipeline.pdf.sensitive import SENSITIVE_TYPES

# Page lists in the report stop growing here; their counts stay exact.
MAX_LISTED_PAGES = 1000
MAX_ERROR_SAMPLES = 20
MAX_SENSITIVE_SAMPLES = 5
MAX_LINK_HOSTS = 200
MAX_DISTINCT_SIZES = 100
MAX_SUBTYPES = 50


@dataclass
class _PageList:
    count: int = 0
    pages: list[int] = field(default_factory=list)

    def add(self, page: int) -> None:
        self.count += 1
        if len(self.pages) < MAX_LISTED_PAGES:
            self.pages.append(page)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "pages": self.pages}


@dataclass
class _SensitiveType:
    count: int = 0
    pages: _PageList = field(default_factory=_PageList)
    samples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "pages": self.pages.to_json(), "samples": self.samples}


def _bump(counts: dict[str, int], key: str, by: int = 1, limit: int = MAX_SUBTYPES) -> None:
    if key not in counts and len(counts) >= limit:
        key = "other"
    counts[key] = counts.get(key, 0) + by


@dataclass
class PageSummary:
    """Running totals over page results (the dicts of ``PageResult.to_json``).

    Page results written by an older docpipe lack the newer fields; they count as zero.
    """

    pages: int = 0
    text_chars: int = 0
    words: int = 0
    images: int = 0
    blank: _PageList = field(default_factory=_PageList)
    image_only: _PageList = field(default_factory=_PageList)
    rotated: _PageList = field(default_factory=_PageList)
    rotation_angles: dict[str, int] = field(default_factory=dict)
    errors: _PageList = field(default_factory=_PageList)
    error_types: dict[str, int] = field(default_factory=dict)
    error_samples: list[dict[str, Any]] = field(default_factory=list)
    paper_sizes: dict[str, int] = field(default_factory=dict)
    page_sizes: dict[str, int] = field(default_factory=dict)
    first_size: tuple[int, int] | None = None
    mixed_sizes: bool = False
    annotation_subtypes: dict[str, int] = field(default_factory=dict)
    annotated: _PageList = field(default_factory=_PageList)
    links: int = 0
    external_links: int = 0
    link_hosts: set[str] = field(default_factory=set)
    link_hosts_truncated: bool = False
    linked: _PageList = field(default_factory=_PageList)
    form_widgets: int = 0
    with_widgets: _PageList = field(default_factory=_PageList)
    file_attachments: int = 0
    with_attachments: _PageList = field(default_factory=_PageList)
    javascript_actions: int = 0
    with_javascript: _PageList = field(default_factory=_PageList)
    launch_actions: int = 0
    with_launch: _PageList = field(default_factory=_PageList)
    sensitive_total: int = 0
    sensitive_pages: _PageList = field(default_factory=_PageList)
    sensitive_types: dict[str, _SensitiveType] = field(
        default_factory=lambda: {kind: _SensitiveType() for kind in SENSITIVE_TYPES}
    )
    sensitive_by_page: list[dict[str, Any]] = field(default_factory=list)
    # Image-only pages: not read by OCR (it was off), read, and not readable (by cause).
    not_read: _PageList = field(default_factory=_PageList)
    ocr_read: _PageList = field(default_factory=_PageList)
    ocr_failed: _PageList = field(default_factory=_PageList)
    ocr_failure_causes: dict[str, int] = field(default_factory=dict)
    # Pages read, by mean confidence in whole points (exact counts below any threshold),
    # and the first pages read with theirs (the pages listed below a threshold).
    ocr_by_confidence: dict[str, int] = field(default_factory=dict)
    ocr_confidences: list[list[float]] = field(default_factory=list)
    ocr_confidence_total: float = 0.0
    ocr_engine: str | None = None
    ocr_data: str | None = None
    expected_page: int = 1

    def add(self, result: dict[str, Any]) -> None:
        """Fold one page result in, in page order (a result out of order is an error)."""
        page = int(result["page"])
        if page != self.expected_page:
            raise ValueError(f"page results out of order: got {page}, want {self.expected_page}")
        self.expected_page += 1
        self.pages += 1
        if result.get("error_type"):
            self.errors.add(page)
            kind = str(result["error_type"])
            _bump(self.error_types, kind)
            if len(self.error_samples) < MAX_ERROR_SAMPLES:
                message = str(result.get("error") or "")[:200]
                self.error_samples.append({"page": page, "type": kind, "message": message})
            return
        self.text_chars += int(result["text_chars"])
        self.words += int(result.get("words", 0))
        self.images += int(result["image_count"])
        if result["blank"]:
            self.blank.add(page)
        if result["image_only"]:
            self.image_only.add(page)
            self._add_ocr(page, result)
        if result["rotation"]:
            self.rotated.add(page)
            _bump(self.rotation_angles, str(int(result["rotation"])))
        self._add_size(float(result["width_pt"]), float(result["height_pt"]))
        self._add_annotations(page, result)
        self._add_sensitive(page, result.get("sensitive") or {}, result)

    def _add_size(self, width: float, height: float) -> None:
        _bump(self.paper_sizes, paper_size(width, height))
        _bump(self.page_sizes, f"{width:g}x{height:g}", limit=MAX_DISTINCT_SIZES)
        # Orientation does not make a different size; rounding absorbs producers' noise.
        size = tuple(sorted((round(width), round(height))))
        if self.first_size is None:
            self.first_size = (size[0], size[1])
        elif size != self.first_size:
            self.mixed_sizes = True

    def _add_annotations(self, page: int, result: dict[str, Any]) -> None:
        subtypes: dict[str, int] = result.get("annotations") or {}
        if subtypes:
            self.annotated.add(page)
            for subtype, count in subtypes.items():
                _bump(self.annotation_subtypes, subtype, int(count))
        self.links += int(result.get("links", 0))
        external = int(result.get("external_links", 0))
        if external:
            self.external_links += external
            self.linked.add(page)
        for host in result.get("link_hosts") or []:
            if host in self.link_hosts:
                continue
            if len(self.link_hosts) < MAX_LINK_HOSTS:
                self.link_hosts.add(host)
            else:
                self.link_hosts_truncated = True
        for name, pages in (
            ("form_widgets", self.with_widgets),
            ("file_attachments", self.with_attachments),
            ("javascript_actions", self.with_javascript),
            ("launch_actions", self.with_launch),
        ):
            count = int(result.get(name, 0))
            if count:
                setattr(self, name, getattr(self, name) + count)
                pages.add(page)

    def _add_sensitive(self, page: int, counts: dict[str, int], result: dict[str, Any]) -> None:
        counts = {kind: int(n) for kind, n in counts.items() if kind in self.sensitive_types}
        if not any(counts.values()):
            return
        samples: dict[str, list[str]] = result.get("sensitive_samples") or {}
        self.sensitive_pages.add(page)
        if len(self.sensitive_by_page) < MAX_LISTED_PAGES:
            self.sensitive_by_page.append({"page": page, "counts": dict(sorted(counts.items()))})
        for kind, count in counts.items():
            if not count:
                continue
            summary = self.sensitive_types[kind]
            summary.count += count
            summary.pages.add(page)
            self.sensitive_total += count
            for sample in samples.get(kind, []):
                if len(summary.samples) < MAX_SENSITIVE_SAMPLES and sample not in summary.samples:
                    summary.samples.append(str(sample))

    def _add_ocr(self, page: int, result: dict[str, Any]) -> None:
        if result.get("text_source") != "ocr":
            self.not_read.add(page)
            return
        if result.get("ocr_engine"):
            self.ocr_engine = self.ocr_engine or str(result["ocr_engine"])
            self.ocr_data = self.ocr_data or str(result.get("ocr_data") or "")
        cause = result.get("ocr_error")
        if cause:
            self.ocr_failed.add(page)
            _bump(self.ocr_failure_causes, str(cause))
            return
        confidence = float(result.get("ocr_confidence") or 0.0)
        self.ocr_read.add(page)
        self.ocr_confidence_total += confidence
        _bump(self.ocr_by_confidence, str(int(confidence)), limit=101)
        if len(self.ocr_confidences) < MAX_LISTED_PAGES:
            self.ocr_confidences.append([page, confidence])

    def ocr_below(self, min_confidence: int) -> int:
        """Pages OCR read with a mean confidence under ``min_confidence`` whole points."""
        counts = self.ocr_by_confidence.items()
        return sum(n for points, n in counts if int(points) < min_confidence)

    def ocr_json(self, min_confidence: int) -> dict[str, Any]:
        """The OCR summary, with the pages read under ``min_confidence`` (the policy's)."""
        read = self.ocr_read.count
        return {
            "engine": self.ocr_engine,
            "data": self.ocr_data,
            "pages_read": self.ocr_read.to_json(),
            "mean_confidence": round(self.ocr_confidence_total / read, 1) if read else None,
            "low_confidence": {
                "count": self.ocr_below(min_confidence),
                "pages": [int(p) for p, c in self.ocr_confidences if int(c) < min_confidence],
            },
            "failed": {
                **self.ocr_failed.to_json(),
                "by_cause": dict(sorted(self.ocr_failure_causes.items())),
            },
            "not_read": self.not_read.to_json(),
        }

    def to_state(self) -> dict[str, Any]:
        """Everything folded so far, as plain JSON values (:meth:`from_state` reads it).

        Bounded by the same caps as the report, whatever the page count.
        """
        state: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, _PageList):
                value = value.to_json()
            elif isinstance(value, set):
                value = sorted(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif item.name == "sensitive_types":
                value = {kind: summary.to_json() for kind, summary in value.items()}
            state[item.name] = value
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PageSummary:
        """The summary :meth:`to_state` described.

        Raises:
            ValueError: ``state`` is not such a description.
        """
        names = {item.name for item in dataclasses.fields(cls)}
        if set(state) != names:
            raise ValueError(f"not a page summary state: fields {sorted(set(state) ^ names)}")
        values = dict(state)
        empty = cls()
        for name in names:
            if isinstance(getattr(empty, name), _PageList):
                listed = values[name]
                values[name] = _PageList(int(listed["count"]), [int(p) for p in listed["pages"]])
        values["link_hosts"] = set(values["link_hosts"])
        first_size = values["first_size"]
        values["first_size"] = None if first_size is None else (first_size[0], first_size[1])
        values["sensitive_types"] = {
            kind: _SensitiveType(
                count=int(summary["count"]),
                pages=_PageList(int(summary["pages"]["count"]), list(summary["pages"]["pages"])),
                samples=list(summary["samples"]),
            )
            for kind, summary in values["sensitive_types"].items()
        }
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Summaries of the page checks (document-level parts are added by ``build_report``)."""
        paper = {name: self.paper_sizes.get(name, 0) for name in [*PAPER_SIZES, OTHER_PAPER]}
        return {
            "pages_checked": self.pages,
            "text_chars": self.text_chars,
            "words": self.words,
            "images": self.images,
            "blank_pages": self.blank.to_json(),
            "image_only_pages": self.image_only.to_json(),
            "rotated_pages": {
                **self.rotated.to_json(),
                "by_angle": dict(sorted(self.rotation_angles.items())),
            },
            "page_errors": {
                **self.errors.to_json(),
                "by_type": dict(sorted(self.error_types.items())),
                "samples": self.error_samples,
            },
            "page_sizes": {
                "by_paper": paper,
                "by_size_pt": dict(sorted(self.page_sizes.items())),
                "mixed": self.mixed_sizes,
            },
            "annotations": {
                "total": sum(self.annotation_subtypes.values()),
                "by_subtype": dict(sorted(self.annotation_subtypes.items())),
                "pages": self.annotated.to_json(),
            },
            "links": {
                "total": self.links,
                "external": self.external_links,
                "hosts": sorted(self.link_hosts),
                "hosts_truncated": self.link_hosts_truncated,
                "pages_with_external": self.linked.to_json(),
            },
            "sensitive_data": self.sensitive_json(),
        }

    def sensitive_json(self) -> dict[str, Any]:
        """The pages' sensitive data, as the report's ``checks.sensitive_data`` has it."""
        return {
            "total": self.sensitive_total,
            "pages": self.sensitive_pages.to_json(),
            "by_type": {kind: s.to_json() for kind, s in self.sensitive_types.items()},
            "by_page": self.sensitive_by_page,
        }
