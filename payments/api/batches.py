"""Batches in the API (DESIGN section 6): upload, list, read, approve, cancel, reports.

`POST /api/v1/batches` takes a multipart `file` (CSV, XLSX or pain.001) or a
JSON body `{"items": [...], "name": ...}` and answers 201 at once with the
batch `validating`; a worker validates it. The file is streamed to storage
while its SHA-256 is computed; a body announced or found larger than the
limit is a 413 before anything is kept. Approval needs the `approve` scope,
and four-eyes holds: the key's creator counts as the person approving.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from payments import selectors
from payments.api import examples
from payments.api.fields import StrictCharField
from payments.api.filters import PaymentListQuery, parse_query, reject_repeated
from payments.api.idempotency import IdempotencyMixin
from payments.api.pagination import KeysetPagination, PageQuerySerializer, list_envelope, page_body
from payments.api.parsers import StrictJSONParser
from payments.api.problems import PROBLEM_CONTENT_TYPE, BodyInvalid, problem_body
from payments.api.serializers import PaymentSerializer
from payments.models import BankFile, BatchRowError, BatchStatus, PaymentBatch
from payments.representations import batch_data, payment_data
from payments.services.batches import reports as batch_reports
from payments.services.batches.bank_files import BankFileNotReady, bank_file_path
from payments.services.batches.lifecycle import (
    BATCH_ENCODINGS,
    BatchError,
    batch_approve,
    batch_cancel,
    batch_create_from_items,
    batch_options_clean,
    batch_upload,
)
from payments.services.batches.upload import (
    MULTIPART_SLACK,
    BatchUploadHandler,
    StoredUpload,
    UploadTooLarge,
    check_content_length,
)

ID_PATTERN = r"^bat_[A-Za-z0-9]{1,36}$"
BATCH_ID = OpenApiParameter("batch_id", str, OpenApiParameter.PATH, pattern=ID_PATTERN, description="bat_...")
TAGS = ["batches"]


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = gettext_lazy("The request body is too large.")
    default_code = "payload_too_large"


class AnyFormatNegotiation(DefaultContentNegotiation):
    """Ignore `?format=`: these views use it to choose a report, not a renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def batch_problem(exc: BatchError, request=None) -> Response:
    body = problem_body(exc.status, exc.code, exc.message)
    first = exc.extra.get("duplicate_of")
    if isinstance(first, PaymentBatch):
        body["duplicate_of"] = first.public_id
        if request is not None:
            body["duplicate_of_url"] = batch_url(request, first)
    response = Response(body, status=exc.status)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def scoped_batch(request, batch_id: str) -> PaymentBatch:
    """The batch of the key's merchant with this id; anything else is a 404."""
    if re.fullmatch(ID_PATTERN, batch_id):
        try:
            return selectors.batch_get(merchant=request.auth.merchant, public_id=batch_id)
        except Http404:
            pass
    raise exceptions.NotFound(_("No batch with this id."))


def batch_url(request, batch: PaymentBatch) -> str:
    return request.build_absolute_uri(reverse("api-batch-detail", args=[batch.public_id]))


# Documentation serializers -------------------------------------------------------------------


class MoneySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    amount = serializers.CharField(help_text='Exact decimal string, e.g. "1234.50".')


