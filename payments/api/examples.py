"""Examples of every API request and response body, as shown in the OpenAPI schema and Swagger UI.

Request examples work as they are: "Try it out" in /api/docs/ against
`make run` (the demo merchant, its key) gets the answer documented under the
same name. tests/api/test_schema_examples.py sends every request example to
the API and expects the status of the response example with its name.

Response examples are real answers of the API, with fixed ids and times.
"""

from __future__ import annotations

import json

from drf_spectacular.utils import OpenApiExample

from payments.api.problem_json import problem_body
from payments.api.request_limits import HEADERS_TOO_LARGE, URI_TOO_LONG, oversized_problem

PAYMENT_ID = "pay_4kQ9xv2LmN8sTb3RcW7yZpHd"
BATCH_ID = "bat_7Hc2Vn5QpLx8RtZ3kMw9Ys1D"
REFUND_ID = "ref_2Jd8Wq4NzKc6Pv1TxRb5Lm3H"
ENDPOINT_ID = "whe_9Fs3Kx7BvQn2Mc5Lw8Rt4Zy1"
KEY_ID = "key_5Tz8Qm2Wc7Lx1Nv4Rb9Hd3Kp"
APPROVER_KEY_ID = "key_8Gm4Pw1Zr6Nc3Vx9Ks2Lb7Qd"
EVENT_IDS = ("evt_1Qa7Zx3Nc9Vb5Mk2Lp8Rt4Sd", "evt_6Wd2Yh8Jn4Kf1Ps7Gq3Xc9Bv", "evt_3Lm9Tc5Rw1Hx7Nb2Qz8Vk4Jp")
T0 = "2026-11-28T09:15:02.418305+00:00"
T1 = "2026-11-28T09:15:03.102771+00:00"
T2 = "2026-11-28T09:15:04.655120+00:00"
LIST_URL = "https://paydesk.example.com/api/v1/"


def payment(**changes) -> dict:
    """The card payment of the "Card payment" request, as the API shows it (changes applied)."""
    data = {
        "id": PAYMENT_ID,
        "object": "payment",
        "reference": "ORDER-1001",
        "amount": "49.90",
        "currency": "USD",
        "method": "card",
        "direction": "payout",
        "beneficiary_name": "Ada Lovelace",
        "beneficiary_account": "4000000000001234",
        "beneficiary_email": "ada@example.com",
        "beneficiary_phone": "",
        "description": "Order 1001",
        "metadata": {"order_id": "1001"},
        "status": "processing",
        "failure_code": None,
        "failure_message": None,
        "next_action": None,
        "batch": None,
        "refunded_amount": "0.00",
        "created_at": T0,
        "updated_at": T0,
    }
    data.update(changes)
    return data


def listed(items: list, resource: str) -> dict:
    """The list envelope around `items` (one page, more to come)."""
    cursor = "a.1795849502418305." + (items[-1]["id"] if items else "x")
    return {
        "object": "list",
        "data": items,
        "has_more": True,
        "next_cursor": cursor,
        "previous_cursor": None,
        "next": f"{LIST_URL}{resource}?cursor={cursor}",
        "previous": None,
    }


def problem(status: int, code: str, detail: str, errors: list | None = None) -> dict:
    return problem_body(status, code, detail, errors=errors)


def request(name: str, value, summary: str, media_type: str = "application/json") -> OpenApiExample:
    return OpenApiExample(name, value=value, summary=summary, request_only=True, media_type=media_type)


def response(name: str, value, status: int = 200, summary: str = "", media_type: str = "application/json"):
    return OpenApiExample(
        name,
        value=value,
        summary=summary or name,
        response_only=True,
        status_codes=[str(status)],
        media_type=media_type,
    )


# Payments ----------------------------------------------------------------------------------

