"""Idempotency keys of unsafe API requests: claim, replay, store, release (the storage half of
payments/api/idempotency.py, which holds the HTTP contract).

A key is claimed by inserting its row; the unique constraint (merchant, key)
decides which of several concurrent requests runs, with no Python lock. A
use case that writes (payment creation) inserts the claim *inside its own
transaction*, first, so that the claim and what the request creates commit
together; a concurrent request with the same key then waits on the unique
index for that one short transaction and finds the claim. The answer is
stored in the transaction that records the gateway's answer. A POST
/payments thus commits twice in PayDesk's database (claim + payment, answer
+ stored response) instead of four times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone

from payments.db import insert_rows
from payments.models import IdempotencyKey

logger = logging.getLogger(__name__)

KEY_TTL = timedelta(hours=24)
REPLAYED_HEADER = "Idempotent-Replayed"
# Headers that belong to one transmission, not to the stored answer.
UNSTORED_HEADERS = frozenset({"set-cookie", "date", "content-length", "vary", "allow"})


class IdempotentReplay(Exception):
    """Carries the stored response of an earlier request with the same key."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__("idempotent replay")
        self.response = response


class KeyInProgress(Exception):
    """A request with this key is still running."""


class KeyReused(Exception):
    """The key was used for another request (another body, method or path)."""


class KeyTaken(Exception):
    """Another request claimed the key first; ask `idempotency_check` what to answer."""


@dataclass
class IdempotencyClaim:
    """One request's right to a key: not in the table until `insert()` (or `store()`) writes it.

    `respond` builds the HTTP answer from the use case's result; a use case
    that takes a claim calls `complete(result)` in the transaction that
    finishes it, so the stored answer commits with what it describes.
    """

    merchant_id: int
    api_key_id: int | None
    key: str
    fingerprint: str
    method: str
    path: str
    respond: Callable[[Any], HttpResponse] | None = None
    record: IdempotencyKey | None = None
    response: HttpResponse | None = None
    stored: bool = field(default=False)

    def _new_record(self, **values: Any) -> IdempotencyKey:
        return IdempotencyKey(
            merchant_id=self.merchant_id,
            api_key_id=self.api_key_id,
            key=self.key,
            method=self.method,
            path=self.path[:500],
            request_hash=self.fingerprint,
            **values,
        )

    def insert(self) -> None:
        """Insert the claim in the caller's transaction (or at once in autocommit); raise KeyTaken."""
        record = self._new_record()
        # No savepoint: a use case inserts its claim first and lets KeyTaken end its transaction.
        try:
            insert_rows([record])
        except IntegrityError:
            raise KeyTaken(self.key) from None
        self.record = record

    def complete(self, result: Any) -> HttpResponse:
        """Build the answer from `result` and store it under the key (in the caller's transaction)."""
        assert self.respond is not None, "complete() needs the view's respond callback"
        response = self.respond(result)
        self.store(response)
        self.response = response
        return response

    def store(self, response: HttpResponse) -> None:
        """Store a finished request's answer: update the claim, or insert it completed if it never was.

        An answer of 500 or above (or a streamed one) is never stored; the
        claim, if inserted, is released so that the request can be retried.
        Raise KeyTaken when the claim was not inserted and another request
        holds the key now.
        """
        if response.status_code >= 500 or getattr(response, "streaming", False):
            self.release()
            return
        values = stored_values(response)
        if self.record is not None:
            # IdempotencyKey.objects.filter(pk=record.pk).update(**values), the SQL built once.
            sql, fields = _finish_query()
            params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
            with connection.cursor() as cursor:
                cursor.execute(sql, [*params, self.record.pk])
                if cursor.rowcount == 1:
                    self.stored = True
                    return
            # The use case's transaction that held the claim rolled back: the claim never was.
            self.record = None
        if self.record is None:
            record = self._new_record(**values)
            try:
                with transaction.atomic():
                    insert_rows([record])
            except IntegrityError:
                raise KeyTaken(self.key) from None
            self.record = record
        self.stored = True

    def release(self) -> None:
        if self.record is not None and self.record.pk is not None:
            IdempotencyKey.objects.filter(pk=self.record.pk, completed_at=None).delete()
        self.record = None


def stored_values(response: HttpResponse) -> dict:
    """The columns that store an answer: status, headers, body (the replay body of a shown-once answer)."""
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    headers = {name: value for name, value in response.items() if name.lower() not in UNSTORED_HEADERS}
    return {
        "response_status": response.status_code,
        "response_headers": headers,
        "response_body": _stored_body(response),
        "completed_at": timezone.now(),
    }


def _stored_body(response: HttpResponse) -> bytes:
    replay_data = getattr(response, "replay_data", None)
    if replay_data is None:
        return response.content
    return response.accepted_renderer.render(
        replay_data, response.accepted_media_type, response.renderer_context
    )


@cache
def _finish_query() -> tuple[str, list]:
    q = connection.ops.quote_name
    meta = IdempotencyKey._meta
    names = ("response_status", "response_headers", "response_body", "completed_at")
    fields = [meta.get_field(name) for name in names]
    assignments = ", ".join(f"{q(f.column)} = %s" for f in fields)
    sql = f"UPDATE {q(meta.db_table)} SET {assignments} WHERE {q(meta.pk.column)} = %s"  # noqa: S608
    return sql, fields


def _expired_before(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - KEY_TTL


def idempotency_check(claim: IdempotencyClaim) -> None:
    """Return if the key is free for this request; else raise what to answer instead.

    Raise IdempotentReplay (stored answer), KeyInProgress (still running) or
    KeyReused (the key was used for another request). An expired row still in
    the table is deleted: the key counts as unused.
    """
    existing = IdempotencyKey.objects.filter(merchant_id=claim.merchant_id, key=claim.key).first()
    if existing is None:
        return
    if existing.created_at <= _expired_before():
        IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
        return
    if existing.request_hash != claim.fingerprint:
        raise KeyReused(claim.key)
    if existing.completed_at is None:
        raise KeyInProgress(claim.key)
    raise IdempotentReplay(replay_response(existing))


def idempotency_claim(claim: IdempotencyClaim) -> None:
    """Check the key and insert the claim at once (committed): for use cases that do not take it themselves.

    Raise IdempotentReplay, KeyInProgress or KeyReused as `idempotency_check`.
    """
    for _attempt in range(3):
        idempotency_check(claim)
        try:
            claim.insert()
            return
        except KeyTaken:
            continue  # claimed meanwhile: look again
    raise KeyInProgress(claim.key)


def replay_response(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body or b""), status=record.response_status)
    for name, value in (record.response_headers or {}).items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def purge_expired_keys(now: datetime | None = None) -> int:
    """Delete keys older than KEY_TTL; return how many. Run periodically by django-q2."""
    deleted, _by_model = IdempotencyKey.objects.filter(created_at__lt=_expired_before(now)).delete()
    return deleted
