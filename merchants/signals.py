"""Signal receivers of the merchants app (connected in MerchantsConfig.ready)."""

from merchants.middleware import LANGUAGE_SESSION_KEY
from merchants.services import user_language


def remember_language_at_sign_in(sender, request, user, **kwargs) -> None:
    """Copy the person's saved language into the new session (UserLanguageMiddleware reads it)."""
    language = user_language(user=user)
    if language and request is not None and hasattr(request, "session"):
        request.session[LANGUAGE_SESSION_KEY] = language
