"""The sandbox gateway's own 3-D Secure page: the customer approves or declines (demos and tests)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from payments.gateways.sandbox import customer_authenticate


@require_http_methods(["GET", "POST"])
def sandbox_authenticate(request: HttpRequest, reference: str) -> HttpResponse:
    decided = None
    if request.method == "POST":
        decision = request.POST.get("decision")
        if decision in ("approve", "decline"):
            done = customer_authenticate(reference, approve=decision == "approve")
            decided = decision if done else "nothing"
    return render(request, "payments/sandbox_authenticate.html", {"reference": reference, "decided": decided})
