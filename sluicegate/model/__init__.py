"""Plain data passed between the stages of a request. No behaviour beyond small helpers."""

from sluicegate.model.identity import Envelope, Principal
from sluicegate.model.record import AttemptRecord, LedgerRecord, PolicyEvent
from sluicegate.model.request import ClientApi, GatewayRequest
from sluicegate.model.usage import Usage

__all__ = [
    "AttemptRecord",
    "ClientApi",
    "Envelope",
    "GatewayRequest",
    "LedgerRecord",
    "PolicyEvent",
    "Principal",
    "Usage",
]
