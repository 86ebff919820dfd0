"""Protocol strategies, in the order the filter asks them to recognise a request.

The IETF draft comes first: it claims only requests with its own fields and
no ``Tus-Resumable``, while tus claims every HEAD/PATCH/DELETE on an upload id.
The uid protocol comes before the chunk-numbered clients because its field
names are the most specific.
"""

from .base import Outcome, Protocol
from .flow import FlowProtocol
from .ietf import IetfProtocol
from .resumable import ResumableProtocol
from .tus import TusProtocol
from .uid import UidProtocol

PROTOCOLS: dict[str, type[Protocol]] = {
    "ietf": IetfProtocol,
    "tus": TusProtocol,
    "uid": UidProtocol,
    "flowjs": FlowProtocol,
    "resumablejs": ResumableProtocol,
}

__all__ = ["PROTOCOLS", "Outcome", "Protocol"]
