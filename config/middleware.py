"""Request hygiene that every view relies on."""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest

NUL = "\x00"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _has_nul(items) -> bool:
    return any(NUL in key or any(NUL in value for value in values) for key, values in items)


class RejectNulMiddleware:
    """Answer a NUL character in the path with 404 and in the query, cookies or form fields with 400.

    PostgreSQL cannot hold U+0000 in text: a NUL that reaches a query (a
    filter, a path id, a session key, a form field) raises DataError, a 500.
    No id, filter or form value of PayDesk contains one, so such a request is
    refused here, once for every page, the admin and the API, before any
    view or session lookup runs. Form fields are checked for views that read
    forms the ordinary way (CSRF-protected ones: the CSRF check parses the
    same body); csrf-exempt views (the API, gateway callbacks, streamed
    uploads) read their bodies themselves and check them there. NUL inside a
    JSON body is each field's business (a 422 naming the field).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if NUL in request.path_info:
            raise Http404("No such page.")
        if _has_nul(request.GET.lists()) or _has_nul((k, [v]) for k, v in request.COOKIES.items()):
            raise BadRequest("NUL character in the query string or a cookie.")
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if (
            request.method == "POST"
            and not getattr(view_func, "csrf_exempt", False)
            and request.content_type in FORM_TYPES
            and _has_nul(request.POST.lists())
        ):
            raise BadRequest("NUL character in a form field.")
        return None
