"""Gateway interface and registry.

A gateway talks to a payment provider and returns plain results; it never
changes a model's state (services do, through an allow-list).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from merchants.models import GatewayAccount, Merchant
    from payments.models import GatewayAttempt, Payment, Refund

logger = logging.getLogger(__name__)


class Outcome:
    """What a gateway says of an attempt: the second half of a result's `type` (`payment.succeeded`)."""

    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # An unpaid order the gateway closed (QR code expired, order voided): nobody paid.
    CLOSED = "closed"
    REVERSED = "reversed"
    # The customer approved and the gateway waits for us to ask for the money (PayPal's capture).
    APPROVED = "approved"


class Kind:
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True)
class GatewayResult:
    """What a gateway said about one attempt: its answer to a call, a callback's notice or a query's answer.

    The one outcome type of the gateway layer. An answer to a call speaks of
    the attempt it was called with; a callback or a query names its attempt in
    `attempt_key` and says whether it is about a payment or a refund in `kind`.
    """

    outcome: str
    gateway_reference: str = ""
    failure_code: str = ""
    failure_message: str = ""
    retryable: bool = False
    next_action: dict | None = None
    raw: dict = field(default_factory=dict)
    kind: str = Kind.PAYMENT
    attempt_key: str = ""

    @property
    def type(self) -> str:
        """`<kind>.<outcome>`, e.g. `refund.failed`: the vocabulary of callbacks and Events."""
        return f"{self.kind}.{self.outcome}"


def notice(
    type: str,
    attempt_key: str,
    gateway_reference: str = "",
    failure_code: str = "",
    failure_message: str = "",
    retryable: bool = False,
) -> GatewayResult:
    """Return the result a callback or a query reports for attempt `attempt_key`; `type` is `kind.outcome`."""
    kind, _, outcome = type.partition(".")
    return GatewayResult(
        outcome=outcome,
        kind=kind,
        attempt_key=attempt_key,
        gateway_reference=gateway_reference,
        failure_code=failure_code,
        failure_message=failure_message,
        retryable=retryable,
    )


class GatewayCallInTransaction(RuntimeError):
    """A gateway was about to be called while a database transaction is open."""


def require_no_transaction() -> None:
    """Refuse to call out while a transaction is open (DESIGN section 2).

    A call inside a transaction would hold its row locks for as long as the
    gateway takes to answer, and a rollback would forget an attempt the
    gateway has already executed. The transactions a test case wraps around
    each test (marked `_from_testcase` by Django) are not the caller's and are
    disregarded, as Django's own `atomic(durable=True)` check does.
    """
    blocks = transaction.get_connection().atomic_blocks
    if any(not getattr(block, "_from_testcase", False) for block in blocks):
        raise GatewayCallInTransaction("A gateway may not be called inside transaction.atomic().")


def refund_result(
    *, reference: str, status: object, succeeded: str, failed: tuple, raw: dict
) -> GatewayResult:
    """Map a provider's refund status onto a GatewayResult (`refund_<status>` on failure)."""
    if status == succeeded:
        return GatewayResult(outcome=Outcome.SUCCEEDED, gateway_reference=reference, raw=raw)
    if status in failed:
        return GatewayResult(
            outcome=Outcome.FAILED,
            gateway_reference=reference,
            failure_code=f"refund_{str(status).lower()}",
            raw=raw,
        )
    return GatewayResult(outcome=Outcome.PROCESSING, gateway_reference=reference, raw=raw)


class GatewayError(Exception):
    """The gateway could not be reached or gave no usable answer; the call may be repeated."""


class CallbackRejected(Exception):
    """A callback failed verification (forged, malformed or replayed)."""


@dataclass(frozen=True)
class VerifiedCallback:
    event_id: str
    event_type: str
    payload: dict[str, Any]
    notices: list[GatewayResult]


