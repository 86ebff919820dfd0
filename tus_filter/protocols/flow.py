"""flow.js 2.14.1 (contract §1.1 and §5.1): the ``flow*`` spelling and flow.js's retry table.

flow.js counts only 200, 201 and 202 as success and fails the whole file on
404, 413, 415, 500 and 501; with its default ``maxChunkRetries: 0`` every
other status fails the file too, while a configured retry count retries it.
So: a chunk too large or a file over ``max_size`` is 413 (fails at once, even
in the test phase, F4); a lock timeout is 503 with ``Retry-After``; a
record that vanished under a request (expired mid-upload) is 503 as well,
never 404, because a retry simply starts the upload afresh.  A ``Reject``
from ``on_create`` keeps its status if it is 404, 413 or 415, and is 415
otherwise: a configured ``maxChunkRetries`` would retry a 403 (415 rather
than 404 or 413, which would misname the cause).
"""

from __future__ import annotations

from ..errors import BadRequest, UploadLocked, UploadNotFound
from ..forms import Form
from ..incoming import UploadRequest
from .flowlike import CEIL, FLOOR, FlowLikeProtocol, Parameters, Shape, has_marker

PREFIX = "flow"
#: Either one marks a request as flow.js's (query string or form fields).
MARKERS = ("flowChunkNumber", "flowIdentifier")


class FlowProtocol(FlowLikeProtocol):
    """flow.js test requests (GET, or ``testMethod: 'POST'`` fields) and chunk uploads."""

    name = "flowjs"
    status_overrides = {UploadLocked: 503, UploadNotFound: 503}
    final_statuses = frozenset({404, 413, 415, 500, 501})  # flow.js 2.14.1 permanentErrors
    refusal_status = 415

    def recognizes(self, request: UploadRequest) -> bool:
        return has_marker(request, lambda names: not names.isdisjoint(MARKERS))

    def prefix(self, params: Parameters) -> str:
        return PREFIX

    def is_test(self, request: UploadRequest, form: Form | None) -> bool:
        """``testMethod: 'POST'`` sends the parameters as form fields without a file part."""
        return form is not None and form.file is None

    def mode_hint(self, shape: Shape, total_chunks: int | None) -> str | None:
        """flow.js computes ``flowTotalChunks`` up front, so any other value is wrong (F9)."""
        if total_chunks is None:
            return None
        if total_chunks == shape.floor_count:
            return FLOOR
        if total_chunks == shape.ceil_count:
            return CEIL
        raise BadRequest(
            f"flowTotalChunks must be {shape.floor_count} (or {shape.ceil_count} "
            "with forceChunkSize)"
        )
