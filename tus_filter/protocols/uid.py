"""PLACEHOLDER: replaced by the real strategy."""

from ..incoming import UploadRequest
from .base import Outcome, Protocol


class UidProtocol(Protocol):
    name = "uid"
    methods = ()

    def recognizes(self, request: UploadRequest) -> bool:
        return False

    def handle(self, request: UploadRequest) -> Outcome:
        raise NotImplementedError