class BatchSerializer(serializers.Serializer):
    """A batch as the API shows it (payments.representations.batch_data)."""

    id = serializers.CharField(help_text="bat_...")
    object = serializers.CharField(help_text='Always "batch".')
    name = serializers.CharField()
    status = serializers.CharField(
        help_text="uploaded, validating, validated, rejected, approved, processing, completed or cancelled."
    )
    format = serializers.CharField(allow_null=True, help_text="csv, xlsx, pain.001 or json.")
    file_name = serializers.CharField(allow_null=True)
    file_size = serializers.IntegerField()
    file_sha256 = serializers.CharField(allow_null=True)
    encoding = serializers.CharField(
        allow_null=True, help_text="The text encoding a CSV was read with: named at upload, else detected."
    )
    message_id = serializers.CharField(allow_null=True, help_text="pain.001 MsgId.")
    row_count = serializers.IntegerField()
    valid_count = serializers.IntegerField()
    error_count = serializers.IntegerField(help_text="Rows with at least one error.")
    totals = serializers.DictField(child=MoneySerializer(), help_text="Valid rows per currency, exact sums.")
    outcomes = serializers.DictField(
        child=serializers.DictField(child=MoneySerializer()),
        help_text="Once completed: per payment status, per currency.",
    )
    rejection = inline_serializer(
        "BatchRejection",
        {
            "code": serializers.CharField(),
            "message": serializers.CharField(),
            "line": serializers.IntegerField(allow_null=True),
            "duplicate_of": serializers.CharField(allow_null=True),
        },
        allow_null=True,
    )
    cancel_requested = serializers.BooleanField()
    funding_account = serializers.CharField(
        allow_null=True, help_text="fac_...: the account named at upload."
    )
    execution_date = serializers.DateField(allow_null=True, help_text="The requested execution date.")
    bank_file = inline_serializer(
        "BatchBankFile",
        {
            "msg_id": serializers.CharField(),
            "status": serializers.CharField(help_text="pending or written."),
            "nb_of_txs": serializers.IntegerField(),
        },
        allow_null=True,
        help_text="The pain.001 of the bank-rail payments (GET /batches/{id}/bank-file).",
    )
    uploaded_by = serializers.CharField(allow_null=True)
    uploaded_by_key = serializers.CharField(allow_null=True)
    approved_by = serializers.CharField(allow_null=True)
    approved_by_key = serializers.CharField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    validated_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class RowErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    column = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class BatchItemsSerializer(serializers.Serializer):
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    funding_account = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="fac_...: the account bank transfers are paid from.",
    )
    execution_date = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="The day the batch is to be paid (YYYY-MM-DD); today if absent.",
    )
    items = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=False,
        min_length=1,
        help_text="Payments with the fields of POST /payments; validated in the worker, row by row.",
    )


class BatchListQuery(PageQuerySerializer):
    status = serializers.ChoiceField(choices=BatchStatus.choices, required=False)


class ErrorPageQuery(serializers.Serializer):
    cursor = StrictCharField(required=False, max_length=40, pattern=r"^l[0-9]{1,10}\.[0-9]{1,6}$")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)
    format = serializers.ChoiceField(choices=["json", "csv"], required=False, default="json")


BatchList = list_envelope("BatchList", BatchSerializer)
BatchPaymentList = list_envelope("BatchPaymentList", PaymentSerializer)
RowErrorList = list_envelope("RowErrorList", RowErrorSerializer)


# Views ---------------------------------------------------------------------------------------


