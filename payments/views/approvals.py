"""The approvals inbox: batches awaiting the member's decision, held payments, asking approvers."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from merchants.models import Membership
from payments import selectors
from payments.models import PaymentStatus
from payments.representations import totals_data
from payments.services.batches.approvals import (
    ApprovalRequestInvalid,
    batch_approval_request,
    batches_awaiting,
)
from payments.views.dashboard import merchant_required

HELD_SHOWN = 50


@merchant_required
def approvals_inbox(request: HttpRequest) -> HttpResponse:
    batches = batches_awaiting(merchant=request.merchant, user=request.user)
    for batch in batches:
        batch.totals_display = totals_data(batch.totals)
    held = selectors.payment_list(merchant=request.merchant, filters={"status": PaymentStatus.ON_HOLD})
    held_count = selectors.count_at_most(held, 1000)
    return render(
        request,
        "approvals/inbox.html",
        {"batches": batches, "held": list(held[:HELD_SHOWN]), "held_count": held_count},
    )


@require_POST
@merchant_required
def batch_request_approval(request: HttpRequest, public_id: str) -> HttpResponse:
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    # Members are named by their login, never by a primary key.
    ids = Membership.objects.filter(
        merchant=request.merchant, user__username__in=request.POST.getlist("approver")
    ).values_list("user_id", flat=True)
    try:
        sent = batch_approval_request(batch=batch, user=request.user, approver_ids=list(ids))
    except ApprovalRequestInvalid as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Approval requested from %(n)s member(s).") % {"n": len(sent)})
    return redirect("dashboard:batch_detail", public_id=public_id)
