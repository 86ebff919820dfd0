"""The WSGI edge: pass everything else through, hand completed uploads downstream."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Unpack

from .config import Options
from .handler import UploadHandler
from .handoff import call_app, merge
from .upload import Upload

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication


class TusFilter:
    """WSGI middleware giving ``app`` resumable uploads under ``upload_path``.

    ``options`` are those of :class:`~tus_filter.UploadHandler`, which
    answers every upload request.  Requests outside ``upload_path``, and
    requests under it that no enabled protocol recognises, reach ``app``
    unchanged.  When an upload completes, ``app`` is called once, for the
    completing request, with ``environ["tus_filter.upload"]`` (see
    :mod:`tus_filter.handoff`), and its answer is merged into the client's.
    """

    def __init__(self, app: WSGIApplication, **options: Unpack[Options]):
        self.app = app
        self.handler = UploadHandler(**options)
        self.settings = self.handler.settings
        self.storage = self.handler.storage

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        exchange = self.handler.exchange(environ)
        if exchange is None:
            return self.app(environ, start_response)
        response = exchange.response
        if exchange.upload is not None:
            answer = call_app(self.app, environ, exchange.upload,
                              send_file=self.settings.send_file)
            response = merge(response, answer, exchange.essential_headers)
        result: Iterable[bytes] = self.handler.finish(environ, response)(environ, start_response)
        return result

    # -- application API ------------------------------------------------------------------

    def get_upload(self, upload_id: str) -> Upload:
        """:meth:`UploadHandler.get_upload <tus_filter.UploadHandler.get_upload>`."""
        return self.handler.get_upload(upload_id)

    def cleanup(self) -> int:
        """Delete expired uploads now (e.g. from cron); return how many were deleted."""
        return self.handler.cleanup()
