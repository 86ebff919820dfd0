"""The files the demo page loads: its own script and stylesheet, and the client libraries.

The libraries come from ``node_modules`` (``npm ci`` installs the versions
pinned in package.json and its lock file); nothing is copied into the
repository and nothing is loaded from a CDN.  Only the files listed here are
served, each at a fixed URL, so no request path is ever looked up on disk:
``..``, encoded slashes or symlinks cannot reach anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

OWN_DIR = Path(__file__).resolve().parent / "static"
OWN = ("demo.js", "demo.css")

#: URL name → file below node_modules.  Uppy's bundle includes tus-js-client.
VENDOR = {
    "uppy.min.js": "uppy/dist/uppy.min.js",
    "uppy.min.css": "uppy/dist/uppy.min.css",
    "flow.js": "@flowjs/flow.js/dist/flow.js",
    "resumable.js": "resumablejs/resumable.js",
}

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def asset_files(node_modules: str | Path) -> Mapping[str, Path]:
    """URL path → file for everything the page loads.

    Raises ``RuntimeError`` naming the fix when a library is missing, so the
    demo fails at startup rather than with a blank page.
    """
    files = {f"/static/{name}": OWN_DIR / name for name in OWN}
    root = Path(node_modules).resolve()
    for name, relative in VENDOR.items():
        path = root / relative
        if not path.is_file():
            raise RuntimeError(f"{path} is missing: run `npm ci` (or `make demo`) first")
        files[f"/vendor/{name}"] = path
    return files


def content_type(path: Path) -> str:
    return CONTENT_TYPES[path.suffix]