CARD_PAYMENT = {
    "reference": "ORDER-1001",
    "amount": "49.90",
    "currency": "USD",
    "method": "card",
    "beneficiary_name": "Ada Lovelace",
    "beneficiary_account": "4000000000001234",
    "beneficiary_email": "ada@example.com",
    "description": "Order 1001",
    "metadata": {"order_id": "1001"},
}
DECLINED_PAYMENT = {
    "reference": "ORDER-1002",
    "amount": "15000",
    "currency": "JPY",
    "method": "card",
    "beneficiary_name": "Sato Kenji",
    "beneficiary_account": "4000000000000002",
}
INVALID_AMOUNT = {**CARD_PAYMENT, "reference": "ORDER-1003", "amount": "49.999"}
AMOUNT_ERROR = "Use a decimal string greater than zero with at most 2 decimals for USD, such as 12.5."

PAYMENT_CREATE = [
    request(
        "Card payment",
        CARD_PAYMENT,
        "A card payment; the sandbox settles it a moment later (account ending 1234: success)",
    ),
    request(
        "Declined card",
        DECLINED_PAYMENT,
        "Yen have no decimals; with the sandbox, an account ending 0002 is declined after submission",
    ),
    request("Invalid amount", INVALID_AMOUNT, "Three decimals for USD: refused, nothing is stored"),
    response("Card payment", payment(), 201, "Submitted: processing until the gateway answers"),
    response(
        "Declined card",
        payment(
            reference="ORDER-1002",
            amount="15000",
            currency="JPY",
            beneficiary_name="Sato Kenji",
            beneficiary_account="4000000000000002",
            beneficiary_email="",
            description="",
            metadata={},
            refunded_amount="0",
        ),
        201,
        "Submitted: the decline arrives by callback (payment.failed, card_declined)",
    ),
]
PAYMENT_CREATE_PROBLEMS = {
    409: {
        "Duplicate reference": problem(
            409,
            "duplicate_reference",
            "A payment with this reference already exists.",
            [
                {
                    "field": "reference",
                    "code": "duplicate_reference",
                    "message": "A payment with this reference already exists.",
                }
            ],
        )
    },
    422: {
        "Invalid amount": problem(
            422,
            "validation_error",
            "The request has invalid fields.",
            [{"field": "amount", "code": "invalid_amount", "message": AMOUNT_ERROR}],
        )
    },
}
PAYMENT_LIST = [response("Payments", listed([payment(status="succeeded", updated_at=T2)], "payments"))]
PAYMENT_DETAIL = [response("Succeeded payment", payment(status="succeeded", updated_at=T2))]
PAYMENT_CANCEL = [
    response(
        "Cancelled payment",
        payment(
            reference="ORDER-1004",
            beneficiary_account="4000000000003155",
            status="cancelled",
            updated_at=T2,
        ),
        summary="A payment awaiting the customer's authentication, cancelled",
    )
]
PAYMENT_STATE_PROBLEM = {
    409: {"Invalid state": problem(409, "invalid_state", "A payment that is processing cannot be cancelled.")}
}

# Refunds -----------------------------------------------------------------------------------

REFUND = {
    "id": REFUND_ID,
    "object": "refund",
    "payment": PAYMENT_ID,
    "amount": "10.00",
    "currency": "USD",
    "reason": "Damaged item",
    "status": "pending",
    "failure_code": None,
    "created_at": T2,
}
REFUND_CREATE = [
    request("Partial refund", {"amount": "10.00", "reason": "Damaged item"}, "Refund part of a payment"),
    request("Full refund", {"reason": "Order cancelled"}, "No amount: refund all that is left"),
    response("Partial refund", REFUND, 201, "Pending until the gateway confirms (refund.succeeded)"),
    response(
        "Full refund",
        {**REFUND, "amount": "49.90", "reason": "Order cancelled"},
        201,
        "Everything still refundable",
    ),
]
REFUND_PROBLEMS = {
    409: {
        "Not refundable": problem(409, "invalid_state", "A payment that is processing cannot be refunded.")
    },
    422: {
        "Too much": problem(
            422,
            "validation_error",
            "The request has invalid fields.",
            [
                {
                    "field": "amount",
                    "code": "exceeds_refundable",
                    "message": "At most 39.90 USD can still be refunded.",
                }
            ],
        )
    },
}
REFUND_LIST = [response("Refunds", listed([{**REFUND, "status": "succeeded"}], "payments/{id}/refunds"))]

