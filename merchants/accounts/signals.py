"""Sign-in and sign-out go to the audit log; a new session starts its lifetime clocks and speaks
the language the person chose (merchants.middleware.UserLanguageMiddleware reads it)."""

from __future__ import annotations

import time

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from merchants.accounts.middleware import LAST_SEEN_SESSION_KEY, SIGNED_IN_AT_SESSION_KEY
from merchants.audit import audit_record
from merchants.middleware import LANGUAGE_SESSION_KEY
from merchants.services import user_language


@receiver(user_logged_in, dispatch_uid="paydesk_signed_in")
def signed_in(sender, request, user, **kwargs) -> None:
    if request is None:
        return
    now = time.time()
    request.session[SIGNED_IN_AT_SESSION_KEY] = now
    request.session[LAST_SEEN_SESSION_KEY] = now
    audit_record(action="auth.signed_in", user=user, obj=user, object_type="auth.user", request=request)


@receiver(user_login_failed, dispatch_uid="paydesk_sign_in_failed")
def sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    # `credentials` has the password already replaced by Django; only the username is kept.
    audit_record(
        action="auth.sign_in_failed",
        object_type="auth.user",
        after={"username": str(credentials.get("username", ""))[:150]},
        request=request,
    )


@receiver(user_logged_out, dispatch_uid="paydesk_signed_out")
def signed_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(action="auth.signed_out", user=user, obj=user, object_type="auth.user", request=request)


@receiver(user_logged_in, dispatch_uid="paydesk_language_at_sign_in")
def remember_language_at_sign_in(sender, request, user, **kwargs) -> None:
    """Copy the person's saved language into the new session."""
    language = user_language(user=user)
    if language and request is not None and hasattr(request, "session"):
        request.session[LANGUAGE_SESSION_KEY] = language
