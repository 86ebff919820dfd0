"""Protocol strategies, in the order the filter asks them to recognise a request.

tus comes first (its requests carry tus headers); the uid protocol before the
chunk-numbered clients because its field names are the most specific.
"""

from .base import Outcome, Protocol
from .flow import FlowProtocol
from .resumable import ResumableProtocol
from .tus import TusProtocol
from .uid import UidProtocol

PROTOCOLS: dict[str, type[Protocol]] = {
    "tus": TusProtocol,
    "uid": UidProtocol,
    "flowjs": FlowProtocol,
    "resumablejs": ResumableProtocol,
}

__all__ = ["PROTOCOLS", "Outcome", "Protocol"]
