"""Use cases of the fraud controls: the blocklist, the sanctions list, fetching reference rates."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from merchants.audit import audit_record
from merchants.crypto import field_hash, last4
from merchants.models import Merchant
from payments.controls import normalise_name, sanctions_reload
from payments.gateways import http_call
from payments.models import BlockedEntry, Channel, Delivery, Event, Payment, SanctionedName
from payments.models.payment import ENCRYPTED_FIELDS
from payments.rates import RatesInvalid as RatesInvalid  # raised by rates_import_file
from payments.rates import parse_rates, rates_import

logger = logging.getLogger(__name__)


def block_add(
    *, merchant: Merchant, kind: str, value: str, note: str = "", user=None, request=None
) -> BlockedEntry:
    """Add one blocklist entry, audited (accounts kept as keyed hash and last four, names normalised)."""
    last_four = ""
    if kind == BlockedEntry.Kind.ACCOUNT:
        stored, last_four = field_hash(value), last4(value)
    elif kind == BlockedEntry.Kind.NAME:
        stored = normalise_name(value)
    elif kind == BlockedEntry.Kind.COUNTRY:
        stored = str(value).strip().upper()[:2]
    else:
        raise ValueError(f"unknown blocklist kind {kind!r}")
    with transaction.atomic():
        entry, created = BlockedEntry.objects.get_or_create(
            merchant=merchant,
            kind=kind,
            value=stored,
            defaults={"last4": last_four, "note": note[:200], "created_by": user},
        )
        if created:
            audit_record(
                action="blocklist.added",
                user=user,
                merchant=merchant,
                obj=entry,
                after={"kind": kind, "shown": str(entry)},
                request=request,
            )
    return entry


def sanctions_import(*, list_name: str, rows: list[dict]) -> int:
    """Replace the names of one sanctions list: every `name` and each of its `aliases` (`;`-separated)."""
    names = []
    for row in rows:
        entry_id = (row.get("id") or "").strip()[:80]
        for name in [row.get("name") or "", *(row.get("aliases") or "").split(";")]:
            name = name.strip()
            if name:
                names.append(
                    SanctionedName(
                        list_name=list_name[:80],
                        entry_id=entry_id,
                        name=name[:300],
                        normalised=normalise_name(name)[:300],
                    )
                )
    with transaction.atomic():
        SanctionedName.objects.filter(list_name=list_name).delete()
        SanctionedName.objects.bulk_create(names, batch_size=1000)
    sanctions_reload()
    return len(names)


def rates_source(file_name: str) -> str:
    """What an imported file's rates are recorded as coming from: `ecb` for an XML, else its name."""
    return "ecb" if file_name.lower().endswith(".xml") else file_name[:40]


def rates_import_file(data: bytes, *, source: str) -> tuple[int, list]:
    """Store the rates of an ECB eurofxref XML or a date,base,currency,rate CSV: (how many, their days).

    Raises RatesInvalid, storing nothing, if the file cannot be read."""
    rates = parse_rates(data)
    return rates_import(rates, source=source), sorted({r.day for r in rates})


def rates_fetch() -> int:
    """Fetch the rates at PAYDESK_RATES_URL (the ECB's daily eurofxref) and store them; 0 if unset."""
    url = settings.PAYDESK_RATES_URL
    if not url:
        return 0
    response = http_call("GET", url, timeout=20)
    response.raise_for_status()
    return rates_import(parse_rates(response.content), source="ecb" if "ecb.europa.eu" in url else url[:40])


TOMBSTONE = "[erased]"


def beneficiary_erase(*, merchant: Merchant, account: str, user=None, request=None) -> dict[str, int]:
    """Replace one beneficiary's personal data with a tombstone, for a PIPL or GDPR erasure request.

    Across the merchant's payments to `account` (found by keyed hash), their Events' data and their
    Deliveries (beneficiary notices' recipients and payloads): name, account, e-mail and phone
    become a tombstone; amounts, ids, references and states stay. Audited. Return the counts.
    """
    account_hash = field_hash(account)
    with transaction.atomic():
        payments = list(
            Payment.objects.select_for_update()
            .filter(merchant=merchant, beneficiary_account_hash=account_hash)
            .only("pk", *ENCRYPTED_FIELDS, "beneficiary_name")
        )
        for payment in payments:
            payment.beneficiary_name = TOMBSTONE
            payment.beneficiary_account = ""
            payment.beneficiary_email = ""
            payment.beneficiary_phone = ""
            payment.beneficiary_account_hash = ""
            payment.beneficiary_account_last4 = ""
        fields = [
            "beneficiary_name",
            *ENCRYPTED_FIELDS,
            "beneficiary_account_hash",
            "beneficiary_account_last4",
        ]
        Payment.objects.bulk_update(payments, fields, batch_size=500)
        pks = [p.pk for p in payments]
        events = list(Event.objects.filter(payment_id__in=pks))
        for event in events:
            obj = event.data.get("object")
            if isinstance(obj, dict):
                for name in ("beneficiary_name", *ENCRYPTED_FIELDS):
                    if name in obj:
                        obj[name] = TOMBSTONE
        Event.objects.bulk_update(events, ["data"], batch_size=500)
        deliveries = Delivery.objects.filter(event_id__in=[e.pk for e in events]).exclude(
            channel=Channel.WEBHOOK
        )
        erased_deliveries = deliveries.update(recipient=TOMBSTONE, payload={})
        counts = {"payments": len(payments), "events": len(events), "deliveries": erased_deliveries}
        audit_record(
            action="beneficiary.erased",
            user=user,
            merchant=merchant,
            object_type="beneficiary",
            object_id=f"\u2022\u2022\u2022\u2022 {last4(account)}",
            after=counts,
            request=request,
        )
    return counts
