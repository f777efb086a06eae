"""WeChat Pay merchant transfers to users' WeChat balance: the payout rail of `wechat_pay` batch rows.

The current API v3 merchant transfer (商家转账, `POST
/v3/fund-app/mch-transfer/transfer-bills`; the older `/v3/transfer/batches`
is closed to new merchants): one transfer bill per payment, to the payee's
openid under the merchant's appid, with the merchant's transfer scene and
its report infos. The payee's real name goes encrypted (RSA-OAEP with the
WeChat Pay public key named by `Wechatpay-Serial`), so WeChat Pay checks it.

Most scenes need the payee to confirm receipt in WeChat: the bill then
waits (`WAIT_USER_CONFIRM`) and the payment `requires_action`, its
next_action carrying the `package_info` the merchant's mini program or app
passes to WeChat's confirmation page. A bill nobody confirms is cancelled by
WeChat Pay and the payment with it. The bill's number (`out_bill_no`,
letters and digits only) is the attempt key without its separators;
`GET .../out-bill-no/{out_bill_no}` reconciles it and the signed, encrypted
`MCHTRANSFER.BILL.FINISHED` notification settles it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.conf import settings
from django.utils.translation import gettext as _

from merchants.crypto import rsa_oaep_encrypt
from payments.gateways import CallbackRejected, GatewayError, GatewayResult, Outcome, notice
from payments.gateways.wechat_pay import WeChatPayGateway
from payments.models import GatewayAttempt, Payment

if TYPE_CHECKING:
    from merchants.models import GatewayAccount

BILLS = "/v3/fund-app/mch-transfer/transfer-bills"
EVENT = "MCHTRANSFER.BILL.FINISHED"
OPENID = re.compile(r"[A-Za-z0-9_-]{6,64}\Z")
# WeChat Pay asks for the payee's name from 0.30 CNY on (and requires it from 2,000 CNY).
NAME_FROM_MINOR = 30
REMARK_CHARS = 32


def out_bill_no(attempt_key: str) -> str:
    """The bill number of an attempt: its key without separators (`pay_AbC…-2` -> `payAbC…2`)."""
    return attempt_key.replace("_", "", 1).replace("-", "")


def attempt_key_of(bill_no: str) -> str:
    """The attempt key a bill number stands for (the inverse of out_bill_no)."""
    prefix, body, number = bill_no[:3], bill_no[3:27], bill_no[27:]
    return f"{prefix}_{body}-{number}"


class WeChatTransferGateway(WeChatPayGateway):
    slug = "wechat_transfer"
    collects = False
    url_slug = "wechat_pay"  # the same API host
    payouts = True
    CALLBACK_TYPES = frozenset({"payment.succeeded", "payment.failed", "payment.closed"})

    def row_problems(self, row: dict[str, Any]) -> list[tuple[str, str, str]]:
        if OPENID.match(row["beneficiary_account"]):
            return []
        return [
            (
                "beneficiary_account",
                "invalid_openid",
                _("Give the payee's WeChat openid under the merchant's appid."),
            )
        ]

    def _platform_key(self, account: GatewayAccount) -> tuple[str, str]:
        """The WeChat Pay public key (id, PEM) that encrypts the payee's name."""
        keys = account.public_keys or {}
        if not keys:
            raise GatewayError("no WeChat Pay public key to encrypt the payee's name")
        serial = sorted(keys)[-1]
        return serial, keys[serial]

    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        """Create the transfer bill (out_bill_no from the attempt key, so a repeat is the same bill)."""
        account = self.account_for(payment.merchant_id)
        if account is None:
            return self.not_configured()
        body: dict[str, Any] = {
            "appid": account.app_id,
            "out_bill_no": out_bill_no(attempt.idempotency_key),
            "transfer_scene_id": account.transfer_scene_id,
            "openid": payment.beneficiary_account,
            "transfer_amount": payment.amount_minor,
            "transfer_remark": (payment.description or payment.reference)[:REMARK_CHARS],
            "notify_url": f"{settings.PAYDESK_PUBLIC_URL}/callbacks/{self.slug}/",
            "transfer_scene_report_infos": list(account.transfer_scene_report_infos or []),
        }
        headers = {}
        if payment.amount_minor >= NAME_FROM_MINOR:
            serial, pem = self._platform_key(account)
            try:
                body["user_name"] = rsa_oaep_encrypt(pem, payment.beneficiary_name)
            except ValueError as exc:
                raise GatewayError(f"WeChat Pay public key {serial} unusable: {exc}") from None
            headers["Wechatpay-Serial"] = serial
        status, data = self._request(account, "POST", BILLS, body, extra_headers=headers)
        if status >= 400:
            return self._failure(data)
        if data.get("out_bill_no") != body["out_bill_no"]:
            raise GatewayError(f"WeChat Pay answered for bill {data.get('out_bill_no')!r}")
        return self._bill_result(account, data)

    def _bill_result(self, account: GatewayAccount, data: dict) -> GatewayResult:
        reference = str(data.get("transfer_bill_no") or "")
        state = data.get("state")
        if state == "WAIT_USER_CONFIRM":
            return GatewayResult(
                outcome=Outcome.REQUIRES_ACTION,
                gateway_reference=reference,
                next_action={
                    "type": "wechat_confirm_receipt",
                    "mch_id": account.mch_id,
                    "app_id": account.app_id,
                    "package_info": str(data.get("package_info") or ""),
                },
                raw=data,
            )
        found = _bill_notice("", data)
        if found is None:
            return GatewayResult(outcome=Outcome.PROCESSING, gateway_reference=reference, raw=data)
        return GatewayResult(
            outcome=found.outcome,
            gateway_reference=reference,
            failure_code=found.failure_code,
            failure_message=found.failure_message,
            raw=data,
        )

    def _bill(self, account: GatewayAccount, attempt: GatewayAttempt) -> tuple[int, dict]:
        path = f"{BILLS}/out-bill-no/{quote(out_bill_no(attempt.idempotency_key), safe='')}"
        return self._request(account, "GET", path)

    def query(self, attempt: GatewayAttempt) -> GatewayResult | None:
        payment = attempt.payment
        account = self.account_for(payment.merchant_id)
        if account is None:
            raise GatewayError("no enabled WeChat Pay transfer account")
        status, data = self._bill(account, attempt)
        if status == 404 or data.get("code") == "NOT_FOUND":
            return None
        if status >= 400:
            raise GatewayError(f"WeChat Pay transfer query refused: {data.get('code')}")
        _check_bill(data, account, payment, GatewayError)
        return _bill_notice(attempt.idempotency_key, data)

    def close(self, attempt: GatewayAttempt) -> GatewayResult:
        """Cancel a bill the payee has not confirmed (`POST .../out-bill-no/{no}/cancel`).

        A bill already paid is the paid path; a cancel WeChat Pay accepted
        (CANCELING, CANCELLED) leaves nothing payable.
        """
        account = self.account_for(attempt.payment.merchant_id)
        if account is None:
            raise GatewayError("no enabled WeChat Pay transfer account")
        answer = self.query(attempt)
        if answer is not None and answer.outcome in (Outcome.SUCCEEDED, Outcome.CLOSED, Outcome.FAILED):
            return answer
        path = f"{BILLS}/out-bill-no/{quote(out_bill_no(attempt.idempotency_key), safe='')}/cancel"
        status, data = self._request(account, "POST", path)
        if status < 300 and data.get("state") in ("CANCELING", "CANCELLED"):
            return GatewayResult(
                outcome=Outcome.CLOSED, gateway_reference=str(data.get("transfer_bill_no") or "")
            )
        raise GatewayError(
            f"WeChat Pay could not cancel the transfer: {data.get('code') or data.get('state')}"
        )

    # Notifications ----------------------------------------------------------
    def _check_resource(self, account: GatewayAccount, event_type: str, data: dict) -> None:
        if event_type != EVENT:
            raise CallbackRejected(f"unknown event_type {event_type}")
        attempt = (
            GatewayAttempt.objects.select_related("payment")
            .filter(idempotency_key=attempt_key_of(str(data.get("out_bill_no") or "")), gateway=self.slug)
            .first()
        )
        if attempt is None:
            raise CallbackRejected("unknown out_bill_no")
        _check_bill(data, account, attempt.payment, CallbackRejected)

    def notices_from_payload(self, payload: dict[str, Any]) -> list[GatewayResult]:
        data = payload.get("resource") or {}
        key = attempt_key_of(str(data.get("out_bill_no") or ""))
        found = _bill_notice(key, data)
        if found is None:
            return [notice(f"payment.{str(data.get('state') or 'unknown').lower()}", key)]
        return [found]


def _check_bill(data: dict, account: GatewayAccount, payment: Payment, error: type[Exception]) -> None:
    if str(data.get("mch_id") or account.mch_id) != account.mch_id:
        raise error("mch_id does not match the merchant's account")
    if payment.merchant_id != account.merchant_id:
        raise error("transfer of another merchant")
    if data.get("transfer_amount") != payment.amount_minor:
        raise error(f"transfer_amount {data.get('transfer_amount')!r} does not match {payment.amount_minor}")


def _bill_notice(key: str, data: dict) -> GatewayResult | None:
    reference = str(data.get("transfer_bill_no") or "")
    state = data.get("state")
    if state == "SUCCESS":
        return notice("payment.succeeded", key, reference)
    if state == "FAIL":
        reason = str(data.get("fail_reason") or "transfer_failed")
        return notice("payment.failed", key, reference, reason.lower()[:64], reason)
    if state == "CANCELLED":
        return notice("payment.closed", key, reference, "transfer_cancelled")
    return None  # ACCEPTED, PROCESSING, WAIT_USER_CONFIRM, TRANSFERING, CANCELING
