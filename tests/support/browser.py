"""Headless Debian Chromium through Playwright's sync API.

Playwright's own browser download is unreachable from CI, so tests drive the
system ``chromium`` that ``make test`` apt-installs.  The pytest fixtures
(``browser``, ``page``, ``screenshot``) live in ``tests/conftest.py``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from . import REPO_ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


CHROMIUM_MISSING = (
    "Chromium is not installed, so browser tests cannot run: "
    "run `make test` (it apt-installs Debian's chromium package)"
)


def find_chromium() -> str | None:
    """Path of the system Chromium, or None if it is not installed."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def launch_chromium(playwright: Playwright, executable_path: str) -> Browser:
    """Launch the Chromium at ``executable_path`` headless, with the harness' flags."""
    return playwright.chromium.launch(
        executable_path=executable_path, args=CHROMIUM_ARGS, headless=True
    )


def save_screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as ``test-artifacts/<name>.png``; return its path.

    Characters outside ``[A-Za-z0-9._-]`` in ``name`` become ``_``.
    """
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    path = ARTIFACTS_DIR / (re.sub(r"[^A-Za-z0-9._-]+", "_", name) + ".png")
    page.screenshot(path=path, full_page=True)
    return path
