"""The one JSON shape of a payment: API responses, Event data and webhooks share it."""

from payments.models import Payment, Refund
from payments.money import format_minor


def payment_data(payment: Payment) -> dict:
    return {
        "id": payment.public_id,
        "object": "payment",
        "reference": payment.reference,
        "amount": payment.amount,
        "currency": payment.currency,
        "method": payment.method,
        "beneficiary_name": payment.beneficiary_name,
        "beneficiary_account": payment.beneficiary_account,
        "beneficiary_email": payment.beneficiary_email,
        "beneficiary_phone": payment.beneficiary_phone,
        "description": payment.description,
        "metadata": payment.metadata,
        "status": payment.status,
        "failure_code": payment.failure_code or None,
        "failure_message": payment.failure_message or None,
        "next_action": payment.next_action,
        "batch": payment.batch.public_id if payment.batch_id else None,
        "refunded_amount": payment.refunded_amount,
        "created_at": payment.created_at.isoformat() if payment.created_at else None,
        "updated_at": payment.updated_at.isoformat() if payment.updated_at else None,
    }


def refund_data(refund: Refund) -> dict:
    return {
        "id": refund.public_id,
        "object": "refund",
        "payment": refund.payment.public_id,
        "amount": format_minor(refund.amount_minor, refund.payment.currency),
        "currency": refund.payment.currency,
        "reason": refund.reason,
        "status": refund.status,
        "failure_code": refund.failure_code or None,
        "created_at": refund.created_at.isoformat() if refund.created_at else None,
    }
