from django.urls import path

from merchants.accounts import team_views, views

app_name = "accounts"

urlpatterns = [
    path("security/", views.security, name="security"),
    path("two-factor/setup/", views.two_factor_setup, name="two_factor_setup"),
    path("two-factor/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("two-factor/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("two-factor/remove/", views.two_factor_remove, name="two_factor_remove"),
    path("team/", team_views.team_page, name="team"),
    path("team/<int:user_id>/", team_views.team_member, name="team_member"),
    path("invitations/<str:token>/", team_views.invitation_accept, name="invitation_accept"),
    path("api-keys/", team_views.api_keys, name="api_keys"),
    path("api-keys/new/", team_views.api_key_new, name="api_key_new"),
    path("api-keys/<str:public_id>/revoke/", team_views.api_key_revoke_view, name="api_key_revoke"),
    path("audit-log/", team_views.audit_log, name="audit_log"),
    path("audit-log.csv", team_views.audit_log_csv, name="audit_log_csv"),
]
