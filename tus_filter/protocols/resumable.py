"""resumable.js 1.1.0 (contract §1.5 and §5.2): the ``resumable*`` spelling and its retry table.

resumable.js counts only 200 and 201 as success.  It fails the file at once
on 400, 404, 415, 500 and 501 and retries *every other* status, immediately,
up to 100 times.  So everything permanent is 400 here, including a chunk or
file that is too large (413 would be retried 100 times, R6); a lock timeout
or a record that vanished under a request is 503 (with ``Retry-After``,
which resumable.js ignores), so it is retried.  A :class:`~tus_filter.Reject`
from ``on_create`` keeps its status if it is 400, 404 or 415, and is 400
otherwise: any other 4xx would be retried 100 times.

``parameterNamespace`` (R1): a request is resumable.js's when a parameter
name ends in ``resumableChunkNumber``; what precedes it is the namespace,
and every other name (``<ns>resumableIdentifier``...) carries it too.
"""

from __future__ import annotations

import logging

from ..errors import BadRequest, PayloadTooLarge, UploadLocked, UploadNotFound
from ..forms import Form
from ..incoming import UploadRequest
from .flowlike import CEIL, ChunkParams, FlowLikeProtocol, Parameters, Shape, has_marker

log = logging.getLogger("tus_filter")

MARKER = "resumableChunkNumber"


def namespaces(names: set[str]) -> set[str]:
    """The ``parameterNamespace`` of every ``<ns>resumableChunkNumber`` parameter."""
    return {name[: -len(MARKER)] for name in names if name.endswith(MARKER)}


class ResumableProtocol(FlowLikeProtocol):
    """resumable.js test requests (GET, or an empty POST) and chunk uploads."""

    name = "resumablejs"
    status_overrides = {PayloadTooLarge: 400, UploadLocked: 503, UploadNotFound: 503}
    final_statuses = frozenset({400, 404, 415, 500, 501})  # resumable.js 1.1.0 permanentErrors
    refusal_status = 400
    reads_type = True

    def recognizes(self, request: UploadRequest) -> bool:
        return has_marker(request, lambda names: bool(namespaces(names)))

    def prefix(self, params: Parameters) -> str:
        found = namespaces(params.names())
        if len(found) != 1:
            raise BadRequest("parameters of several parameterNamespaces: " + ", ".join(
                sorted(repr(namespace) for namespace in found)
            ))
        return found.pop() + "resumable"

    def metadata_of(self, params: ChunkParams) -> dict[str, str]:
        """Adds ``type``: ``resumableType`` as sent (the browser's ``file.type``, maybe empty)."""
        metadata = super().metadata_of(params)
        if params.type is not None:
            metadata["type"] = params.type
        return metadata

    def is_test(self, request: UploadRequest, form: Form | None) -> bool:
        """``testMethod: 'POST'`` sends no body and no Content-Type (R4).

        A 0-byte chunk in octet mode always has ``Content-Type:
        application/octet-stream``, which tells the two apart.
        """
        return (
            form is None
            and request.body_length == 0
            and request.header("Content-Type") is None
        )

    def mode_hint(self, shape: Shape, total_chunks: int | None) -> str | None:
        """resumable.js 1.1.0 may send a too-small, growing ``totalChunks`` (R7, #567).

        Only a value that cannot be an undercount says something: ``Nc``
        when it exceeds ``Nf`` means ``forceChunkSize``.  ``Nf`` may be an
        undercount of ``Nc``, so the chunk itself decides (§5.0 inference).
        """
        if shape.ambiguous and total_chunks == shape.ceil_count:
            return CEIL
        if total_chunks is not None and total_chunks not in (shape.floor_count, shape.ceil_count):
            log.debug("resumable.js sent totalChunks=%d for a %d-chunk file; ignored",
                      total_chunks, shape.ceil_count)
        return None
