"""`Idempotency-Key` for unsafe API requests (IETF httpapi-idempotency-key-header draft, Stripe semantics).

Contract, for every view that mixes in `IdempotencyMixin` (POST, PUT, PATCH,
DELETE; a request without the header is simply executed):

- The key is 1-255 printable ASCII characters (a structured-field string in
  quotes is accepted and unquoted); otherwise 400 `idempotency_key_invalid` /
  `idempotency_key_too_long`.
- Keys are scoped to the merchant of the API key and kept 24 hours from the
  first request (`KEY_TTL`); a periodic task (`purge_expired_keys`, scheduled
  in payments/apps.py) deletes expired ones, and an expired key that is still
  in the table counts as unused.
- The first request with a key inserts a row in `IdempotencyKey`; the unique
  constraint (merchant, key) decides which of several concurrent requests
  runs, with no Python lock. The others get 409 `idempotency_request_in_progress`
  while it runs.
- When it finishes with a status below 500, its status, headers and body are
  stored; a retry with the same key and the same request (method, path and
  body, compared by a SHA-256 fingerprint of the parsed body, so formatting
  and key order do not matter) gets exactly those bytes again, with
  `Idempotent-Replayed: true`.
- The same key with a different request is 422 `idempotency_key_reused`.
- An answer that holds something shown once (a webhook endpoint's signing
  secret) is never stored: the view marks it with `shown_once`, and what is
  stored, and replayed, is the body it names instead (the endpoint without
  its secret, `"secret_omitted": true`). A replay never hands a secret out
  again, and the table never holds one in plaintext.
- A 5xx answer or an exception releases the key so that the request can be
  retried: services are transactional, so nothing half-done stays behind.
- Authentication, permission, throttling, malformed bodies and key errors are
  answered before a key is claimed, so they are never stored.

Usage: `class BatchApproveView(IdempotencyMixin, APIView): ...`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from functools import cache

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse, QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.response import Response

from merchants.models import ApiKey
from payments.api.problems import BadRequest, Conflict, Unprocessable
from payments.db import insert_rows
from payments.models import IdempotencyKey

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEY_TTL = timedelta(hours=24)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Headers that belong to one transmission, not to the stored answer.
UNSTORED_HEADERS = frozenset({"set-cookie", "date", "content-length", "vary", "allow"})
KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_LENGTH,
    "pattern": r"^[!-~]([ -~]*[!-~])?$",
}


class IdempotentReplay(Exception):
    """Carries the stored response of an earlier request with the same key."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__("idempotent replay")
        self.response = response


def clean_key(value: str) -> str:
    """Return the key of an Idempotency-Key header value; raise a 400 problem if it is not usable."""
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(
            _("An Idempotency-Key has at most %(n)d characters.") % {"n": MAX_KEY_LENGTH},
            code="idempotency_key_too_long",
        )
    if not key or not all(" " <= c <= "~" for c in key):
        raise BadRequest(
            _("An Idempotency-Key is 1 to 255 printable ASCII characters."), code="idempotency_key_invalid"
        )
    return key


def _canonical(value):
    if isinstance(value, QueryDict):
        return {k: [_canonical(v) for v in vs] for k, vs in sorted(value.lists())}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, UploadedFile):
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return {"file": value.name, "size": value.size, "sha256": digest.hexdigest()}
    return value


