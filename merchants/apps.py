from django.apps import AppConfig


class MerchantsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "merchants"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from merchants.signals import remember_language_at_sign_in

        user_logged_in.connect(remember_language_at_sign_in, dispatch_uid="paydesk_language_at_sign_in")