class Gateway:
    """Base class: one subclass per provider, registered by slug in settings.PAYDESK_GATEWAYS."""

    slug = ""
    # The result types (`payment.succeeded`, ...) this gateway's callbacks may carry; any other is
    # ignored. What each type does to a payment is the lifecycle core's one table, not the gateway's.
    CALLBACK_TYPES: frozenset[str] = frozenset()
    # True when the gateway needs the merchant's GatewayAccount (credentials) to work.
    requires_account = False
    # Currencies the provider accepts; None accepts any.
    SUPPORTED_CURRENCIES: frozenset[str] | None = None
    # Whether it can pay a beneficiary (a payout rail for batch rows, DESIGN section 6), whether
    # its real-time payments collect money from a customer (QR codes, checkout) rather than pay
    # the beneficiary, and whether it serves real-time payments at all (the bank file does not).
    payouts = False
    collects = False
    realtime = True
    # Whether its payments are paid from one of the merchant's funding accounts (the bank file).
    needs_funding_account = False
    # The GatewayAccount.gateway whose credentials it uses (its own slug unless it shares them).
    account_slug = ""
    # Whose provider hosts it calls (PAYDESK_GATEWAY_URLS), when they are another gateway's.
    url_slug = ""

    def row_problems(self, row: dict[str, Any]) -> list[tuple[str, str, str]]:
        """Return (field, code, message) for each reason this rail cannot pay a validated batch row.

        Checked at batch validation, after the rules every payment follows, so
        a row the rail would refuse is a row error before any money moves.
        """
        return []

    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        raise NotImplementedError

    def submit_refund(self, refund: Refund, attempt: GatewayAttempt) -> GatewayResult:
        raise NotImplementedError

    def submit_batch(self, items: list[tuple[Payment, GatewayAttempt]]) -> list[GatewayResult | None]:
        """Submit many payments, each with its pending attempt; return one answer per item, in order.

        The default calls `submit_payment` for each. An item whose call fails
        (GatewayError) gets None: its attempt stays pending and is asked again
        later with the same idempotency key. Gateways with a bulk API (or the
        sandbox) override this with one call for all items.
        """
        results: list[GatewayResult | None] = []
        for payment, attempt in items:
            try:
                results.append(self.submit_payment(payment, attempt))
            except GatewayError as exc:
                logger.warning("gateway call for %s failed: %s", attempt.idempotency_key, exc)
                results.append(None)
        return results

    def verify_callback(self, request: HttpRequest) -> VerifiedCallback:
        """Check signature and freshness; raise CallbackRejected, never return unverified data."""
        raise NotImplementedError

    def acknowledge(self, accepted: bool) -> HttpResponse:
        """Answer the gateway in its own format."""
        return HttpResponse("ok" if accepted else "rejected", status=200 if accepted else 400)

    def notices_from_payload(self, payload: dict[str, Any]) -> list[GatewayResult]:
        """Rebuild the outcomes of a stored, verified payload (the worker applies these).

        The default reads the sandbox's shape: `data` or `data.results`.
        """
        data = payload.get("data") or {}
        items = data.get("results") if "results" in data else [data]
        return [
            notice(
                type=str(item.get("type", payload.get("type", ""))),
                attempt_key=str(item.get("attempt_key", "")),
                gateway_reference=str(item.get("gateway_reference") or ""),
                failure_code=str(item.get("failure_code") or ""),
                failure_message=str(item.get("failure_message") or ""),
                retryable=bool(item.get("retryable", False)),
            )
            for item in items
        ]

    def query(self, attempt: GatewayAttempt) -> GatewayResult | None:
        """Ask the provider where a payment attempt stands (reconciliation).

        Return the outcome as a result naming the attempt (`notice(...)`),
        applied by the lifecycle core exactly as a callback's, or None while
        the provider has nothing final (still awaiting the customer or
        processing). Raise GatewayError if it cannot be asked.
        Only for attempts of kind PAYMENT: refund attempts go to `query_refund`.
        """
        raise NotImplementedError

    def close(self, attempt: GatewayAttempt) -> GatewayResult:
        """Close the unpaid order of a payment attempt awaiting the customer, so it can no longer be paid.

        Called before a payment in requires_action is cancelled (its QR code
        or approval link would otherwise stay payable). Return a result with
        outcome CLOSED when nothing can be paid any more, SUCCEEDED when the
        customer has already paid (the payment then follows the paid path),
        or PROCESSING when the customer is paying right now (ask again).
        Raise GatewayError if the provider cannot be asked.
        """
        raise NotImplementedError

    def query_refund(self, attempt: GatewayAttempt) -> GatewayResult | None:
        """Ask the provider where a refund attempt (kind REFUND, `refund` set) stands.

        A separate method rather than a branch in `query`: providers query
        refunds at another endpoint with other keys (Alipay's out_request_no,
        WeChat Pay's out_refund_no, PayPal's refund id), and a payment query
        may act on the way (PayPal captures an approved order), which must
        never happen for a refund. Same contract as `query`: return a
        `refund.succeeded` / `refund.failed` notice (with `failure_code`),
        applied exactly as a refund callback is, or
        None while the provider cannot tell yet; raise GatewayError if it
        cannot be asked or its answer does not match the refund.
        """
        raise NotImplementedError

    # Accounts ---------------------------------------------------------------
    # Settings ---------------------------------------------------------------
    def settings_problems(self) -> list[tuple[str, str]]:
        """Return (variable, problem) for each setting this gateway needs that is missing or unusable.

        Checked at start-up for every gateway a payment method is routed to
        (payments/checks.py), so a route to an unconfigured gateway stops the
        process instead of failing payments later. The base class checks what
        every provider adapter needs: its endpoints, its reconciliation timings
        and, with DEBUG off, a public URL the provider can send callbacks to.
        """
        if not self.requires_account:
            return []
        problems = []
        urls = settings.PAYDESK_GATEWAY_URLS.get(self.slug, {})
        for environment in ("live", "sandbox"):
            if not urls.get(environment):
                name = f"PAYDESK_{self.slug.upper()}_{environment.upper()}_URL"
                problems.append((name, "is not set"))
        timings = settings.PAYDESK_RECONCILE.get(self.slug, {})
        if not {"query_after", "action_expires"} <= set(timings):
            problems.append(("PAYDESK_RECONCILE", f"has no query_after and action_expires for {self.slug}"))
        host = urlsplit(settings.PAYDESK_PUBLIC_URL).hostname or ""
        if not settings.DEBUG and (host == "localhost" or _is_loopback(host)):
            where = f"points at this machine ({host}), where {self.slug} cannot send callbacks"
            problems.append(("PAYDESK_PUBLIC_URL", where))
        return problems

    # Accounts ---------------------------------------------------------------
    def account_for(self, merchant_id: int) -> GatewayAccount | None:
        """Return the merchant's enabled, complete account at this gateway, or None."""
        from merchants.crypto import SecretUnreadable
        from merchants.models import GatewayAccount

        try:
            account = GatewayAccount.objects.filter(
                merchant_id=merchant_id, gateway=self.account_slug or self.slug, enabled=True
            ).first()
        except SecretUnreadable as exc:
            raise GatewayError(f"{self.slug} credentials unreadable: {exc}") from None
        if account is None or account.missing_fields():
            return None
        return account

    def base_url(self, account: GatewayAccount) -> str:
        return settings.PAYDESK_GATEWAY_URLS[self.url_slug or self.slug][account.environment].rstrip("/")

    def not_configured(self) -> GatewayResult:
        """The answer for a payment whose merchant has (no longer) an account here: final, not retryable."""
        return GatewayResult(
            outcome=Outcome.FAILED,
            failure_code="gateway_not_configured",
            failure_message=f"The merchant has no enabled {self.slug} account.",
        )