def request_fingerprint(request) -> str:
    """SHA-256 of the method, the path with its query and the parsed body (files by their digest)."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.get_full_path()}\n".encode())
    body = _canonical(request.data)
    digest.update(
        json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8", "surrogatepass")
    )
    return digest.hexdigest()


def _expired_before(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - KEY_TTL


def idempotency_begin(
    *, api_key: ApiKey, key: str, fingerprint: str, method: str, path: str
) -> IdempotencyKey:
    """Claim `key` for this request and return its row, or raise what to answer instead.

    Raise IdempotentReplay (stored answer), Conflict (still running) or
    Unprocessable (the key was used for another request).
    """
    merchant_id = api_key.merchant_id
    for _attempt in range(3):
        try:
            return _insert_claim(
                merchant_id=merchant_id,
                api_key=api_key,
                key=key,
                method=method,
                path=path[:500],
                request_hash=fingerprint,
            )
        except IntegrityError:
            pass  # the key exists: look at it below
        existing = IdempotencyKey.objects.filter(merchant_id=merchant_id, key=key).first()
        if existing is None:
            continue  # released or purged meanwhile: try to claim it again
        if existing.created_at <= _expired_before():
            IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
            continue
        if existing.request_hash != fingerprint:
            raise Unprocessable(
                _(
                    "This Idempotency-Key was already used for a different request "
                    "(another body, method or path). Use a new key for a new request."
                ),
                code="idempotency_key_reused",
            )
        if existing.completed_at is None:
            break
        raise IdempotentReplay(replay_response(existing))
    raise Conflict(
        _("A request with this Idempotency-Key is still being processed; retry later."),
        code="idempotency_request_in_progress",
    )


def _insert_claim(**fields) -> IdempotencyKey:
    """Insert the claim row, committed at once (autocommit); inside a transaction, in a savepoint."""
    record = IdempotencyKey(**fields)
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            insert_rows([record])
    else:
        insert_rows([record])
    return record


def replay_response(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body or b""), status=record.response_status)
    for name, value in (record.response_headers or {}).items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def shown_once(response: Response, replay_data: dict) -> Response:
    """Mark an answer whose body is shown only now: store, and replay, `replay_data` instead."""
    response.replay_data = replay_data
    return response


def _stored_body(response: HttpResponse) -> bytes:
    replay_data = getattr(response, "replay_data", None)
    if replay_data is None:
        return response.content
    return response.accepted_renderer.render(
        replay_data, response.accepted_media_type, response.renderer_context
    )


def idempotency_finish(record: IdempotencyKey, response: HttpResponse) -> None:
    """Store a finished request's answer under its key; release the key after a 5xx.

    For an answer marked `shown_once`, the body stored is its replay body.
    """
    if response.status_code >= 500 or getattr(response, "streaming", False):
        idempotency_release(record)
        return
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    headers = {name: value for name, value in response.items() if name.lower() not in UNSTORED_HEADERS}
    values = {
        "response_status": response.status_code,
        "response_headers": headers,
        "response_body": _stored_body(response),
        "completed_at": timezone.now(),
    }
    # IdempotencyKey.objects.filter(pk=record.pk).update(**values), the SQL built once.
    sql, fields = _finish_query()
    params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, record.pk])


@cache
def _finish_query() -> tuple[str, list]:
    q = connection.ops.quote_name
    meta = IdempotencyKey._meta
    names = ("response_status", "response_headers", "response_body", "completed_at")
    fields = [meta.get_field(name) for name in names]
    assignments = ", ".join(f"{q(f.column)} = %s" for f in fields)
    sql = f"UPDATE {q(meta.db_table)} SET {assignments} WHERE {q(meta.pk.column)} = %s"  # noqa: S608
    return sql, fields


def idempotency_release(record: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=record.pk, completed_at=None).delete()


def purge_expired_keys(now: datetime | None = None) -> int:
    """Delete keys older than KEY_TTL; return how many. Run periodically by django-q2."""
    deleted, _by_model = IdempotencyKey.objects.filter(created_at__lt=_expired_before(now)).delete()
    return deleted


class IdempotencyMixin:
    """Give a DRF APIView the Idempotency-Key contract above on its unsafe methods.

    Put it before APIView in the bases. The key is claimed after
    authentication, permissions and throttling, so only requests that reach
    the handler are recorded.
    """

    idempotent_methods = UNSAFE_METHODS

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self._idempotency_record = None
        value = request.headers.get(HEADER)
        if value is None or request.method not in self.idempotent_methods:
            return
        if not hasattr(self, request.method.lower()):
            return  # answered 405 by dispatch
        if not isinstance(request.auth, ApiKey):
            return
        key = clean_key(value)
        fingerprint = request_fingerprint(request)
        self._idempotency_record = idempotency_begin(
            api_key=request.auth,
            key=key,
            fingerprint=fingerprint,
            method=request.method,
            path=request.get_full_path(),
        )

    def handle_exception(self, exc):
        if isinstance(exc, IdempotentReplay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = getattr(self, "_idempotency_record", None)
        if record is not None:
            self._idempotency_record = None
            idempotency_finish(record, response)
        return response

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except BaseException:
            record = getattr(self, "_idempotency_record", None)
            if record is not None:
                self._idempotency_record = None
                idempotency_release(record)
            raise