class BatchListCreateView(IdempotencyMixin, APIView):
    parser_classes = [StrictJSONParser, MultiPartParser]
    problem_statuses = {
        "POST": {
            409: "`duplicate_file`: the same file was uploaded in the last 30 days (`duplicate_of`).",
            413: "`payload_too_large`: over the upload limit.",
        }
    }
    problem_examples = {"POST": examples.BATCH_CREATE_PROBLEMS}

    def initial(self, request, *args, **kwargs):
        if request.method == "POST":
            # Decide on the size before the body is read: an announced oversize body is never stored.
            self.perform_authentication(request)
            self.check_permissions(request)
            try:
                if request.content_type.startswith("multipart/"):
                    check_content_length(request.META, settings.PAYDESK_BATCH_MAX_BYTES, MULTIPART_SLACK)
                    request._request.upload_handlers = [BatchUploadHandler(request._request)]
                else:
                    check_content_length(request.META, settings.PAYDESK_BATCH_JSON_MAX_BYTES)
            except UploadTooLarge as exc:
                raise PayloadTooLarge(str(exc)) from None
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, UploadTooLarge):
            exc = PayloadTooLarge(str(exc))
        if isinstance(exc, BatchError):
            return batch_problem(exc, self.request)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        files = getattr(request._request, "_files", None)
        for upload in files.values() if files else ():
            if isinstance(upload, StoredUpload):
                upload.discard()
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        operation_id="batches_list",
        tags=TAGS,
        summary="List batches",
        parameters=[BatchListQuery],
        responses={200: BatchList},
        examples=examples.BATCH_LIST,
    )
    def get(self, request):
        query = parse_query(BatchListQuery, request).validated_data
        qs = selectors.batch_list(merchant=request.auth.merchant).select_related(
            "uploaded_by",
            "approved_by",
            "uploaded_by_key",
            "approved_by_key",
            "duplicate_of",
            "funding_account",
            "bank_file",
        )
        if query.get("status"):
            qs = qs.filter(status=query["status"])
        page = KeysetPagination().paginate(qs, cursor=query.get("cursor"), limit=query["limit"])
        return Response(page_body(page, [batch_data(b) for b in page.items], request))

    @extend_schema(
        operation_id="batches_create",
        tags=TAGS,
        summary="Upload a batch",
        description=(
            "Multipart with a `file` (CSV with header, XLSX, or pain.001.001.03/.09 XML) and an optional "
            '`name`, or JSON `{"items": [...]}`. Answers at once with the batch `validating`; poll it '
            "until `validated` (or `rejected`), then approve it."
        ),
        request={
            "multipart/form-data": inline_serializer(
                "BatchUpload",
                {
                    "file": serializers.FileField(help_text="CSV, XLSX or pain.001 XML."),
                    "name": serializers.CharField(required=False, allow_blank=True, max_length=200),
                    "funding_account": serializers.CharField(
                        required=False, allow_blank=True, help_text="fac_...: the account to pay from."
                    ),
                    "execution_date": serializers.DateField(
                        required=False, help_text="YYYY-MM-DD; a pain.001's ReqdExctnDt otherwise."
                    ),
                    "encoding": serializers.ChoiceField(
                        choices=list(BATCH_ENCODINGS),
                        required=False,
                        help_text=(
                            "The text encoding of a CSV; omit it to detect (UTF-8 or UTF-16 with or "
                            "without BOM, GB18030 when the text is plainly Chinese, else Windows-1252). "
                            "The batch's `encoding` tells which was used."
                        ),
                    ),
                },
            ),
            "application/json": BatchItemsSerializer,
        },
        responses={201: OpenApiResponse(BatchSerializer, description="Created; `Location` is its URL.")},
        examples=examples.BATCH_CREATE,
    )
    def post(self, request):
        merchant = request.auth.merchant
        if request.content_type.startswith("multipart/"):
            upload = request.FILES.get("file")
            if not isinstance(upload, StoredUpload):
                raise BodyInvalid({"file": [_("Send the batch file in the multipart field `file`.")]})
            name = str(request.data.get("name") or "")
            if len(name) > 200:
                raise BodyInvalid({"name": [_("Ensure this field has no more than 200 characters.")]})
            account, day = batch_options_clean(
                merchant=merchant,
                funding_account=str(request.data.get("funding_account") or ""),
                execution_date=str(request.data.get("execution_date") or ""),
            )
            batch = batch_upload(
                merchant=merchant,
                upload=upload,
                api_key=request.auth,
                name=name,
                funding_account=account,
                execution_date=day,
                encoding=str(request.data.get("encoding") or ""),
            )
        else:
            serializer = BatchItemsSerializer(data=request.data if isinstance(request.data, dict) else {})
            if not isinstance(request.data, dict) or not serializer.is_valid():
                raise BodyInvalid(
                    serializer.errors if isinstance(request.data, dict) else {"items": ["required"]}
                )
            data = serializer.validated_data
            if len(data["items"]) > settings.PAYDESK_BATCH_MAX_ROWS:
                raise BodyInvalid({"items": [_("Too many items for one batch.")]})
            account, day = batch_options_clean(
                merchant=merchant,
                funding_account=data.get("funding_account", ""),
                execution_date=data.get("execution_date"),
            )
            batch = batch_create_from_items(
                merchant=merchant,
                items=data["items"],
                api_key=request.auth,
                name=data.get("name", ""),
                funding_account=account,
                execution_date=day,
            )
        return Response(batch_data(batch), status=201, headers={"Location": batch_url(request, batch)})


class BatchDetailView(APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="batches_retrieve",
        tags=TAGS,
        summary="Get a batch",
        parameters=[BATCH_ID],
        responses={200: BatchSerializer},
        examples=examples.BATCH_DETAIL,
    )
    def get(self, request, batch_id: str):
        return Response(batch_data(scoped_batch(request, batch_id)))


