"""Alipay transfers to Alipay accounts: the payout rail of `alipay` batch rows.

`alipay.fund.trans.uni.transfer` with product TRANS_ACCOUNT_NO_PWD (scene
DIRECT_TRANSFER) pays a beneficiary identified by Alipay login id (e-mail or
phone, ALIPAY_LOGON_ID) or user id (2088 and 12 digits, ALIPAY_USER_ID); the
beneficiary's name always goes with it, so Alipay checks the real name and
refuses a mismatch (PAYEE_USER_INFO_ERROR). The attempt's key is the
`out_biz_no`, so a repeat is the same transfer at Alipay.
`alipay.fund.trans.common.query` reconciles it and the
`alipay.fund.trans.order.changed` notification settles it (SUCCESS, FAIL,
REFUND: a transfer the beneficiary's bank or Alipay sent back).

The fund APIs require the public-key-certificate mode: every request names
the application certificate (`app_cert_sn`) and Alipay's root chain
(`alipay_root_cert_sn`); an answer names the Alipay certificate that signed
it (`alipay_cert_sn`), looked up among the account's public keys by its SN.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from django.http import HttpRequest
from django.utils.translation import gettext as _

from merchants.crypto import alipay_cert_sn, alipay_root_cert_sn, rsa_sha256_verify
from payments.gateways import (
    CallbackRejected,
    GatewayError,
    GatewayResult,
    Outcome,
    VerifiedCallback,
    notice,
)
from payments.gateways.alipay import SUCCESS, AlipayGateway, _failure_code, sign_content
from payments.models import GatewayAttempt, Payment
from payments.money import MoneyError, format_minor, parse_amount

if TYPE_CHECKING:
    from merchants.models import GatewayAccount

PRODUCT = "TRANS_ACCOUNT_NO_PWD"
SCENE = "DIRECT_TRANSFER"
USER_ID = re.compile(r"2088[0-9]{12}\Z")
LOGON_ID = re.compile(r"([^@\s]+@[^@\s]+\.[^@\s]+|\+?[0-9][0-9-]{5,19})\Z")
# Alipay's "try again with the same out_biz_no" answers.
RETRY_SUB_CODES = frozenset({"SYSTEM_ERROR", "aop.SYSTEM_ERROR", "isp.unknow-error"})
NOTIFY_METHOD = "alipay.fund.trans.order.changed"


def payee(account: str, name: str) -> dict[str, str]:
    """Alipay's payee_info: a user id or a login id, with the real name to check."""
    kind = "ALIPAY_USER_ID" if USER_ID.match(account) else "ALIPAY_LOGON_ID"
    return {"identity": account, "identity_type": kind, "name": name}


