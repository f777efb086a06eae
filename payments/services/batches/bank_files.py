"""Writing a batch's bank file: its bank-transfer payments as one pain.001.001.09, streamed to storage.

A BankFile row is created (pending) when a batch with bank-rail payments
starts. Once every chunk has been submitted (each payment `processing`), a
worker claims the row with a conditional update and writes the file: one
aggregate query gives the totals of each payment information block (debtor
account, currency, execution date), then the payments are streamed from a
database iterator through the writer into a temporary file that replaces
the final one only when complete. Nothing holds the batch in memory, so
10^6 payments cost the same memory as ten. Safe to run twice: a written
file is never written again, and a crash leaves the row pending for the
sweeper.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Sum, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from merchants.crypto import decrypt_many
from payments.formats.pain001_writer import Party, PaymentBlock, Transfer, iter_pain001
from payments.gateways.bank_file import BankFileGateway
from payments.models import BankFile, BatchChunk, Payment, PaymentBatch, PaymentStatus
from payments.money import format_minor
from payments.queue import enqueue
from payments.services.batches.funding import funding_account_for, today

logger = logging.getLogger(__name__)

RAIL = BankFileGateway.slug
DATE_KEY = "metadata__requested_execution_date"
BANK_FILE_DIR = "bank_files"
WRITE_TASK = "payments.tasks.bank_file_write_task"


def claim_lease() -> timedelta:
    """A claim older than this is taken over (its worker died): longer than the task may run."""
    return timedelta(seconds=settings.PAYDESK_BATCH_TASK_TIMEOUT + 60)


def enqueue_write(batch_id: int) -> None:
    """Queue the writing with the batch tasks' own timeout (a million transfers take a while)."""
    enqueue(WRITE_TASK, batch_id, q_options={"timeout": settings.PAYDESK_BATCH_TASK_TIMEOUT})


class BankFileNotReady(Exception):
    """The batch's bank file is not written yet (its payments are still being submitted)."""


def bank_file_msg_id(batch: PaymentBatch) -> str:
    """The file's MsgId: derived from the batch id (unique, at most 35 characters, no underscore)."""
    return "PD" + batch.public_id.split("_", 1)[-1]


def bank_file_prepare(*, batch: PaymentBatch) -> BankFile | None:
    """Create the pending bank file of a starting batch that has bank-rail payments (in its transaction)."""
    if not Payment.objects.filter(batch_id=batch.pk, gateway=RAIL).exists():
        return None
    bank_file, _created = BankFile.objects.get_or_create(
        batch=batch, defaults={"merchant_id": batch.merchant_id, "msg_id": bank_file_msg_id(batch)}
    )
    return bank_file


def bank_file_enqueue_if_ready(*, batch_id: int) -> None:
    """Queue the writing of a batch's pending bank file once no chunk is left to submit."""
    if BankFile.objects.filter(
        batch_id=batch_id, status=BankFile.Status.PENDING
    ).exists() and not _chunks_open(batch_id):
        transaction.on_commit(lambda: enqueue_write(batch_id))


def _chunks_open(batch_id: int) -> bool:
    return BatchChunk.objects.filter(
        batch_id=batch_id, status__in=[BatchChunk.Status.PENDING, BatchChunk.Status.CLAIMED]
    ).exists()


