"""WeChat Pay API v3: Native (QR) order, query, refund, signed and encrypted notifications.

The attempt's idempotency key is the `out_trade_no` (a refund attempt's key is
the `out_refund_no`). Requests carry `Authorization: WECHATPAY2-SHA256-RSA2048`
signed with the merchant's API private key; answers and notifications are
verified with the platform key named by `Wechatpay-Serial` (SHA256withRSA over
"timestamp\\nnonce\\nbody\\n", at most 5 minutes off), and a notification's
`resource` is decrypted with AES-256-GCM and the merchant's APIv3 key.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from merchants.crypto import rsa_sha256_sign, rsa_sha256_verify
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

if TYPE_CHECKING:
    from merchants.models import GatewayAccount

logger = logging.getLogger(__name__)

AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
TOLERANCE = 300  # seconds a Wechatpay-Timestamp may be off
CHINA_TZ = ZoneInfo("Asia/Shanghai")
RETRY_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANK_ERROR", "SYSTEMERROR"})
REFUND_FAILURES = {"REFUND.ABNORMAL": "refund_abnormal", "REFUND.CLOSED": "refund_closed"}


class SignatureInvalid(Exception):
    pass


def authorization(account: GatewayAccount, method: str, path: str, body: str) -> str:
    """Return the Authorization header for one request (path includes the query string)."""
    timestamp = str(int(time.time()))
    nonce = secrets.token_hex(16).upper()
    message = f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n".encode()
    try:
        signature = rsa_sha256_sign(account.private_key, message)
    except ValueError as exc:
        raise GatewayError(f"WeChat Pay merchant key unusable: {exc}") from None
    return (
        f'{AUTH_SCHEMA} mchid="{account.mch_id}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{account.key_serial}"'
    )


def verify_signature(account: GatewayAccount, headers: Mapping[str, str], body: bytes) -> None:
    """Check Wechatpay-* headers against `body`; raise SignatureInvalid with the reason."""
    serial = headers.get("Wechatpay-Serial", "")
    timestamp = headers.get("Wechatpay-Timestamp", "")
    nonce = headers.get("Wechatpay-Nonce", "")
    signature = headers.get("Wechatpay-Signature", "")
    if not (serial and timestamp and nonce and signature):
        raise SignatureInvalid("missing Wechatpay-* signature headers")
    if headers.get("Wechatpay-Signature-Type", AUTH_SCHEMA) != AUTH_SCHEMA:
        raise SignatureInvalid("unsupported Wechatpay-Signature-Type")
    pem = (account.public_keys or {}).get(serial)
    if pem is None:
        raise SignatureInvalid(f"unknown platform key serial {serial}")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureInvalid("malformed Wechatpay-Timestamp") from None
    if abs(time.time() - sent_at) > TOLERANCE:
        raise SignatureInvalid("Wechatpay-Timestamp more than 5 minutes off (replay)")
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    if not rsa_sha256_verify(pem, message, signature):
        raise SignatureInvalid("signature mismatch")


def decrypt_resource(api_v3_key: str, resource: Mapping[str, Any]) -> dict:
    """Decrypt a notification's AEAD_AES_256_GCM `resource`; raise ValueError if it does not open."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise ValueError("unsupported resource algorithm")
    key = api_v3_key.encode()
    if len(key) != 32:
        raise ValueError("APIv3 key must be 32 bytes")
    try:
        plaintext = AESGCM(key).decrypt(
            str(resource["nonce"]).encode(),
            base64.b64decode(str(resource["ciphertext"]), validate=True),
            str(resource.get("associated_data") or "").encode() or None,
        )
        data = json.loads(plaintext)
    except (KeyError, InvalidTag, ValueError):
        raise ValueError("resource does not decrypt (bad key, tag or data)") from None
    if not isinstance(data, dict):
        raise ValueError("decrypted resource is not an object")
    return data


