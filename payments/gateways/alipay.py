"""Alipay open platform, RSA2 (SHA256withRSA): QR-code precreate, query, refund, async notify.

The attempt's idempotency key is the `out_trade_no` (a refund attempt's key is
the `out_request_no`), so a repeated call is the same trade at Alipay and a
notification finds its payment by it. Requests are form posts signed with the
merchant's application private key; answers and notifications are verified
with the Alipay public key of the merchant's GatewayAccount.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
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
)
from payments.models import GatewayAttempt, Payment, Refund
from payments.money import MoneyError, format_minor, parse_amount

if TYPE_CHECKING:
    from merchants.models import GatewayAccount

logger = logging.getLogger(__name__)

ALIPAY_TZ = ZoneInfo("Asia/Shanghai")
SUCCESS = "10000"
# Alipay's "try again" answers: the call is repeated later with the same out_trade_no.
RETRY_CODES = frozenset({"20000"})
RETRY_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})
PAID = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})


def sign_content(params: Mapping[str, Any], exclude: tuple[str, ...] = ("sign",)) -> str:
    """Return the string Alipay signs: non-empty `key=value` pairs sorted by key, joined by `&`.

    Requests exclude only `sign`; notifications exclude `sign` and `sign_type`.
    """
    return "&".join(
        f"{key}={value}"
        for key, value in sorted(params.items())
        if key not in exclude and value not in ("", None)
    )


def _failure_code(node: Mapping[str, Any]) -> str:
    sub_code = str(node.get("sub_code") or "")
    code = sub_code.rsplit(".", 1)[-1] if sub_code else f"alipay_{node.get('code', 'error')}"
    return code.lower()[:64]


def _raw_node(text: str, name: str) -> str:
    """Return the exact JSON text of member `name` of the response (what Alipay signed)."""
    decoder = json.JSONDecoder()
    marker = f'"{name}"'
    start = text.find(marker)
    if start < 0:
        raise GatewayError(f"Alipay answer has no {name}")
    colon = text.index(":", start + len(marker)) + 1
    while text[colon].isspace():
        colon += 1
    _obj, end = decoder.raw_decode(text, colon)
    return text[colon:end]


class AlipayGateway(Gateway):
    slug = "alipay"
    collects = True
    requires_account = True
    SUPPORTED_CURRENCIES = frozenset({"CNY"})
    retry_sub_codes = RETRY_SUB_CODES  # Alipay's sub_codes that mean "try again", per API family
    CALLBACK_TYPES = frozenset(
        {
            "payment.succeeded",
            "payment.closed",
            "refund.succeeded",
        }
    )

    # Requests --------------------------------------------------------------
    def _call(self, account: GatewayAccount, method: str, biz: dict, notify: bool = False) -> dict:
        """Call one open-platform method and return its verified response node.

        A success answer must carry a valid signature; an unsigned error answer
        (Alipay does not sign some of them) is returned as is.
        """
        params = {
            "app_id": account.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": timezone.now().astimezone(ALIPAY_TZ).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "biz_content": json.dumps(biz, separators=(",", ":"), ensure_ascii=False),
        }
        if notify:
            params["notify_url"] = f"{settings.PAYDESK_PUBLIC_URL}/callbacks/{self.slug}/"
        params.update(self.mode_params(account))
        try:
            params["sign"] = rsa_sha256_sign(account.private_key, sign_content(params).encode())
        except ValueError as exc:
            raise GatewayError(f"Alipay private key of {account.merchant_id} unusable: {exc}") from None
        response = self._post(self.base_url(account), params)
        if response.status_code != 200:
            raise GatewayError(f"Alipay answered HTTP {response.status_code}")
        text = response.content.decode("utf-8", errors="replace")
        try:
            document = json.loads(text)
        except ValueError:
            raise GatewayError("Alipay answer is not JSON") from None
        name = method.replace(".", "_") + "_response"
        if name not in document and "error_response" in document:
            name = "error_response"
        node = document.get(name)
        if not isinstance(node, dict):
            raise GatewayError(f"Alipay answer has no {name}")
        sign = document.get("sign")
        if sign:
            if not self._verify_answer(account, document, _raw_node(text, name).encode(), str(sign)):
                raise GatewayError("Alipay answer signature invalid")
        elif node.get("code") == SUCCESS:
            raise GatewayError("Alipay success answer is unsigned")
        return node

    def _post(self, url: str, params: dict[str, str]) -> requests.Response:
        return http_call(
            "POST",
            url,
            data=params,
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
        )

    def mode_params(self, account: GatewayAccount) -> dict[str, str]:
        """Common parameters of the signing mode (none in public-key mode)."""
        return {}

    def _verify_answer(self, account: GatewayAccount, document: dict, message: bytes, signature: str) -> bool:
        return self._verify(account, message, signature)

    def _verify(self, account: GatewayAccount, message: bytes, signature: str) -> bool:
        # Any listed key verifies, so a key rotation can list the old and the new key.
        return any(rsa_sha256_verify(pem, message, signature) for pem in (account.public_keys or {}).values())

    def _error_result(self, node: dict) -> GatewayResult:
        """A refusal: failed with Alipay's code and message, or GatewayError when Alipay asks to retry."""
        if node.get("code") in RETRY_CODES or node.get("sub_code") in self.retry_sub_codes:
            raise GatewayError(f"Alipay asks to retry: {node.get('sub_code') or node.get('code')}")
        return GatewayResult(
            outcome=Outcome.FAILED,
            failure_code=_failure_code(node),
            failure_message=str(node.get("sub_msg") or node.get("msg") or "")[:500],
            raw=node,
        )

    # Submission ------------------------------------------------------------
    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        """Precreate a QR-code trade (out_trade_no = attempt key); the customer scans it."""
        account = self.account_for(payment.merchant_id)
        if account is None:
            return self.not_configured()
        expires = settings.PAYDESK_RECONCILE[self.slug]["action_expires"]
        biz = {
            "out_trade_no": attempt.idempotency_key,
            "total_amount": format_minor(payment.amount_minor, payment.currency),
            "subject": (payment.description or payment.reference)[:256],
            "timeout_express": f"{max(1, expires // 60)}m",
        }
        node = self._call(account, "alipay.trade.precreate", biz, notify=True)
        if node.get("code") == SUCCESS:
            qr_code = node.get("qr_code")
            if not qr_code:
                raise GatewayError("Alipay precreate answer has no qr_code")
            start = attempt.created_at or timezone.now()
            return GatewayResult(
                outcome=Outcome.REQUIRES_ACTION,
                next_action={
                    "type": "display_qr_code",
                    "qr_code": qr_code,
                    "expires_at": (start + timedelta(seconds=expires)).isoformat(),
                },
                raw=node,
            )
        if node.get("sub_code") == "ACQ.TRADE_HAS_SUCCESS":
            return GatewayResult(outcome=Outcome.SUCCEEDED, raw=node)
        return self._error_result(node)

    def submit_refund(self, refund: Refund, attempt: GatewayAttempt) -> GatewayResult:
        """Refund part of a paid trade (out_request_no = the refund attempt's key)."""
        payment = refund.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            return self.not_configured()
        trade_key = _paid_attempt_key(refund)
        node = self._call(
            account,
            "alipay.trade.refund",
            {
                "out_trade_no": trade_key,
                "refund_amount": format_minor(refund.amount_minor, payment.currency),
                "out_request_no": attempt.idempotency_key,
                **({"refund_reason": refund.reason[:256]} if refund.reason else {}),
            },
        )
        if node.get("code") != SUCCESS:
            return self._error_result(node)
        reference = str(node.get("trade_no") or "")
        if node.get("fund_change") == "Y":
            return GatewayResult(outcome=Outcome.SUCCEEDED, gateway_reference=reference, raw=node)
        # "N" also answers a repeated request: ask whether the refund went through.
        status = self._call(
            account,
            "alipay.trade.fastpay.refund.query",
            {"out_trade_no": trade_key, "out_request_no": attempt.idempotency_key},
        )
        if status.get("code") == SUCCESS and status.get("refund_status") == "REFUND_SUCCESS":
            return GatewayResult(outcome=Outcome.SUCCEEDED, gateway_reference=reference, raw=status)
        return GatewayResult(outcome=Outcome.PROCESSING, gateway_reference=reference, raw=status)

    def query(self, attempt: GatewayAttempt) -> GatewayResult | None:
        payment = attempt.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            raise GatewayError("no enabled Alipay account")
        node = self._call(account, "alipay.trade.query", {"out_trade_no": attempt.idempotency_key})
        if node.get("code") != SUCCESS:
            if node.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return None  # a precreated trade exists only once the QR code is scanned
            raise GatewayError(f"Alipay query refused: {_failure_code(node)}")
        _check_amount(node.get("total_amount"), payment, GatewayError)
        status = node.get("trade_status")
        reference = str(node.get("trade_no") or "")
        if status in PAID:
            return notice("payment.succeeded", attempt.idempotency_key, reference)
        if status == "TRADE_CLOSED":
            return notice("payment.closed", attempt.idempotency_key, reference, "trade_closed")
        return None

    def close(self, attempt: GatewayAttempt) -> GatewayResult:
        """Close the trade with `alipay.trade.close` so its QR code can no longer be paid.

        A trade Alipay does not know yet (the QR code was never scanned) has
        nothing to close; a payment made with that code after its cancel is a
        late success (refunded automatically by default). A trade that cannot
        be closed because it is paid is confirmed with `alipay.trade.query`.
        """
        account = self.account_for(attempt.payment.merchant_id)
        if account is None:
            raise GatewayError("no enabled Alipay account")
        key = attempt.idempotency_key
        node = self._call(account, "alipay.trade.close", {"out_trade_no": key})
        if node.get("code") == SUCCESS or node.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return GatewayResult(
                outcome=Outcome.CLOSED, gateway_reference=str(node.get("trade_no") or ""), raw=node
            )
        if node.get("sub_code") == "ACQ.TRADE_STATUS_ERROR":
            answer = self.query(attempt)
            if answer is not None and answer.outcome in (Outcome.SUCCEEDED, Outcome.CLOSED):
                return answer
        raise GatewayError(f"Alipay could not close the trade: {_failure_code(node)}")

    def query_refund(self, attempt: GatewayAttempt) -> GatewayResult | None:
        """Ask `alipay.trade.fastpay.refund.query` (out_trade_no + out_request_no) about a refund.

        Alipay reports only success (`refund_status` REFUND_SUCCESS); without
        it the refund was not (yet) made and may still be asked again with the
        same out_request_no, so there is nothing final to apply: None.
        """
        payment = attempt.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            raise GatewayError("no enabled Alipay account")
        node = self._call(
            account,
            "alipay.trade.fastpay.refund.query",
            {"out_trade_no": _paid_attempt_key(attempt.refund), "out_request_no": attempt.idempotency_key},
        )
        if node.get("code") != SUCCESS:
            raise GatewayError(f"Alipay refund query refused: {_failure_code(node)}")
        if node.get("refund_status") != "REFUND_SUCCESS":
            return None
        if node.get("out_request_no") not in (None, "", attempt.idempotency_key):
            raise GatewayError(f"Alipay answered for out_request_no {node.get('out_request_no')!r}")
        refund = attempt.refund
        try:
            minor = parse_amount(str(node.get("refund_amount")), payment.currency)
        except MoneyError:
            raise GatewayError(f"malformed refund_amount {node.get('refund_amount')!r}") from None
        if refund is None or minor != refund.amount_minor:
            raise GatewayError(f"refund_amount {node.get('refund_amount')} does not match the refund")
        return notice("refund.succeeded", attempt.idempotency_key, str(node.get("trade_no") or ""))

    # Callbacks -------------------------------------------------------------
    def verify_callback(self, request: HttpRequest) -> VerifiedCallback:
        """Verify an async notify: RSA2 over the sorted parameters without sign and sign_type.

        The trade is found by out_trade_no (our attempt key); the signature is
        checked with that merchant's Alipay public key, then app_id and
        total_amount against the account and the payment.
        """
        try:
            pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise CallbackRejected("malformed form body") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise CallbackRejected("repeated parameter")
        signature = params.get("sign", "")
        if not signature:
            raise CallbackRejected("missing sign")
        if params.get("sign_type", "RSA2") != "RSA2":
            raise CallbackRejected("unsupported sign_type")
        attempt = (
            GatewayAttempt.objects.select_related("payment")
            .filter(
                idempotency_key=params.get("out_trade_no", ""),
                gateway=self.slug,
                kind=GatewayAttempt.Kind.PAYMENT,
            )
            .first()
        )
        if attempt is None:
            raise CallbackRejected("unknown out_trade_no")
        payment = attempt.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            raise CallbackRejected("merchant has no enabled Alipay account")
        message = sign_content(params, exclude=("sign", "sign_type")).encode("utf-8")
        if not self._verify(account, message, signature):
            raise CallbackRejected("signature mismatch")
        if params.get("app_id") != account.app_id:
            raise CallbackRejected("app_id does not match the merchant's account")
        _check_amount(params.get("total_amount"), payment, CallbackRejected)
        if params.get("out_biz_no") and params.get("refund_fee"):
            _check_refund(params, attempt)
        notify_id = params.get("notify_id", "")
        if not notify_id:
            raise CallbackRejected("missing notify_id")
        notices = self.notices_from_payload(params)
        event_type = notices[0].type
        return VerifiedCallback(notify_id, event_type, params, notices)

    def notices_from_payload(self, payload: dict[str, Any]) -> list[GatewayResult]:
        key = str(payload.get("out_trade_no", ""))
        reference = str(payload.get("trade_no") or "")
        status = payload.get("trade_status")
        if payload.get("out_biz_no") and payload.get("refund_fee"):
            # A refund's notice: the trade stays TRADE_SUCCESS, or TRADE_CLOSED once fully refunded.
            return [notice("refund.succeeded", str(payload["out_biz_no"]), reference)]
        if status in PAID:
            return [notice("payment.succeeded", key, reference)]
        if status == "TRADE_CLOSED":
            return [notice("payment.closed", key, reference, "trade_closed", "Alipay closed the trade.")]
        return [notice(f"payment.{str(status or 'unknown').lower()}", key, reference)]

    def acknowledge(self, accepted: bool) -> HttpResponse:
        """Alipay stops retrying only on the exact plain-text body `success`."""
        if accepted:
            return HttpResponse("success", content_type="text/plain; charset=utf-8")
        return HttpResponse("failure", content_type="text/plain; charset=utf-8", status=400)


