"""Bank reports in the API: `POST /api/v1/bank-reports` (multipart `file`: a pain.002 or camt.054).

The report is applied at once (it is small next to the batch it answers)
and the answer says what it did: 201 `{"id", "kind", "matched", "unmatched",
"duplicates", "errors"}`.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.api import examples
from payments.api.idempotency import IdempotencyMixin
from payments.api.problems import PROBLEM_CONTENT_TYPE, BodyInvalid, problem_body
from payments.representations import bank_report_data
from payments.services.bank_reports import BankReportRejected, bank_report_receive
from payments.services.batches.upload import UploadTooLarge, check_content_length

MULTIPART_SLACK = 64 * 1024


class BankReportSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="brp_...")
    kind = serializers.CharField(help_text="pain.002 or camt.054.")
    matched = serializers.IntegerField(help_text="Entries that settled, failed or reversed a payment now.")
    unmatched = serializers.ListField(
        child=serializers.CharField(), help_text="EndToEndIds that name no bank-rail payment of the merchant."
    )
    duplicates = serializers.IntegerField(help_text="Entries whose payment already had that outcome.")
    errors = serializers.ListField(
        child=serializers.CharField(), help_text="Entries that could not be applied."
    )


class BankReportCreateView(IdempotencyMixin, APIView):
    parser_classes = [MultiPartParser]
    problem_statuses = {
        "POST": {
            400: "`xml_error`, `unsupported_format`, `unsupported_version`, `dtd_forbidden`: not a report.",
            413: "`payload_too_large`: over the upload limit.",
        }
    }

    def handle_exception(self, exc):
        if isinstance(exc, BankReportRejected):
            response = Response(problem_body(exc.status, exc.code, exc.message), status=exc.status)
            response.content_type = PROBLEM_CONTENT_TYPE
            return response
        if isinstance(exc, UploadTooLarge):
            response = Response(problem_body(413, "payload_too_large", str(exc)), status=413)
            response.content_type = PROBLEM_CONTENT_TYPE
            return response
        return super().handle_exception(exc)

    @extend_schema(
        operation_id="bank_reports_create",
        tags=["bank reports"],
        summary="Upload a bank report",
        description=(
            "A pain.002 (.001.03 or .001.10) status report or a camt.054 (.001.02 or .001.08) "
            "notification from the bank, answering a bank file. Each entry is matched by EndToEndId "
            "(the payment's reference): ACSC/ACCC and booked debits succeed, RJCT fails with the ISO "
            "reason code, returns reverse. The same report again changes nothing (`duplicates`)."
        ),
        request={
            "multipart/form-data": inline_serializer(
                "BankReportUpload", {"file": serializers.FileField(help_text="pain.002 or camt.054 XML.")}
            )
        },
        responses={201: OpenApiResponse(BankReportSerializer)},
        examples=examples.BANK_REPORT_CREATE,
    )
    def post(self, request):
        check_content_length(request.META, settings.PAYDESK_BATCH_MAX_BYTES, MULTIPART_SLACK)
        upload = request.FILES.get("file")
        if upload is None:
            raise BodyInvalid({"file": [_("Send the report in the multipart field `file`.")]})
        report = bank_report_receive(
            merchant=request.auth.merchant, fileobj=upload, file_name=upload.name, api_key=request.auth
        )
        return Response(bank_report_data(report), status=201)
