"""Dashboard pages of the payout rails: funding accounts, bank files and bank reports.

Thin views: they parse input, call one service and render. Owners manage
funding accounts; members who can upload or approve batches download bank
files and upload the bank's reports.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from merchants.audit import audit_record
from merchants.models import FundingAccount, Membership
from merchants.services import (
    FundingAccountInvalid,
    funding_account_create,
    funding_account_disable,
    funding_account_make_default,
)
from payments import selectors
from payments.models import BankFile, BankReport
from payments.services.bank_reports import BankReportRejected, bank_report_receive
from payments.services.batches.bank_files import BankFileNotReady, bank_file_path
from payments.services.batches.upload import UploadTooLarge, check_content_length
from payments.views.dashboard import merchant_required

ACCOUNT_FIELDS = ("name", "currency", "iban", "account_number", "bic", "bank_code")
MULTIPART_SLACK = 64 * 1024


def _is_owner(request: HttpRequest) -> bool:
    membership = request.membership
    return membership is not None and membership.role == Membership.Role.OWNER


def _can_handle_batches(request: HttpRequest) -> bool:
    membership = request.membership
    return membership is not None and (membership.can_create_payments or membership.can_approve)


@merchant_required
def funding_account_list(request: HttpRequest) -> HttpResponse:
    """The merchant's funding accounts; owners add one here (POST)."""
    values = {name: "" for name in ACCOUNT_FIELDS}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not _is_owner(request):
            return HttpResponseForbidden(_("Only an owner can manage funding accounts."))
        values = {name: request.POST.get(name, "").strip() for name in ACCOUNT_FIELDS}
        try:
            account = funding_account_create(
                merchant=request.merchant,
                is_default=True if request.POST.get("is_default") else None,
                **values,
            )
        except FundingAccountInvalid as exc:
            errors, status = exc.errors, 400
        else:
            audit_record(
                action="funding_account.created",
                merchant=request.merchant,
                obj=account,
                after={name: getattr(account, name) for name in (*ACCOUNT_FIELDS, "is_default")},
                request=request,
            )
            messages.success(request, _("Funding account %(id)s added.") % {"id": account.public_id})
            return redirect("dashboard:funding_account_list")
    accounts = FundingAccount.objects.filter(merchant=request.merchant).order_by(
        "currency", "-is_default", "name"
    )
    return render(
        request,
        "payouts/funding_accounts.html",
        {"accounts": accounts, "values": values, "errors": errors, "is_owner": _is_owner(request)},
        status=status,
    )


@require_POST
@merchant_required
def funding_account_action(request: HttpRequest, public_id: str, action: str) -> HttpResponse:
    """Make an account the default of its currency, or disable it (owners only)."""
    if action not in ("default", "disable"):
        raise Http404
    if not _is_owner(request):
        return HttpResponseForbidden(_("Only an owner can manage funding accounts."))
    account = get_object_or_404(FundingAccount, merchant=request.merchant, public_id=public_id)
    before = {"is_default": account.is_default, "enabled": account.enabled}
    if action == "default":
        account = funding_account_make_default(account=account)
        messages.success(
            request,
            _("%(name)s now pays by default in %(currency)s.")
            % {
                "name": account.name,
                "currency": account.currency,
            },
        )
    else:
        account = funding_account_disable(account=account)
        messages.success(request, _("%(name)s is disabled.") % {"name": account.name})
    audit_record(
        action=f"funding_account.{'made_default' if action == 'default' else 'disabled'}",
        merchant=request.merchant,
        obj=account,
        before=before,
        after={"is_default": account.is_default, "enabled": account.enabled},
        request=request,
    )
    return redirect("dashboard:funding_account_list")


@merchant_required
def batch_bank_file(request: HttpRequest, public_id: str) -> HttpResponse:
    """Download a batch's pain.001 bank file."""
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    bank_file = get_object_or_404(BankFile, batch=batch)
    try:
        path = bank_file_path(bank_file)
    except BankFileNotReady:
        messages.error(request, _("The bank file is written once every payment of the batch is submitted."))
        return redirect("dashboard:batch_detail", public_id=public_id)
    response = FileResponse(open(path, "rb"), content_type="application/xml")  # noqa: SIM115
    response["Content-Disposition"] = f'attachment; filename="{bank_file.msg_id}.xml"'
    return response


@merchant_required
def bank_report_list(request: HttpRequest) -> HttpResponse:
    """Upload a bank report (pain.002 or camt.054) and see what the recent ones did."""
    status, error, report = 200, "", None
    if request.method == "POST":
        if not _can_handle_batches(request):
            return HttpResponseForbidden(_("Your role cannot upload bank reports."))
        try:
            check_content_length(request.META, settings.PAYDESK_BATCH_MAX_BYTES, MULTIPART_SLACK)
            upload = request.FILES.get("file")
            if upload is None:
                raise BankReportRejected("file_required", _("Choose the bank's report to upload."))
            report = bank_report_receive(
                merchant=request.merchant, fileobj=upload, file_name=upload.name, user=request.user
            )
        except UploadTooLarge as exc:
            error, status = str(exc), 413
        except BankReportRejected as exc:
            error, status = exc.message, exc.status
    reports = BankReport.objects.filter(merchant=request.merchant).order_by("-created_at")[:50]
    return render(
        request,
        "payouts/bank_reports.html",
        {
            "reports": reports,
            "report": report,
            "error": error,
            "can_upload": _can_handle_batches(request),
        },
        status=status,
    )
