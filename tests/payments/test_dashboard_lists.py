"""The payments list (issue 11): filters, batches awaiting approval kept apart, masked accounts, export."""

import csv
import io

import pytest
from django.urls import reverse

from merchants.models import Membership
from payments.services.payments import payment_create
from tests.factories import MembershipFactory, UserFactory, payment_input
from tests.payments.conftest import login
from tests.payments.test_batch_support import media  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media")]


def test_payments_of_a_batch_awaiting_approval_are_left_out_and_labelled(
    carol, uploaded, merchant_a, sandbox_wire
):
    batch = uploaded()
    payment_create(merchant=merchant_a, data=payment_input(reference="SINGLE-1"))
    client = login(carol)
    page = client.get(reverse("dashboard:payment_list")).content.decode()
    assert "SINGLE-1" in page and "PAY-00001" not in page
    shown = client.get(reverse("dashboard:payment_list"), {"unapproved": "on"}).content.decode()
    assert "PAY-00001" in shown and "Awaiting batch approval" in shown
    by_batch = client.get(reverse("dashboard:payment_list"), {"batch": batch.public_id}).content.decode()
    assert "PAY-00001" in by_batch and "SINGLE-1" not in by_batch


def test_filters_by_method_amount_beneficiary_status_and_date(client, alice, merchant_a, sandbox_wire):
    payment_create(merchant=merchant_a, data=payment_input(reference="SMALL", amount="5.00"))
    payment_create(
        merchant=merchant_a, data=payment_input(reference="BIG", amount="500.00", beneficiary_name="Zed Q")
    )
    payment_create(
        merchant=merchant_a,
        data=payment_input(reference="DECLINED", amount="50.00", beneficiary_account="4000000000000002"),
    )
    client.force_login(alice)
    url = reverse("dashboard:payment_list")

    def refs(**params):
        body = client.get(url, params).content.decode()
        return {r for r in ("SMALL", "BIG", "DECLINED") if f">{r}<" in body}

    assert refs(currency="USD", amount_min="10.00") == {"BIG", "DECLINED"}
    assert refs(currency="USD", amount_min="10", amount_max="100") == {"DECLINED"}
    assert refs(beneficiary="zed") == {"BIG"}
    assert refs(status=["failed", "cancelled"]) == {"DECLINED"}
    assert refs(status=["failed", "succeeded"]) == {"SMALL", "BIG", "DECLINED"}
    assert refs(method="alipay") == set()
    assert refs(date_from="2000-01-01", date_to="2000-01-31") == set()
    assert "Choose a currency to filter by amount." in client.get(url, {"amount_min": "1"}).content.decode()


def test_rows_open_the_payment_and_accounts_are_masked(client, alice, merchant_a, sandbox_wire):
    payment = payment_create(merchant=merchant_a, data=payment_input(beneficiary_account="4000000000009876"))
    client.force_login(alice)
    page = client.get(reverse("dashboard:payment_list")).content.decode()
    assert "4000000000009876" not in page and "\u2022\u2022\u2022\u2022 9876" in page
    detail = reverse("dashboard:payment_detail", args=[payment.public_id])
    assert f'class="stretched-link fw-semibold text-break" href="{detail}"' in page


def test_export_streams_the_filtered_list_formula_safe(client, alice, merchant_a, sandbox_wire):
    payment_create(
        merchant=merchant_a, data=payment_input(reference="KEEP", beneficiary_name="=HYPERLINK(1)")
    )
    payment_create(merchant=merchant_a, data=payment_input(reference="DROP", amount="1.00"))
    client.force_login(alice)
    response = client.get(reverse("dashboard:payment_export_csv"), {"currency": "USD", "amount_min": "10"})
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [r["reference"] for r in rows] == ["KEEP"]
    assert rows[0]["beneficiary_name"] == "'=HYPERLINK(1)" and rows[0]["amount"] == "12.50"
    # An owner may reveal, so gets the full number (a stepped-up, audited export: docs/privacy.md).
    assert rows[0]["beneficiary_account"] == "4000000000001234"
    refused = client.get(reverse("dashboard:payment_export_csv"), {"amount_min": "10"})  # no currency
    assert refused.status_code == 400


