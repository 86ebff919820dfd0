"""An ``on_create`` hook: refuse files that are too big or of the wrong type.

tus_filter calls ``on_create(environ, info)`` before it stores anything of a
new upload.  ``info`` is a :class:`tus_filter.UploadInfo`: ``protocol``,
``upload_id``, ``size`` (``None`` while a tus client defers the length),
``filename``, ``metadata`` and ``content_type``, all as the client sent
them.  Raising :class:`tus_filter.Reject` refuses the upload: nothing is
stored and the client gets the message, with the status or, where that
client would retry it, one it gives up on (413 reaches resumable.js as 400).

Use it in an ini (``on_create = examples.hooks:on_create``, see
``filter_with.ini``) or in code (``TusFilter(app, on_create=on_create)``).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from tus_filter import Reject, UploadInfo

MAX_SIZE = 100 * 1024 * 1024
#: Accepted file name extensions and the content types that go with them.
ACCEPTED = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
#: What clients send when the browser does not know a file's type.
UNKNOWN_TYPES = (None, "application/octet-stream")


def on_create(environ: dict[str, Any], info: UploadInfo) -> None:
    """Refuse uploads over ``MAX_SIZE`` and anything but PDF, PNG and JPEG.

    The type is judged by the file name's extension, and by the content type
    too when the client declares a specific one.

    A tus upload with a deferred length (``info.size is None``) passes the
    size check here; the filter's ``max_size`` still bounds it.
    """
    if info.size is not None and info.size > MAX_SIZE:
        raise Reject(413, "files up to 100 MiB only")
    extension = PurePosixPath(info.filename or "").suffix.lower()
    if extension not in ACCEPTED:
        raise Reject(415, "PDF, PNG and JPEG files only")
    if info.content_type not in UNKNOWN_TYPES and info.content_type != ACCEPTED[extension]:
        raise Reject(415, f"a {extension} file must be {ACCEPTED[extension]}")
