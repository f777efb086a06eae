"""The merchant's blocklist in the dashboard: list, add one entry, upload a CSV (owners and approvers)."""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from payments.models import BlockedEntry
from payments.services.controls import block_add
from payments.views.dashboard import merchant_required

MAX_CSV_BYTES = 1 << 20


def _may_edit(request: HttpRequest) -> bool:
    return request.membership is not None and request.membership.can_reveal_beneficiary_data


@merchant_required
def blocklist(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if not _may_edit(request):
            return HttpResponseForbidden(_("Your role cannot change the blocklist."))
        upload = request.FILES.get("file")
        if upload is not None:
            added, problems = _from_csv(request, upload)
            messages.success(request, _("%(n)d entries added from the file.") % {"n": added})
            for problem in problems[:20]:
                messages.warning(request, problem)
        else:
            kind, value = request.POST.get("kind", ""), request.POST.get("value", "").strip()
            if kind not in BlockedEntry.Kind.values or not value:
                messages.error(request, _("Choose a kind and give a value."))
            else:
                block_add(
                    merchant=request.merchant,
                    kind=kind,
                    value=value,
                    note=request.POST.get("note", ""),
                    user=request.user,
                    request=request,
                )
                messages.success(request, _("Added to the blocklist."))
        return redirect("dashboard:blocklist")
    entries = BlockedEntry.objects.filter(merchant=request.merchant).order_by("-created_at")[:500]
    return render(
        request,
        "payments/blocklist.html",
        {"entries": entries, "kinds": BlockedEntry.Kind.choices, "may_edit": _may_edit(request)},
    )


def _from_csv(request: HttpRequest, upload) -> tuple[int, list[str]]:
    """Add the rows of a CSV `kind,value,note`; return how many and the problems by line."""
    if upload.size > MAX_CSV_BYTES:
        return 0, [_("The file is larger than 1 MB.")]
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return 0, [_("The file is not UTF-8.")]
    reader = csv.DictReader(io.StringIO(text))
    if not {"kind", "value"} <= set(reader.fieldnames or []):
        return 0, [_("The header must be kind,value (and optionally note).")]
    added, problems = 0, []
    for line, row in enumerate(reader, start=2):
        kind, value = (row.get("kind") or "").strip().lower(), (row.get("value") or "").strip()
        if kind not in BlockedEntry.Kind.values or not value:
            problems.append(_("Line %(line)d: unknown kind or empty value.") % {"line": line})
            continue
        block_add(
            merchant=request.merchant,
            kind=kind,
            value=value,
            note=row.get("note") or "",
            user=request.user,
            request=request,
        )
        added += 1
    return added, problems
