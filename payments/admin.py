"""Admin for platform staff. Statuses are read-only; actions call the same services as the dashboard."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from merchants.admin_review import DecisionAdminMixin
from merchants.crypto import field_hash
from merchants.models import AuditEntry, NotificationPreference, WebhookEndpoint
from payments.gateways import CallbackRejected
from payments.models import (
    BankFile,
    BankReport,
    BatchChunk,
    BatchRowError,
    BlockedEntry,
    Event,
    ExchangeRate,
    GatewayAttempt,
    GatewayCallback,
    IdempotencyKey,
    Payment,
    PaymentBatch,
    Refund,
    SanctionedName,
    SandboxNotice,
    SandboxOperation,
)
from payments.models.payment import ENCRYPTED_FIELDS
from payments.risk import risk_drivers
from payments.selectors import beneficiary_history
from payments.services import payments as payment_services
from payments.services.callbacks import callback_reapply
from payments.services.controls import RatesInvalid, beneficiary_erase, rates_import_file, rates_source
from payments.services.lifecycle.guards import MerchantSuspended
from payments.services.notifications.endpoints import (
    EndpointStateError,
    NotificationsInvalid,
    delivery_redeliver,
    webhook_endpoint_set_enabled,
)
from payments.services.payments import PaymentStateError


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EventInline(admin.TabularInline):
    model = Event
    fields = ["public_id", "type", "actor", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class AttemptInline(admin.TabularInline):
    model = GatewayAttempt
    fields = ["idempotency_key", "kind", "status", "outcome", "calls", "error", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


PAYMENT_ERRORS = (PaymentStateError, MerchantSuspended)


@admin.register(Payment)
class PaymentAdmin(DecisionAdminMixin, admin.ModelAdmin):
    """The review queue: every decision needs its own permission and a reason, and is audited."""

    list_display = [
        "public_id",
        "merchant",
        "reference",
        "amount",
        "currency",
        "method",
        "status",
        "risk_probability",
        "failure_code",
        "created_at",
    ]
    list_filter = ["status", "method", "currency", "gateway", "merchant"]
    search_fields = ["public_id", "reference", "beneficiary_name", "gateway_reference"]
    date_hierarchy = "created_at"
    list_select_related = ["merchant"]
    # Beneficiary data is shown masked here too; the full value is a dashboard reveal (audited).
    exclude = [*ENCRYPTED_FIELDS, "beneficiary_account_hash"]
    readonly_fields = [
        "risk_review",
        "decisions",
        *(
            f.name
            for f in Payment._meta.fields
            if f.name not in (*ENCRYPTED_FIELDS, "beneficiary_account_hash")
        ),
        "beneficiary_account_masked",
    ]

    def get_search_results(self, request, queryset, search_term):
        # An exact account number also finds its payments, through the keyed hash.
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            results |= queryset.filter(beneficiary_account_hash=field_hash(search_term.strip()))
        return results, may_have_duplicates

    inlines = [AttemptInline, EventInline]
    actions = [
        "release_selected",
        "reject_selected",
        "hold_selected",
        "retry_selected",
        "cancel_selected",
        "erase_beneficiaries",
    ]
    decision_permissions = {
        "release_selected": "payments.release_payment",
        "reject_selected": "payments.reject_payment",
        "hold_selected": "payments.hold_payment",
        "retry_selected": "payments.retry_payment",
        "cancel_selected": "payments.cancel_payment",
    }
    # Releasing a held payment moves money the risk model stopped: a fresh second factor first.
    step_up_actions = ("release_selected",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_release_permission(self, request):
        return request.user.has_perm("payments.release_payment")

    def has_reject_permission(self, request):
        return request.user.has_perm("payments.reject_payment")

    def has_hold_permission(self, request):
        return request.user.has_perm("payments.hold_payment")

    def has_retry_permission(self, request):
        return request.user.has_perm("payments.retry_payment")

    def has_cancel_permission(self, request):
        return request.user.has_perm("payments.cancel_payment")

    @admin.display(description=_("risk review"))
    def risk_review(self, obj: Payment) -> str:
        """The score, what drove it, and the beneficiary's history with this merchant."""
        drivers = risk_drivers(obj)
        history = beneficiary_history(payment=obj)
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(history["by_status"].items())) or "-"
        return format_html(
            "<div>P(r) {} · r {}</div><ul><li>{}: {} ({}: {})</li><li>{}: {}</li>"
            "<li>{}: {} ({})</li></ul><div>{}: {} ({}) · {}: {}</div>",
            obj.risk_probability if obj.risk_probability is not None else "-",
            obj.risk_score if obj.risk_score is not None else "-",
            _("amount against the usual"),
            f"{drivers['amount']:.2f}",
            _("usual amount (minor units)"),
            int(drivers["usual_amount_minor"]) if drivers["usual_amount_minor"] else "-",
            _("new beneficiary"),
            f"{drivers['new_beneficiary']:.2f}",
            _("payments in the last hour"),
            f"{drivers['velocity']:.2f}",
            drivers["payments_last_hour"],
            _("earlier payments to this beneficiary"),
            history["count"],
            statuses,
            _("first"),
            history["first"].strftime("%Y-%m-%d") if history["first"] else "-",
        )

    @admin.display(description=_("decisions"))
    def decisions(self, obj: Payment) -> str:
        """Who decided what about this payment in the admin, when and why (from the audit log)."""
        entries = AuditEntry.objects.filter(object_type="payments.payment", object_id=obj.public_id).order_by(
            "created_at", "id"
        )
        rows = [
            format_html(
                "<li>{} · {} · {} · {}</li>",
                entry.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                entry.actor_user or entry.actor,
                entry.action,
                entry.after.get("reason", ""),
            )
            for entry in entries
        ]
        return (
            format_html("<ul>{}</ul>", format_html_join("", "{}", ((row,) for row in rows))) if rows else "-"
        )

    def _decide(self, request, queryset, name: str, title: str, verb: str, service):
        return self.decide(
            request,
            queryset,
            action=name,
            title=title,
            audit_action=f"payment.{verb}",
            apply=lambda payment, reason: service(payment=payment, user=request.user),
            errors=PAYMENT_ERRORS,
        )

    @admin.action(description=_("Release held payments and submit them"), permissions=["release"])
    def release_selected(self, request, queryset):
        return self._decide(
            request, queryset, "release_selected", _("Release"), "released", payment_services.payment_release
        )

    @admin.action(description=_("Reject held payments after review"), permissions=["reject"])
    def reject_selected(self, request, queryset):
        return self.decide(
            request,
            queryset,
            action="reject_selected",
            title=_("Reject"),
            audit_action="payment.rejected",
            apply=lambda payment, reason: payment_services.payment_reject(
                payment=payment, user=request.user, reason=reason
            ),
            errors=PAYMENT_ERRORS,
        )

    @admin.action(description=_("Hold created payments for review"), permissions=["hold"])
    def hold_selected(self, request, queryset):
        return self._decide(
            request, queryset, "hold_selected", _("Hold"), "held", payment_services.payment_hold
        )

    @admin.action(description=_("Retry retryable failed payments"), permissions=["retry"])
    def retry_selected(self, request, queryset):
        return self._decide(
            request, queryset, "retry_selected", _("Retry"), "retried", payment_services.payment_retry
        )

    @admin.action(description=_("Cancel payments"), permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        return self._decide(
            request, queryset, "cancel_selected", _("Cancel"), "cancelled", payment_services.payment_cancel
        )

    @admin.action(description="Erase the beneficiaries' personal data (PIPL / GDPR request; audited)")
    def erase_beneficiaries(self, request, queryset):
        # Every payment of the merchant to each selected payment's account, not only the selected ones.
        done = 0
        for payment in queryset.select_related("merchant").exclude(beneficiary_account_hash=""):
            if payment.beneficiary_account:
                counts = beneficiary_erase(
                    merchant=payment.merchant, account=payment.beneficiary_account, request=request
                )
                done += counts["payments"]
        self.message_user(request, f"{done} payment(s) erased to a tombstone.", messages.SUCCESS)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "payment", "amount_minor", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["public_id", "payment__public_id"]


@admin.register(GatewayAttempt)
class GatewayAttemptAdmin(ReadOnlyAdmin):
    list_display = ["idempotency_key", "kind", "gateway", "status", "outcome", "calls", "created_at"]
    list_filter = ["status", "gateway", "kind"]
    search_fields = ["idempotency_key", "payment__public_id"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "merchant", "type", "payment", "actor", "created_at"]
    list_filter = ["type"]
    search_fields = ["public_id", "payment__public_id"]


@admin.register(GatewayCallback)
class GatewayCallbackAdmin(DecisionAdminMixin, ReadOnlyAdmin):
    list_display = ["id", "gateway", "event_id", "event_type", "status", "reason", "attempts", "received_at"]
    list_filter = ["gateway", "status"]
    search_fields = ["event_id", "payment__public_id"]
    actions = ["reapply"]
    decision_permissions = {"reapply": "payments.reapply_callback"}

    def has_reapply_permission(self, request):
        return request.user.has_perm("payments.reapply_callback")

    @admin.action(description=_("Re-apply ignored or dead-lettered callbacks"), permissions=["reapply"])
    def reapply(self, request, queryset):
        return self.decide(
            request,
            queryset,
            action="reapply",
            title=_("Re-apply"),
            audit_action="callback.reapplied",
            apply=lambda callback, reason: callback_reapply(callback=callback),
            errors=(CallbackRejected,),
        )


@admin.register(PaymentBatch)
class PaymentBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "merchant",
        "status",
        "row_count",
        "valid_count",
        "error_count",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["public_id", "file_name"]


@admin.register(BatchRowError)
class BatchRowErrorAdmin(ReadOnlyAdmin):
    list_display = ["batch", "line", "column", "code", "message"]


@admin.register(BatchChunk)
class BatchChunkAdmin(ReadOnlyAdmin):
    """Chunks of executing batches: who claimed them, how often, and the dead-lettered ones."""

    list_display = ["batch", "number", "status", "attempts", "claimed_by", "claimed_at", "submitted_count"]
    list_filter = ["status"]
    search_fields = ["batch__public_id", "claimed_by"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ["key", "merchant", "method", "path", "response_status", "created_at"]


@admin.register(SandboxOperation)
class SandboxOperationAdmin(ReadOnlyAdmin):
    list_display = ["key", "kind", "gateway_reference", "amount_minor", "currency", "account", "created_at"]


@admin.register(SandboxNotice)
class SandboxNoticeAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "due_at", "attempts", "sent_at", "last_error"]


# Notification deliveries and the in-app feed (payments/services/notifications/sending.py) ---------------
from payments.models import Delivery, DeliveryStatus, Notification  # noqa: E402


@admin.register(Delivery)
class DeliveryAdmin(DecisionAdminMixin, ReadOnlyAdmin):
    list_display = [
        "public_id",
        "merchant",
        "channel",
        "type",
        "recipient",
        "status",
        "attempts",
        "last_response_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "channel"]
    search_fields = ["public_id", "recipient", "event__public_id", "merchant__name"]
    list_select_related = ["merchant"]
    actions = ["redeliver"]
    decision_permissions = {"redeliver": "payments.redeliver"}

    def has_redeliver_permission(self, request):
        return request.user.has_perm("payments.redeliver")

    @admin.action(
        description=_("Redeliver selected (new delivery, same message id)"), permissions=["redeliver"]
    )
    def redeliver(self, request, queryset):
        return self.decide(
            request,
            queryset.exclude(status=DeliveryStatus.PENDING),
            action="redeliver",
            title=_("Redeliver"),
            audit_action="delivery.redelivered",
            apply=lambda delivery, reason: delivery_redeliver(delivery=delivery),
            errors=(EndpointStateError,),
        )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["title", "merchant", "user", "level", "read_at", "created_at"]
    list_filter = ["level"]
    search_fields = ["title", "merchant__name", "user__username"]


# Webhook endpoints and preferences (models of merchants; their actions call payments' services).


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(DecisionAdminMixin, admin.ModelAdmin):
    """Endpoints are created by merchants; staff can look and switch them on or off (through the service)."""

    list_display = [
        "public_id",
        "merchant",
        "url",
        "status",
        "first_failure_at",
        "disabled_reason",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["public_id", "url", "merchant__name"]
    # Secrets are never shown, not even encrypted; status changes go through the actions.
    fields = ["public_id", "merchant", "url", "description", "events", "status", "first_failure_at"]
    fields += ["disabled_reason", "disabled_at", "previous_secret_expires_at", "created_at", "updated_at"]
    readonly_fields = fields
    actions = ["enable", "disable"]
    decision_permissions = {
        "enable": "merchants.toggle_webhookendpoint",
        "disable": "merchants.toggle_webhookendpoint",
    }

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_toggle_permission(self, request):
        return request.user.has_perm("merchants.toggle_webhookendpoint")

    def _set(self, request, queryset, enabled: bool):
        return self.decide(
            request,
            queryset,
            action="enable" if enabled else "disable",
            title=_("Enable") if enabled else _("Disable"),
            audit_action="",  # the service audits the change, with the reason
            apply=lambda endpoint, reason: webhook_endpoint_set_enabled(
                endpoint=endpoint, enabled=enabled, request=request, reason=reason
            ),
            errors=(NotificationsInvalid,),
        )

    @admin.action(description=_("Enable selected endpoints"), permissions=["toggle"])
    def enable(self, request, queryset):
        return self._set(request, queryset, True)

    @admin.action(description=_("Disable selected endpoints"), permissions=["toggle"])
    def disable(self, request, queryset):
        return self._set(request, queryset, False)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["merchant", "channel", "enabled", "events", "recipients", "updated_at"]
    list_filter = ["channel", "enabled"]
    search_fields = ["merchant__name"]
    readonly_fields = ["merchant", "channel", "enabled", "events", "recipients", "updated_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BankFile)
class BankFileAdmin(ReadOnlyAdmin):
    list_display = ["msg_id", "merchant", "batch", "status", "nb_of_txs", "size", "written_at"]
    list_filter = ["status"]
    search_fields = ["msg_id", "batch__public_id", "merchant__name"]


@admin.register(BankReport)
class BankReportAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "merchant", "kind", "version", "matched", "duplicates", "created_at"]
    list_filter = ["kind"]
    search_fields = ["public_id", "msg_id", "file_sha256", "merchant__name"]


# Fraud controls: read here; written by import_rates (or the rates upload below) / import_sanctions and
# the blocklist service.
RATES_UPLOAD_MAX_BYTES = 20 << 20  # the ECB's whole history (eurofxref-hist.xml) is under 10 MB


class RatesUploadForm(forms.Form):
    file = forms.FileField(label=_("ECB eurofxref XML or CSV (date,base,currency,rate)"))


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ["date", "base", "currency", "rate", "source", "imported_at"]
    list_filter = ["base", "source"]
    search_fields = ["currency"]
    date_hierarchy = "date"
    change_list_template = "admin/payments/exchangerate/change_list.html"

    def get_urls(self):
        upload = path(
            "upload/", self.admin_site.admin_view(self.upload_view), name="payments_exchangerate_upload"
        )
        return [upload, *super().get_urls()]

    def upload_view(self, request):
        """What `manage.py import_rates FILE` does, from an uploaded file (the same parser)."""
        if not request.user.has_perm("payments.add_exchangerate"):
            raise PermissionDenied
        form = RatesUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                if upload.size > RATES_UPLOAD_MAX_BYTES:
                    raise RatesInvalid(
                        _("the file is larger than %(mb)d MB") % {"mb": RATES_UPLOAD_MAX_BYTES >> 20}
                    )
                source = rates_source(upload.name)
                count, days = rates_import_file(upload.read(), source=source)
            except RatesInvalid as exc:
                form.add_error("file", str(exc))
            else:
                latest = days[-1]
                self.message_user(
                    request,
                    _("%(n)d rates imported, latest %(day)s, from %(source)s.")
                    % {"n": count, "day": latest, "source": source},
                    messages.SUCCESS,
                )
                return redirect("admin:payments_exchangerate_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Upload exchange rates"),
            "form": form,
        }
        return TemplateResponse(request, "admin/payments/exchangerate/upload.html", context)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SanctionedName)
class SanctionedNameAdmin(admin.ModelAdmin):
    list_display = ["name", "list_name", "entry_id", "imported_at"]
    list_filter = ["list_name"]
    search_fields = ["name", "normalised"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BlockedEntry)
class BlockedEntryAdmin(admin.ModelAdmin):
    list_display = ["__str__", "merchant", "kind", "note", "created_by", "created_at"]
    list_filter = ["kind", "merchant"]
    exclude = ["value"]  # an account's keyed hash means nothing to a reader
    readonly_fields = ["merchant", "kind", "last4", "note", "created_by", "created_at"]

    def has_add_permission(self, request):
        return False