class WeChatPayGateway(Gateway):
    slug = "wechat_pay"
    collects = True
    requires_account = True
    SUPPORTED_CURRENCIES = frozenset({"CNY"})
    CALLBACK_TYPES = frozenset(
        {
            "payment.succeeded",
            "payment.failed",
            "payment.closed",
            "refund.succeeded",
            "refund.failed",
        }
    )

    # Requests --------------------------------------------------------------
    def _request(
        self,
        account: GatewayAccount,
        method: str,
        path: str,
        body: dict | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, dict]:
        """Send one signed request; return (status, JSON) of a verified answer.

        5xx, 429 and WeChat's "try again" codes raise GatewayError.
        """
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False) if body is not None else ""
        headers = {
            "Authorization": authorization(account, method, path, text),
            "Accept": "application/json",
            "User-Agent": "PayDesk",
            **(extra_headers or {}),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = http_call(
            method,
            self.base_url(account) + path,
            data=text.encode() if body is not None else None,
            headers=headers,
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise GatewayError(f"WeChat Pay answered HTTP {response.status_code}")
        if 200 <= response.status_code < 300 or "Wechatpay-Signature" in response.headers:
            try:
                verify_signature(account, response.headers, response.content)
            except SignatureInvalid as exc:
                raise GatewayError(f"WeChat Pay answer not verified: {exc}") from None
        try:
            data = response.json() if response.content else {}
        except ValueError:
            raise GatewayError("WeChat Pay answer is not JSON") from None
        if response.status_code >= 400 and data.get("code") in RETRY_CODES:
            raise GatewayError(f"WeChat Pay asks to retry: {data.get('code')}")
        return response.status_code, data

    def _failure(self, data: dict) -> GatewayResult:
        return GatewayResult(
            outcome=Outcome.FAILED,
            failure_code=str(data.get("code") or "wechat_pay_error").lower()[:64],
            failure_message=str(data.get("message") or "")[:500],
            raw=data,
        )

    # Submission ------------------------------------------------------------
    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        """Place a Native order; its code_url is shown to the customer as a QR code.

        The body is a function of the attempt alone (time_expire counts from
        the attempt's creation), so a repeat is the same order at WeChat Pay.
        """
        account = self.account_for(payment.merchant_id)
        if account is None:
            return self.not_configured()
        expires = settings.PAYDESK_RECONCILE[self.slug]["action_expires"]
        expires_at = (attempt.created_at or timezone.now()) + timedelta(seconds=expires)
        body = {
            "appid": account.app_id,
            "mchid": account.mch_id,
            "description": (payment.description or payment.reference)[:127],
            "out_trade_no": attempt.idempotency_key,
            "time_expire": expires_at.astimezone(CHINA_TZ).replace(microsecond=0).isoformat(),
            "notify_url": f"{settings.PAYDESK_PUBLIC_URL}/callbacks/{self.slug}/",
            "amount": {"total": payment.amount_minor, "currency": payment.currency},
        }
        status, data = self._request(account, "POST", "/v3/pay/transactions/native", body)
        if status == 200 and data.get("code_url"):
            return GatewayResult(
                outcome=Outcome.REQUIRES_ACTION,
                next_action={
                    "type": "display_qr_code",
                    "qr_code": data["code_url"],
                    "expires_at": expires_at.isoformat(),
                },
                raw=data,
            )
        if data.get("code") == "ORDERPAID":
            return GatewayResult(outcome=Outcome.SUCCEEDED, raw=data)
        if status < 400:
            raise GatewayError(f"WeChat Pay order answer without code_url (HTTP {status})")
        return self._failure(data)

    def submit_refund(self, refund: Refund, attempt: GatewayAttempt) -> GatewayResult:
        payment = refund.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            return self.not_configured()
        trade = refund.source_attempt
        if trade is None:
            raise GatewayError("the refund names no WeChat Pay order to refund")
        body = {
            "out_trade_no": trade.idempotency_key,
            "out_refund_no": attempt.idempotency_key,
            "notify_url": f"{settings.PAYDESK_PUBLIC_URL}/callbacks/{self.slug}/",
            "amount": {
                "refund": refund.amount_minor,
                "total": payment.amount_minor,
                "currency": payment.currency,
            },
        }
        if refund.reason:
            body["reason"] = refund.reason[:80]
        status, data = self._request(account, "POST", "/v3/refund/domestic/refunds", body)
        if status >= 400:
            return self._failure(data)
        return refund_result(
            reference=str(data.get("refund_id") or ""),
            status=data.get("status"),
            succeeded="SUCCESS",
            failed=("CLOSED", "ABNORMAL"),
            raw=data,
        )

    def query(self, attempt: GatewayAttempt) -> GatewayResult | None:
        payment = attempt.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            raise GatewayError("no enabled WeChat Pay account")
        path = (
            f"/v3/pay/transactions/out-trade-no/{quote(attempt.idempotency_key, safe='')}"
            f"?mchid={quote(account.mch_id, safe='')}"
        )
        status, data = self._request(account, "GET", path)
        if status == 404 or data.get("code") == "ORDER_NOT_EXIST":
            return None
        if status >= 400:
            raise GatewayError(f"WeChat Pay query refused: {data.get('code')}")
        _check_transaction(data, account, payment, GatewayError)
        return _transaction_notice(data)

    def close(self, attempt: GatewayAttempt) -> GatewayResult:
        """Close the order (`POST .../out-trade-no/{out_trade_no}/close`) so it can no longer be paid.

        An order WeChat Pay reports as paid is not closed: its success is
        returned. An order the customer is paying right now is PROCESSING.
        """
        account = self.account_for(attempt.payment.merchant_id)
        if account is None:
            raise GatewayError("no enabled WeChat Pay account")
        answer = self.query(attempt)
        if answer is not None and answer.outcome in (Outcome.SUCCEEDED, Outcome.CLOSED):
            return answer
        path = f"/v3/pay/transactions/out-trade-no/{quote(attempt.idempotency_key, safe='')}/close"
        status, data = self._request(account, "POST", path, {"mchid": account.mch_id})
        if status < 300 or data.get("code") == "ORDER_CLOSED":
            return GatewayResult(outcome=Outcome.CLOSED, raw=data)
        if data.get("code") in ("ORDERPAID", "ORDER_PAID", "USERPAYING"):
            answer = self.query(attempt)
            if answer is not None:
                return answer
            return GatewayResult(outcome=Outcome.PROCESSING, raw=data)
        raise GatewayError(f"WeChat Pay could not close the order: {data.get('code')}")

    def query_refund(self, attempt: GatewayAttempt) -> GatewayResult | None:
        """Ask `GET /v3/refund/domestic/refunds/{out_refund_no}` where a refund stands.

        `status` SUCCESS succeeds; CLOSED and ABNORMAL fail with the same codes
        as their REFUND.* notifications; PROCESSING (or a refund WeChat Pay does
        not know yet) is None.
        """
        payment = attempt.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            raise GatewayError("no enabled WeChat Pay account")
        path = f"/v3/refund/domestic/refunds/{quote(attempt.idempotency_key, safe='')}"
        status, data = self._request(account, "GET", path)
        if status == 404 or data.get("code") == "RESOURCE_NOT_EXISTS":
            return None
        if status >= 400:
            raise GatewayError(f"WeChat Pay refund query refused: {data.get('code')}")
        if data.get("out_refund_no") != attempt.idempotency_key:
            raise GatewayError(f"WeChat Pay answered for out_refund_no {data.get('out_refund_no')!r}")
        refunded = (data.get("amount") or {}).get("refund")
        if attempt.refund is None or refunded != attempt.refund.amount_minor:
            raise GatewayError(f"refund amount {refunded!r} does not match the refund")
        reference = str(data.get("refund_id") or "")
        refund_status = data.get("status")
        if refund_status == "SUCCESS":
            return notice("refund.succeeded", attempt.idempotency_key, reference)
        if f"REFUND.{refund_status}" in REFUND_FAILURES:
            code = REFUND_FAILURES[f"REFUND.{refund_status}"]
            return notice("refund.failed", attempt.idempotency_key, reference, code)
        return None  # PROCESSING

    # Callbacks -------------------------------------------------------------
    def verify_callback(self, request: HttpRequest) -> VerifiedCallback:
        """Verify the signature with the key named by Wechatpay-Serial, then decrypt and check.

        The serial selects the merchant account(s) holding that platform key;
        the resource must open with that account's APIv3 key and name that
        account's mchid/appid, a payment of that merchant and its exact amount.
        """
        from merchants.crypto import SecretUnreadable
        from merchants.models import GatewayAccount

        serial = request.headers.get("Wechatpay-Serial", "")
        try:
            event = json.loads(request.body)
            event_id = str(event["id"])
            event_type = str(event["event_type"])
            resource = event["resource"]
        except (ValueError, KeyError, TypeError):
            raise CallbackRejected("malformed body") from None
        if not isinstance(resource, dict):
            raise CallbackRejected("malformed resource")
        try:
            candidates = list(
                GatewayAccount.objects.filter(gateway=self.slug, enabled=True, public_keys__has_key=serial)
            )
        except SecretUnreadable as exc:
            raise GatewayError(f"WeChat Pay credentials unreadable: {exc}") from None
        if not serial or not candidates:
            raise CallbackRejected(f"unknown platform key serial {serial!r}")
        reasons = []
        for account in candidates:
            try:
                verify_signature(account, request.headers, request.body)
                data = decrypt_resource(account.secret, resource)
            except (SignatureInvalid, ValueError) as exc:
                reasons.append(str(exc))
                continue
            payload = {
                "id": event_id,
                "event_type": event_type,
                "create_time": event.get("create_time"),
                "summary": event.get("summary"),
                "resource": data,
            }
            self._check_resource(account, event_type, data)
            return VerifiedCallback(event_id, event_type, payload, self.notices_from_payload(payload))
        raise CallbackRejected("; ".join(sorted(set(reasons)))[:500])

    def _check_resource(self, account: GatewayAccount, event_type: str, data: dict) -> None:
        if event_type.startswith("TRANSACTION."):
            attempt = _attempt(data.get("out_trade_no"), GatewayAttempt.Kind.PAYMENT)
            _check_transaction(data, account, attempt.payment, CallbackRejected)
        elif event_type.startswith("REFUND."):
            if data.get("mchid") != account.mch_id:
                raise CallbackRejected("mchid does not match the merchant's account")
            attempt = _attempt(data.get("out_refund_no"), GatewayAttempt.Kind.REFUND)
            if attempt.payment.merchant_id != account.merchant_id:
                raise CallbackRejected("refund of another merchant")
            refunded = (data.get("amount") or {}).get("refund")
            if attempt.refund is None or refunded != attempt.refund.amount_minor:
                raise CallbackRejected(f"refund amount {refunded!r} does not match the refund")
        else:
            raise CallbackRejected(f"unknown event_type {event_type}")

    def notices_from_payload(self, payload: dict[str, Any]) -> list[GatewayResult]:
        event_type = str(payload.get("event_type", ""))
        data = payload.get("resource") or {}
        if event_type == "REFUND.SUCCESS":
            return [
                notice("refund.succeeded", str(data.get("out_refund_no", "")), str(data.get("refund_id", "")))
            ]
        if event_type in REFUND_FAILURES:
            return [
                notice(
                    "refund.failed",
                    str(data.get("out_refund_no", "")),
                    str(data.get("refund_id", "")),
                    REFUND_FAILURES[event_type],
                )
            ]
        result = _transaction_notice(data)
        if result is None:
            state = str(data.get("trade_state") or "unknown").lower()
            return [notice(f"payment.{state}", str(data.get("out_trade_no", "")))]
        return [result]

    def acknowledge(self, accepted: bool) -> HttpResponse:
        """204 without body on success; otherwise 4xx with WeChat's {"code": "FAIL"} so it retries."""
        if accepted:
            return HttpResponse(status=204)
        return JsonResponse({"code": "FAIL", "message": "notification rejected"}, status=400)


def _attempt(key: Any, kind: str) -> GatewayAttempt:
    attempt = (
        GatewayAttempt.objects.select_related("payment", "refund")
        .filter(idempotency_key=str(key or ""), gateway=WeChatPayGateway.slug, kind=kind)
        .first()
    )
    if attempt is None:
        raise CallbackRejected(f"unknown {'out_refund_no' if kind == 'refund' else 'out_trade_no'}")
    return attempt


def _check_transaction(data: dict, account: GatewayAccount, payment: Payment, error: type[Exception]) -> None:
    if data.get("mchid") != account.mch_id or data.get("appid") != account.app_id:
        raise error("mchid/appid do not match the merchant's account")
    if payment.merchant_id != account.merchant_id:
        raise error("transaction of another merchant")
    amount = data.get("amount") or {}
    if amount.get("total") != payment.amount_minor or amount.get("currency", "CNY") != payment.currency:
        raise error(f"amount {amount.get('total')!r} does not match the payment's {payment.amount_minor}")


def _transaction_notice(data: dict) -> GatewayResult | None:
    key = str(data.get("out_trade_no", ""))
    reference = str(data.get("transaction_id") or "")
    state = data.get("trade_state")
    if state in ("SUCCESS", "REFUND"):
        return notice("payment.succeeded", key, reference)
    if state == "PAYERROR":
        message = str(data.get("trade_state_desc") or "")
        return notice("payment.failed", key, reference, "payment_error", message)
    if state in ("CLOSED", "REVOKED"):
        return notice("payment.closed", key, reference, f"trade_{state.lower()}")
    return None  # NOTPAY, USERPAYING: still waiting for the customer