@cache
def get_gateway(slug: str) -> Gateway:
    try:
        path = settings.PAYDESK_GATEWAYS[slug]
    except KeyError:
        raise LookupError(f"Unknown gateway {slug!r}") from None
    return import_string(path)()


def gateway_for_method(method: str) -> Gateway:
    """The gateway of a real-time payment by `method` (PAYDESK_GATEWAY_<METHOD>)."""
    return get_gateway(settings.PAYDESK_GATEWAY_ROUTES.get(method, "sandbox"))


def payout_gateway_for_method(method: str) -> Gateway | None:
    """The payout rail of batch rows by `method` (PAYDESK_PAYOUT_<METHOD>), or None if it has none.

    None when the route is empty, names no gateway, or names one that cannot
    pay out (a collection-only gateway such as the Alipay QR code).
    """
    slug = settings.PAYDESK_PAYOUT_ROUTES.get(method, "sandbox")
    if not slug or slug not in settings.PAYDESK_GATEWAYS:
        return None
    gateway = get_gateway(slug)
    return gateway if gateway.payouts else None


def gateway_for_payment(payment: Payment) -> Gateway:
    """Route a payment: a batch row to its method's payout rail, a real-time payment by its method.

    Raise LookupError for a batch row whose method has (no longer) a payout rail.
    """
    if payment.batch_id is None:
        return gateway_for_method(payment.method)
    gateway = payout_gateway_for_method(payment.method)
    if gateway is None:
        raise LookupError(f"No payout rail is configured for {payment.method}.")
    return gateway