class BatchPaymentsView(APIView):
    @extend_schema(
        operation_id="batches_payments_list",
        tags=TAGS,
        summary="The payments of a batch",
        description="Filtered like GET /payments; oldest first unless `ordering=-created_at`.",
        parameters=[BATCH_ID, PaymentListQuery],
        responses={200: BatchPaymentList},
        examples=examples.BATCH_PAYMENTS,
    )
    def get(self, request, batch_id: str):
        batch = scoped_batch(request, batch_id)
        query = parse_query(PaymentListQuery, request)
        filters = {**query.filters(), "batch": batch.public_id}
        qs = selectors.payment_list(merchant=request.auth.merchant, filters=filters)
        options = query.validated_data
        # A batch reads in file order unless asked otherwise.
        paginator = KeysetPagination(descending=request.query_params.get("ordering") == "-created_at")
        page = paginator.paginate(qs, cursor=options.get("cursor"), limit=options["limit"])
        return Response(
            page_body(
                page,
                [payment_data(p, full=request.auth.merchant.full_beneficiary_data) for p in page.items],
                request,
            )
        )


class BatchErrorsView(APIView):
    content_negotiation_class = AnyFormatNegotiation

    @extend_schema(
        operation_id="batches_errors_list",
        tags=TAGS,
        summary="The row errors of a batch",
        description="In file order. `format=csv` streams them all as CSV (line, column, code, message).",
        parameters=[BATCH_ID, ErrorPageQuery],
        responses={
            (200, "application/json"): RowErrorList,
            (200, "text/csv"): OpenApiResponse(str, description="With `format=csv`: every error."),
        },
        examples=examples.BATCH_ERRORS,
    )
    def get(self, request, batch_id: str):
        batch = scoped_batch(request, batch_id)
        query = parse_query(ErrorPageQuery, request).validated_data
        if query["format"] == "csv":
            return _stream(
                batch_reports.iter_errors_csv(batch),
                "text/csv; charset=utf-8",
                f"{batch.public_id}-errors.csv",
            )
        line, skip = 0, 0
        if query.get("cursor"):
            line_text, skip_text = query["cursor"][1:].split(".")
            line, skip = int(line_text), int(skip_text)
        limit = query["limit"]
        rows = list(
            BatchRowError.objects.filter(batch=batch, line__gte=line)
            .order_by("line", "pk")
            .values("line", "column", "code", "message")[: limit + skip + 1]
        )
        rows = [r for i, r in enumerate(rows) if not (r["line"] == line and i < skip)][: limit + 1]
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = None
        if more and rows:
            last = rows[-1]["line"]
            cursor = f"l{last}.{sum(1 for r in rows if r['line'] == last) + (skip if last == line else 0)}"
        url = request.build_absolute_uri()
        from rest_framework.utils.urls import replace_query_param

        return Response(
            {
                "object": "list",
                "data": rows,
                "has_more": more,
                "next_cursor": cursor,
                "previous_cursor": None,
                "next": replace_query_param(url, "cursor", cursor) if cursor else None,
                "previous": None,
            }
        )


class BatchActionView(IdempotencyMixin, APIView):
    parser_classes = [StrictJSONParser]
    action = ""

    def handle_exception(self, exc):
        if isinstance(exc, BatchError):
            return batch_problem(exc, self.request)
        return super().handle_exception(exc)

    def run(self, request, batch: PaymentBatch) -> PaymentBatch:
        raise NotImplementedError

    def post(self, request, batch_id: str):
        batch = self.run(request, scoped_batch(request, batch_id))
        batch.refresh_from_db()
        return Response(batch_data(batch))


class BatchApproveView(BatchActionView):
    required_scope = "approve"
    problem_statuses = {
        "POST": {
            403: "`four_eyes_required`, `approver_required`: who may approve this batch.",
            409: "`invalid_state`: only a validated batch can be approved.",
        }
    }
    problem_examples = {"POST": examples.BATCH_APPROVE_PROBLEM}

    @extend_schema(
        operation_id="batches_approve",
        tags=TAGS,
        summary="Approve a validated batch",
        description=(
            "Needs the `approve` scope. With four-eyes on, the key's creator must not be the uploader. "
            "Execution starts at once (or on the batch's `execution_date`), in chunks, on the workers."
        ),
        parameters=[BATCH_ID],
        request=None,
        responses={200: BatchSerializer},
        examples=examples.BATCH_APPROVE,
    )
    def post(self, request, batch_id: str):
        return super().post(request, batch_id)

    def run(self, request, batch):
        return batch_approve(batch=batch, api_key=request.auth)