# Events ------------------------------------------------------------------------------------


def event(event_id: str, type: str, status: str, created_at: str) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": type,
        "payment": PAYMENT_ID,
        "data": {"object": payment(status=status, updated_at=created_at)},
        "created_at": created_at,
    }


EVENTS = [
    event(EVENT_IDS[0], "payment.created", "created", T0),
    event(EVENT_IDS[1], "payment.processing", "processing", T0),
    event(EVENT_IDS[2], "payment.succeeded", "succeeded", T2),
]
PAYMENT_EVENTS = [response("Timeline", listed(EVENTS, "payments/{id}/events"), summary="Oldest first")]
EVENT_LIST = [response("Events", listed(EVENTS[::-1], "events"), summary="Newest first")]
EVENT_DETAIL = [response("Payment succeeded", EVENTS[2])]

# Batches -----------------------------------------------------------------------------------

BATCH_CSV = (
    "reference,amount,currency,method,beneficiary_name,beneficiary_account,description\r\n"
    "PAYROLL-2026-12-001,2150.00,EUR,bank_transfer,Jean Dupont,FR7630006000011234567890189,Salary\r\n"
    "PAYROLL-2026-12-002,1980.50,EUR,bank_transfer,Maria Garcia,ES9121000418450200051332,Salary\r\n"
    "PAYROLL-2026-12-003,12.345,EUR,bank_transfer,Lena Weber,DE89370400440532013000,Salary\r\n"
    "PAYROLL-2026-12-001,10.00,EUR,bank_transfer,Jean Dupont,FR7630006000011234567890189,Bonus\r\n"
)
BATCH_ITEMS = {
    "name": "Supplier payouts December",
    "items": [
        {
            "reference": "SUPPLIER-2026-12-001",
            "amount": "1250.00",
            "currency": "USD",
            "method": "card",
            "beneficiary_name": "Acme Supplies",
            "beneficiary_account": "4000000000001234",
        },
        {
            "reference": "SUPPLIER-2026-12-002",
            "amount": "310.75",
            "currency": "USD",
            "method": "card",
            "beneficiary_name": "Gadget Hub",
            "beneficiary_account": "4000000000004242",
        },
    ],
}


def batch(**changes) -> dict:
    data = {
        "id": BATCH_ID,
        "object": "batch",
        "name": "Payroll December",
        "status": "validated",
        "format": "csv",
        "file_name": "payroll-2026-12.csv",
        "file_size": len(BATCH_CSV),
        "file_sha256": "5d0c3f9e4b1a7c2d8e6f0a9b3c5d7e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d",
        "encoding": "utf-8",
        "message_id": None,
        "row_count": 4,
        "valid_count": 2,
        "error_count": 2,
        "totals": {"EUR": {"count": 2, "amount": "4130.50"}},
        "outcomes": {},
        "rejection": None,
        "cancel_requested": False,
        "funding_account": None,
        "execution_date": None,
        "bank_file": None,
        "uploaded_by": None,
        "uploaded_by_key": KEY_ID,
        "approved_by": None,
        "approved_by_key": None,
        "approved_at": None,
        "created_at": T0,
        "updated_at": T1,
        "validated_at": T1,
        "started_at": None,
        "completed_at": None,
    }
    data.update(changes)
    return data


