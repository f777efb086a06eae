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
  while it runs. A view whose use case takes the claim itself
  (`idempotency_in_service`: POST /payments) only checks the key here and
  hands the claim to the use case, which inserts it in the transaction that
  creates the payment and stores the answer in the one that records the
  gateway's answer (payments/services/idempotency.py).
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

Usage: `class BatchApproveView(IdempotencyMixin, APIView): ...`; the storage lives in
payments/services/idempotency.py.
"""

from __future__ import annotations

import hashlib
import json
import logging

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse, QueryDict
from django.utils.translation import gettext as _
from rest_framework.response import Response

from merchants.models import ApiKey
from payments.api.problems import BadRequest, Conflict, Unprocessable
from payments.services.idempotency import (
    KEY_TTL,
    REPLAYED_HEADER,
    IdempotencyClaim,
    IdempotentReplay,
    KeyInProgress,
    KeyReused,
    KeyTaken,
    idempotency_check,
    idempotency_claim,
)

logger = logging.getLogger(__name__)

__all__ = ["HEADER", "KEY_SCHEMA", "KEY_TTL", "REPLAYED_HEADER", "IdempotencyMixin", "shown_once"]

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_LENGTH,
    "pattern": r"^[!-~]([ -~]*[!-~])?$",
}


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


def _in_progress() -> Conflict:
    return Conflict(
        _("A request with this Idempotency-Key is still being processed; retry later."),
        code="idempotency_request_in_progress",
    )


def _reused() -> Unprocessable:
    return Unprocessable(
        _(
            "This Idempotency-Key was already used for a different request "
            "(another body, method or path). Use a new key for a new request."
        ),
        code="idempotency_key_reused",
    )


def shown_once(response: Response, replay_data: dict) -> Response:
    """Mark an answer whose body is shown only now: store, and replay, `replay_data` instead."""
    response.replay_data = replay_data
    return response


class IdempotencyMixin:
    """Give a DRF APIView the Idempotency-Key contract above on its unsafe methods.

    Put it before APIView in the bases. The key is claimed after
    authentication, permissions and throttling, so only requests that reach
    the handler are recorded. With `idempotency_in_service` naming a method,
    its handler passes `self.idempotency_claim(respond)` to a use case that
    inserts the claim in its own transaction and stores the answer itself.
    """

    idempotent_methods = UNSAFE_METHODS
    idempotency_in_service: frozenset[str] = frozenset()

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self._idempotency = None
        value = request.headers.get(HEADER)
        if value is None or request.method not in self.idempotent_methods:
            return
        if not hasattr(self, request.method.lower()):
            return  # answered 405 by dispatch
        if not isinstance(request.auth, ApiKey):
            return
        claim = IdempotencyClaim(
            merchant_id=request.auth.merchant_id,
            api_key_id=request.auth.pk,
            key=clean_key(value),
            fingerprint=request_fingerprint(request),
            method=request.method,
            path=request.get_full_path(),
        )
        try:
            if request.method in self.idempotency_in_service:
                idempotency_check(claim)
            else:
                idempotency_claim(claim)
        except KeyInProgress:
            raise _in_progress() from None
        except KeyReused:
            raise _reused() from None
        self._idempotency = claim

    def idempotency_claim(self, respond) -> IdempotencyClaim | None:
        """The request's claim for its use case, answering with `respond(result)` (a DRF Response)."""
        claim = getattr(self, "_idempotency", None)
        if claim is not None:
            claim.respond = lambda result: self._rendered(respond(result))
        return claim

    def _rendered(self, response: Response) -> HttpResponse:
        response = super().finalize_response(self.request, response)
        response.render()
        return response

    def _answer_for_taken(self, claim: IdempotencyClaim) -> HttpResponse:
        """What to answer when another request holds the key: its replay, 409 or 422."""
        try:
            idempotency_check(claim)
        except IdempotentReplay as replay:
            return replay.response
        except KeyReused:
            return super().handle_exception(_reused())
        except KeyInProgress:
            pass
        # In progress, or released again (the other request failed): retry later either way.
        return super().handle_exception(_in_progress())

    def handle_exception(self, exc):
        if isinstance(exc, IdempotentReplay):
            return exc.response
        if isinstance(exc, KeyTaken):
            claim, self._idempotency = self._idempotency, None
            return self._answer_for_taken(claim)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        claim = getattr(self, "_idempotency", None)
        if claim is not None:
            self._idempotency = None
            if not claim.stored:
                try:
                    claim.store(response)
                except KeyTaken:
                    response = super().finalize_response(request, self._answer_for_taken(claim))
        return response

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except BaseException:
            claim = getattr(self, "_idempotency", None)
            if claim is not None:
                self._idempotency = None
                claim.release()
            raise
