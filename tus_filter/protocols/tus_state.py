"""What tus keeps of an upload: its metadata as sent and its place in a concatenation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..storage import UploadRecord

PARTIAL = "partial"
FINAL = "final"


@dataclass(frozen=True)
class TusState:
    """tus's state of an upload, in ``UploadRecord.state`` (set at creation).

    ``raw_metadata``: ``Upload-Metadata`` as received, stripped (``HEAD``
    echoes it).  ``concat``: :data:`PARTIAL`, :data:`FINAL` or ``None``; a
    final's ``concat_header`` is its ``Upload-Concat`` as received (echoed
    on ``HEAD``) and ``parts`` are its partials' ids, in order.  The finals
    a partial's bytes are needed by are the record's own ``finals``: the
    storage's expiry rule reads them.
    """

    raw_metadata: str | None = None
    concat: str | None = None
    concat_header: str | None = None
    parts: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, record: UploadRecord) -> TusState:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in record.state.items() if key in names})

    def store(self, record: UploadRecord) -> None:
        record.state = asdict(self)