VALIDATING = {
    "status": "validating",
    "row_count": 0,
    "valid_count": 0,
    "error_count": 0,
    "totals": {},
    "encoding": None,
    "updated_at": T0,
    "validated_at": None,
}
BATCH_CREATE = [
    request(
        "CSV file",
        {"file": BATCH_CSV, "name": "Payroll December"},
        "A CSV file with a header row (also XLSX, pain.001 XML, GB18030, UTF-16)",
        media_type="multipart/form-data",
    ),
    request("JSON items", BATCH_ITEMS, "Payments with the fields of POST /payments"),
    response(
        "CSV file",
        batch(**VALIDATING, format=None),
        201,
        "Accepted; a worker detects the format and validates every row",
    ),
    response(
        "JSON items",
        batch(
            **VALIDATING,
            name="Supplier payouts December",
            format="json",
            file_name="items.json",
            file_size=337,
            file_sha256="ade97ca01b39c177ad03b60dcccdef9db32c753db5cc95fb814b2008fa56fcad",
        ),
        201,
        "Accepted; a worker validates it",
    ),
]
BATCH_CREATE_PROBLEMS = {
    409: {
        "Duplicate file": {
            **problem(
                409,
                "duplicate_file",
                f"This file was already uploaded on 2026-11-28 09:15 as batch {BATCH_ID}.",
            ),
            "duplicate_of": BATCH_ID,
            "duplicate_of_url": f"{LIST_URL}batches/{BATCH_ID}",
        }
    }
}
BATCH_LIST = [response("Batches", listed([batch()], "batches"))]
BATCH_DETAIL = [response("Validated batch", batch(), summary="Validated, waiting for approval")]
BATCH_APPROVE = [
    response(
        "Approved batch",
        batch(status="approved", approved_by_key=APPROVER_KEY_ID, approved_at=T2, updated_at=T2),
        summary="Approved: workers execute it in chunks",
    )
]
BATCH_CANCEL = [response("Cancelled batch", batch(status="cancelled", updated_at=T2))]
BATCH_PAYMENTS = [
    response(
        "Batch payments",
        listed(
            [
                payment(
                    reference="PAYROLL-2026-12-001",
                    amount="2150.00",
                    currency="EUR",
                    method="bank_transfer",
                    beneficiary_name="Jean Dupont",
                    beneficiary_account="FR7630006000011234567890189",
                    beneficiary_email="",
                    description="Salary",
                    metadata={"batch_line": 2},
                    status="created",
                    batch=BATCH_ID,
                )
            ],
            "batches/{id}/payments",
        ),
    )
]
ROW_ERRORS = [
    {
        "line": 4,
        "column": "amount",
        "code": "too_many_decimals",
        "message": "EUR amounts allow at most 2 decimal places.",
    },
    {
        "line": 5,
        "column": "reference",
        "code": "duplicate_reference",
        "message": "This reference appears earlier in the file.",
    },
]
ERRORS_CSV = "line,column,code,message\r\n" + "".join(
    f"{e['line']},{e['column']},{e['code']},{e['message']}\r\n" for e in ROW_ERRORS
)
BATCH_ERRORS = [
    response(
        "Row errors",
        {
            "object": "list",
            "data": ROW_ERRORS,
            "has_more": False,
            "next_cursor": None,
            "previous_cursor": None,
            "next": None,
            "previous": None,
        },
        summary="In file order; a `cursor` pages through many",
    ),
    response(
        "Row errors as CSV", ERRORS_CSV, summary="With format=csv (UTF-8 with BOM)", media_type="text/csv"
    ),
]
RESULTS_CSV = (
    "line,reference,amount,currency,method,beneficiary_name,beneficiary_account,status,payment_id,"
    "failure_code,failure_message\r\n"
    "2,PAYROLL-2026-12-001,2150.00,EUR,bank_transfer,Jean Dupont,FR7630006000011234567890189,succeeded,"
    f"{PAYMENT_ID},,\r\n"
    "3,PAYROLL-2026-12-002,1980.50,EUR,bank_transfer,Maria Garcia,ES9121000418450200051332,succeeded,"
    "pay_8Rt2Lq5Wx9Kc3Nv7Bm1Zs4Hd,,\r\n"
    "4,PAYROLL-2026-12-003,,,,,,invalid,,too_many_decimals,amount: EUR amounts allow at most 2 decimal "
    "places.\r\n"
    "5,PAYROLL-2026-12-001,,,,,,invalid,,duplicate_reference,reference: This reference appears earlier "
    "in the file.\r\n"
)


def _pain002_transaction(reference: str, error: dict | None = None) -> str:
    if error is None:
        return f"<TxInfAndSts><OrgnlEndToEndId>{reference}</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>"
    return (
        f"<TxInfAndSts><OrgnlEndToEndId>{reference}</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf>"
        f"<Rsn><Prtry>{error['code']}</Prtry></Rsn><AddtlInf>{error['message']}</AddtlInf></StsRsnInf>"
        "</TxInfAndSts>"
    )