def _claim(batch_id: int) -> BankFile | None:
    now = timezone.now()
    claimed = (
        BankFile.objects.filter(batch_id=batch_id, status=BankFile.Status.PENDING)
        .filter(Q(claimed_at=None) | Q(claimed_at__lt=now - claim_lease()))
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return BankFile.objects.select_related("batch", "batch__merchant", "batch__funding_account").get(
        batch_id=batch_id
    )


def bank_file_write(*, batch_id: int) -> BankFile | None:
    """Write the pain.001 of a batch whose chunks are all submitted; return it, or None if not now."""
    if _chunks_open(batch_id):
        return None
    bank_file = _claim(batch_id)
    if bank_file is None:
        return None
    batch = bank_file.batch
    name = f"{BANK_FILE_DIR}/{batch.merchant_id}/{batch.public_id}-pain.001.xml"
    target = Path(settings.MEDIA_ROOT) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    digest, size = hashlib.sha256(), 0
    try:
        blocks, nb_of_txs, ctrl_sum, totals = _blocks(batch, bank_file.msg_id)
        with open(partial, "wb") as out:
            for piece in iter_pain001(
                msg_id=bank_file.msg_id,
                created_at=timezone.now(),
                initiating_party=settings.PAYDESK_BANK_FILE_INITIATOR or batch.merchant.name,
                nb_of_txs=nb_of_txs,
                ctrl_sum=ctrl_sum,
                blocks=blocks,
            ):
                out.write(piece)
                digest.update(piece)
                size += len(piece)
        os.replace(partial, target)
    except Exception:
        partial.unlink(missing_ok=True)
        BankFile.objects.filter(pk=bank_file.pk).update(claimed_at=None)
        raise
    BankFile.objects.filter(pk=bank_file.pk, status=BankFile.Status.PENDING).update(
        status=BankFile.Status.WRITTEN,
        stored_file=name,
        size=size,
        sha256=digest.hexdigest(),
        nb_of_txs=nb_of_txs,
        totals=totals,
        written_at=timezone.now(),
    )
    bank_file.refresh_from_db()
    logger.info("bank file %s of batch %s: %d transfers", bank_file.msg_id, batch.public_id, nb_of_txs)
    return bank_file


def _payments(batch: PaymentBatch):
    return Payment.objects.filter(batch_id=batch.pk, gateway=RAIL, status=PaymentStatus.PROCESSING)


def _blocks(batch: PaymentBatch, msg_id: str) -> tuple[Iterator[PaymentBlock], int, Decimal, dict]:
    """The payment information blocks (from one aggregate query) and the file's totals.

    A payment is executed on its requested date (its pain.001 block's, else
    the batch's), or today when that date has passed.
    """
    start = max(today(), batch.execution_date or date.min)
    groups: dict[tuple[str, date], dict] = defaultdict(lambda: {"dates": set(), "count": 0, "minor": 0})
    rows = _payments(batch).values("currency", DATE_KEY).annotate(n=Count("id"), total=Sum("amount_minor"))
    for row in rows.order_by("currency", DATE_KEY):
        requested = row[DATE_KEY]
        when = max(start, date.fromisoformat(requested)) if requested else start
        group = groups[(row["currency"], when)]
        group["dates"].add(requested)
        group["count"] += row["n"]
        group["minor"] += int(row["total"])
    nb_of_txs, ctrl_sum, totals = 0, Decimal(0), {}
    plan = []
    for number, ((currency, when), group) in enumerate(sorted(groups.items()), start=1):
        account = funding_account_for(batch, currency)
        if account is None:
            raise ValueError(f"batch {batch.public_id} has no {currency} funding account for its bank file")
        block_sum = Decimal(format_minor(group["minor"], currency))
        nb_of_txs += group["count"]
        ctrl_sum += block_sum
        entry = totals.setdefault(currency, {"count": 0, "amount_minor": 0})
        entry["count"] += group["count"]
        entry["amount_minor"] += group["minor"]
        debtor = Party(
            name=account.name,
            iban=account.iban,
            account_number=account.account_number,
            bic=account.bic,
            bank_code=account.bank_code,
        )
        plan.append((f"{msg_id}-{number}", when, debtor, currency, group, block_sum))

    def blocks() -> Iterator[PaymentBlock]:
        for pmt_inf_id, when, debtor, currency, group, block_sum in plan:
            yield PaymentBlock(
                pmt_inf_id=pmt_inf_id[:35],
                execution_date=when,
                debtor=debtor,
                currency=currency,
                nb_of_txs=group["count"],
                ctrl_sum=block_sum,
                transfers=_transfers(batch, currency, group["dates"]),
            )

    return blocks(), nb_of_txs, ctrl_sum, totals


def _transfers(batch: PaymentBatch, currency: str, dates: set[str | None]) -> Iterator[Transfer]:
    named = [d for d in dates if d is not None]
    scope = Q(**{f"{DATE_KEY}__in": named}) if named else Q(pk__in=[])
    if None in dates:
        scope |= Q(**{f"{DATE_KEY}__isnull": True})
    rows = (
        _payments(batch)
        .filter(scope, currency=currency)
        .order_by("pk")
        # The account as stored (its Fernet token), deciphered per chunk in bulk below.
        .values_list(
            "reference",
            "amount_minor",
            "beneficiary_name",
            Cast("beneficiary_account", TextField()),
            "description",
        )
    )
    chunk: list[tuple] = []
    for row in rows.iterator(chunk_size=5000):
        chunk.append(row)
        if len(chunk) == 5000:
            yield from _chunk_transfers(chunk, currency)
            chunk = []
    yield from _chunk_transfers(chunk, currency)


def _chunk_transfers(chunk: list[tuple], currency: str) -> Iterator[Transfer]:
    accounts = decrypt_many([row[3] for row in chunk])
    for (reference, minor, name, _token, description), account in zip(chunk, accounts, strict=True):
        yield Transfer(
            end_to_end_id=reference,
            amount=format_minor(minor, currency),
            creditor_name=name,
            creditor_account=account,
            remittance=description or reference,
        )


def bank_file_path(bank_file: BankFile) -> Path:
    """Where a written bank file is; raise BankFileNotReady while it is pending."""
    if bank_file.status != BankFile.Status.WRITTEN or not bank_file.stored_file:
        raise BankFileNotReady(bank_file.msg_id)
    return Path(settings.MEDIA_ROOT) / bank_file.stored_file


def bank_file_sweep(*, now=None) -> int:
    """Queue the writing of pending bank files whose batch has no open chunk (run by the sweeper)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.PAYDESK_SWEEP_AFTER)
    pending = BankFile.objects.filter(status=BankFile.Status.PENDING).filter(
        Q(claimed_at=None, created_at__lt=stale) | Q(claimed_at__lt=now - claim_lease())
    )
    count = 0
    for batch_id in pending.values_list("batch_id", flat=True)[:100]:
        if not _chunks_open(batch_id):
            enqueue_write(batch_id)
            count += 1
    return count
