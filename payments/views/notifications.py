"""Dashboard screens for webhook endpoints, delivery logs, notification preferences and the in-app feed.

Every member may look; owners configure endpoints and preferences; owners and
operators may send a test event or redeliver. Views parse input, call one
service, render.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from merchants.models import Membership, NotificationPreference, WebhookEndpoint
from payments import notification_selectors as selectors
from payments.channels import get_transport
from payments.channels.messages import EVENT_GROUPS, event_types
from payments.models import DeliveryStatus
from payments.services.notifications import endpoints as services
from payments.services.timing_models import delivery_success_chances
from payments.views.dashboard import merchant_required
from payments.views.pagination import WindowPaginator


def _event_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    types = event_types()
    return [(str(label), [(t, t) for t in types if t.startswith(prefix)]) for label, prefix in EVENT_GROUPS]


class EventsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", gettext_lazy("Leave every box empty to receive every event type."))
        super().__init__(choices=_event_choices, **kwargs)


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(label=gettext_lazy("Endpoint URL"), max_length=2000, assume_scheme="https")
    description = forms.CharField(label=gettext_lazy("Description"), max_length=500, required=False)
    events = EventsField(label=gettext_lazy("Events to send"))


class PreferenceForm(forms.Form):
    enabled = forms.BooleanField(label=gettext_lazy("Enabled"), required=False)
    events = EventsField(label=gettext_lazy("Event types"))
    recipients = forms.CharField(
        label=gettext_lazy("Recipients"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("One per line."),
    )


def _role(request: HttpRequest) -> str:
    return request.membership.role if request.membership is not None else ""


def _is_owner(request: HttpRequest) -> bool:
    return _role(request) == Membership.Role.OWNER


def _can_operate(request: HttpRequest) -> bool:
    return _role(request) in (Membership.Role.OWNER, Membership.Role.OPERATOR)


def _apply_errors(
    form: forms.Form, exc: services.NotificationsInvalid, prefix: str = "", only_prefix: bool = False
) -> None:
    for error in exc.errors:
        if only_prefix and not error.field.startswith(prefix):
            continue
        field = error.field.removeprefix(prefix)
        form.add_error(field if field in form.fields else None, error.message)


def _secret_page(request: HttpRequest, endpoint: WebhookEndpoint, secret: str, rotated: bool) -> HttpResponse:
    # Rendered, never redirected to: the secret is in this one response only.
    response = render(
        request,
        "notifications/webhook_secret.html",
        {"endpoint": endpoint, "secret": secret, "rotated": rotated},
    )
    response["Cache-Control"] = "no-store"
    return response


@merchant_required
def webhook_endpoint_list(request: HttpRequest) -> HttpResponse:
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST":
        if not _is_owner(request):
            return HttpResponseForbidden(_("Only owners can add webhook endpoints."))
        if form.is_valid():
            try:
                endpoint, secret = services.webhook_endpoint_create(
                    merchant=request.merchant, request=request, **form.cleaned_data
                )
            except services.NotificationsInvalid as exc:
                _apply_errors(form, exc)
            else:
                return _secret_page(request, endpoint, secret, rotated=False)
    endpoints = selectors.webhook_endpoint_list(merchant=request.merchant)
    return render(
        request,
        "notifications/webhook_list.html",
        {"endpoints": endpoints, "form": form, "is_owner": _is_owner(request)},
    )


@merchant_required
def webhook_endpoint_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(merchant=request.merchant, public_id=public_id)
    initial = {"url": endpoint.url, "description": endpoint.description, "events": endpoint.events}
    form = WebhookEndpointForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not _is_owner(request):
            return HttpResponseForbidden(_("Only owners can change webhook endpoints."))
        if form.is_valid():
            try:
                services.webhook_endpoint_update(endpoint=endpoint, data=form.cleaned_data, request=request)
            except services.NotificationsInvalid as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, _("Endpoint saved."))
                return redirect("dashboard:webhook_endpoint_detail", public_id=public_id)
    status = request.GET.get("status", "")
    if status not in DeliveryStatus.values:
        status = ""
    log = selectors.delivery_list(merchant=request.merchant, endpoint=endpoint, status=status)
    context = {
        "endpoint": endpoint,
        "form": form,
        "page": WindowPaginator(log, 25).get_page(request.GET.get("page")),
        "status": status,
        "statuses": DeliveryStatus.choices,
        "is_owner": _is_owner(request),
        "can_operate": _can_operate(request),
        # N(r), fitted by manage.py fit_timing_models: the chance that delivery attempt r succeeds.
        "success_chances": delivery_success_chances(endpoint, get_transport("webhook").max_attempts),
        "overlap_until": endpoint.previous_secret_expires_at
        if endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > timezone.now()
        else None,
    }
    return render(request, "notifications/webhook_detail.html", context)


def _endpoint_action(request: HttpRequest, public_id: str, run, *, owner_only: bool = True) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(merchant=request.merchant, public_id=public_id)
    if not (_is_owner(request) if owner_only else _can_operate(request)):
        return HttpResponseForbidden(_("Your role cannot do this."))
    try:
        answer = run(endpoint)
    except services.NotificationsInvalid as exc:
        for error in exc.errors:
            messages.error(request, error.message)
    except services.EndpointStateError as exc:
        messages.error(request, str(exc))
    else:
        if isinstance(answer, HttpResponse):
            return answer
        messages.success(request, answer)
    return redirect("dashboard:webhook_endpoint_detail", public_id=public_id)


@require_POST
@merchant_required
def webhook_endpoint_rotate(request: HttpRequest, public_id: str) -> HttpResponse:
    def run(endpoint):
        endpoint, secret = services.webhook_endpoint_rotate_secret(endpoint=endpoint, request=request)
        return _secret_page(request, endpoint, secret, rotated=True)

    return _endpoint_action(request, public_id, run)


@require_POST
@merchant_required
def webhook_endpoint_toggle(request: HttpRequest, public_id: str) -> HttpResponse:
    def run(endpoint):
        enable = request.POST.get("enabled") == "1"
        services.webhook_endpoint_set_enabled(endpoint=endpoint, enabled=enable, request=request)
        return _("Endpoint enabled.") if enable else _("Endpoint disabled.")

    return _endpoint_action(request, public_id, run)


@require_POST
@merchant_required
def webhook_endpoint_test(request: HttpRequest, public_id: str) -> HttpResponse:
    def run(endpoint):
        services.webhook_endpoint_send_test(endpoint=endpoint)
        return _("Test event queued; its delivery appears in the log below.")

    return _endpoint_action(request, public_id, run, owner_only=False)


@require_POST
@merchant_required
def webhook_endpoint_delete(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(merchant=request.merchant, public_id=public_id)
    if not _is_owner(request):
        return HttpResponseForbidden(_("Only owners can delete webhook endpoints."))
    services.webhook_endpoint_delete(endpoint=endpoint, request=request)
    messages.success(request, _("Endpoint %(url)s deleted.") % {"url": endpoint.url})
    return redirect("dashboard:webhook_endpoint_list")


@require_POST
@merchant_required
def delivery_redeliver(request: HttpRequest, public_id: str) -> HttpResponse:
    delivery = selectors.delivery_get(merchant=request.merchant, public_id=public_id)
    if not _can_operate(request):
        return HttpResponseForbidden(_("Your role cannot do this."))
    try:
        copy = services.delivery_redeliver(delivery=delivery)
    except services.EndpointStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Redelivery %(id)s queued.") % {"id": copy.public_id})
    if delivery.endpoint is not None:
        return redirect("dashboard:webhook_endpoint_detail", public_id=delivery.endpoint.public_id)
    return redirect("dashboard:notification_list")


@merchant_required
def notification_preferences(request: HttpRequest) -> HttpResponse:
    current = selectors.notification_preferences(merchant=request.merchant)
    channels = NotificationPreference.Channel
    forms_by_channel = {}
    for channel in channels.values:
        pref = current[channel]
        initial = {
            "enabled": pref.enabled if pref else False,
            "events": pref.events if pref else [],
            "recipients": "\n".join(pref.recipients) if pref else "",
        }
        forms_by_channel[channel] = PreferenceForm(request.POST or None, prefix=channel, initial=initial)
    if request.method == "POST":
        if not _is_owner(request):
            return HttpResponseForbidden(_("Only owners can change notification preferences."))
        if all(f.is_valid() for f in forms_by_channel.values()):
            changes = {
                channel: {
                    "enabled": form.cleaned_data["enabled"],
                    "events": form.cleaned_data["events"],
                    "recipients": form.cleaned_data["recipients"].splitlines(),
                }
                for channel, form in forms_by_channel.items()
            }
            try:
                services.notification_preferences_save(merchant=request.merchant, channels=changes)
            except services.NotificationsInvalid as exc:
                for channel, form in forms_by_channel.items():
                    _apply_errors(form, exc, prefix=f"{channel}.", only_prefix=True)
            else:
                messages.success(request, _("Notification preferences saved."))
                return redirect("dashboard:notification_preferences")
    sections = [
        (channels.EMAIL, channels.EMAIL.label, _("Empty recipients: the merchant's owners.")),
        (channels.SMS, channels.SMS.label, _("Phone numbers in E.164 form, e.g. +14155550100.")),
        (
            channels.INAPP,
            channels.INAPP.label,
            _("Shown to every member under the bell, except topics a member turned off in My notifications."),
        ),
    ]
    context = {
        "sections": [(key, label, hint, forms_by_channel[key]) for key, label, hint in sections],
        "is_owner": _is_owner(request),
        "not_owner": not _is_owner(request),
    }
    return render(request, "notifications/preferences.html", context)


@merchant_required
def notification_list(request: HttpRequest) -> HttpResponse:
    feed = selectors.notification_feed(merchant=request.merchant, user=request.user)
    page = WindowPaginator(feed, 30).get_page(request.GET.get("page"))
    return render(request, "notifications/feed.html", {"page": page})


@require_POST
@merchant_required
def notification_read(request: HttpRequest) -> HttpResponse:
    """Mark one notification (`id`) or all read; follow its link if asked (`open`)."""
    public_id = request.POST.get("id")
    services.notifications_mark_read(
        merchant=request.merchant, user=request.user, public_ids=[public_id] if public_id else None
    )
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("dashboard:notification_list")
