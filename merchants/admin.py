from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from merchants.funding_forms import FundingAccountAdminForm
from merchants.gateway_forms import GatewayAccountForm, masked
from merchants.models import ApiKey, AuditEntry, FundingAccount, GatewayAccount, Membership, Merchant
from merchants.services import merchant_set_full_beneficiary_data


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status", "four_eyes", "per_payment_limit_minor", "created_at"]
    list_filter = ["status", "four_eyes"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        # Full beneficiary data for integrations goes through its audited service.
        enabled = obj.full_beneficiary_data
        if "full_beneficiary_data" in form.changed_data:
            obj.full_beneficiary_data = form.initial.get("full_beneficiary_data", False)
        super().save_model(request, obj, form, change)
        merchant_set_full_beneficiary_data(merchant=obj, enabled=enabled, user=request.user, request=request)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "merchant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "merchant__name"]
    autocomplete_fields = ["user", "merchant"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["public_id", "merchant", "name", "prefix", "scopes", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["public_id", "prefix", "merchant__name"]
    # The hash is never shown; keys are created with `manage.py create_api_key`.
    exclude = ["key_hash"]
    readonly_fields = ["public_id", "merchant", "prefix", "created_by", "created_at", "last_used_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        from django.utils import timezone

        count = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} key(s) revoked.")


@admin.register(GatewayAccount)
class GatewayAccountAdmin(admin.ModelAdmin):
    """Credentials are entered here once and never shown again (masked, write-only fields)."""

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
