"""Confirm before money moves: a review page, then one click that acts once.

Each money-moving form (new payment, refund, cancel, batch approval) shows
what will happen first; the confirmation carries a one-time token
(payments/services/form_submissions.py), so a double click, or a second tab,
has one effect and lands on the same page as the first.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from merchants.accounts.policy import step_up_required
from payments import selectors
from payments.forms import PaymentForm, RefundForm
from payments.models import BatchStatus, Method, PaymentStatus
from payments.representations import amount_text, totals_data
from payments.services.batches.lifecycle import BatchError, batch_approve
from payments.services.batches.retry import batch_retry_create, batch_retry_offered, batch_retry_summary
from payments.services.form_submissions import (
    SubmissionSeen,
    form_submission_claim,
    form_submission_done,
    form_submission_release,
    form_token_new,
)
from payments.services.lifecycle.guards import MerchantSuspended, ensure_may_move_money
from payments.services.payment_input import payment_input_validate
from payments.services.payments import PaymentStateError, payment_cancel, payment_create
from payments.services.refunds import refund_create
from payments.validation import PaymentInvalid, amount_parse
from payments.views.batches import approval_hint
from payments.views.dashboard import can_operate, merchant_required

CANCELLABLE = (PaymentStatus.CREATED, PaymentStatus.ON_HOLD, PaymentStatus.REQUIRES_ACTION)


def _claim(request: HttpRequest):
    """Claim the posted token: the claim, or a response (a repeated click, or no token at all)."""
    try:
        return form_submission_claim(
            merchant=request.merchant, token=request.POST.get("confirm_token", ""), path=request.path
        ), None
    except SubmissionSeen as seen:
        messages.info(request, _("This was already submitted: it was done once."))
        return None, redirect(seen.location or request.path)
    except ValueError:
        return None, HttpResponseBadRequest(_("This form has expired: open it again."))


# New payment ----------------------------------------------------------------------------------


@merchant_required
def payment_new(request: HttpRequest) -> HttpResponse:
    """Form, then a review page (amount, currency, beneficiary, method), then create and send."""
    if not can_operate(request):
        return HttpResponseForbidden(_("Your role cannot create payments."))
    editing = request.method == "POST" and "edit" in request.POST
    form = PaymentForm(request.POST if request.method == "POST" else None, merchant=request.merchant)
    if request.method != "POST" or editing or not form.is_valid():
        return render(request, "payments/payment_form.html", {"form": form})
    try:
        ensure_may_move_money(request.merchant)
        clean = payment_input_validate(merchant=request.merchant, data=form.cleaned_data)
    except PaymentInvalid as exc:
        _form_errors(form, exc)
        return render(request, "payments/payment_form.html", {"form": form})
    except MerchantSuspended as exc:
        form.add_error(None, str(exc))
        return render(request, "payments/payment_form.html", {"form": form})
    if request.POST.get("confirm") != "1":
        context = {
            "form": form,
            "amount": amount_text(clean["amount_minor"], clean["currency"]),
            "clean": clean,
            "method_label": dict(Method.choices).get(clean["method"], clean["method"]),
            "confirm_token": form_token_new(),
        }
        return render(request, "payments/payment_review.html", context)
    claim, response = _claim(request)
    if response is not None:
        return response
    try:
        payment = payment_create(merchant=request.merchant, data=form.cleaned_data, user=request.user)
    except (PaymentInvalid, MerchantSuspended) as exc:
        form_submission_release(claim=claim)
        if isinstance(exc, PaymentInvalid):
            _form_errors(form, exc)
        else:
            form.add_error(None, str(exc))
        return render(request, "payments/payment_form.html", {"form": form})
    location = reverse("dashboard:payment_detail", args=[payment.public_id])
    form_submission_done(claim=claim, location=location)
    messages.success(request, _("Payment %(id)s created.") % {"id": payment.public_id})
    return redirect(location)


def _form_errors(form: PaymentForm, exc: PaymentInvalid) -> None:
    """The specification's errors on their fields, with their codes (payments/validation.py)."""
    for error in exc.errors:
        field = error.field if error.field in form.fields else None
        form.add_error(field, ValidationError(error.message, code=error.code))


# Refund ---------------------------------------------------------------------------------------


@merchant_required
def payment_refund_view(request: HttpRequest, public_id: str) -> HttpResponse:
    """Review (the amount, or "everything still refundable", and what remains after), then refund."""
    payment = selectors.payment_get(merchant=request.merchant, public_id=public_id)
    if not can_operate(request):
        return HttpResponseForbidden(_("Your role cannot change payments."))
    if request.method != "POST":
        return redirect("dashboard:payment_detail", public_id=public_id)
    form = RefundForm(request.POST)
    detail = reverse("dashboard:payment_detail", args=[public_id])
    if not form.is_valid():
        messages.error(request, _("Check the refund amount."))
        return redirect(detail)
    available = selectors.payment_refundable_minor(payment=payment)
    raw_amount = form.cleaned_data["amount"].strip()
    amount_minor, problem = amount_parse(raw_amount, payment.currency) if raw_amount else (available, "")
    if amount_minor is None:
        messages.error(request, problem)
        return redirect(detail)
    if request.POST.get("confirm") != "1":
        context = {
            "payment": payment,
            "full": not raw_amount,
            "amount": amount_text(max(amount_minor, 0), payment.currency),
            "raw_amount": raw_amount,
            "reason": form.cleaned_data["reason"],
            "available": amount_text(max(available, 0), payment.currency),
            "remaining": amount_text(max(available - amount_minor, 0), payment.currency),
            "too_much": amount_minor > available or amount_minor <= 0,
            "confirm_token": form_token_new(),
        }
        return render(request, "confirm/refund.html", context)
    claim, response = _claim(request)
    if response is not None:
        return response
    try:
        refund = refund_create(
            payment=payment, amount=raw_amount or None, reason=form.cleaned_data["reason"], user=request.user
        )
    except (PaymentStateError, MerchantSuspended) as exc:
        form_submission_release(claim=claim)
        messages.error(request, str(exc))
    except PaymentInvalid as exc:
        form_submission_release(claim=claim)
        for error in exc.errors:
            messages.error(request, error.message)
    else:
        form_submission_done(claim=claim, location=detail)
        messages.success(request, _("Refund %(id)s requested.") % {"id": refund.public_id})
    return redirect(detail)