PAIN002 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>'
    f"<GrpHdr><MsgId>STS-{BATCH_ID}</MsgId><CreDtTm>2026-11-28T09:20:00+00:00</CreDtTm></GrpHdr>"
    f"<OrgnlGrpInfAndSts><OrgnlMsgId>{BATCH_ID}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId>"
    "<OrgnlNbOfTxs>4</OrgnlNbOfTxs><GrpSts>PART</GrpSts>"
    "<NbOfTxsPerSts><DtldNbOfTxs>2</DtldNbOfTxs><DtldSts>ACSC</DtldSts></NbOfTxsPerSts>"
    "<NbOfTxsPerSts><DtldNbOfTxs>2</DtldNbOfTxs><DtldSts>RJCT</DtldSts></NbOfTxsPerSts>"
    "</OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><OrgnlPmtInfId>NOTPROVIDED</OrgnlPmtInfId>"
    + _pain002_transaction("PAYROLL-2026-12-001")
    + _pain002_transaction("PAYROLL-2026-12-002")
    + _pain002_transaction("PAYROLL-2026-12-003", ROW_ERRORS[0])
    + _pain002_transaction("PAYROLL-2026-12-001", ROW_ERRORS[1])
    + "</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"
)
BATCH_REPORT = [
    response(
        "Result file", RESULTS_CSV, summary="One line per input row (UTF-8 with BOM)", media_type="text/csv"
    ),
    response("pain.002 status report", PAIN002, summary="With format=pain.002", media_type="application/xml"),
]
BATCH_APPROVE_PROBLEM = {
    409: {"Invalid state": problem(409, "invalid_state", "A batch that is validating cannot be approved.")}
}
BATCH_CANCEL_PROBLEM = {
    409: {"Invalid state": problem(409, "invalid_state", "A batch that is completed cannot be cancelled.")}
}

# Webhook endpoints -------------------------------------------------------------------------

ENDPOINT = {
    "id": ENDPOINT_ID,
    "url": "https://example.com/webhooks/paydesk",
    "events": ["payment.succeeded", "payment.failed"],
    "description": "Order system",
    "status": "enabled",
}
EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqXvuWq3sT1N0d5aFq8bC2eR7hJk4mPz6w="  # noqa: S105 - a documentation example
ENDPOINT_CREATE = [
    request(
        "Endpoint",
        {k: ENDPOINT[k] for k in ("url", "events", "description")},
        "Receive succeeded and failed payments",
    ),
    response("Endpoint", {**ENDPOINT, "secret": EXAMPLE_SECRET}, 201, "The secret is shown only now"),
]
ENDPOINT_LIST = [response("Endpoints", listed([ENDPOINT], "webhook-endpoints"))]
ENDPOINT_DETAIL = [response("Endpoint", ENDPOINT)]
ENDPOINT_UPDATE = [
    request("Disable", {"status": "disabled"}, "Stop sending to this endpoint"),
    response("Disable", {**ENDPOINT, "status": "disabled"}),
]
ENDPOINT_ROTATE = [
    response(
        "New secret",
        {**ENDPOINT, "secret": "whsec_3nVt8LwQz1Xc5Rk9Pb2Hs7Dy4Fm6Jg0Ua8Ne1Tq5Wo="},
        summary="The old secret keeps signing for 24 hours",
    )
]

# Problems every operation may answer (payments/api/schema.py adds them per status) ---------

