from django.urls import path

from payments.views import dashboard

app_name = "dashboard"

urlpatterns = [
    path("", dashboard.payment_list, name="payment_list"),
    path("payments/new/", dashboard.payment_new, name="payment_new"),
    path("payments/<str:public_id>/", dashboard.payment_detail, name="payment_detail"),
    path("payments/<str:public_id>/status.json", dashboard.payment_status, name="payment_status"),
    path("payments/<str:public_id>/cancel/", dashboard.payment_cancel_view, name="payment_cancel"),
    path("payments/<str:public_id>/retry/", dashboard.payment_retry_view, name="payment_retry"),
    path("payments/<str:public_id>/refund/", dashboard.payment_refund_view, name="payment_refund"),
    path("merchant/switch/", dashboard.switch_merchant, name="switch_merchant"),
]
