from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from payments.api import bank_reports, webhooks
from payments.api import batches as batch_views
from payments.api import views as api_views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Payments, refunds and events (payments/api/views.py); v1 URLs have no trailing slash.
    path("v1/payments", api_views.PaymentListCreateView.as_view(), name="api-payment-list"),
    path("v1/payments/<str:payment_id>", api_views.PaymentDetailView.as_view(), name="api-payment-detail"),
    path(
        "v1/payments/<str:payment_id>/cancel",
        api_views.PaymentCancelView.as_view(),
        name="api-payment-cancel",
    ),
    path(
        "v1/payments/<str:payment_id>/refunds",
        api_views.PaymentRefundsView.as_view(),
        name="api-payment-refunds",
    ),
    path(
        "v1/payments/<str:payment_id>/events",
        api_views.PaymentEventsView.as_view(),
        name="api-payment-events",
    ),
    path("v1/events", api_views.EventListView.as_view(), name="api-event-list"),
    path("v1/events/<str:event_id>", api_views.EventDetailView.as_view(), name="api-event-detail"),
    # Batches (payments/api/batches.py).
    path("v1/batches", batch_views.BatchListCreateView.as_view(), name="api-batch-list"),
    path("v1/batches/<str:batch_id>", batch_views.BatchDetailView.as_view(), name="api-batch-detail"),
    path(
        "v1/batches/<str:batch_id>/payments",
        batch_views.BatchPaymentsView.as_view(),
        name="api-batch-payments",
    ),
    path("v1/batches/<str:batch_id>/errors", batch_views.BatchErrorsView.as_view(), name="api-batch-errors"),
    path(
        "v1/batches/<str:batch_id>/approve", batch_views.BatchApproveView.as_view(), name="api-batch-approve"
    ),
    path("v1/batches/<str:batch_id>/cancel", batch_views.BatchCancelView.as_view(), name="api-batch-cancel"),
    path("v1/batches/<str:batch_id>/report", batch_views.BatchReportView.as_view(), name="api-batch-report"),
    path(
        "v1/batches/<str:batch_id>/bank-file",
        batch_views.BatchBankFileView.as_view(),
        name="api-batch-bank-file",
    ),
    path("v1/bank-reports", bank_reports.BankReportCreateView.as_view(), name="api-bank-reports"),
    # Webhook endpoints (payments/api/webhooks.py).
    path("v1/webhook-endpoints", webhooks.WebhookEndpointListView.as_view(), name="api-webhook-endpoints"),
    path(
        "v1/webhook-endpoints/<str:endpoint_id>",
        webhooks.WebhookEndpointDetailView.as_view(),
        name="api-webhook-endpoint",
    ),
    path(
        "v1/webhook-endpoints/<str:endpoint_id>/rotate-secret",
        webhooks.WebhookEndpointRotateSecretView.as_view(),
        name="api-webhook-endpoint-rotate",
    ),
]
