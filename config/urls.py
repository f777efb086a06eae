from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView

from payments.views.callbacks import gateway_callback
from payments.views.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("callbacks/<slug:gateway>/", gateway_callback, name="gateway_callback"),
    path(
        "sandbox/authenticate/<str:reference>",
        TemplateView.as_view(template_name="payments/sandbox_authenticate.html"),
        name="sandbox_authenticate",
    ),
    path("api/", include("payments.api.urls")),
    path("", include("payments.urls")),
]