# Cancel ---------------------------------------------------------------------------------------


@merchant_required
def payment_cancel_view(request: HttpRequest, public_id: str) -> HttpResponse:
    """Ask ("Cancel payment X of Y to Z?"), then cancel."""
    payment = selectors.payment_get(merchant=request.merchant, public_id=public_id)
    if not can_operate(request):
        return HttpResponseForbidden(_("Your role cannot change payments."))
    detail = reverse("dashboard:payment_detail", args=[public_id])
    if request.method != "POST":
        if payment.status not in CANCELLABLE:
            messages.error(request, _("This payment can no longer be cancelled."))
            return redirect(detail)
        return render(request, "confirm/cancel.html", {"payment": payment, "confirm_token": form_token_new()})
    claim, response = _claim(request)
    if response is not None:
        return response
    try:
        payment_cancel(payment=payment, user=request.user)
    except (PaymentStateError, MerchantSuspended) as exc:
        form_submission_release(claim=claim)
        messages.error(request, str(exc))
    else:
        form_submission_done(claim=claim, location=detail)
        messages.success(request, _("Payment cancelled."))
    return redirect(detail)


# Batch approval -------------------------------------------------------------------------------

HELD_ROWS_SHOWN = 50  # held rows listed with their reasons on the approval review


@merchant_required
@step_up_required
def batch_approve_view(request: HttpRequest, public_id: str) -> HttpResponse:
    """Show count, totals per currency, held rows and row errors; approve on the final click."""
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    detail = reverse("dashboard:batch_detail", args=[public_id])
    if request.method != "POST":
        if batch.status != BatchStatus.VALIDATED:
            messages.error(request, _("Only a validated batch can be approved."))
            return redirect(detail)
        hint = approval_hint(request, batch)
        by_status = dict(batch.payments.values_list("status").annotate(n=Count("id")).order_by())
        held = (
            batch.payments.filter(status=PaymentStatus.ON_HOLD)
            .values("currency")
            .annotate(n=Count("id"), total=Sum("amount_minor"))
        )
        context = {
            "batch": batch,
            "hint": hint,
            "totals": totals_data(batch.totals),
            # 大写金额 of the CNY total, as Chinese banks write it on a payment order (issue 12).
            "cny_total_minor": (batch.totals or {}).get("CNY", {}).get("amount_minor"),
            "to_pay": by_status.get(PaymentStatus.CREATED, 0),
            "held_count": by_status.get(PaymentStatus.ON_HOLD, 0),
            "held": [
                {
                    "currency": h["currency"],
                    "count": h["n"],
                    "amount": amount_text(h["total"], h["currency"]),
                }
                for h in held.order_by("currency")
            ],
            # Which rows are held and why (the rules' and the risk score's reasons, issue 13).
            "held_rows": [
                {
                    "reference": p["reference"],
                    "line": (p["metadata"] or {}).get("batch_line"),
                    "reasons": (p["metadata"] or {}).get("hold_reasons", []),
                }
                for p in batch.payments.filter(status=PaymentStatus.ON_HOLD)
                .order_by("id")
                .values("reference", "metadata")[:HELD_ROWS_SHOWN]
            ],
            "confirm_token": form_token_new(),
        }
        return render(request, "confirm/batch_approve.html", context)
    claim, response = _claim(request)
    if response is not None:
        return response
    try:
        batch_approve(batch=batch, user=request.user)
    except BatchError as exc:
        form_submission_release(claim=claim)
        messages.error(request, exc.message)
    else:
        form_submission_done(claim=claim, location=detail)
        batch.refresh_from_db()
        if batch.status == BatchStatus.APPROVED and batch.execution_date:
            messages.success(
                request,
                _("Batch approved: it will be paid on %(date)s.")
                % {"date": batch.execution_date.isoformat()},
            )
        else:
            messages.success(request, _("Batch approved: execution has started."))
    return redirect(detail)


# Retry failed ---------------------------------------------------------------------------------


@merchant_required
def batch_retry_view(request: HttpRequest, public_id: str) -> HttpResponse:
    """Show how many failures a retry pays again and their totals per currency; create it on the click."""
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    if not can_operate(request):
        return HttpResponseForbidden(_("Your role cannot upload batches."))
    detail = reverse("dashboard:batch_detail", args=[public_id])
    if request.method != "POST":
        if not batch_retry_offered(batch):
            messages.error(request, _("This batch has no failures that can be retried."))
            return redirect(detail)
        context = {"batch": batch, "summary": batch_retry_summary(batch), "confirm_token": form_token_new()}
        return render(request, "confirm/batch_retry.html", context)
    claim, response = _claim(request)
    if response is not None:
        return response
    try:
        retry = batch_retry_create(batch=batch, user=request.user)
    except BatchError as exc:
        form_submission_release(claim=claim)
        messages.error(request, exc.message)
        return redirect(detail)
    location = reverse("dashboard:batch_detail", args=[retry.public_id])
    form_submission_done(claim=claim, location=location)
    messages.success(
        request, _("Batch %(id)s created from the failures: validating now.") % {"id": retry.public_id}
    )
    return redirect(location)
