from django.utils import translation

from merchants.models import Membership

SESSION_KEY = "current_merchant_id"


class CurrentMerchantMiddleware:
    """Attach the signed-in user's current merchant and membership to the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        request.merchant = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            memberships = Membership.objects.filter(user=user).select_related("merchant")
            chosen = request.session.get(SESSION_KEY)
            membership = None
            if chosen:
                membership = memberships.filter(merchant_id=chosen).first()
            if membership is None:
                membership = memberships.order_by("merchant__name").first()
            if membership is not None:
                request.membership = membership
                request.merchant = membership.merchant
        return self.get_response(request)


LANGUAGE_SESSION_KEY = "paydesk_language"


class UserLanguageMiddleware:
    """Speak the language a signed-in person chose, on every device they sign in from.

    Django's LocaleMiddleware (before this one) picks the language of the URL, the language
    cookie or Accept-Language; for a signed-in user their saved choice (copied into the session
    at sign-in and by the switcher, so no query per request) wins. Signed-out pages keep
    LocaleMiddleware's choice.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        language = None
        if user is not None and user.is_authenticated:
            language = request.session.get(LANGUAGE_SESSION_KEY)
        if language and translation.check_for_language(language):
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
