from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from merchants.accounts.policy import step_up_redirect
from merchants.admin_review import DecisionAdminMixin
from merchants.audit import audit_record
from merchants.funding_forms import FundingAccountAdminForm
from merchants.gateway_forms import GatewayAccountForm, masked
from merchants.models import (
    ApiKey,
    AuditEntry,
    FundingAccount,
    GatewayAccount,
    Invitation,
    Membership,
    Merchant,
)
from merchants.services import api_key_revoke, merchant_set_full_beneficiary_data

# Merchant settings whose changes are audited (who changed which limit, from what to what).
MERCHANT_AUDITED = [
    "name",
    "status",
    "per_payment_limit_minor",
    "four_eyes",
    "batch_approval_threshold_minor",
    "allowed_currencies",
    "late_success_refund",
    "notify_beneficiaries",
    "risk_threshold",
    "require_two_factor",
    "base_currency",
    "first_payment_cap_minor",
    "daily_cap_minor",
    "monthly_cap_minor",
    "velocity_per_beneficiary_hour",
    "velocity_per_minute",
]


def changed_fields(form, names) -> tuple[dict, dict]:
    """(before, after) of the audited fields this admin form changed."""
    before = {name: form.initial.get(name) for name in names if name in form.changed_data}
    after = {name: form.cleaned_data.get(name) for name in names if name in form.changed_data}
    return before, after


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


