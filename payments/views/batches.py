"""Dashboard pages of batches: upload, validation result, approval, live progress, results.

Thin views: they parse input, call one service (payments.services.batches.lifecycle)
or a selector, and render. The service enforces roles and four-eyes; the
pages only hide the buttons a user could not use.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from merchants.models import FundingAccount, Membership
from payments import selectors
from payments.formats.batch_template import TEMPLATE_LANGUAGES, template_csv, template_xlsx
from payments.models import BankFile, BatchStatus, PaymentStatus
from payments.representations import batch_data
from payments.services.batches import reports as batch_reports
from payments.services.batches.approvals import batch_approvers
from payments.services.batches.bad_rows import BadRowsUnavailable, batch_bad_rows_available, iter_bad_rows_csv
from payments.services.batches.lifecycle import (
    BATCH_ENCODINGS,
    BatchError,
    batch_cancel,
    batch_options_clean,
    batch_over_threshold,
    batch_upload,
    batch_uploader_id,
)
from payments.services.batches.retry import batch_live_retry, batch_retry_offered
from payments.services.batches.upload import (
    MULTIPART_SLACK,
    BatchUploadHandler,
    StoredUpload,
    UploadTooLarge,
    check_content_length,
)
from payments.views.dashboard import merchant_required
from payments.views.pagination import WindowPaginator

FIRST_ERRORS = 20
PAGE_SIZE = 50


def _membership(request: HttpRequest) -> Membership | None:
    return request.membership


@merchant_required
def batch_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "").strip()
    qs = selectors.batch_list(merchant=request.merchant).select_related("uploaded_by", "uploaded_by_key")
    if status:
        qs = qs.filter(status=status)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "batches/batch_list.html",
        {"page": page, "status": status, "statuses": BatchStatus.choices},
    )


ENCODING_LABELS = {
    "utf-8": gettext_lazy("UTF-8"),
    "gb18030": gettext_lazy("GB18030 (Simplified Chinese, GBK)"),
    "utf-16": gettext_lazy("UTF-16 (Excel's Unicode text)"),
    "cp1252": gettext_lazy("Windows-1252 (Western European)"),
    "latin-1": gettext_lazy("Latin-1 (ISO 8859-1)"),
}


def _upload_page(request: HttpRequest, *, error: str = "", duplicate=None, status: int = 200) -> HttpResponse:
    return render(
        request,
        "batches/batch_upload.html",
        {
            "error": error,
            "duplicate": duplicate,
            "max_mb": settings.PAYDESK_BATCH_MAX_BYTES // (1024 * 1024),
            "max_rows": settings.PAYDESK_BATCH_MAX_ROWS,
            "funding_accounts": FundingAccount.objects.filter(merchant=request.merchant, enabled=True),
            "encodings": [(value, ENCODING_LABELS[value]) for value in BATCH_ENCODINGS],
        },
        status=status,
    )


@csrf_exempt
@merchant_required
def batch_new(request: HttpRequest) -> HttpResponse:
    """Upload page. CSRF is checked after our upload handler is installed (Django's documented way)."""
    membership = _membership(request)
    if membership is None or not membership.can_create_payments:
        return HttpResponseForbidden(_("Your role cannot upload batches."))
    if request.method == "POST":
        try:
            check_content_length(request.META, settings.PAYDESK_BATCH_MAX_BYTES, MULTIPART_SLACK)
        except UploadTooLarge as exc:
            return _upload_page(request, error=str(exc), status=413)
        request.upload_handlers = [BatchUploadHandler(request)]
    return _batch_new(request)


@csrf_protect
def _batch_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _upload_page(request)
    try:
        upload = request.FILES.get("file")
    except UploadTooLarge as exc:
        return _upload_page(request, error=str(exc), status=413)
    if not isinstance(upload, StoredUpload):
        return _upload_page(request, error=_("Choose a file to upload."), status=400)
    name = request.POST.get("name", "").strip()[:200]
    try:
        account, day = batch_options_clean(
            merchant=request.merchant,
            funding_account=request.POST.get("funding_account", ""),
            execution_date=request.POST.get("execution_date", "").strip(),
        )
        batch = batch_upload(
            merchant=request.merchant,
            upload=upload,
            user=request.user,
            name=name,
            funding_account=account,
            execution_date=day,
            encoding=request.POST.get("encoding", ""),
        )
    except BatchError as exc:
        return _upload_page(
            request, error=exc.message, duplicate=exc.extra.get("duplicate_of"), status=exc.status
        )
    finally:
        upload.discard()
    messages.success(request, _("Batch %(id)s uploaded: validating now.") % {"id": batch.public_id})
    return redirect("dashboard:batch_detail", public_id=batch.public_id)


def approval_hint(request: HttpRequest, batch) -> str:
    """Why this user may not approve (shown instead of the button), or "" if they may."""
    membership = _membership(request)
    if membership is None or not membership.can_approve:
        return _("Only an owner or an approver can approve.")
    if batch.merchant.four_eyes and batch_uploader_id(batch) == request.user.pk:
        return _("Four-eyes approval: you uploaded this batch, so someone else must approve it.")
    if batch_over_threshold(batch, batch.merchant) and membership.role != Membership.Role.APPROVER:
        return _(
            "This batch is above the approval threshold: a member with the approver role must approve it."
        )
    return ""


@merchant_required
def batch_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    membership = _membership(request)
    errors = list(batch.row_errors.order_by("line", "pk")[:FIRST_ERRORS])
    context = {
        "batch": batch,
        "bank_file": BankFile.objects.filter(batch=batch).first(),
        "data": batch_data(batch),
        "progress": batch_reports.batch_progress(batch),
        "errors": errors,
        "approval_hint": approval_hint(request, batch) if batch.status == BatchStatus.VALIDATED else "",
        "can_cancel": membership is not None and (membership.can_create_payments or membership.can_approve),
        "cancellable": batch.status in (BatchStatus.UPLOADED, BatchStatus.VALIDATED, BatchStatus.APPROVED)
        or (batch.status == BatchStatus.PROCESSING and batch.cancel_requested_at is None),
        "live": batch.status
        in (BatchStatus.UPLOADED, BatchStatus.VALIDATING, BatchStatus.APPROVED, BatchStatus.PROCESSING),
        # The live progress badges name payment statuses in the page's language.
        "status_labels": {status.value: str(status.label) for status in PaymentStatus},
    }
    # "Retry failed" and "Download the bad rows" (docs/batches.md), and the links between a batch
    # and its retry.
    context["retry"] = batch_live_retry(batch)
    context["retry_offered"] = (
        membership is not None and membership.can_create_payments and batch_retry_offered(batch)
    )
    context["bad_rows"] = batch_bad_rows_available(batch)
    progress = context["progress"]
    context["failed_count"] = progress["by_status"].get(PaymentStatus.FAILED, 0)
    context["bar"] = _bar_segments(progress)
    if batch.status == BatchStatus.VALIDATED and context["approval_hint"]:
        context["approvers"] = [m for m in batch_approvers(batch) if m.user_id != request.user.pk]
    return render(request, "batches/batch_detail.html", context)


def _bar_segments(progress: dict) -> list[tuple[str, float, int]]:
    """The progress bar as coloured parts: succeeded, failed, other final, still open (percent, count)."""
    total = progress["total"] or 1
    by = progress["by_status"]
    succeeded = by.get(PaymentStatus.SUCCEEDED, 0) + by.get(PaymentStatus.PARTIALLY_REFUNDED, 0)
    failed = by.get(PaymentStatus.FAILED, 0)
    other = progress["final"] - succeeded - failed
    return [
        (name, round(100 * n / total, 1), n)
        for name, n in (("succeeded", succeeded), ("failed", failed), ("cancelled", other))
        if n
    ]


@merchant_required
def batch_progress(request: HttpRequest, public_id: str) -> JsonResponse:
    """The small JSON the progress bar polls."""
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    return JsonResponse(batch_reports.batch_progress(batch))


@require_POST
@merchant_required
def batch_cancel_view(request: HttpRequest, public_id: str) -> HttpResponse:
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    try:
        batch = batch_cancel(batch=batch, user=request.user)
    except BatchError as exc:
        messages.error(request, exc.message)
    else:
        if batch.status == BatchStatus.PROCESSING:
            messages.success(request, _("Cancelling: payments not yet sent are being cancelled."))
        else:
            messages.success(request, _("Batch cancelled."))
    return redirect("dashboard:batch_detail", public_id=public_id)


@merchant_required
def batch_payments(request: HttpRequest, public_id: str) -> HttpResponse:
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    filters = {k: request.GET.get(k, "").strip() for k in ("status", "reference", "currency")}
    # By the batch's id, not its public id through a join, so the planner sees which batch it is.
    qs = selectors.payment_list(merchant=request.merchant, filters=filters).filter(batch_id=batch.pk)
    page = WindowPaginator(qs.order_by("pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "batches/batch_payments.html",
        {"batch": batch, "page": page, "filters": filters, "statuses": PaymentStatus.choices},
    )


def _download(chunks, content_type: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@merchant_required
def batch_errors_csv(request: HttpRequest, public_id: str) -> StreamingHttpResponse:
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    return _download(
        batch_reports.iter_errors_csv(batch, labelled=True),
        "text/csv; charset=utf-8",
        f"{batch.public_id}-errors.csv",
    )


@merchant_required
def batch_bad_rows_csv(request: HttpRequest, public_id: str) -> HttpResponse:
    """The rejected rows as uploaded, in the upload's columns: fix them and upload the file again."""
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    try:
        chunks = iter_bad_rows_csv(batch)
    except BadRowsUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("dashboard:batch_detail", public_id=public_id)
    return _download(chunks, "text/csv; charset=utf-8", f"{batch.public_id}-bad-rows.csv")


@merchant_required
def batch_results_csv(request: HttpRequest, public_id: str) -> StreamingHttpResponse:
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    return _download(
        batch_reports.iter_results_csv(batch, labelled=True),
        "text/csv; charset=utf-8",
        f"{batch.public_id}-results.csv",
    )


@merchant_required
def batch_pain002(request: HttpRequest, public_id: str) -> StreamingHttpResponse:
    batch = selectors.batch_get(merchant=request.merchant, public_id=public_id)
    return _download(
        batch_reports.iter_pain002_report(batch), "application/xml", f"{batch.public_id}-pain.002.xml"
    )


@merchant_required
def batch_template(request: HttpRequest, language: str, fmt: str) -> HttpResponse:
    """A batch-file template (CSV or XLSX) with English or Chinese column names."""
    if language not in TEMPLATE_LANGUAGES or fmt not in ("csv", "xlsx"):
        raise Http404
    if fmt == "csv":
        body, content_type = template_csv(language), "text/csv; charset=utf-8"
    else:
        body = template_xlsx(language)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="paydesk-batch-template-{language}.{fmt}"'
    return response