def _paid_attempt_key(refund: Refund | None) -> str:
    """The trade a refund returns money from: the payment attempt that took it."""
    if refund is None or refund.source_attempt_id is None:
        raise GatewayError("the refund names no Alipay trade to refund")
    return refund.source_attempt.idempotency_key


def _check_amount(value: Any, payment: Payment, error: type[Exception]) -> None:
    try:
        minor = parse_amount(str(value), payment.currency)
    except MoneyError:
        raise error(f"malformed total_amount {value!r}") from None
    if minor != payment.amount_minor:
        raise error(f"total_amount {value} does not match the payment's {payment.amount}")


def _check_refund(params: Mapping[str, Any], trade: GatewayAttempt) -> None:
    """A refund notice must be about a refund of the verified trade, for that refund's amount.

    The signature proves the notice is about trade `out_trade_no`; `out_biz_no`
    names the refund. It must be a refund attempt of the same payment, or a
    merchant's validly signed notice could settle another merchant's refund.
    Alipay's `refund_fee` is the trade's refunded total: this refund's amount
    on its own, or with the refunds that succeeded before it.
    """
    attempt = (
        GatewayAttempt.objects.select_related("refund")
        .filter(
            idempotency_key=params["out_biz_no"], gateway=AlipayGateway.slug, kind=GatewayAttempt.Kind.REFUND
        )
        .first()
    )
    if attempt is None or attempt.refund is None:
        raise CallbackRejected("unknown out_biz_no")
    if attempt.payment_id != trade.payment_id:
        raise CallbackRejected("out_biz_no names a refund of another trade")
    payment = trade.payment
    try:
        fee = parse_amount(str(params["refund_fee"]), payment.currency)
    except MoneyError:
        raise CallbackRejected(f"malformed refund_fee {params['refund_fee']!r}") from None
    refund = attempt.refund
    before = (
        payment.refunds.filter(status="succeeded").exclude(pk=refund.pk).aggregate(total=Sum("amount_minor"))
    )
    if fee not in (refund.amount_minor, refund.amount_minor + (before["total"] or 0)):
        raise CallbackRejected(f"refund_fee {params['refund_fee']} does not match the refund")