COMMON_PROBLEMS: dict[int, dict[str, dict]] = {
    400: {
        "Malformed JSON": problem(
            400,
            "parse_error",
            "JSON parse error - Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        "Invalid query parameter": problem(
            400,
            "validation_error",
            "The request has invalid fields.",
            [
                {
                    "field": "limit",
                    "code": "max_value",
                    "message": "Ensure this value is less than or equal to 100.",
                }
            ],
        ),
        "Repeated query parameter": problem(
            400,
            "repeated_parameter",
            "Give each of these query parameters once: limit.",
            [
                {
                    "field": "limit",
                    "code": "repeated_parameter",
                    "message": "This query parameter is given more than once; give it once.",
                }
            ],
        ),
    },
    401: {"Invalid API key": problem(401, "invalid_api_key", "Invalid or revoked API key.")},
    403: {
        "Insufficient scope": problem(
            403, "insufficient_scope", "This API key lacks the scope this request needs."
        )
    },
    404: {"Not found": problem(404, "not_found", "No such object.")},
    406: {"Not acceptable": problem(406, "not_acceptable", "Could not satisfy the request Accept header.")},
    409: {
        "Request in progress": problem(
            409,
            "idempotency_request_in_progress",
            "A request with this Idempotency-Key is still being processed; retry later.",
        )
    },
    413: {"Too large": problem(413, "payload_too_large", "The request body is too large.")},
    URI_TOO_LONG: {"URI too long": json.loads(oversized_problem(URI_TOO_LONG))},
    HEADERS_TOO_LARGE: {"Headers too large": json.loads(oversized_problem(HEADERS_TOO_LARGE))},
    415: {
        "Not JSON": problem(
            415,
            "unsupported_media_type",
            'Unsupported media type "application/x-www-form-urlencoded" in request.',
        )
    },
    422: {
        "Key reused": problem(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request (another body, method or "
            "path). Use a new key for a new request.",
        )
    },
    429: {
        "Rate limited": problem(
            429, "rate_limited", "Request was throttled. Expected available in 38 seconds."
        )
    },
    500: {"Server error": problem(500, "server_error", "An unexpected error occurred.")},
}

# Payout rails: bank files and bank reports -------------------------------------------------

BANK_FILE = [
    response(
        "pain.001 bank file",
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"><CstmrCdtTrfInitn>'
        "<GrpHdr><MsgId>PD20261201A1B2C3</MsgId><CreDtTm>2026-12-01T09:00:00+00:00</CreDtTm>"
        "<NbOfTxs>2</NbOfTxs><CtrlSum>4130.50</CtrlSum><InitgPty><Nm>Acme GmbH</Nm></InitgPty></GrpHdr>"
        "<PmtInf>...</PmtInf></CstmrCdtTrfInitn></Document>\n",
        summary="The credit transfers of the batch's bank-transfer payments (abridged)",
        media_type="application/xml",
    )
]
BANK_FILE_PROBLEMS = {
    404: {
        "No bank file": problem(404, "no_bank_file", "This batch pays nothing through the bank-file rail.")
    },
    409: {
        "Not ready": problem(
            409, "bank_file_not_ready", "The bank file is written once every payment is submitted."
        )
    },
}
BANK_REPORT_PAIN002 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>'
    "<GrpHdr><MsgId>BANK-STS-20261202</MsgId><CreDtTm>2026-12-02T08:00:00</CreDtTm></GrpHdr>"
    "<OrgnlGrpInfAndSts><OrgnlMsgId>PD20261201A1B2C3</OrgnlMsgId>"
    "<OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>"
    "<OrgnlPmtInfAndSts><OrgnlPmtInfId>PMT-1</OrgnlPmtInfId>"
    "<TxInfAndSts><OrgnlEndToEndId>PAYROLL-2026-12-001</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>"
    "<TxInfAndSts><OrgnlEndToEndId>PAYROLL-2026-12-002</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
    "<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf></TxInfAndSts>"
    "</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>\n"
)
BANK_REPORT_CREATE = [
    request(
        "pain.002 status report",
        {"file": BANK_REPORT_PAIN002},
        "The bank's answer to a bank file: one payment accepted, one rejected (AC04, closed account)",
        media_type="multipart/form-data",
    ),
    response(
        "pain.002 status report",
        {
            "id": "brp_7Hq2Lm9Xc4Vb8Nz1Kd5Rt3Wy",
            "kind": "pain.002",
            "matched": 0,
            "unmatched": ["PAYROLL-2026-12-001", "PAYROLL-2026-12-002"],
            "duplicates": 0,
            "errors": [],
        },
        201,
        "Counts of what the report did; EndToEndIds no payment carries are listed, never guessed",
    ),
]
