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
from payments.models import BlockedEntry, SanctionedName
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


def rates_fetch() -> int:
    """Fetch the rates at PAYDESK_RATES_URL (the ECB's daily eurofxref) and store them; 0 if unset."""
    url = settings.PAYDESK_RATES_URL
    if not url:
        return 0
    response = http_call("GET", url, timeout=20)
    response.raise_for_status()
    return rates_import(parse_rates(response.content), source="ecb" if "ecb.europa.eu" in url else url[:40])
