"""The language switcher: Django's set_language, remembered on the person's profile when signed in."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from merchants.middleware import LANGUAGE_SESSION_KEY
from merchants.services import user_language_set


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """Switch the dashboard's language (POST `language`, optional `next`).

    Django's view sets the language cookie and redirects back; a signed-in person's choice is
    also saved on their profile and session, so it follows them to every device.
    """
    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        user_language_set(user=request.user, language=language)
        request.session[LANGUAGE_SESSION_KEY] = language
    return response
