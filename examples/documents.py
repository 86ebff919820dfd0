"""A tiny document store for the view examples: one directory per owner.

A document is a finished upload moved (``os.replace``, no copy) to
``<root>/<owner>/<upload id>``, with its client-given name and size in
``<upload id>.json`` next to it.  Owners are the application's user ids,
never client strings, and the file is named by the upload id.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tus_filter import Upload


class Documents:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, owner: str, upload: Upload) -> dict[str, Any]:
        """Make ``upload`` a document of ``owner``; return its description."""
        folder = self.root / owner
        folder.mkdir(exist_ok=True)
        os.replace(upload.path, folder / upload.upload_id)
        document = {"id": upload.upload_id, "name": upload.filename, "size": upload.size}
        (folder / f"{upload.upload_id}.json").write_text(json.dumps(document))
        return document

    def of(self, owner: str) -> list[dict[str, Any]]:
        """``owner``'s documents, oldest first."""
        folder = self.root / owner
        if not folder.is_dir():
            return []
        described = sorted(folder.glob("*.json"), key=lambda path: path.stat().st_mtime_ns)
        return [json.loads(path.read_text()) for path in described]

    def path(self, owner: str, document_id: str) -> Path:
        return self.root / owner / document_id
