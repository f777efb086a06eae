from django.apps import AppConfig


class MerchantsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "merchants"

    def ready(self) -> None:
        from merchants.accounts import signals  # noqa: F401  (connects the sign-in receivers)
