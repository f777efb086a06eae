"""How PayDesk shows things: the one JSON shape of each object (API responses, Event data and
webhooks share them) and amounts written for people (the dashboard, e-mails, templates).

Amounts are integer minor units everywhere inside (payments/money.py); this module turns them
into text, so the web layer never reaches below the rules for it.
"""

from decimal import Decimal

from babel import Locale
from babel.numbers import parse_pattern
from django.core.exceptions import ObjectDoesNotExist
from django.utils import translation

from merchants.crypto import last4, masked, masked_email, masked_phone
from payments.models import BankReport, Payment, PaymentBatch, Refund
from payments.money import currency_exponent, format_minor


def payment_data(payment: Payment, *, full: bool = False) -> dict:
    """A payment's JSON; beneficiary data masked unless `full` (docs/privacy.md).

    Event data (and so webhooks, unless the merchant chose full values) always
    stores the masked form; the API shows full values only to merchants who
    turned on `full_beneficiary_data`.
    """
    return {
        "id": payment.public_id,
        "object": "payment",
        "reference": payment.reference,
        "amount": payment.amount,
        "currency": payment.currency,
        "method": payment.method,
        "direction": payment.direction,
        "beneficiary_name": payment.beneficiary_name,
        **(beneficiary_full(payment) if full else beneficiary_masked(payment)),
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


def beneficiary_masked(payment: Payment) -> dict:
    return {
        "beneficiary_account": masked(
            payment.beneficiary_account_last4 or last4(payment.beneficiary_account)
        ),
        "beneficiary_email": masked_email(payment.beneficiary_email),
        "beneficiary_phone": masked_phone(payment.beneficiary_phone),
    }


def beneficiary_full(payment: Payment) -> dict:
    return {
        "beneficiary_account": str(payment.beneficiary_account),
        "beneficiary_email": str(payment.beneficiary_email),
        "beneficiary_phone": str(payment.beneficiary_phone),
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


def totals_data(totals: dict) -> dict[str, dict]:
    """`{"USD": {"count": 2, "amount_minor": 1050}}` as the API shows it: decimal strings."""
    return {
        currency: {
            "count": t.get("count", 0),
            "amount": format_minor(int(t.get("amount_minor", 0)), currency),
        }
        for currency, t in sorted((totals or {}).items())
    }


def batch_data(batch: PaymentBatch) -> dict:
    """The one JSON shape of a batch (API answers and Event data)."""
    rejection = None
    if batch.status == "rejected":
        rejection = {
            "code": batch.rejection_code or "rejected",
            "message": batch.rejection_reason,
            "line": batch.rejection_line,
            "duplicate_of": batch.duplicate_of.public_id if batch.duplicate_of_id else None,
        }
    return {
        "id": batch.public_id,
        "object": "batch",
        "name": batch.name,
        "status": batch.status,
        "format": batch.source_format or None,
        "file_name": batch.file_name or None,
        "file_size": batch.file_size,
        "file_sha256": batch.file_sha256 or None,
        "encoding": batch.encoding or None,
        "message_id": batch.message_id or None,
        "row_count": batch.row_count,
        "valid_count": batch.valid_count,
        "error_count": batch.error_count,
        "totals": totals_data(batch.totals),
        "outcomes": {status: totals_data(t) for status, t in sorted((batch.outcomes or {}).items())},
        "rejection": rejection,
        "cancel_requested": batch.cancel_requested_at is not None,
        "funding_account": batch.funding_account.public_id if batch.funding_account_id else None,
        "execution_date": batch.execution_date.isoformat() if batch.execution_date else None,
        "bank_file": _bank_file(batch),
        "uploaded_by": batch.uploaded_by.get_username() if batch.uploaded_by_id else None,
        "uploaded_by_key": batch.uploaded_by_key.public_id if batch.uploaded_by_key_id else None,
        "approved_by": batch.approved_by.get_username() if batch.approved_by_id else None,
        "approved_by_key": batch.approved_by_key.public_id if batch.approved_by_key_id else None,
        "approved_at": _iso(batch.approved_at),
        "created_at": _iso(batch.created_at),
        "updated_at": _iso(batch.updated_at),
        "validated_at": _iso(batch.validated_at),
        "started_at": _iso(batch.started_at),
        "completed_at": _iso(batch.completed_at),
    }


def _bank_file(batch: PaymentBatch) -> dict | None:
    try:
        bank_file = batch.bank_file
    except ObjectDoesNotExist:
        return None
    return {"msg_id": bank_file.msg_id, "status": bank_file.status, "nb_of_txs": bank_file.nb_of_txs}


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def bank_report_data(report: BankReport) -> dict:
    """A bank report as the API answers its upload (DESIGN section 6)."""
    return {
        "id": report.public_id,
        "kind": report.kind,
        "matched": report.matched,
        "unmatched": list(report.unmatched),
        "duplicates": report.duplicates,
        "errors": list(report.errors),
    }


# Amounts for people ---------------------------------------------------------------------------


def amount_text(minor: int, currency: str) -> str:
    """The canonical decimal string of an amount (1234.50, 10, 1.234), as the API and files write it."""
    return format_minor(minor, currency)


def format_money(minor: int, currency: str, language: str | None = None) -> str:
    """Return an amount for people: the locale's currency symbol and grouping, the ISO exponent.

    ``language`` is a Django language code ("zh-hans"); the active language when None.
    `format_money(123450, "CNY")` is "CN¥1,234.50" in English and "¥1,234.50" in Chinese;
    JPY never shows decimals, KWD shows three, whatever CLDR's own rounding says.
    """
    exponent = currency_exponent(currency)
    locale = Locale.parse(translation.to_locale(language or translation.get_language() or "en"))
    pattern = parse_pattern(locale.currency_formats["standard"])
    pattern.frac_prec = (exponent, exponent)
    amount = Decimal(minor).scaleb(-exponent)
    return pattern.apply(amount, locale, currency=currency, currency_digits=False)


# Chinese capital numerals (大写金额) as banks and the 支付结算办法 require them on cheques and
# payment orders: 壹拾 (never a bare 拾), one 零 for any run of zeros, 整 after 元 only.
_CAPITAL_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_CAPITAL_UNITS = ("", "拾", "佰", "仟")


def _capital_below_10000(n: int) -> str:
    out, zero = "", False
    for power in (3, 2, 1, 0):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(out)
        else:
            out += ("零" if zero else "") + _CAPITAL_DIGITS[digit] + _CAPITAL_UNITS[power]
            zero = False
    return out


def _capital_integer(n: int) -> str:
    """Spell a positive integer: sections of four digits joined by 万 and 亿 (壹万亿 and beyond)."""
    if n >= 10**8:
        high, rest = divmod(n, 10**8)
        unit = "亿"
    elif n >= 10**4:
        high, rest = divmod(n, 10**4)
        unit = "万"
    else:
        return _capital_below_10000(n)
    text = _capital_integer(high) + unit
    if rest:
        # A gap of zeros before the rest (100,005 -> 壹拾万零伍) is one 零.
        gap = rest < (10**7 if unit == "亿" else 10**3)
        text += ("零" if gap else "") + _capital_integer(rest)
    return text


def cny_in_words(minor: int) -> str:
    """Return a CNY amount in fen as capital numerals: 123400 -> 壹仟贰佰叁拾肆元整.

    The rules of 《正确填写票据和结算凭证的基本规定》: 整 after 元 when there are no 角 and 分,
    none after 角 or 分; 零 after 元 when the 元 digit or the 角 is zero and something follows
    (¥1,680.32 壹仟陆佰捌拾元零叁角贰分, ¥16,409.02 壹万陆仟肆佰零玖元零贰分); below one yuan
    only 角 and 分 (¥0.50 伍角).
    """
    if minor < 0:
        return "负" + cny_in_words(-minor)
    yuan, cents = divmod(minor, 100)
    jiao, fen = divmod(cents, 10)
    if yuan == 0 and cents == 0:
        return "零元整"
    text = _capital_integer(yuan) + "元" if yuan else ""
    if cents == 0:
        return text + "整"
    if yuan and (yuan % 10 == 0 or jiao == 0):
        text += "零"
    if jiao:
        text += _CAPITAL_DIGITS[jiao] + "角"
    if fen:
        text += _CAPITAL_DIGITS[fen] + "分"
    return text