def test_a_viewer_exports_masked_accounts(merchant_a, sandbox_wire):
    viewer = UserFactory(username="vic@a.example")
    MembershipFactory(user=viewer, merchant=merchant_a, role=Membership.Role.VIEWER)
    payment_create(merchant=merchant_a, data=payment_input())
    response = login(viewer).get(reverse("dashboard:payment_export_csv"))
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "4000000000001234" not in body and "\u2022\u2022\u2022\u2022 1234" in body


def _xlsx(response):
    import openpyxl

    assert response.streaming
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    cells = list(sheet.iter_rows())
    header = [c.value for c in cells[0]]
    return header, [dict(zip(header, row, strict=True)) for row in cells[1:]]


def test_xlsx_export_gives_the_filtered_rows_typed_and_never_a_formula(
    client, alice, merchant_a, sandbox_wire
):
    from datetime import datetime

    payment_create(
        merchant=merchant_a,
        data=payment_input(reference="KEEP", beneficiary_name="=HYPERLINK(1)", description="x"),
    )
    payment_create(
        merchant=merchant_a, data=payment_input(reference="KEEP2", beneficiary_name="@SUM(1)", amount="99.00")
    )
    payment_create(merchant=merchant_a, data=payment_input(reference="DROP", amount="1.00"))
    payment_create(merchant=merchant_a, data=payment_input(reference="JPY-1", amount="1200", currency="JPY"))
    client.force_login(alice)
    query = {"currency": "USD", "amount_min": "10"}
    header, rows = _xlsx(client.get(reverse("dashboard:payment_export_xlsx"), query))
    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(client.get(reverse("dashboard:payment_export_csv"), query).streaming_content).decode(
                    "utf-8-sig"
                )
            )
        )
    )
    assert header == list(csv_rows[0].keys())  # the same columns as the CSV
    assert [r["reference"].value for r in rows] == ["KEEP2", "KEEP"]
    assert [r["id"].value for r in rows] == [r["id"] for r in csv_rows]  # the same rows, same order
    by_ref = {r["reference"].value: r for r in rows}
    for cell in (
        by_ref["KEEP"]["beneficiary_name"],
        by_ref["KEEP2"]["beneficiary_name"],
    ):
        assert cell.data_type == "s"  # a string cell, never a formula
    assert by_ref["KEEP"]["beneficiary_name"].value == "=HYPERLINK(1)"
    amount = by_ref["KEEP"]["amount"]
    assert amount.data_type == "n" and amount.value == 12.5 and amount.number_format == "0.00"
    assert isinstance(by_ref["KEEP"]["created_at"].value, datetime)
    assert by_ref["KEEP"]["beneficiary_account"].value == "4000000000001234"  # an owner, stepped up
    _header, jpy = _xlsx(client.get(reverse("dashboard:payment_export_xlsx"), {"currency": "JPY"}))
    assert jpy[0]["amount"].value == 1200 and jpy[0]["amount"].number_format == "0"
    refused = client.get(reverse("dashboard:payment_export_xlsx"), {"amount_min": "10"})  # no currency
    assert refused.status_code == 400


def test_a_viewer_exports_masked_accounts_in_xlsx_too(merchant_a, sandbox_wire):
    viewer = UserFactory(username="vic@a.example")
    MembershipFactory(user=viewer, merchant=merchant_a, role=Membership.Role.VIEWER)
    payment_create(merchant=merchant_a, data=payment_input())
    _header, rows = _xlsx(login(viewer).get(reverse("dashboard:payment_export_xlsx")))
    assert [r["beneficiary_account"].value for r in rows] == ["\u2022\u2022\u2022\u2022 1234"]
