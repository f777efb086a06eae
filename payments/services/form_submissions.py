"""One effect for two clicks: a dashboard form that moves money carries a one-time token.

The confirmation page of a money-moving form (new payment, refund, cancel,
batch approval) carries a random token. The first POST with it claims the
token (a row in the idempotency table, unique per merchant, so a second
click, even a concurrent one, cannot claim it too) and runs the action; the
second POST finds the claim and is sent where the first one went.
"""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from merchants.models import Merchant
from payments.models import IdempotencyKey

PREFIX = "dashboard-form:"
MIN_TOKEN_LENGTH = 16


class SubmissionSeen(Exception):
    """The token was already used; `location` is where its first submission led ("" if still running)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def form_token_new() -> str:
    """Return a fresh random token for a confirmation page."""
    return secrets.token_urlsafe(24)


def form_submission_claim(*, merchant: Merchant, token: str, path: str) -> IdempotencyKey:
    """Claim `token` for one submission.

    Raise SubmissionSeen if it was claimed before, ValueError if the token is missing or malformed.
    """
    if not token or len(token) < MIN_TOKEN_LENGTH or len(token) > 100:
        raise ValueError("A confirmation token is required.")
    key = PREFIX + token
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                merchant=merchant, key=key, method="POST", path=path[:500], request_hash=""
            )
    except IntegrityError:
        first = IdempotencyKey.objects.filter(merchant=merchant, key=key).first()
        location = ((first.response_headers or {}).get("Location", "")) if first else ""
        raise SubmissionSeen(location) from None


def form_submission_done(*, claim: IdempotencyKey, location: str) -> None:
    """Record where the claimed submission led, so a repeated click lands there too."""
    IdempotencyKey.objects.filter(pk=claim.pk).update(
        response_status=303, response_headers={"Location": location}, completed_at=timezone.now()
    )


def form_submission_release(*, claim: IdempotencyKey) -> None:
    """Forget a claim whose action was refused (a field error): the corrected form gets a new token."""
    IdempotencyKey.objects.filter(pk=claim.pk).delete()
