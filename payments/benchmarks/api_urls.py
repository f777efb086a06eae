"""URLconf of the api benchmark: the whole project plus a bare DRF endpoint as the baseline.

The baseline validates a plain serializer and inserts one row into a table of
its own (created by the benchmark, not by migrations): the least a validated
one-row DRF POST can cost, measured on the same gunicorn in the same run.
"""

from django.db import models
from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urlpatterns

BARE_TABLE = "bench_bare_row"


class BareRow(models.Model):
    reference = models.CharField(max_length=140)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "payments"
        db_table = BARE_TABLE
        managed = False


class BareSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=140)
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=0)
    currency = serializers.CharField(min_length=3, max_length=3)


class BareInsertView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def post(self, request):
        serializer = BareSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = BareRow.objects.create(**serializer.validated_data)
        return Response({"id": row.pk, **serializer.data}, status=201)


urlpatterns = [path("bench/bare", BareInsertView.as_view()), *project_urlpatterns]
