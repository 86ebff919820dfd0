"""Storage: the contract (``base``) and the filesystem implementation."""

from .base import COMPLETE, UPLOADING, StagedChunk, Storage, UploadExists, UploadRecord
from .filesystem import FilesystemStorage

__all__ = [
    "COMPLETE", "UPLOADING", "FilesystemStorage", "StagedChunk", "Storage", "UploadExists",
    "UploadRecord",
]