class BatchCancelView(BatchActionView):
    problem_statuses = {
        "POST": {409: "`invalid_state`: a validating, rejected, completed or cancelled batch."}
    }
    problem_examples = {"POST": examples.BATCH_CANCEL_PROBLEM}

    @extend_schema(
        operation_id="batches_cancel",
        tags=TAGS,
        summary="Cancel a batch",
        description=(
            "Before execution the batch is cancelled. While processing, payments not yet submitted are "
            "cancelled and the batch completes with the rest (`cancel_requested`)."
        ),
        parameters=[BATCH_ID],
        request=None,
        responses={200: BatchSerializer},
        examples=examples.BATCH_CANCEL,
    )
    def post(self, request, batch_id: str):
        return super().post(request, batch_id)

    def run(self, request, batch):
        return batch_cancel(batch=batch, api_key=request.auth)


class BatchReportView(APIView):
    content_negotiation_class = AnyFormatNegotiation

    @extend_schema(
        operation_id="batches_report",
        tags=TAGS,
        summary="The result file of a batch",
        description=(
            "CSV, one line per input row with the payment's status or the row's error "
            "(cells that a spreadsheet would run as formulas are neutralised), or with "
            "`format=pain.002` an ISO 20022 pain.002 status report."
        ),
        parameters=[
            BATCH_ID,
            OpenApiParameter("format", str, enum=["csv", "pain.002"], description="Default csv."),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(str),
            (200, "application/xml"): OpenApiResponse(str),
        },
        examples=examples.BATCH_REPORT,
    )
    def get(self, request, batch_id: str):
        reject_repeated(request, ("format",))
        batch = scoped_batch(request, batch_id)
        kind = request.query_params.get("format", "csv")
        if kind == "pain.002":
            return _stream(
                batch_reports.iter_pain002_report(batch), "application/xml", f"{batch.public_id}-pain.002.xml"
            )
        if kind != "csv":
            raise exceptions.ValidationError({"format": [_("Use csv or pain.002.")]})
        return _stream(
            batch_reports.iter_results_csv(batch), "text/csv; charset=utf-8", f"{batch.public_id}-results.csv"
        )


class BatchBankFileView(APIView):
    problem_statuses = {
        "GET": {
            404: "`no_bank_file`: the batch pays nothing through the bank-file rail.",
            409: "`bank_file_not_ready`: its payments are still being submitted.",
        }
    }
    problem_examples = {"GET": examples.BANK_FILE_PROBLEMS}

    @extend_schema(
        operation_id="batches_bank_file",
        tags=TAGS,
        summary="The bank file of a batch",
        description=(
            "The ISO 20022 pain.001.001.09 credit-transfer file of the batch's bank-transfer payments "
            "(the `bank_file` rail), written once all of them are submitted: send it to the bank, then "
            "upload the bank's pain.002 / camt.054 to POST /bank-reports."
        ),
        parameters=[BATCH_ID],
        responses={(200, "application/xml"): OpenApiResponse(str)},
        examples=examples.BANK_FILE,
    )
    def get(self, request, batch_id: str):
        batch = scoped_batch(request, batch_id)
        bank_file = BankFile.objects.filter(batch=batch).first()
        if bank_file is None:
            return _problem(404, "no_bank_file", _("This batch pays nothing through the bank-file rail."))
        try:
            path = bank_file_path(bank_file)
        except BankFileNotReady:
            return _problem(
                409, "bank_file_not_ready", _("The bank file is written once every payment is submitted.")
            )
        response = FileResponse(open(path, "rb"), content_type="application/xml")  # noqa: SIM115
        response["Content-Disposition"] = f'attachment; filename="{bank_file.msg_id}.xml"'
        return response


def _problem(status_code: int, code: str, message: str) -> Response:
    response = Response(problem_body(status_code, code, message), status=status_code)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _stream(chunks, content_type: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
