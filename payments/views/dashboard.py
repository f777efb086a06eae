"""The merchant dashboard: thin views that parse input, call one service, render."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from merchants.accounts.policy import step_up_redirect
from merchants.audit import audit_record
from merchants.crypto import masked
from merchants.middleware import SESSION_KEY
from merchants.models import Membership
from payments import selectors
from payments.failure_help import failure_help
from payments.formats.writers import iter_csv
from payments.forms import RefundForm
from payments.masking import mask_account
from payments.representations import amount_text, beneficiary_full, payment_data
from payments.services.lifecycle.guards import MerchantSuspended
from payments.services.payments import (
    PaymentStateError,
    payment_retry,
)
from payments.timeline import actor_names, event_sentence
from payments.validation import PaymentInvalid
from payments.views.pagination import WindowPaginator
from payments.views.payment_filters import PaymentFilterForm


def merchant_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.merchant is None:
            return render(request, "payments/no_merchant.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def can_operate(request: HttpRequest) -> bool:
    return request.membership is not None and request.membership.can_create_payments


@merchant_required
def payment_list(request: HttpRequest) -> HttpResponse:
    form = PaymentFilterForm(request.GET or None)
    filters = form.filters() if request.GET else {"hide_unapproved_batches": True}
    qs = selectors.payment_list(merchant=request.merchant, filters=filters)
    page = WindowPaginator(qs, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "payments/payment_list.html",
        {
            "page": page,
            "form": form,
            "query": query.urlencode(),
            "unapproved_states": selectors.UNAPPROVED_BATCH_STATES,
            "filtered": any(v for k, v in request.GET.items() if k != "page"),
        },
    )


EXPORT_COLUMNS = (
    "id",
    "created_at",
    "reference",
    "amount",
    "currency",
    "method",
    "status",
    "beneficiary_name",
    "beneficiary_account",
    "batch",
    "failure_code",
)


@merchant_required
def payment_export_csv(request: HttpRequest) -> HttpResponse:
    """The filtered list as CSV, streamed row by row (formula-safe; 10^6 rows never sit in memory)."""
    form = PaymentFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        # Never export more than the user asked for because one filter did not parse.
        return HttpResponseBadRequest(_("Check the filters: %(errors)s") % {"errors": form.errors.as_text()})
    filters = form.filters() if request.GET else {"hide_unapproved_batches": True}
    qs = selectors.payment_list(merchant=request.merchant, filters=filters)
    # Full account numbers are a reveal (docs/privacy.md): only for the roles that may reveal, after a
    # fresh second factor, and audited with the filters used; everyone else gets the last four, which
    # are stored, so nothing is decrypted for them.
    full = _can_reveal(request)
    if full:
        refused = step_up_redirect(request)
        if refused is not None:
            return refused
        audit_record(
            action="payment.export_revealed",
            merchant=request.merchant,
            # The filters as asked, an exact-account search shown by its last four like any account.
            after={
                "filters": {
                    k: [mask_account(x) for x in v] if k == "account" else v for k, v in request.GET.lists()
                }
            },
            request=request,
        )
    rows = qs.values_list(
        "public_id",
        "created_at",
        "reference",
        "amount_minor",
        "currency",
        "method",
        "status",
        "beneficiary_name",
        "beneficiary_account" if full else "beneficiary_account_last4",
        "batch__public_id",
        "failure_code",
    ).iterator(chunk_size=2000)

    def items():
        for pid, created, ref, minor, cur, method, status, name, account, batch, code in rows:
            yield (
                pid,
                created,
                ref,
                amount_text(minor, cur),
                cur,
                method,
                status,
                name,
                account if full else masked(account),
                batch or "",
                code,
            )

    response = StreamingHttpResponse(
        iter_csv(
            (dict(zip(EXPORT_COLUMNS, item, strict=True)) for item in items()), EXPORT_COLUMNS, bom=True
        ),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="payments.csv"'
    return response


@merchant_required
def payment_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    payment = selectors.payment_get(merchant=request.merchant, public_id=public_id)
    context = _detail_context(request, payment)
    if request.headers.get("X-Partial") == "timeline":
        return render(request, "payments/_payment_live.html", context)
    return render(request, "payments/payment_detail.html", context)


def _detail_context(request: HttpRequest, payment) -> dict:
    events = list(selectors.payment_events(payment=payment))
    names = actor_names(events)
    return {
        "payment": payment,
        "events": events,
        "timeline": [(event, event_sentence(event, names[event.actor])) for event in events],
        "failure": failure_help(payment.failure_code, payment.failure_retryable)
        if payment.failure_code
        else None,
        "refunds": selectors.refund_list(payment=payment),
        "refund_form": RefundForm(),
        "can_operate": can_operate(request),
        "can_reveal": _can_reveal(request),
    }


def _can_reveal(request: HttpRequest) -> bool:
    return request.membership is not None and request.membership.can_reveal_beneficiary_data


@require_POST
@merchant_required
def payment_reveal(request: HttpRequest, public_id: str) -> HttpResponse:
    """Show one payment's full beneficiary data to a role that may see it; every reveal is audited."""
    payment = selectors.payment_get(merchant=request.merchant, public_id=public_id)
    if not _can_reveal(request):
        return HttpResponseForbidden(_("Your role cannot reveal account numbers."))
    # A fresh second factor first (merchants.accounts.policy, as step_up_required does), asked after
    # the role so that a role that may never reveal gets its 403 rather than a code prompt.
    refused = step_up_redirect(request)
    if refused is not None:
        return refused
    audit_record(
        action="payment.beneficiary_revealed",
        merchant=request.merchant,
        obj=payment,
        after={"fields": ["beneficiary_account", "beneficiary_email", "beneficiary_phone"]},
        request=request,
    )
    context = {
        **_detail_context(request, payment),
        "can_reveal": True,
        "revealed": beneficiary_full(payment),
    }
    response = render(request, "payments/payment_detail.html", context)
    response["Cache-Control"] = "no-store"
    return response


@merchant_required
def payment_status(request: HttpRequest, public_id: str) -> JsonResponse:
    payment = selectors.payment_get(merchant=request.merchant, public_id=public_id)
    return JsonResponse({**payment_data(payment), "is_final": payment.is_final})


def _action(request: HttpRequest, public_id: str, run) -> HttpResponse:
    payment = selectors.payment_get(merchant=request.merchant, public_id=public_id)
    if not can_operate(request):
        return HttpResponseForbidden(_("Your role cannot change payments."))
    try:
        message = run(payment)
    except (PaymentStateError, MerchantSuspended) as exc:
        messages.error(request, str(exc))
    except PaymentInvalid as exc:
        for error in exc.errors:
            messages.error(request, error.message)
    else:
        messages.success(request, message)
    return redirect("dashboard:payment_detail", public_id=public_id)


@require_POST
@merchant_required
def payment_retry_view(request: HttpRequest, public_id: str) -> HttpResponse:
    def run(payment):
        payment_retry(payment=payment, user=request.user)
        return _("Payment sent again.")

    return _action(request, public_id, run)


@require_POST
@login_required
def switch_merchant(request: HttpRequest) -> HttpResponse:
    membership = Membership.objects.filter(
        user=request.user, merchant__slug=request.POST.get("merchant", "")
    ).first()
    if membership is not None:
        request.session[SESSION_KEY] = membership.merchant_id
    return redirect(reverse("dashboard:home"))