def audit_membership_form(request, form, merchant) -> None:
    """Audit a membership added, changed (its role) or deleted through an admin form."""
    membership = form.instance
    if form.cleaned_data.get("DELETE"):
        action, before, after = "membership.removed", {"role": membership.role}, {}
    elif not form.initial:
        action, before, after = "membership.added", {}, {"role": membership.role}
    elif "role" in form.changed_data:
        action, before, after = (
            "membership.role_changed",
            {"role": form.initial.get("role")},
            {"role": membership.role},
        )
    else:
        return
    audit_record(
        action=action,
        user=request.user,
        merchant=merchant,
        object_type="merchants.membership",
        object_id=str(membership.user_id),
        before=before,
        after={**after, "user": str(membership.user)},
        request=request,
    )


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status", "four_eyes", "per_payment_limit_minor", "created_at"]
    list_filter = ["status", "four_eyes", "require_two_factor"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        # Full beneficiary data for integrations goes through its own audited service.
        enabled = obj.full_beneficiary_data
        if "full_beneficiary_data" in form.changed_data:
            obj.full_beneficiary_data = form.initial.get("full_beneficiary_data", False)
        super().save_model(request, obj, form, change)
        merchant_set_full_beneficiary_data(merchant=obj, enabled=enabled, user=request.user, request=request)
        before, after = changed_fields(form, MERCHANT_AUDITED)
        if after or not change:
            audit_record(
                action="merchant.settings_changed" if change else "merchant.created",
                user=request.user,
                merchant=obj,
                obj=obj,
                before=before,
                after=after,
                request=request,
            )

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            if inline_form.has_changed() and inline_form.is_valid() and inline_form.instance.user_id:
                audit_membership_form(request, inline_form, form.instance)
        super().save_formset(request, form, formset, change)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "merchant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "merchant__name"]
    autocomplete_fields = ["user", "merchant"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_membership_form(request, form, obj.merchant)

    def delete_model(self, request, obj):
        audit_record(
            action="membership.removed",
            user=request.user,
            merchant=obj.merchant,
            object_type="merchants.membership",
            object_id=str(obj.user_id),
            before={"role": obj.role},
            after={"user": str(obj.user)},
            request=request,
        )
        super().delete_model(request, obj)


@admin.register(ApiKey)
class ApiKeyAdmin(DecisionAdminMixin, admin.ModelAdmin):
    list_display = ["public_id", "merchant", "name", "prefix", "scopes", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["public_id", "prefix", "merchant__name"]
    # The hash is never shown; keys are created with `manage.py create_api_key`.
    exclude = ["key_hash"]
    readonly_fields = ["public_id", "merchant", "prefix", "created_by", "created_at", "last_used_at"]
    actions = ["revoke"]
    decision_permissions = {"revoke": "merchants.revoke_apikey"}

    def has_add_permission(self, request):
        return False

    def has_revoke_permission(self, request):
        return request.user.has_perm("merchants.revoke_apikey")

    @admin.action(description=_("Revoke selected keys"), permissions=["revoke"])
    def revoke(self, request, queryset):
        return self.decide(
            request,
            queryset.filter(revoked_at=None),
            action="revoke",
            title=_("Revoke"),
            audit_action="",  # api_key_revoke writes the entry, with the reason
            apply=lambda key, reason: api_key_revoke(
                key=key, user=request.user, reason=reason, request=request
            ),
        )


@admin.register(GatewayAccount)
class GatewayAccountAdmin(admin.ModelAdmin):
    """Credentials are entered here once and never shown again (masked, write-only fields).

    Saving needs a second factor from the last five minutes; every change is
    audited by field name, secret values masked.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST":
            refused = step_up_redirect(request)
            if refused is not None:
                return refused
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        names = [n for n in form.changed_data if n not in ("merchant",)]
        audit_record(
            action="gateway_account.changed" if change else "gateway_account.created",
            user=request.user,
            merchant=obj.merchant,
            obj=obj,
            before={n: form.initial.get(n) for n in names if not n.startswith("new_")},
            after={n: form.cleaned_data.get(n) for n in names},
            request=request,
        )

    form = GatewayAccountForm
    list_display = ["merchant", "gateway", "environment", "app_id", "mch_id", "enabled", "updated_at"]
    list_filter = ["gateway", "environment", "enabled"]
    search_fields = ["merchant__name", "merchant__slug", "app_id", "mch_id"]
    autocomplete_fields = ["merchant"]
    readonly_fields = [
        "stored_private_key",
        "stored_secret",
        "stored_public_keys",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["merchant", "gateway", "environment", "enabled"]}),
        (
            _("Identifiers"),
            {"fields": ["app_id", "mch_id", "key_serial", "webhook_id"]},
        ),
        (
            _("Transfers (Alipay certificate mode, WeChat Pay transfer scene)"),
            {
                "fields": [
                    "app_certificate",
                    "root_certificate",
                    "transfer_scene_id",
                    "transfer_scene_report_infos",
                ]
            },
        ),
        (
            _("Secrets (write-only)"),
            {"fields": ["stored_private_key", "new_private_key", "stored_secret", "new_secret"]},
        ),
        (
            _("Provider public keys"),
            {"fields": ["stored_public_keys", "public_key_id", "public_key", "remove_public_keys"]},
        ),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        # The list never decrypts secrets; the change page shows them masked only.
        return super().get_queryset(request).select_related("merchant")

    @admin.display(description=_("stored private key"))
    def stored_private_key(self, obj: GatewayAccount) -> str:
        return masked(obj.private_key) if obj.pk else "-"

    @admin.display(description=_("stored secret"))
    def stored_secret(self, obj: GatewayAccount) -> str:
        return masked(obj.secret) if obj.pk else "-"

    @admin.display(description=_("stored public key ids"))
    def stored_public_keys(self, obj: GatewayAccount) -> str:
        return ", ".join(sorted((obj.public_keys or {}).keys())) or "-"


@admin.register(FundingAccount)
class FundingAccountAdmin(admin.ModelAdmin):
    """The accounts merchants pay from; details are checked (IBAN, BIC) like everywhere else."""

    form = FundingAccountAdminForm
    list_display = [
        "public_id",
        "merchant",
        "name",
        "currency",
        "iban",
        "account_number",
        "is_default",
        "enabled",
    ]
    list_filter = ["currency", "is_default", "enabled"]
    search_fields = ["public_id", "name", "iban", "account_number", "merchant__name", "merchant__slug"]
    autocomplete_fields = ["merchant"]
    readonly_fields = ["public_id", "created_at", "updated_at"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The whole platform's audit log, for staff; nothing here edits or deletes it."""

    list_display = ["created_at", "actor", "merchant", "action", "object_type", "object_id", "ip"]
    list_filter = ["action"]
    search_fields = ["actor", "object_id", "request_id", "merchant__name"]
    date_hierarchy = "created_at"
    list_select_related = ["merchant"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Team invitations, for support: who invited whom, and whether it was used (tokens are hashes)."""

    list_display = ["email", "merchant", "role", "invited_by", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["email", "merchant__name"]
    exclude = ["token_hash"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invitation._meta.fields if f.name != "token_hash"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
