"""Storage: the contract (``base``), the facade (``uploads``) and the filesystem backend."""

from .base import (
    Capabilities,
    ChunkLayout,
    DataStore,
    RecordStore,
    StagedChunk,
    StaleRecord,
    UploadExists,
    valid_id,
)
from .filesystem import FileData, FileRecords
from .record import COMPLETE, UPLOADING, UploadRecord
from .uploads import Storage

__all__ = [
    "COMPLETE", "UPLOADING", "Capabilities", "ChunkLayout", "DataStore", "FileData",
    "FileRecords", "RecordStore", "StagedChunk", "StaleRecord", "Storage", "UploadExists",
    "UploadRecord", "valid_id",
]