def setup_problem(
    merchant: Merchant, method: str, currency: str, *, payout: bool = False
) -> tuple[str, str, str] | None:
    """Return (field, code, message) if the gateway routed for `method` cannot take this payment.

    Checked at payment creation (and for every batch row, `payout=True`, against
    the method's payout rail) so a merchant without an account at a routed
    gateway, a method without a payout rail, or a currency the provider
    refuses, gets a clear error instead of a failed payment. Account look-ups
    are memoised on the Merchant instance, so a batch of many rows costs one
    query per gateway.
    """
    if payout:
        gateway = payout_gateway_for_method(method)
        if gateway is None:
            return (
                "method",
                "no_payout_rail",
                _(
                    "PayDesk has no payout rail for %(method)s: batches cannot pay by %(method)s "
                    "until PAYDESK_PAYOUT_%(setting)s names one."
                )
                % {"method": method, "setting": method.upper()},
            )
    else:
        gateway = gateway_for_method(method)
        if not gateway.realtime:
            return (
                "method",
                "batch_only",
                _(
                    "Payments by %(method)s go through %(gateway)s, which pays whole batches only: "
                    "upload a batch."
                )
                % {"method": method, "gateway": gateway.slug},
            )
    if gateway.SUPPORTED_CURRENCIES is not None and currency and currency not in gateway.SUPPORTED_CURRENCIES:
        return (
            "currency",
            "currency_not_supported",
            _("%(gateway)s accepts only %(currencies)s.")
            % {"gateway": gateway.slug, "currencies": ", ".join(sorted(gateway.SUPPORTED_CURRENCIES))},
        )
    if not gateway.requires_account:
        return None
    memo = merchant.__dict__.setdefault("_gateway_ready", {})
    if gateway.slug not in memo:
        memo[gateway.slug] = gateway.account_for(merchant.pk) is not None
    if not memo[gateway.slug]:
        return (
            "method",
            "gateway_not_configured",
            _("Payments by %(method)s go through %(gateway)s, which is not configured for this merchant.")
            % {"method": method, "gateway": gateway.slug},
        )
    return None


def setup_checks_prepare(merchant: Merchant, *, payout: bool) -> None:
    """Read now what `setup_problem` would ask the database later: whether the merchant has an account
    at each gateway its methods are routed to. Batch ingestion calls it before its COPY stream opens,
    since no query may run on a connection that is streaming a COPY.
    """
    memo = merchant.__dict__.setdefault("_gateway_ready", {})
    for method in settings.PAYDESK_GATEWAY_ROUTES.keys() | settings.PAYDESK_PAYOUT_ROUTES.keys():
        gateway = payout_gateway_for_method(method) if payout else gateway_for_method(method)
        if gateway is not None and gateway.requires_account and gateway.slug not in memo:
            memo[gateway.slug] = gateway.account_for(merchant.pk) is not None


# HTTP and keys shared by the provider adapters -------------------------------------------


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_problem(url: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Return what is wrong with `url` as an address to send requests to, or None if it is usable."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in schemes:
        return f"must start with {' or '.join(s + '://' for s in schemes)}"
    if not parts.hostname or any(c.isspace() for c in url):
        return "must name a host and contain no spaces"
    return None


def http_call(method: str, url: str, **kwargs: Any) -> requests.Response:
    """Send one request to a provider with the configured timeouts.

    Refuses to run inside a transaction (require_no_transaction). Network
    failures and timeouts raise GatewayError (the caller's attempt
    stays pending and is repeated with the same idempotency key).
    """
    require_no_transaction()
    timeout = kwargs.pop("timeout", settings.PAYDESK_GATEWAY_TIMEOUT)
    try:
        return requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise GatewayError(f"{method} {url} failed: {exc.__class__.__name__}") from exc
