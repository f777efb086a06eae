from payments.models.bank import BankFile, BankReport
from payments.models.batch import BatchChunk, BatchRowError, BatchStatus, PaymentBatch
from payments.models.controls import BlockedEntry, ExchangeRate, SanctionedName
from payments.models.events import Event, GatewayCallback, IdempotencyKey
from payments.models.incidents import Incident
from payments.models.notifications import Channel, Delivery, DeliveryStatus, Notification, WebhookSendSlot
from payments.models.payment import (
    FINAL_STATES,
    Direction,
    GatewayAttempt,
    Method,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from payments.models.risk import RiskModel
from payments.models.rollups import PaymentDailyStat, RollupKind
from payments.models.sandbox import SandboxNotice, SandboxOperation
from payments.models.timing import TimingModel

__all__ = [
    "BankFile",
    "BankReport",
    "BlockedEntry",
    "ExchangeRate",
    "SanctionedName",
    "Channel",
    "Delivery",
    "DeliveryStatus",
    "Notification",
    "FINAL_STATES",
    "BatchChunk",
    "BatchRowError",
    "BatchStatus",
    "Event",
    "GatewayAttempt",
    "GatewayCallback",
    "IdempotencyKey",
    "Incident",
    "Direction",
    "Method",
    "Payment",
    "PaymentBatch",
    "PaymentStatus",
    "Refund",
    "RefundStatus",
    "PaymentDailyStat",
    "RiskModel",
    "RollupKind",
    "SandboxNotice",
    "SandboxOperation",
    "TimingModel",
    "WebhookSendSlot",
]