class AlipayTransferGateway(AlipayGateway):
    slug = "alipay_transfer"
    collects = False
    url_slug = "alipay"  # the same open-platform gateway
    retry_sub_codes = RETRY_SUB_CODES
    payouts = True
    CALLBACK_TYPES = frozenset({"payment.succeeded", "payment.failed", "payment.reversed"})

    def row_problems(self, row: dict[str, Any]) -> list[tuple[str, str, str]]:
        account = row["beneficiary_account"]
        if USER_ID.match(account) or LOGON_ID.match(account):
            return []
        return [
            (
                "beneficiary_account",
                "invalid_alipay_account",
                _("Give the payee's Alipay login id (e-mail or phone) or user id (2088 and 12 digits)."),
            )
        ]

    # Certificate mode -------------------------------------------------------
    def mode_params(self, account: GatewayAccount) -> dict[str, str]:
        try:
            return {
                "app_cert_sn": alipay_cert_sn(account.app_certificate),
                "alipay_root_cert_sn": alipay_root_cert_sn(account.root_certificate),
            }
        except ValueError as exc:
            raise GatewayError(f"Alipay certificates of {account.merchant_id} unusable: {exc}") from None

    def _certificate(self, account: GatewayAccount, sn: str) -> str | None:
        """The Alipay public-key certificate with this SN among the account's public keys."""
        if sn in (account.public_keys or {}):
            return account.public_keys[sn]
        for pem in (account.public_keys or {}).values():
            try:
                if alipay_cert_sn(pem) == sn:
                    return pem
            except ValueError:
                continue
        return None

    def _verify_answer(self, account: GatewayAccount, document: dict, message: bytes, signature: str) -> bool:
        sn = str(document.get("alipay_cert_sn") or "")
        pem = self._certificate(account, sn) if sn else None
        if pem is None:
            raise GatewayError(f"Alipay answer signed with unknown certificate {sn!r}")
        return self._verify(account, message, signature, pems=[pem])

    def _verify(
        self, account: GatewayAccount, message: bytes, signature: str, pems: list[str] | None = None
    ) -> bool:
        if pems is None:
            return super()._verify(account, message, signature)
        return any(rsa_sha256_verify(pem, message, signature) for pem in pems)

    # Transfers --------------------------------------------------------------
    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        """Transfer to the payee's Alipay balance (out_biz_no = the attempt key)."""
        account = self.account_for(payment.merchant_id)
        if account is None:
            return self.not_configured()
        biz = {
            "out_biz_no": attempt.idempotency_key,
            "trans_amount": format_minor(payment.amount_minor, payment.currency),
            "product_code": PRODUCT,
            "biz_scene": SCENE,
            "order_title": (payment.description or payment.reference)[:128],
            "payee_info": payee(payment.beneficiary_account, payment.beneficiary_name),
            "remark": payment.reference[:200],
        }
        node = self._call(account, "alipay.fund.trans.uni.transfer", biz, notify=True)
        if node.get("code") == SUCCESS:
            return self._status_result(attempt, node)
        return self._error_result(node)

    def _status_result(self, attempt: GatewayAttempt, node: dict) -> GatewayResult:
        reference = str(node.get("order_id") or "")
        status = node.get("status")
        if status == "SUCCESS":
            return GatewayResult(outcome=Outcome.SUCCEEDED, gateway_reference=reference, raw=node)
        if status in ("FAIL", "CLOSED"):
            code = str(node.get("error_code") or node.get("fail_reason") or "transfer_failed")
            return GatewayResult(
                outcome=Outcome.FAILED,
                gateway_reference=reference,
                failure_code=code.lower()[:64],
                failure_message=str(node.get("fail_reason") or "")[:500],
                raw=node,
            )
        return GatewayResult(outcome=Outcome.PROCESSING, gateway_reference=reference, raw=node)

    def query(self, attempt: GatewayAttempt) -> GatewayResult | None:
        payment = attempt.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            raise GatewayError("no enabled Alipay transfer account")
        node = self._call(
            account,
            "alipay.fund.trans.common.query",
            {"out_biz_no": attempt.idempotency_key, "product_code": PRODUCT, "biz_scene": SCENE},
        )
        if node.get("code") != SUCCESS:
            if node.get("sub_code") == "ORDER_NOT_EXIST":
                return None  # never reached Alipay: the sweeper resends it with the same out_biz_no
            raise GatewayError(f"Alipay transfer query refused: {_failure_code(node)}")
        _check_amount(node.get("trans_amount"), payment, GatewayError)
        return self._notice(attempt.idempotency_key, node)

    def _notice(self, key: str, node: dict) -> GatewayResult | None:
        reference = str(node.get("order_id") or "")
        status = node.get("status")
        if status == "SUCCESS":
            return notice("payment.succeeded", key, reference)
        if status in ("FAIL", "CLOSED"):
            code = str(node.get("error_code") or node.get("fail_reason") or "transfer_failed").lower()[:64]
            return notice("payment.failed", key, reference, code, str(node.get("fail_reason") or ""))
        if status == "REFUND":
            return notice("payment.reversed", key, reference, "refund", str(node.get("fail_reason") or ""))
        return None  # DEALING, WAIT_PAY, INIT: not final yet

    def close(self, attempt: GatewayAttempt) -> GatewayResult:
        raise GatewayError("an Alipay transfer never awaits the payee: nothing to close")

    # Notifications ----------------------------------------------------------
    def verify_callback(self, request: HttpRequest) -> VerifiedCallback:
        """Verify an alipay.fund.trans.order.changed notification (RSA2 over the sorted parameters).

        The transfer is found by the biz_content's out_biz_no (our attempt key);
        the signature is checked with that merchant's Alipay certificates, then
        app_id and trans_amount against the account and the payment.
        """
        try:
            pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise CallbackRejected("malformed form body") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise CallbackRejected("repeated parameter")
        if params.get("msg_method") != NOTIFY_METHOD:
            raise CallbackRejected(f"unexpected msg_method {params.get('msg_method')!r}")
        signature = params.get("sign", "")
        if not signature or params.get("sign_type", "RSA2") != "RSA2":
            raise CallbackRejected("missing or unsupported signature")
        try:
            biz = json.loads(params.get("biz_content") or "")
        except ValueError:
            raise CallbackRejected("malformed biz_content") from None
        if not isinstance(biz, dict):
            raise CallbackRejected("malformed biz_content")
        attempt = (
            GatewayAttempt.objects.select_related("payment")
            .filter(idempotency_key=str(biz.get("out_biz_no") or ""), gateway=self.slug)
            .first()
        )
        if attempt is None:
            raise CallbackRejected("unknown out_biz_no")
        account = self.account_for(attempt.payment.merchant_id)
        if account is None:
            raise CallbackRejected("merchant has no enabled Alipay transfer account")
        message = sign_content(params, exclude=("sign", "sign_type")).encode("utf-8")
        pems = list((account.public_keys or {}).values())
        if not self._verify(account, message, signature, pems=pems):
            raise CallbackRejected("signature mismatch")
        if params.get("app_id") != account.app_id:
            raise CallbackRejected("app_id does not match the merchant's account")
        _check_amount(biz.get("trans_amount"), attempt.payment, CallbackRejected)
        notify_id = params.get("notify_id", "")
        if not notify_id:
            raise CallbackRejected("missing notify_id")
        payload = {"notify_id": notify_id, "msg_method": NOTIFY_METHOD, "biz_content": biz}
        notices = self.notices_from_payload(payload)
        return VerifiedCallback(notify_id, notices[0].type, payload, notices)

    def notices_from_payload(self, payload: dict[str, Any]) -> list[GatewayResult]:
        biz = payload.get("biz_content") or {}
        key = str(biz.get("out_biz_no") or "")
        found = self._notice(key, biz)
        if found is None:
            return [notice(f"payment.{str(biz.get('status') or 'unknown').lower()}", key)]
        return [found]


def _check_amount(value: Any, payment: Payment, error: type[Exception]) -> None:
    try:
        minor = parse_amount(str(value), payment.currency)
    except MoneyError:
        raise error(f"malformed trans_amount {value!r}") from None
    if minor != payment.amount_minor:
        raise error(f"trans_amount {value} does not match the payment's {payment.amount}")
