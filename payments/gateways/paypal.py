"""PayPal REST: Orders v2 (approval link, capture), refunds, Payouts, verified webhooks.

The attempt's idempotency key goes out as `PayPal-Request-Id` and as the
purchase unit's `invoice_id`/`custom_id` (a refund's `custom_id`, a payout
item's `sender_item_id`), so a repeat returns the same PayPal object and a
webhook finds its payment by it. Webhooks are verified by PayPal itself
(`/v1/notifications/verify-webhook-signature` with the merchant's webhook id).
Access tokens come from the OAuth2 client-credentials grant and are cached
per process until shortly before they expire.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from payments.gateways import (
    CallbackRejected,
    Gateway,
    GatewayError,
    GatewayResult,
    Outcome,
    VerifiedCallback,
    http_call,
    notice,
    refund_result,
)
from payments.models import GatewayAttempt, Payment, Refund
from payments.money import MoneyError, format_minor, parse_amount

if TYPE_CHECKING:
    from merchants.models import GatewayAccount

logger = logging.getLogger(__name__)

_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()

# Webhook event types and the notice each one becomes.
EVENT_NOTICES = {
    "CHECKOUT.ORDER.APPROVED": "payment.approved",
    "CHECKOUT.ORDER.VOIDED": "payment.closed",
    "PAYMENT.CAPTURE.COMPLETED": "payment.succeeded",
    "PAYMENT.CAPTURE.DENIED": "payment.failed",
    "PAYMENT.CAPTURE.DECLINED": "payment.failed",
    "PAYMENT.CAPTURE.REVERSED": "payment.reversed",
    "PAYMENT.CAPTURE.REFUNDED": "refund.succeeded",
    "PAYMENT.PAYOUTS-ITEM.SUCCEEDED": "payment.succeeded",
    # Sent to an address with no PayPal account: the money has left the merchant and waits 30 days
    # to be claimed. If it is not, PayPal returns it: the payout is then reversed (RETURNED).
    "PAYMENT.PAYOUTS-ITEM.UNCLAIMED": "payment.succeeded",
    "PAYMENT.PAYOUTS-ITEM.FAILED": "payment.failed",
    "PAYMENT.PAYOUTS-ITEM.BLOCKED": "payment.failed",
    "PAYMENT.PAYOUTS-ITEM.DENIED": "payment.failed",
    "PAYMENT.PAYOUTS-ITEM.CANCELED": "payment.failed",
    "PAYMENT.PAYOUTS-ITEM.RETURNED": "payment.reversed",
    "PAYMENT.PAYOUTS-ITEM.REFUNDED": "payment.reversed",
    "PAYMENT.PAYOUTS-ITEM.REVERSED": "payment.reversed",
}
# A payout item's transaction_status and the notice it is (reconciliation by query).
PAYOUT_ITEM_NOTICES = {
    "SUCCESS": "payment.succeeded",
    "UNCLAIMED": "payment.succeeded",
    "FAILED": "payment.failed",
    "BLOCKED": "payment.failed",
    "DENIED": "payment.failed",
    "CANCELED": "payment.failed",
    "RETURNED": "payment.reversed",
    "REFUNDED": "payment.reversed",
    "REVERSED": "payment.reversed",
}
VERIFY_HEADERS = {
    "auth_algo": "Paypal-Auth-Algo",
    "cert_url": "Paypal-Cert-Url",
    "transmission_id": "Paypal-Transmission-Id",
    "transmission_sig": "Paypal-Transmission-Sig",
    "transmission_time": "Paypal-Transmission-Time",
}


def _money(amount_minor: int, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": format_minor(amount_minor, currency)}


def _issue(data: dict) -> str:
    details = data.get("details") or [{}]
    issue = details[0].get("issue") if isinstance(details[0], dict) else None
    return str(issue or data.get("name") or "paypal_error").lower()[:64]


def _link(data: dict, *rels: str) -> str | None:
    for link in data.get("links") or []:
        if link.get("rel") in rels:
            return link.get("href")
    return None


class PayPalGateway(Gateway):
    slug = "paypal"
    collects = True
    payouts = True
    requires_account = True
    CALLBACK_TYPES = frozenset(
        {
            "payment.approved",
            "payment.succeeded",
            "payment.failed",
            "payment.closed",
            "payment.reversed",
            "refund.succeeded",
            "refund.failed",
        }
    )

    # HTTP ------------------------------------------------------------------
    def _token(self, account: GatewayAccount, renew: bool = False) -> str:
        base = self.base_url(account)
        cache_key = (base, account.app_id, hashlib.sha256(account.secret.encode()).hexdigest())
        with _tokens_lock:
            cached = _tokens.get(cache_key)
            if cached and not renew and cached[1] > time.monotonic():
                return cached[0]
        response = http_call(
            "POST",
            base + "/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(account.app_id, account.secret),
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            raise GatewayError(f"PayPal token request answered HTTP {response.status_code}")
        try:
            data = response.json()
            token = str(data["access_token"])
            lifetime = int(data.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise GatewayError("PayPal token answer malformed") from None
        with _tokens_lock:
            _tokens[cache_key] = (token, time.monotonic() + max(lifetime - 60, 0))
        return token

    def _api(
        self,
        account: GatewayAccount,
        method: str,
        path: str,
        body: dict | None = None,
        request_id: str | None = None,
        raw_body: bytes | None = None,
    ) -> tuple[int, dict]:
        """Call the REST API with a bearer token; retry once with a new token on 401.

        5xx and 429 raise GatewayError; other statuses are returned with their JSON.
        """
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        for renew in (False, True):
            headers = {
                "Authorization": f"Bearer {self._token(account, renew=renew)}",
                "Accept": "application/json",
                "Prefer": "return=representation",
            }
            if data is not None:
                headers["Content-Type"] = "application/json"
            if request_id:
                headers["PayPal-Request-Id"] = request_id
            response = http_call(method, self.base_url(account) + path, data=data, headers=headers)
            if response.status_code != 401:
                break
        if response.status_code >= 500 or response.status_code in (401, 429):
            raise GatewayError(f"PayPal {method} {path} answered HTTP {response.status_code}")
        try:
            return response.status_code, (response.json() if response.content else {})
        except ValueError:
            raise GatewayError(f"PayPal {method} {path} answer is not JSON") from None

    def _account(self, merchant_id: int) -> GatewayAccount:
        account = self.account_for(merchant_id)
        if account is None:
            raise GatewayError("no enabled PayPal account")
        return account

    # Orders ----------------------------------------------------------------
    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        """Create an order (PayPal-Request-Id = attempt key); the buyer approves it at PayPal.

        A batch row is a payout, never an order: its attempt (a retry, or one
        the sweeper resumes) is sent as a payout of one item.
        """
        if payment.batch_id is not None:
            return self._payout(payment.merchant_id, [(payment, attempt)])[0]
        account = self.account_for(payment.merchant_id)
        if account is None:
            return self.not_configured()
        key = attempt.idempotency_key
        body = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": payment.public_id,
                    "invoice_id": key,
                    "custom_id": key,
                    "description": (payment.description or payment.reference)[:127],
                    "amount": _money(payment.amount_minor, payment.currency),
                }
            ],
            "payment_source": {
                "paypal": {
                    "experience_context": {
                        "user_action": "PAY_NOW",
                        "return_url": settings.PAYDESK_PAYPAL_RETURN_URL,
                        "cancel_url": settings.PAYDESK_PAYPAL_RETURN_URL,
                    }
                }
            },
        }
        status, data = self._api(account, "POST", "/v2/checkout/orders", body, request_id=key)
        if status >= 400:
            return GatewayResult(
                outcome=Outcome.FAILED,
                failure_code=_issue(data),
                failure_message=str(data.get("message") or "")[:500],
                raw=data,
            )
        order_id = str(data.get("id") or "")
        if not order_id:
            raise GatewayError("PayPal order answer has no id")
        if data.get("status") == "COMPLETED":
            return GatewayResult(outcome=Outcome.SUCCEEDED, gateway_reference=order_id, raw=data)
        approve = _link(data, "payer-action", "approve")
        if not approve:
            raise GatewayError(f"PayPal order {order_id} has no approval link")
        return GatewayResult(
            outcome=Outcome.REQUIRES_ACTION,
            gateway_reference=order_id,
            next_action={"type": "redirect_to_url", "url": approve},
            raw=data,
        )

    def query(self, attempt: GatewayAttempt) -> GatewayResult | None:
        """Ask where an order (or payout item) stands; capture an approved order on the way.

        The capture carries PayPal-Request-Id "<key>-capture", so a repeat never
        captures twice.
        """
        payment = attempt.payment
        account = self._account(payment.merchant_id)
        response = attempt.response or {}
        if isinstance(response, dict) and "batch_header" in response:
            return self._query_payout_item(account, attempt, response)
        order_id = attempt.gateway_reference or payment.gateway_reference
        if not order_id:
            return None
        status, order = self._api(account, "GET", f"/v2/checkout/orders/{quote(order_id, safe='')}")
        if status == 404:
            return notice("payment.closed", attempt.idempotency_key, order_id, "order_not_found")
        if status >= 400:
            raise GatewayError(f"PayPal order query refused: {_issue(order)}")
        if order.get("status") == "APPROVED":
            status, order = self._api(
                account,
                "POST",
                f"/v2/checkout/orders/{quote(order_id, safe='')}/capture",
                raw_body=b"{}",
                request_id=f"{attempt.idempotency_key}-capture",
            )
            if status >= 400:
                issue = _issue(order)
                if issue in ("instrument_declined", "payer_action_required", "order_not_approved"):
                    return None  # the buyer has to act again at PayPal
                return notice("payment.failed", attempt.idempotency_key, order_id, issue)
        return self._order_notice(attempt, payment, order_id, order)

    def close(self, attempt: GatewayAttempt) -> GatewayResult:
        """Make sure an order awaiting the buyer can no longer take money.

        A checkout order moves money only when we capture it, and nothing
        captures the order of a cancelled payment; so an uncaptured order is
        closed as it stands (PayPal lets it expire). A captured one is the
        paid path.
        """
        payment = attempt.payment
        account = self._account(payment.merchant_id)
        order_id = attempt.gateway_reference or payment.gateway_reference
        if not order_id:
            return GatewayResult(outcome=Outcome.CLOSED)
        status, order = self._api(account, "GET", f"/v2/checkout/orders/{quote(order_id, safe='')}")
        if status == 404:
            return GatewayResult(outcome=Outcome.CLOSED, gateway_reference=order_id, raw=order)
        if status >= 400:
            raise GatewayError(f"PayPal order query refused: {_issue(order)}")
        answer = self._order_notice(attempt, payment, order_id, order)
        if answer is not None and answer.outcome == Outcome.SUCCEEDED:
            return answer
        if order.get("status") == "COMPLETED":
            return GatewayResult(outcome=Outcome.PROCESSING, gateway_reference=order_id, raw=order)
        return GatewayResult(outcome=Outcome.CLOSED, gateway_reference=order_id, raw=order)

    def _order_notice(
        self, attempt: GatewayAttempt, payment: Payment, order_id: str, order: dict
    ) -> GatewayResult | None:
        key = attempt.idempotency_key
        if order.get("status") == "VOIDED":
            return notice("payment.closed", key, order_id, "order_voided")
        if order.get("status") != "COMPLETED":
            return None
        units = order.get("purchase_units") or [{}]
        captures = ((units[0].get("payments") or {}).get("captures")) or []
        if not captures:
            return None
        capture = captures[0]
        _check_money(capture.get("amount"), payment.amount_minor, payment.currency, GatewayError)
        capture_status = capture.get("status")
        if capture_status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
            return notice("payment.succeeded", key, order_id)
        if capture_status in ("DECLINED", "FAILED"):
            return notice("payment.failed", key, order_id, f"capture_{capture_status.lower()}")
        return None  # PENDING: PayPal sends PAYMENT.CAPTURE.COMPLETED later

    def submit_refund(self, refund: Refund, attempt: GatewayAttempt) -> GatewayResult:
        """Refund the order's capture (PayPal-Request-Id and custom_id = the refund attempt's key)."""
        payment = refund.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            return self.not_configured()
        source = refund.source_attempt
        order_id = (source.gateway_reference if source is not None else "") or payment.gateway_reference
        if not order_id:
            raise GatewayError("payment has no PayPal order to refund")
        status, order = self._api(account, "GET", f"/v2/checkout/orders/{quote(order_id, safe='')}")
        if status >= 400:
            raise GatewayError(f"PayPal order {order_id} unreadable: {_issue(order)}")
        units = order.get("purchase_units") or [{}]
        captures = ((units[0].get("payments") or {}).get("captures")) or []
        if not captures:
            raise GatewayError(f"PayPal order {order_id} has no capture to refund")
        body: dict[str, Any] = {
            "amount": {
                "value": format_minor(refund.amount_minor, payment.currency),
                "currency_code": payment.currency,
            },
            "custom_id": attempt.idempotency_key,
        }
        if refund.reason:
            body["note_to_payer"] = refund.reason[:255]
        status, data = self._api(
            account,
            "POST",
            f"/v2/payments/captures/{quote(str(captures[0]['id']), safe='')}/refund",
            body,
            request_id=attempt.idempotency_key,
        )
        if status >= 400:
            return GatewayResult(outcome=Outcome.FAILED, failure_code=_issue(data), raw=data)
        return refund_result(
            reference=str(data.get("id") or ""),
            status=data.get("status"),
            succeeded="COMPLETED",
            failed=("FAILED", "CANCELLED"),
            raw=data,
        )

    def query_refund(self, attempt: GatewayAttempt) -> GatewayResult | None:
        """Ask `GET /v2/payments/refunds/{refund_id}` (the id PayPal answered) where a refund stands.

        COMPLETED succeeds; FAILED and CANCELLED fail (`refund_failed`,
        `refund_cancelled`, as in the refund's own answer); PENDING is None, as
        is a refund whose id PayPal never gave.
        """
        payment = attempt.payment
        account = self._account(payment.merchant_id)
        refund_id = attempt.gateway_reference or (attempt.refund.gateway_reference if attempt.refund else "")
        if not refund_id:
            return None
        status, data = self._api(account, "GET", f"/v2/payments/refunds/{quote(refund_id, safe='')}")
        if status >= 400:
            raise GatewayError(f"PayPal refund query refused: {_issue(data)}")
        if attempt.refund is None:
            raise GatewayError("refund attempt without its refund")
        _check_money(data.get("amount"), attempt.refund.amount_minor, payment.currency, GatewayError)
        refund_status = str(data.get("status") or "")
        if refund_status == "COMPLETED":
            return notice("refund.succeeded", attempt.idempotency_key, refund_id)
        if refund_status in ("FAILED", "CANCELLED"):
            return notice(
                "refund.failed", attempt.idempotency_key, refund_id, f"refund_{refund_status.lower()}"
            )
        return None  # PENDING

    # Payouts ---------------------------------------------------------------
    def submit_batch(self, items: list[tuple[Payment, GatewayAttempt]]) -> list[GatewayResult | None]:
        """Send a batch's payments as PayPal Payouts, one payout batch per merchant; answer per item.

        A batch executes chunk by chunk, and a chunk holds one merchant's
        payments: one payout per execution chunk.

        The sender_batch_id (also the PayPal-Request-Id) is derived from the
        items' attempt keys, so a repeat of the same chunk is the same payout
        batch at PayPal; each item's `sender_item_id` is its attempt's key. Every
        item is answered `processing` with the payout batch in `raw` (stored on
        its attempt, where `query` finds it) and settled later by its
        PAYMENT.PAYOUTS-ITEM.* webhook or by reconciliation.
        """
        by_merchant: dict[int, list[int]] = {}
        for index, (payment, _attempt) in enumerate(items):
            by_merchant.setdefault(payment.merchant_id, []).append(index)
        results: list[GatewayResult | None] = [None] * len(items)
        for merchant_id, indexes in by_merchant.items():
            group = [items[i] for i in indexes]
            for index, result in zip(indexes, self._payout(merchant_id, group), strict=True):
                results[index] = result
        return results

    def _payout(self, merchant_id: int, items: list[tuple[Payment, GatewayAttempt]]) -> list[GatewayResult]:
        account = self.account_for(merchant_id)
        if account is None:
            return [self.not_configured()] * len(items)
        keys = sorted(attempt.idempotency_key for _payment, attempt in items)
        sender_batch_id = "paydesk-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:40]
        body = {
            "sender_batch_header": {"sender_batch_id": sender_batch_id, "email_subject": "You have a payout"},
            "items": [_payout_item(payment, attempt) for payment, attempt in items],
        }
        status, data = self._api(account, "POST", "/v1/payments/payouts", body, request_id=sender_batch_id)
        if status >= 400:
            failed = GatewayResult(
                outcome=Outcome.FAILED,
                failure_code=_issue(data),
                failure_message=str(data.get("message") or "")[:500],
                raw=data,
            )
            return [failed] * len(items)
        header = data.get("batch_header") or {}
        if not header.get("payout_batch_id"):
            raise GatewayError("PayPal payout answer has no payout_batch_id")
        answer = GatewayResult(
            outcome=Outcome.PROCESSING,
            gateway_reference=str(header["payout_batch_id"]),
            raw={"batch_header": header},
        )
        return [answer] * len(items)

    def _query_payout_item(
        self, account: GatewayAccount, attempt: GatewayAttempt, response: dict
    ) -> GatewayResult | None:
        batch_id = str((response.get("batch_header") or {}).get("payout_batch_id") or "")
        if not batch_id:
            return None
        status, data = self._api(account, "GET", f"/v1/payments/payouts/{quote(batch_id, safe='')}")
        if status >= 400:
            raise GatewayError(f"PayPal payout query refused: {_issue(data)}")
        for item in data.get("items") or []:
            if (item.get("payout_item") or {}).get("sender_item_id") != attempt.idempotency_key:
                continue
            item_status = str(item.get("transaction_status") or "")
            reference = str(item.get("payout_item_id") or "")
            kind = PAYOUT_ITEM_NOTICES.get(item_status)
            if kind == "payment.succeeded":
                return notice(kind, attempt.idempotency_key, reference)
            if kind is not None:
                code = str((item.get("errors") or {}).get("name") or f"payout_{item_status.lower()}")
                return notice(kind, attempt.idempotency_key, reference, code.lower()[:64])
        return None  # PENDING, ONHOLD, NEW: not settled yet

    # Webhooks --------------------------------------------------------------
    def verify_callback(self, request: HttpRequest) -> VerifiedCallback:
        """Find the payment from the event's resource, then have PayPal verify the transmission.

        The event is sent back byte for byte (PayPal's signature covers the raw
        body), with the transmission headers and the merchant's webhook id.
        """
        try:
            event = json.loads(request.body)
            event_id = str(event["id"])
            event_type = str(event["event_type"])
            resource = event["resource"]
        except (ValueError, KeyError, TypeError):
            raise CallbackRejected("malformed body") from None
        if not isinstance(resource, dict):
            raise CallbackRejected("malformed resource")
        key = _resource_key(event_type, resource)
        attempt = (
            GatewayAttempt.objects.select_related("payment", "refund")
            .filter(idempotency_key=key, gateway=self.slug)
            .first()
        )
        if attempt is None:
            raise CallbackRejected("event for an unknown invoice/custom id")
        account = self.account_for(attempt.payment.merchant_id)
        if account is None:
            raise CallbackRejected("merchant has no enabled PayPal account")
        fields = {name: request.headers.get(header, "") for name, header in VERIFY_HEADERS.items()}
        if not all(fields.values()):
            raise CallbackRejected("missing PayPal transmission headers")
        fields["webhook_id"] = account.webhook_id
        head = json.dumps(fields, separators=(",", ":"))[:-1]
        body = head.encode() + b',"webhook_event":' + request.body + b"}"
        try:
            status, data = self._api(
                account, "POST", "/v1/notifications/verify-webhook-signature", raw_body=body
            )
        except GatewayError as exc:
            raise CallbackRejected(f"verification unavailable: {exc}") from None
        if status != 200 or data.get("verification_status") != "SUCCESS":
            raise CallbackRejected(f"PayPal verification: {data.get('verification_status') or status}")
        self._check_amount(event_type, resource, attempt)
        payload = {"id": event_id, "event_type": event_type, "resource": resource, "attempt_key": key}
        return VerifiedCallback(event_id, event_type, payload, self.notices_from_payload(payload))

    def _check_amount(self, event_type: str, resource: dict, attempt: GatewayAttempt) -> None:
        payment = attempt.payment
        if event_type == "PAYMENT.CAPTURE.REFUNDED":
            if attempt.refund is None:
                raise CallbackRejected("refund event for a payment attempt")
            _check_money(
                resource.get("amount"), attempt.refund.amount_minor, payment.currency, CallbackRejected
            )
        elif event_type in (
            "PAYMENT.CAPTURE.COMPLETED",
            "PAYMENT.CAPTURE.DENIED",
            "PAYMENT.CAPTURE.DECLINED",
        ):
            _check_money(resource.get("amount"), payment.amount_minor, payment.currency, CallbackRejected)
        elif event_type.startswith("CHECKOUT.ORDER."):
            units = resource.get("purchase_units") or [{}]
            _check_money(units[0].get("amount"), payment.amount_minor, payment.currency, CallbackRejected)
        elif event_type.startswith("PAYMENT.PAYOUTS-ITEM."):
            amount = (resource.get("payout_item") or {}).get("amount") or {}
            money = {"value": amount.get("value"), "currency_code": amount.get("currency")}
            _check_money(money, payment.amount_minor, payment.currency, CallbackRejected)

    def notices_from_payload(self, payload: dict[str, Any]) -> list[GatewayResult]:
        event_type = str(payload.get("event_type", ""))
        resource = payload.get("resource") or {}
        key = str(payload.get("attempt_key") or _resource_key(event_type, resource))
        notice_type = EVENT_NOTICES.get(event_type, f"paypal.{event_type.lower()}")
        code = ""
        if notice_type in ("payment.failed", "payment.closed", "payment.reversed"):
            code = event_type.rsplit(".", 1)[-1].lower()
        reference = str(resource.get("payout_item_id") or resource.get("id") or "")
        return [notice(notice_type, key, reference, code)]

    def acknowledge(self, accepted: bool) -> HttpResponse:
        """2xx stops PayPal's redelivery; anything else makes it try again later."""
        return JsonResponse({"accepted": accepted}, status=200 if accepted else 400)


def _resource_key(event_type: str, resource: dict) -> str:
    if event_type.startswith("PAYMENT.PAYOUTS-ITEM."):
        return str((resource.get("payout_item") or {}).get("sender_item_id") or "")
    if event_type.startswith("CHECKOUT.ORDER."):
        units = resource.get("purchase_units") or [{}]
        return str(units[0].get("custom_id") or units[0].get("invoice_id") or "")
    return str(resource.get("custom_id") or resource.get("invoice_id") or "")


def _payout_item(payment: Payment, attempt: GatewayAttempt) -> dict[str, Any]:
    account = payment.beneficiary_account
    if "@" in account:
        recipient_type, receiver = "EMAIL", account
    elif payment.beneficiary_email:
        recipient_type, receiver = "EMAIL", payment.beneficiary_email
    else:
        recipient_type, receiver = "PAYPAL_ID", account
    return {
        "recipient_type": recipient_type,
        "receiver": receiver,
        "amount": {
            "value": format_minor(payment.amount_minor, payment.currency),
            "currency": payment.currency,
        },
        "sender_item_id": attempt.idempotency_key,
        "note": (payment.description or payment.reference)[:4000],
    }


def _check_money(money: Any, amount_minor: int, currency: str, error: type[Exception]) -> None:
    if not isinstance(money, dict):
        raise error("amount missing")
    if money.get("currency_code") != currency:
        raise error(f"currency {money.get('currency_code')!r} does not match {currency}")
    try:
        minor = parse_amount(str(money.get("value")), currency)
    except MoneyError:
        raise error(f"malformed amount {money.get('value')!r}") from None
    if minor != amount_minor:
        raise error(f"amount {money.get('value')} does not match {format_minor(amount_minor, currency)}")
