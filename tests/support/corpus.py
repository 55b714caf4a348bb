"""Where the real-world PDFs for tests are: beside the project, not in it."""

from __future__ import annotations

from pathlib import Path

# shared/corpus/ beside the project's checkout; tests that need it skip where it is not.
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "pypdf-resources"
