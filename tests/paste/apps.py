"""Apps and hooks the Paste test ini files load by name."""

from __future__ import annotations

from typing import Any

from tus_filter import Reject, UploadInfo


def hello_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from the app"]


def hello_app_factory(global_conf: dict[str, str], **local_conf: str) -> Any:
    return hello_app


def user_header(environ: dict[str, Any]) -> str:
    """A ``scope`` hook: the user an application in front named in ``X-User``."""
    return str(environ.get("HTTP_X_USER", ""))


def refuse_exe(environ: dict[str, Any], upload: UploadInfo) -> None:
    if (upload.filename or "").endswith(".exe"):
        raise Reject(415, "executables are not accepted")
