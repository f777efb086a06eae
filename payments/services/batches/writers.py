"""Where validated batch rows go: Payments and BatchRowErrors, by COPY on PostgreSQL.

Used by batch_ingest within its one transaction. `CopyWriter` streams the
payments with `COPY FROM STDIN` (bulk_create tops out far below on
PostgreSQL) and spools the row errors to a file copied at the end; other
databases get `bulk_create` per block (`OrmWriter`).

On a UTF-8 connection (Django's default) the COPY text of a block is built
here, one string join per row, and sent with one `copy.write`: the fixed
columns are adapted once by psycopg, the per-row ones are `str` (escaped as
COPY's text format requires, exactly as psycopg escapes them), `int` or
None; any other value, and any string needing more than a plain copy,
still goes through psycopg's own adapters.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from typing import Any

from django.db import connection
from django.db.models import Count
from django.utils import timezone
from psycopg.adapt import PyFormat, Transformer

from merchants.crypto import encrypt_many, field_hashes, last4
from merchants.ids import new_public_ids
from payments.db import (
    copy_escape_bytes,
    copy_field,
    copy_statement,
    copy_text_row,
    existing_values,
    known_values,
    recent_counts,
    touch_now,
)
from payments.gateways import payout_gateway_for_method
from payments.models import BatchRowError, Payment, PaymentBatch, PaymentStatus
from payments.models.payment import ENCRYPTED_FIELDS

logger = logging.getLogger(__name__)


# A row error: line, column, code, message, the row's reference, its pain.001 PmtInfId,
# the offending value and the row's beneficiary name.
ErrorRow = tuple[int, str, str, str, str, str, str, str]
HEARTBEAT_SECONDS = 10


def _payment_columns() -> list:
    return [f for f in Payment._meta.concrete_fields if not f.primary_key]


class Writer:
    """Where valid rows and row errors go; subclasses per database."""

    def __init__(self, batch: PaymentBatch) -> None:
        self.batch = batch
        self.now = timezone.now()
        self.fixed = self._fixed_values()
        self.gateways: dict[str, str] = {}
        self.attnames = {f.attname for f in _payment_columns()}

    def _fixed_values(self) -> dict[str, Any]:
        batch = self.batch
        fixed: dict[str, Any] = {}
        for f in _payment_columns():
            fixed[f.attname] = f.get_default()
        fixed.update(
            merchant_id=batch.merchant_id,
            batch_id=batch.pk,
            status=PaymentStatus.CREATED,
            created_by_id=batch.uploaded_by_id,
            api_key_id=batch.uploaded_by_key_id,
            created_at=self.now,
            updated_at=self.now,
        )
        return fixed

    def gateway(self, method: str) -> str:
        """The payout rail of a validated row's method (validation refused rows without one)."""
        slug = self.gateways.get(method)
        if slug is None:
            gateway = payout_gateway_for_method(method)
            slug = self.gateways[method] = gateway.slug if gateway is not None else ""
        return slug

    def existing(self, references: list[str]) -> set[str]:
        raise NotImplementedError

    def known_accounts(self, hashes: list[str]) -> set[str]:
        """Which of these account hashes the merchant has paid (or has a payment to) before."""
        raise NotImplementedError

    def recent_accounts(self, hashes: list[str], since) -> dict[str, int]:
        """How many payments of the merchant to each of these account hashes were created since
        `since` (accounts with none left out); one query, for a block of rows."""
        raise NotImplementedError

    def payments(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def errors(self, rows: list[ErrorRow]) -> None:
        raise NotImplementedError

    def beat(self) -> None:
        """Show that the validation is alive, where the database allows it mid-transaction."""

    def finish(self) -> None:
        """Flush what is buffered; raise IntegrityError if a reference was taken meanwhile."""

    def close(self) -> None:
        """Release connections and files (also after a failure)."""


class OrmWriter(Writer):
    """Portable path: `bulk_create` per block, lookups on the same connection."""

    def existing(self, references: list[str]) -> set[str]:
        return set(
            Payment.objects.filter(merchant_id=self.batch.merchant_id, reference__in=references).values_list(
                "reference", flat=True
            )
        )

    def known_accounts(self, hashes: list[str]) -> set[str]:
        return set(
            Payment.objects.filter(merchant_id=self.batch.merchant_id, beneficiary_account_hash__in=hashes)
            .values_list("beneficiary_account_hash", flat=True)
            .distinct()
        )

    def recent_accounts(self, hashes: list[str], since) -> dict[str, int]:
        rows = (
            Payment.objects.filter(
                merchant_id=self.batch.merchant_id, created_at__gte=since, beneficiary_account_hash__in=hashes
            )
            .values("beneficiary_account_hash")
            .annotate(n=Count("id"))
            .order_by()
        )
        return {r["beneficiary_account_hash"]: r["n"] for r in rows}

    def payments(self, rows: list[dict[str, Any]]) -> None:
        ids = new_public_ids("pay", len(rows))
        objs = []
        for public_id, row in zip(ids, rows, strict=True):
            values = {**self.fixed, **row, "public_id": public_id}
            obj = Payment(**{k: v for k, v in values.items() if k != "status" and k in self.attnames})
            obj.__dict__["status"] = values["status"]
            objs.append(obj)
        Payment.objects.bulk_create(objs, batch_size=500)

    def errors(self, rows: list[ErrorRow]) -> None:
        BatchRowError.objects.bulk_create(
            [
                BatchRowError(
                    batch_id=self.batch.pk,
                    line=a,
                    column=b,
                    code=c,
                    message=d,
                    reference=e,
                    pmt_inf_id=f,
                    value=g,
                    beneficiary_name=h,
                )
                for a, b, c, d, e, f, g, h in rows
            ],
            batch_size=500,
        )


class CopyWriter(Writer):
    """PostgreSQL: COPY for the payments, errors spooled to a file and copied at the end.

    Streaming (the first try): one COPY stream for the whole file, while
    existing references are looked up on a second connection, so the stream
    never pauses. That connection sees committed data only: a batch validated
    concurrently with the same references makes our COPY fail on the unique
    constraint, and the validation is run again, then `streaming=False`: one
    COPY per block, lookups on our own connection between them.
    """

    def __init__(self, batch: PaymentBatch, *, streaming: bool = True) -> None:
        super().__init__(batch)
        self.columns = _payment_columns()
        self._copy_sql = copy_statement(Payment, self.columns)
        self._cursor = connection.cursor()
        self._copy_cm = None
        self._copy = None
        self._lookup = None
        self._json_fields = {f.attname for f in self.columns if f.get_internal_type() == "JSONField"}
        self._beat = time.monotonic()
        self._spool = tempfile.TemporaryFile()
        if streaming:
            self._lookup = connection.get_new_connection(connection.get_connection_params())
            self._lookup.autocommit = True
            self._open_copy()
        # Rows are formatted here on UTF-8 connections; others keep psycopg's write_row.
        self._pg_cursor = self._cursor.cursor
        self._text_rows = connection.connection.info.encoding == "utf-8"

    @property
    def streaming(self) -> bool:
        """Whether a COPY stream is open on the default connection now."""
        return self._copy is not None

    def _open_copy(self) -> None:
        self._copy_cm = self._cursor.copy(self._copy_sql)
        self._copy = self._copy_cm.__enter__()

    def _close_copy(self) -> None:
        copy_cm, self._copy_cm, self._copy = self._copy_cm, None, None
        if copy_cm is not None:
            copy_cm.__exit__(None, None, None)

    def existing(self, references: list[str]) -> set[str]:
        lookup = self._lookup or connection.connection
        return existing_values(
            lookup, Payment, "reference", scope=("merchant_id", self.batch.merchant_id), values=references
        )

    def known_accounts(self, hashes: list[str]) -> set[str]:
        lookup = self._lookup or connection.connection
        return known_values(
            lookup,
            Payment,
            "beneficiary_account_hash",
            scope=("merchant_id", self.batch.merchant_id),
            values=hashes,
        )

    def recent_accounts(self, hashes: list[str], since) -> dict[str, int]:
        lookup = self._lookup or connection.connection
        return recent_counts(lookup, Payment, merchant_id=self.batch.merchant_id, hashes=hashes, since=since)

    def beat(self) -> None:
        """Tell the sweeper this validation is alive (committed at once on the second connection)."""
        if self._lookup is None or time.monotonic() - self._beat < HEARTBEAT_SECONDS:
            return
        touch_now(self._lookup, PaymentBatch, self.batch.pk, "validation_started_at")
        self._beat = time.monotonic()

    def _layout(self, first: dict[str, Any]) -> tuple[list[Any], list[tuple[int, str]], int, int]:
        """The values of a COPY row before a payment's own: fixed values, the slots of `first`'s
        fields (all rows of a block have the same), and the slots of public_id and metadata."""
        attnames = [f.attname for f in self.columns]
        template = [self.fixed.get(a) for a in attnames]
        for i, a in enumerate(attnames):
            if a in self._json_fields and template[i] is not None:
                template[i] = json.dumps(template[i], separators=(",", ":"))
        slots = [(attnames.index(name), name) for name in first if name in attnames and name != "metadata"]
        return template, slots, attnames.index("public_id"), attnames.index("metadata")

    def payments(self, rows: list[dict[str, Any]]) -> None:
        ids = new_public_ids("pay", len(rows))
        rows = protected_rows(rows)
        template, slots, id_slot, meta_slot = self._layout(rows[0])
        with connection.wrap_database_errors:
            per_block = self._copy is None
            if per_block:
                self._open_copy()
            if self._text_rows:
                self._copy.write(self._copy_block(template, ids, rows, slots, id_slot, meta_slot))
            else:
                write = self._copy.write_row
                for public_id, row in zip(ids, rows, strict=True):
                    values = template.copy()
                    values[id_slot] = public_id
                    for slot, name in slots:
                        values[slot] = row[name]
                    values[meta_slot] = _metadata_json(row["metadata"])
                    write(values)
            if per_block:
                self._close_copy()

    def _copy_block(
        self,
        template: list[Any],
        ids: list[str],
        rows: list[dict[str, Any]],
        slots: list[tuple[int, str]],
        id_slot: int,
        meta_slot: int,
    ) -> bytes:
        """The COPY text (UTF-8) of one block of payments: what `write_row` would have sent."""
        tx = Transformer.from_context(self._pg_cursor)
        fixed = template.copy()
        for slot in (id_slot, meta_slot, *(slot for slot, _ in slots)):
            fixed[slot] = None  # set per row below
        line = [copy_escape_bytes(b) for b in tx.dump_sequence(fixed, [PyFormat.TEXT] * len(fixed))]
        lines = []
        for public_id, row in zip(ids, rows, strict=True):
            line[id_slot] = copy_field(tx, public_id)
            for slot, name in slots:
                value = row[name]
                # Inlined fast case of _copy_field: plain printable text.
                if type(value) is str and value.isprintable() and "\\" not in value:
                    line[slot] = value
                else:
                    line[slot] = copy_field(tx, value)
            line[meta_slot] = copy_field(tx, _metadata_json(row["metadata"]))
            lines.append("\t".join(line))
        lines.append("")
        return "\n".join(lines).encode("utf-8")

    def errors(self, rows: list[ErrorRow]) -> None:
        for row in rows:
            self._spool.write(copy_text_row((self.batch.pk, *row)))

    def finish(self) -> None:
        with connection.wrap_database_errors:
            self._close_copy()
            if self._spool.tell():
                self._spool.seek(0)
                columns = [
                    BatchRowError._meta.get_field(name)
                    for name in (
                        "batch",
                        "line",
                        "column",
                        "code",
                        "message",
                        "reference",
                        "pmt_inf_id",
                        "value",
                        "beneficiary_name",
                    )
                ]
                with self._cursor.copy(copy_statement(BatchRowError, columns)) as cp:
                    while block := self._spool.read(1 << 20):
                        cp.write(block)

    def close(self) -> None:
        if self._copy_cm is not None:
            try:
                self._copy_cm.__exit__(RuntimeError, RuntimeError("aborted"), None)
            except Exception:  # noqa: S110 - the COPY is being abandoned with its transaction
                logger.debug("COPY aborted")
            self._copy_cm = None
        if self._lookup is not None:
            self._lookup.close()
        self._spool.close()
        self._cursor.close()


def protected_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of block rows in the form stored at rest: what COPY writes is what the model's fields
    would have written (EncryptedTextField tokens, the account's keyed hash and last four)."""
    out = [row.copy() for row in rows]
    for name in ENCRYPTED_FIELDS:
        values = [row[name] for row in rows]
        if name == "beneficiary_account":
            # Batch validation hashed the accounts already for its rules (ingest `holds`).
            given = [row.get("beneficiary_account_hash") for row in rows]
            digests = given if all(given) else field_hashes(values)
            for row, value, digest in zip(out, values, digests, strict=True):
                row["beneficiary_account_hash"] = digest
                row["beneficiary_account_last4"] = last4(value)
        if any(values):
            for row, token in zip(out, encrypt_many(values), strict=True):
                row[name] = token
    return out


def _metadata_json(meta: dict) -> str:
    """JSON of a row's metadata; the usual {"batch_line": n} without the json module's overhead."""
    if len(meta) == 1 and type(meta.get("batch_line")) is int:
        return '{"batch_line":' + str(meta["batch_line"]) + "}"
    return json.dumps(meta, separators=(",", ":"))
