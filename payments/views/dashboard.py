"""The merchant dashboard: thin views that parse input, call one service, render."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from merchants.audit import audit_record
from merchants.middleware import SESSION_KEY
from merchants.models import Membership
from payments import selectors
from payments.forms import PaymentForm, RefundForm
from payments.models import PaymentStatus
from payments.representations import beneficiary_full, payment_data
from payments.services.lifecycle.guards import MerchantSuspended
from payments.services.payments import (
    PaymentStateError,
    payment_cancel,
    payment_create,
    payment_retry,
)
from payments.services.refunds import refund_create
from payments.validation import PaymentInvalid
from payments.views.pagination import WindowPaginator


def merchant_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.merchant is None:
            return render(request, "payments/no_merchant.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _can_operate(request: HttpRequest) -> bool:
    return request.membership is not None and request.membership.can_create_payments


@merchant_required
def payment_list(request: HttpRequest) -> HttpResponse:
    names = ("status", "method", "currency", "reference", "account")
    filters = {k: request.GET.get(k, "").strip() for k in names}
    qs = selectors.payment_list(merchant=request.merchant, filters=filters)
    page = WindowPaginator(qs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "payments/payment_list.html",
        {"page": page, "filters": filters, "statuses": PaymentStatus.choices},
    )


@merchant_required
def payment_new(request: HttpRequest) -> HttpResponse:
    if not _can_operate(request):
        return HttpResponseForbidden(_("Your role cannot create payments."))
    form = PaymentForm(request.POST or None, merchant=request.merchant)
    if request.method == "POST" and form.is_valid():
        try:
            payment = payment_create(merchant=request.merchant, data=form.cleaned_data, user=request.user)
        except PaymentInvalid as exc:
            for error in exc.errors:
                form.add_error(error.field if error.field in form.fields else None, error.message)
        except MerchantSuspended as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Payment %(id)s created.") % {"id": payment.public_id})
            return redirect("dashboard:payment_detail", public_id=payment.public_id)
    return render(request, "payments/payment_form.html", {"form": form})


@merchant_required
def payment_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    payment = selectors.payment_get(merchant=request.merchant, public_id=public_id)
    context = {
        "payment": payment,
        "events": selectors.payment_events(payment=payment),
        "refunds": selectors.refund_list(payment=payment),
        "refund_form": RefundForm(),
        "can_operate": _can_operate(request),
        "can_reveal": _can_reveal(request),
    }
    if request.headers.get("X-Partial") == "timeline":
        return render(request, "payments/_payment_live.html", context)
    return render(request, "payments/payment_detail.html", context)


def _can_reveal(request: HttpRequest) -> bool:
    return request.membership is not None and request.membership.can_reveal_beneficiary_data


@merchant_required
@require_POST
def payment_reveal(request: HttpRequest, public_id: str) -> HttpResponse:
    """Show one payment's full beneficiary data to a role that may see it; every reveal is audited."""
    payment = selectors.payment_get(merchant=request.merchant, public_id=public_id)
    if not _can_reveal(request):
        return HttpResponseForbidden(_("Your role cannot reveal account numbers."))
    audit_record(
        action="payment.beneficiary_revealed",
        merchant=request.merchant,
        obj=payment,
        after={"fields": ["beneficiary_account", "beneficiary_email", "beneficiary_phone"]},
        request=request,
    )
    context = {
        "payment": payment,
        "events": selectors.payment_events(payment=payment),
        "refunds": selectors.refund_list(payment=payment),
        "refund_form": RefundForm(),
        "can_operate": _can_operate(request),
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
    if not _can_operate(request):
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
def payment_cancel_view(request: HttpRequest, public_id: str) -> HttpResponse:
    def run(payment):
        payment_cancel(payment=payment, user=request.user)
        return _("Payment cancelled.")

    return _action(request, public_id, run)


@require_POST
@merchant_required
def payment_retry_view(request: HttpRequest, public_id: str) -> HttpResponse:
    def run(payment):
        payment_retry(payment=payment, user=request.user)
        return _("Payment sent again.")

    return _action(request, public_id, run)


@require_POST
@merchant_required
def payment_refund_view(request: HttpRequest, public_id: str) -> HttpResponse:
    form = RefundForm(request.POST)

    def run(payment):
        if not form.is_valid():
            raise PaymentInvalid([])
        refund = refund_create(
            payment=payment,
            amount=form.cleaned_data["amount"] or None,
            reason=form.cleaned_data["reason"],
            user=request.user,
        )
        return _("Refund %(id)s requested.") % {"id": refund.public_id}

    return _action(request, public_id, run)


@require_POST
@login_required
def switch_merchant(request: HttpRequest) -> HttpResponse:
    membership = Membership.objects.filter(
        user=request.user, merchant__slug=request.POST.get("merchant", "")
    ).first()
    if membership is not None:
        request.session[SESSION_KEY] = membership.merchant_id
    return redirect(reverse("dashboard:payment_list"))
