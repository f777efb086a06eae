from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from payments.api import problems as api_problems
from payments.views import sandbox_pages
from payments.views.callbacks import gateway_callback
from payments.views.health import healthz
from payments.views.language import language_set

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password change signs out the user's other sessions (Django rotates the session auth hash).
    path("accounts/password-change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password-change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password-reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("accounts/", include("merchants.accounts.urls")),
    path("healthz", healthz, name="healthz"),
    path("i18n/setlang/", language_set, name="set_language"),
    path("callbacks/<slug:gateway>/", gateway_callback, name="gateway_callback"),
    path(
        "sandbox/authenticate/<str:reference>",
        sandbox_pages.sandbox_authenticate,
        name="sandbox_authenticate",
    ),
    path("api/", include("payments.api.urls")),
    # Any other /api/ URL: a problem+json 404 (also while DEBUG, which bypasses handler404).
    re_path(r"^api/", api_problems.api_not_found),
    path("", include("payments.urls")),
]

# Problem details (application/problem+json) for errors under /api/; Django's pages elsewhere.
handler400 = api_problems.handler400
handler403 = api_problems.handler403
handler404 = api_problems.handler404
handler500 = api_problems.handler500
