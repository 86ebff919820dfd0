"""An upload's record: what is known about it, stored by a :class:`~.base.RecordStore`."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

UPLOADING = "uploading"
COMPLETE = "complete"

# Keys that records of earlier releases kept flat, and that now live in
# ``state`` under the same names: such a record loads with its state, so an
# upload in flight survives an upgrade.  Their defaults then meant "unset".
_FLAT_STATE = (
    "raw_metadata", "concat", "concat_header", "parts",  # tus
    "chunk_size", "chunk_count", "layout", "received",  # flow.js, resumable.js, uid
)
_UNSET: tuple[object, ...] = (None, "", [])


@dataclass
class UploadRecord:
    """What is known about one upload; stored as a small JSON document.

    Fields a protocol does not use stay at their defaults.  ``touched`` is the
    time of the last request that changed the upload: unfinished uploads
    expire ``upload_valid_duration`` seconds after it, finished ones that long
    after ``completed``.  ``finals`` names the uploads that need this one's
    bytes: this one lives at least as long as every unfinished upload listed
    there (a tus partial, while a final that names it waits for its other
    partials).

    ``state`` is the protocol's own: JSON values that storage keeps as they
    are and never reads (each protocol reads and writes it through a typed
    view of its own).  ``version`` counts the saves (see
    :meth:`RecordStore.save <tus_filter.storage.base.RecordStore.save>`);
    ``data`` belongs to the :class:`~tus_filter.storage.base.DataStore`,
    which keeps there what it needs to find the upload's bytes (an S3
    multipart upload and its parts), so that it changes atomically with the
    offset.
    """

    upload_id: str
    protocol: str
    length: int | None
    offset: int = 0
    filename: str | None = None
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    status: str = UPLOADING
    created: float = field(default_factory=time.time)
    touched: float = field(default_factory=time.time)
    completed: float | None = None
    scope: str = ""  # ``Protocol.scope_of`` the creating request (``bind_to_scope``)
    version: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    finals: list[str] = field(default_factory=list)  # uploads that need this one's bytes
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def is_complete(self) -> bool:
        return self.status == COMPLETE

    def expires_at(self, valid_duration: int) -> float | None:
        if valid_duration <= 0:
            return None
        start = self.completed if self.completed is not None else self.touched
        return start + valid_duration

    # -- serialisation --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadRecord:
        """The record ``to_json`` gave, or one an earlier release saved (see ``_FLAT_STATE``)."""
        known = {name for name in cls.__dataclass_fields__}
        record = cls(**{key: value for key, value in data.items() if key in known})
        flat = {key: data[key] for key in _FLAT_STATE if data.get(key) not in _UNSET}
        record.state = {**flat, **record.state}
        return record
