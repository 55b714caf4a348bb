"""Headless Chromium (Debian's ``chromium`` package) on the Temporal Web UI.

Used by the browser test and by ``make screenshots``: the UI renders offline, and a
filtered workflow list is a plain URL.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

INSTALL_HINT = (
    "install it with: sudo apt-get update && "
    "sudo apt-get install -y --no-install-recommends chromium"
)
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)

# Chromium's flags when Playwright drives it (the review page's browser test and
# screenshot): no sandbox in containers, no network of its own, nothing in the background.
PLAYWRIGHT_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class BrowserError(RuntimeError):
    """Chromium is missing or failed; the message says what to do."""


def chromium_binary() -> Path | None:
    """Debian's chromium, if installed."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def workflows_url(ui_url: str, namespace: str, query: str) -> str:
    """The UI's workflow list filtered by a visibility query."""
    return (
        f"{ui_url}/namespaces/{quote(namespace, safe='')}/workflows?query={quote(query, safe='')}"
    )


def _run(args: list[str], budget_ms: int, timeout_s: float) -> str:
    binary = chromium_binary()
    if binary is None:
        raise BrowserError(f"chromium is not installed; {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="docpipe-chromium-") as profile:
        result = subprocess.run(
            [
                str(binary),
                *_FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0:
        raise BrowserError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def dump_dom(url: str, *, budget_ms: int = 8000, timeout_s: float = 90) -> str:
    """The page's DOM after it has rendered (``--dump-dom``)."""
    return _run(["--dump-dom", url], budget_ms, timeout_s)


def screenshot(
    url: str, path: Path, *, size: tuple[int, int] = (1400, 900), budget_ms: int = 8000
) -> Path:
    """Save a PNG of the rendered page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [f"--screenshot={path.resolve()}", f"--window-size={size[0]},{size[1]}", url], budget_ms, 90
    )
    if not path.exists():
        raise BrowserError(f"chromium did not write {path}")
    return path
