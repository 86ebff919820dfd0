"""What differs between the interop versions of draft-ietf-httpbis-resumable-upload.

Clients name the iteration of the draft they speak in
``Upload-Draft-Interop-Version``; one handler serves them all, reading the
differences from :data:`INTEROP_VERSIONS`.  Everything not listed here is the
same in every version served (creation, HEAD, PATCH, DELETE, 409 with the
right offset).  Responses always carry ``Upload-Offset`` on appends (interop
7 dropped the requirement; tus-js-client still reads it) and, where the
version defines ``Upload-Limit``, the limits on creation, HEAD and 413
(a MUST from interop 8, allowed before).
"""

from __future__ import annotations

from dataclasses import dataclass

from .structured import parse_boolean, serialize_boolean

PARTIAL_UPLOAD = "application/partial-upload"
PROBLEM_BASE = "https://iana.org/assignments/http-problem-types#"
MISMATCHING_OFFSET = "mismatching-upload-offset"
COMPLETED_UPLOAD = "completed-upload"
INCONSISTENT_LENGTH = "inconsistent-upload-length"


@dataclass(frozen=True)
class Interop:
    version: int
    #: ``Upload-Incomplete`` (interop 3) says the inverse of ``Upload-Complete``.
    complete_field: str = "Upload-Complete"
    #: The media type a PATCH must carry (interop 6 on), or None.
    append_media_type: str | None = PARTIAL_UPLOAD
    #: Whether ``Upload-Limit`` exists, and the name of its lifetime member.
    limits: bool = True
    age_limit: str = "max-age"
    #: Problem types (RFC 9457) the version defines for its errors.
    problems: frozenset[str] = frozenset({MISMATCHING_OFFSET, INCONSISTENT_LENGTH})

    def read_complete(self, value: str | None) -> bool | None:
        """Whether the request completes the upload; None when the field is absent or invalid."""
        flag = parse_boolean(value)
        if flag is None or self.complete_field == "Upload-Complete":
            return flag
        return not flag

    def complete_header(self, complete: bool) -> dict[str, str]:
        inverted = self.complete_field != "Upload-Complete"
        return {self.complete_field: serialize_boolean(complete != inverted)}


_NO_PROBLEMS: frozenset[str] = frozenset()
_UNTIL_8 = frozenset({MISMATCHING_OFFSET, COMPLETED_UPLOAD, INCONSISTENT_LENGTH})

INTEROP_VERSIONS: dict[int, Interop] = {
    interop.version: interop
    for interop in (
        # draft -01
        Interop(3, complete_field="Upload-Incomplete",
                append_media_type=None, limits=False, problems=_NO_PROBLEMS),
        # -02, -03
        Interop(4, append_media_type=None, limits=False, problems=_NO_PROBLEMS),
        Interop(5, append_media_type=None, limits=False, problems=_NO_PROBLEMS),
        # -04, -05
        Interop(6, age_limit="expires", problems=frozenset({MISMATCHING_OFFSET, COMPLETED_UPLOAD})),
        # -06 to -08, -09 to -11
        Interop(7, problems=_UNTIL_8),
        Interop(8, problems=_UNTIL_8),
        # -12 on: the completed-upload problem type is gone
        Interop(9),
    )
}

#: A request without ``Upload-Draft-Interop-Version`` speaks the newest text.
LATEST = INTEROP_VERSIONS[max(INTEROP_VERSIONS)]
