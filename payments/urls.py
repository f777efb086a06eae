from django.urls import path

from payments.views import (
    approvals,
    batches,
    confirm,
    controls,
    dashboard,
    home,
    notifications,
    payouts,
    settings_pages,
)

app_name = "dashboard"

urlpatterns = [
    path("", home.home, name="home"),
    path("payments/", dashboard.payment_list, name="payment_list"),
    path("payments/export.csv", dashboard.payment_export_csv, name="payment_export_csv"),
    path("approvals/", approvals.approvals_inbox, name="approvals"),
    path(
        "batches/<str:public_id>/request-approval/",
        approvals.batch_request_approval,
        name="batch_request_approval",
    ),
    # API keys and the team are owners' pages in merchants/accounts/ (accounts:api_keys, accounts:team).
    path("settings/profile/", settings_pages.merchant_profile, name="merchant_profile"),
    path("settings/my-notifications/", settings_pages.my_notifications, name="my_notifications"),
    path("payments/new/", confirm.payment_new, name="payment_new"),
    path("payments/<str:public_id>/", dashboard.payment_detail, name="payment_detail"),
    path("payments/<str:public_id>/status.json", dashboard.payment_status, name="payment_status"),
    path("payments/<str:public_id>/reveal/", dashboard.payment_reveal, name="payment_reveal"),
    path("payments/<str:public_id>/cancel/", confirm.payment_cancel_view, name="payment_cancel"),
    path("payments/<str:public_id>/retry/", dashboard.payment_retry_view, name="payment_retry"),
    path("payments/<str:public_id>/refund/", confirm.payment_refund_view, name="payment_refund"),
    path("merchant/switch/", dashboard.switch_merchant, name="switch_merchant"),
    path("blocklist/", controls.blocklist, name="blocklist"),
    # Batches (payments/views/batches.py).
    path("batches/", batches.batch_list, name="batch_list"),
    path("batches/new/", batches.batch_new, name="batch_new"),
    path("batches/template/<slug:language>.<slug:fmt>", batches.batch_template, name="batch_template"),
    path("batches/<str:public_id>/", batches.batch_detail, name="batch_detail"),
    path("batches/<str:public_id>/progress.json", batches.batch_progress, name="batch_progress"),
    path("batches/<str:public_id>/approve/", confirm.batch_approve_view, name="batch_approve"),
    path("batches/<str:public_id>/cancel/", batches.batch_cancel_view, name="batch_cancel"),
    path("batches/<str:public_id>/payments/", batches.batch_payments, name="batch_payments"),
    path("batches/<str:public_id>/errors.csv", batches.batch_errors_csv, name="batch_errors_csv"),
    path("batches/<str:public_id>/results.csv", batches.batch_results_csv, name="batch_results_csv"),
    path("batches/<str:public_id>/pain.002.xml", batches.batch_pain002, name="batch_pain002"),
    # Payouts: the bank file of a batch, bank reports, funding accounts (payments/views/payouts.py).
    path("batches/<str:public_id>/bank-file.xml", payouts.batch_bank_file, name="batch_bank_file"),
    path("bank-reports/", payouts.bank_report_list, name="bank_report_list"),
    path("funding-accounts/", payouts.funding_account_list, name="funding_account_list"),
    path(
        "funding-accounts/<str:public_id>/<str:action>/",
        payouts.funding_account_action,
        name="funding_account_action",
    ),
    # Webhooks, delivery log, notification preferences and the in-app feed (payments/views/notifications.py).
    path("webhooks/", notifications.webhook_endpoint_list, name="webhook_endpoint_list"),
    path("webhooks/<str:public_id>/", notifications.webhook_endpoint_detail, name="webhook_endpoint_detail"),
    path(
        "webhooks/<str:public_id>/rotate/",
        notifications.webhook_endpoint_rotate,
        name="webhook_endpoint_rotate",
    ),
    path(
        "webhooks/<str:public_id>/toggle/",
        notifications.webhook_endpoint_toggle,
        name="webhook_endpoint_toggle",
    ),
    path("webhooks/<str:public_id>/test/", notifications.webhook_endpoint_test, name="webhook_endpoint_test"),
    path(
        "webhooks/<str:public_id>/delete/",
        notifications.webhook_endpoint_delete,
        name="webhook_endpoint_delete",
    ),
    path(
        "deliveries/<str:public_id>/redeliver/", notifications.delivery_redeliver, name="delivery_redeliver"
    ),
    path("notifications/", notifications.notification_list, name="notification_list"),
    path("notifications/read/", notifications.notification_read, name="notification_read"),
    path(
        "notifications/preferences/", notifications.notification_preferences, name="notification_preferences"
    ),
]
