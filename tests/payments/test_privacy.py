"""Beneficiary data protected at rest and in every output (issue 13): encryption, keyed hash, masking."""

import csv
import io
import json
import logging
import re
import time

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db.models import TextField, Value
from django.db.models.functions import Cast
from django.test import Client
from django.urls import reverse

from config.logs import AccountNumbersMasked, mask_accounts
from merchants.accounts.policy import VERIFIED_AT_SESSION_KEY
from merchants.audit import AuditEntry
from merchants.crypto import field_hash
from merchants.models import GatewayAccount, Membership, WebhookEndpoint
from merchants.services import merchant_set_full_beneficiary_data
from payments.channels.webhook import webhook_body
from payments.models import Delivery, Event, Payment
from payments.services.batches.reports import result_rows
from payments.services.notifications.endpoints import webhook_endpoint_create
from payments.services.payments import payment_create
from payments.validation import PaymentInvalid, is_raw_card_number
from tests.api.conftest import Api
from tests.factories import MembershipFactory, PaymentFactory, UserFactory, make_api_key, payment_input
from tests.payments.test_batch_support import csv_bytes, media, rows, upload  # noqa: F401

pytestmark = [pytest.mark.django_db]

IBAN = "GB29NWBK60161331926819"
MASKED_IBAN = "\u2022\u2022\u2022\u2022 6819"


def raw_columns(payment_pk: int) -> tuple[str, str, str]:
    """What the database holds for the three encrypted columns (the field would decrypt them)."""
    return (
        Payment.objects.filter(pk=payment_pk)
        .values_list(
            Cast("beneficiary_account", TextField()),
            Cast("beneficiary_email", TextField()),
            Cast("beneficiary_phone", TextField()),
        )
        .get()
    )


def create(merchant, **overrides):
    data = payment_input(**{"method": "bank_transfer", "beneficiary_account": IBAN, **overrides})
    return payment_create(merchant=merchant, data=data)


def test_account_email_and_phone_are_stored_encrypted_with_hash_and_last_four(merchant_a):
    payment = create(merchant_a, beneficiary_email="ada@example.com", beneficiary_phone="+44 20 7946 0958")
    account, email, phone = raw_columns(payment.pk)
    for token, plain in ((account, IBAN), (email, "ada@example.com"), (phone, "+44 20 7946 0958")):
        assert token.startswith("gAAAAA") and plain not in token
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.beneficiary_account == IBAN  # decrypted for the code that needs it (gateways)
    assert stored.beneficiary_account_hash == field_hash(IBAN) and len(stored.beneficiary_account_hash) == 64
    assert stored.beneficiary_account_last4 == "6819"
    assert stored.beneficiary_account_masked == MASKED_IBAN


def test_filtering_on_an_encrypted_field_is_refused_not_silently_empty(merchant_a):
    create(merchant_a)
    with pytest.raises(FieldError):
        list(Payment.objects.filter(beneficiary_account=IBAN))


def test_the_keyed_hash_ignores_spaces_and_case_and_depends_on_the_key(settings):
    assert field_hash("gb29 nwbk 6016 1331 9268 19") == field_hash(IBAN)
    before = field_hash(IBAN)
    settings.FIELD_HASH_KEY = "another key"
    assert field_hash(IBAN) != before


def test_api_answers_event_data_and_webhooks_carry_the_masked_account(
    merchant_a, django_capture_on_commit_callbacks
):
    api = Api(make_api_key(merchant_a))
    webhook_endpoint_create(merchant=merchant_a, url="http://127.0.0.1:9/hook", events=[])
    with django_capture_on_commit_callbacks():
        answer = api.post(
            "/api/v1/payments",
            payment_input(
                method="bank_transfer", beneficiary_account=IBAN, beneficiary_email="ada@example.com"
            ),
        )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["beneficiary_account"] == MASKED_IBAN
    assert body["beneficiary_email"] == "a\u2022\u2022\u2022\u2022@example.com"
    assert api.get(f"/api/v1/payments/{body['id']}").json()["beneficiary_account"] == MASKED_IBAN
    events = Event.objects.filter(payment__public_id=body["id"])
    assert events and all(e.data["object"]["beneficiary_account"] == MASKED_IBAN for e in events)
    assert all(IBAN not in json.dumps(e.data) for e in events)
    delivery = Delivery.objects.filter(event__in=events, channel="webhook").first()
    assert delivery is not None
    assert IBAN not in webhook_body(delivery).decode()
    assert MASKED_IBAN in webhook_body(delivery).decode()


def test_full_beneficiary_data_setting_is_audited_and_shows_full_values_to_api_and_webhooks(
    merchant_a, alice, django_capture_on_commit_callbacks
):
    api = Api(make_api_key(merchant_a))
    webhook_endpoint_create(merchant=merchant_a, url="http://127.0.0.1:9/hook", events=[])
    merchant_set_full_beneficiary_data(merchant=merchant_a, enabled=True, user=alice)
    entry = AuditEntry.objects.get(action="merchant.full_beneficiary_data")
    assert (entry.before, entry.after, entry.actor) == (
        {"full_beneficiary_data": False},
        {"full_beneficiary_data": True},
        f"user:{alice.pk}",
    )
    with django_capture_on_commit_callbacks():
        answer = api.post("/api/v1/payments", payment_input(method="bank_transfer", beneficiary_account=IBAN))
    assert answer.json()["beneficiary_account"] == IBAN
    listed = api.get("/api/v1/payments", {"account": IBAN}).json()
    assert [p["beneficiary_account"] for p in listed["data"]] == [IBAN]
    event = Event.objects.filter(payment__public_id=answer.json()["id"]).first()
    assert event.data["object"]["beneficiary_account"] == MASKED_IBAN  # stored masked all the same
    delivery = Delivery.objects.filter(event=event, channel="webhook").get()
    assert json.loads(webhook_body(delivery))["data"]["beneficiary_account"] == IBAN


def test_api_search_by_account_is_exact_and_scoped(merchant_a, merchant_b):
    create(merchant_a, reference="A-1")
    create(merchant_a, reference="A-2", beneficiary_account="DE89370400440532013000")
    create(merchant_b, reference="B-1")
    api = Api(make_api_key(merchant_a))
    found = api.get("/api/v1/payments", {"account": "gb29nwbk60161331926819"}).json()["data"]
    assert [p["reference"] for p in found] == ["A-1"]
    assert api.get("/api/v1/payments", {"account": "GB29NWBK6016133192681"}).json()["data"] == []


def test_dashboard_search_by_account_and_lists_show_only_the_last_four(merchant_a, alice):
    create(merchant_a, reference="A-1")
    create(merchant_a, reference="A-2", beneficiary_account="DE89370400440532013000")
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("dashboard:payment_list"), {"account": IBAN}).content.decode()
    assert "A-1" in page and "A-2" not in page
    # The rows show the last four; the full number is only what was typed, echoed by the search box
    # and by the CSV export link that carries the list's filters.
    assert MASKED_IBAN in page and f'value="{IBAN}"' in page and f"export.csv?account={IBAN}" in page
    # Every occurrence is such an echo of the query (a form value or a URL parameter), none a row.
    assert all(page[i - 1] in '="' for i in (m.start() for m in re.finditer(IBAN, page)))
    assert IBAN not in client.get(reverse("dashboard:payment_list")).content.decode()


def test_reveal_shows_one_full_account_to_an_allowed_role_and_is_audited(merchant_a, alice, bob, carol):
    payment = create(merchant_a)
    url = reverse("dashboard:payment_reveal", args=[payment.public_id])
    detail = reverse("dashboard:payment_detail", args=[payment.public_id])
    client = Client()
    client.force_login(alice)
    assert IBAN not in client.get(detail).content.decode()
    answer = client.post(url)
    assert answer.status_code == 200 and IBAN in answer.content.decode()
    assert answer["Cache-Control"] == "no-store"
    entry = AuditEntry.objects.get(action="payment.beneficiary_revealed")
    assert (entry.object_id, entry.actor, entry.merchant_id) == (
        payment.public_id,
        f"user:{alice.pk}",
        merchant_a.pk,
    )
    client.force_login(carol)  # approver: allowed
    assert client.post(url).status_code == 200
    client.force_login(bob)  # operator: not allowed, nothing revealed, nothing audited
    answer = client.post(url)
    assert answer.status_code == 403 and IBAN not in answer.content.decode()
    assert AuditEntry.objects.filter(action="payment.beneficiary_revealed").count() == 2
    assert client.get(url).status_code == 405


def test_reveal_needs_a_fresh_second_factor(merchant_a, alice):
    """Issue 10's step-up guards the reveal: a stale second factor is sent to verify, nothing shown."""
    payment = create(merchant_a)
    url = reverse("dashboard:payment_reveal", args=[payment.public_id])
    client = Client()
    client.force_login(alice)
    session = client.session
    session[VERIFIED_AT_SESSION_KEY] = time.time() - 3600
    session.save()
    answer = client.post(url)
    assert answer.status_code == 302 and reverse("accounts:two_factor_verify") in answer["Location"]
    assert IBAN not in answer.content.decode()
    assert not AuditEntry.objects.filter(action="payment.beneficiary_revealed").exists()
    session = client.session
    session[VERIFIED_AT_SESSION_KEY] = time.time()
    session.save()
    assert IBAN in client.post(url).content.decode()
    assert AuditEntry.objects.filter(action="payment.beneficiary_revealed").count() == 1


def test_reveal_of_another_merchants_payment_is_not_found(merchant_a, mallory):
    payment = create(merchant_a)
    client = Client()
    client.force_login(mallory)
    assert client.post(reverse("dashboard:payment_reveal", args=[payment.public_id])).status_code == 404


@pytest.mark.usefixtures("media")
def test_batch_rows_are_stored_encrypted_hashed_and_masked_in_the_result_csv(
    merchant_a, alice, django_capture_on_commit_callbacks
):
    batch = upload(merchant_a, csv_bytes(rows(3)), user=alice, capture=django_capture_on_commit_callbacks)
    assert batch.status == "validated", batch.rejection_reason
    payments = list(Payment.objects.filter(batch=batch))
    assert len(payments) == 3
    for payment in payments:
        assert raw_columns(payment.pk)[0].startswith("gAAAAA")
        assert payment.beneficiary_account == IBAN
        assert payment.beneficiary_account_hash == field_hash(IBAN)
    report = list(result_rows(batch))
    assert {r["beneficiary_account"] for r in report} == {MASKED_IBAN}


def test_sandbox_record_keeps_only_the_last_four(merchant_a):
    from payments.models import SandboxOperation

    create(merchant_a)
    assert list(SandboxOperation.objects.values_list("account", flat=True)) == ["6819"]


def test_the_data_migration_encrypts_plaintext_rows_and_masks_stored_event_data(merchant_a):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("payments.migrations.0017_beneficiary_privacy")
    payment = PaymentFactory(
        merchant=merchant_a, beneficiary_account=IBAN, beneficiary_email="ada@example.com"
    )
    # As the rows were before the migration: plaintext columns, no hash.
    Payment.objects.filter(pk=payment.pk).update(
        beneficiary_account=Value(IBAN, output_field=TextField()),
        beneficiary_email=Value("ada@example.com", output_field=TextField()),
        beneficiary_account_hash="",
        beneficiary_account_last4="",
    )
    event = Event.objects.create(
        merchant=merchant_a,
        payment=payment,
        type="payment.created",
        data={"object": {"beneficiary_account": IBAN, "beneficiary_email": "ada@example.com"}},
    )
    assert raw_columns(payment.pk)[0] == IBAN
    migration._protect(apps, None)
    migration._protect(apps, None)  # a second run changes nothing
    assert raw_columns(payment.pk)[0].startswith("gAAAAA")
    payment.refresh_from_db()
    assert (payment.beneficiary_account, payment.beneficiary_email) == (IBAN, "ada@example.com")
    assert payment.beneficiary_account_hash == field_hash(IBAN)
    event.refresh_from_db()
    assert event.data["object"] == {
        "beneficiary_account": MASKED_IBAN,
        "beneficiary_email": "a\u2022\u2022\u2022\u2022@example.com",
    }


def test_rotate_field_key_round_trip(merchant_a, settings):
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = key_a
    payment = create(merchant_a, beneficiary_phone="+44 20 7946 0958")
    endpoint, secret = webhook_endpoint_create(merchant=merchant_a, url="http://127.0.0.1:9/hook", events=[])
    gateway = GatewayAccount.objects.create(merchant=merchant_a, gateway="paypal", secret="pp-secret-value")
    settings.FIELD_ENCRYPTION_KEY = f"{key_b},{key_a}"
    call_command("rotate_field_key", batch_size=1, stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEY = key_b  # A retired
    payment = Payment.objects.get(pk=payment.pk)
    assert (payment.beneficiary_account, payment.beneficiary_phone) == (IBAN, "+44 20 7946 0958")
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).signing_secrets()[0] == secret
    assert GatewayAccount.objects.get(pk=gateway.pk).secret == "pp-secret-value"
    settings.FIELD_ENCRYPTION_KEY = key_a  # and A alone opens nothing any more
    with pytest.raises(Exception, match="cannot be decrypted"):
        Payment.objects.get(pk=payment.pk)


def test_rotate_field_key_recomputes_account_hashes_for_a_new_hash_key(merchant_a, settings):
    payment = create(merchant_a)
    settings.FIELD_HASH_KEY = "a new hash key"
    call_command("rotate_field_key", stdout=io.StringIO())
    assert Payment.objects.get(pk=payment.pk).beneficiary_account_hash == field_hash(IBAN)


# Cards: a token, never a card number -------------------------------------------------------


@pytest.mark.parametrize(
    "account",
    ["4242424242424242", "4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005", "6011111111111117"],
)
def test_a_raw_luhn_valid_card_number_is_refused_for_method_card(merchant_a, account):
    with pytest.raises(PaymentInvalid) as caught:
        payment_create(merchant=merchant_a, data=payment_input(beneficiary_account=account))
    error = caught.value.errors[0]
    assert (error.field, error.code) == ("beneficiary_account", "raw_card_number")
    assert "token" in error.message and "PCI DSS" in error.message
    assert not Payment.objects.exists()


def test_the_api_answers_a_raw_card_number_with_a_clear_problem(merchant_a):
    api = Api(make_api_key(merchant_a))
    answer = api.post("/api/v1/payments", payment_input(beneficiary_account="4242424242424242"))
    assert answer.status_code == 422, answer.content
    body = answer.json()
    assert "raw_card_number" in json.dumps(body) and "4242424242424242" not in answer.content.decode()


def test_tokens_sandbox_test_numbers_and_non_card_methods_are_accepted(merchant_a, settings):
    assert not is_raw_card_number("tok_visa_0002")
    assert not is_raw_card_number("4000000000000002")  # the sandbox's test range, sandbox serving cards
    assert not is_raw_card_number("4242424242424241")  # not Luhn-valid
    assert not is_raw_card_number("424242424242")  # 12 digits
    payment_create(
        merchant=merchant_a, data=payment_input(reference="T1", beneficiary_account="tok_visa_0002")
    )
    settings.PAYDESK_GATEWAY_ROUTES = {**settings.PAYDESK_GATEWAY_ROUTES, "card": "paypal"}
    assert is_raw_card_number("4000000000000002")  # a real card gateway: a card number like any other


# Logs -------------------------------------------------------------------------------------


def test_logs_never_carry_a_full_account_number():
    record = logging.LogRecord(
        "payments",
        logging.INFO,
        __file__,
        1,
        "paid %s to %s on %s",
        ("12.50", IBAN, "2026-12-07 04:00:00"),
        None,
    )
    assert AccountNumbersMasked().filter(record)
    assert record.getMessage() == f"paid 12.50 to {MASKED_IBAN} on 2026-12-07 04:00:00"
    assert mask_accounts("card 4242 4242 4242 4242, id pay_AB12CD34EF56GH78") == (
        "card \u2022\u2022\u2022\u2022 4242, id pay_AB12CD34EF56GH78"
    )


def test_the_configured_handlers_mask_accounts(caplog):
    from django.conf import settings

    assert "accounts_masked" in settings.LOGGING["handlers"]["console"]["filters"]
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(AccountNumbersMasked())
    logger = logging.getLogger("payments.test_privacy")
    logger.addHandler(handler)
    # Only this handler sees the planted account: the suite's own log (tests/test_log_secrets.py) has
    # no masking filter, on purpose, so that it catches what the configured handlers would let through.
    logger.propagate = False
    try:
        try:
            raise ValueError(f"bad account {IBAN}")
        except ValueError:
            logger.exception("failed for %s", IBAN)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    output = handler.stream.getvalue()
    assert IBAN not in output and MASKED_IBAN in output


def test_result_csv_written_from_the_report_has_no_full_account(
    merchant_a,
    alice,
    media,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    from payments.services.batches.reports import iter_results_csv

    batch = upload(merchant_a, csv_bytes(rows(2)), user=alice, capture=django_capture_on_commit_callbacks)
    text = "".join(iter_results_csv(batch))
    assert IBAN not in text
    assert {r["beneficiary_account"] for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))} == {
        MASKED_IBAN
    }


def test_admin_shows_payments_masked_and_finds_them_by_exact_account(merchant_a, django_user_model):
    payment = create(merchant_a)
    create(merchant_a, reference="OTHER", beneficiary_account="DE89370400440532013000")
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()
    assert MASKED_IBAN in page and IBAN not in page
    found = client.get(reverse("admin:payments_payment_changelist"), {"q": "gb29 nwbk 6016 1331 9268 19"})
    assert found.status_code == 200
    assert payment.public_id in found.content.decode() and "OTHER" not in found.content.decode()
    for name in ("exchangerate", "sanctionedname", "blockedentry"):
        assert client.get(reverse(f"admin:payments_{name}_changelist")).status_code == 200


def test_erase_beneficiary_tombstones_payments_events_and_notices_and_is_audited(merchant_a):
    from payments.models import Channel

    erased = create(merchant_a, beneficiary_email="ada@example.com", beneficiary_phone="+44 20 7946 0958")
    kept = create(merchant_a, reference="KEEP", beneficiary_account="DE89370400440532013000")
    event = Event.objects.filter(payment=erased).first()
    Delivery.objects.create(
        merchant=merchant_a, event=event, type=event.type, channel=Channel.EMAIL, recipient="ada@example.com"
    )
    before = Payment.objects.values_list("amount_minor", "reference", "status", "public_id").get(pk=erased.pk)
    out = io.StringIO()
    call_command("erase_beneficiary", merchant_a.slug, "gb29 nwbk 6016 1331 9268 19", stdout=out)
    assert "erased: 1 payments" in out.getvalue()
    erased.refresh_from_db()
    assert (erased.beneficiary_name, erased.beneficiary_account, erased.beneficiary_email) == (
        "[erased]",
        "",
        "",
    )
    assert (erased.amount_minor, erased.reference, erased.status, erased.public_id) == before
    assert all(
        e.data["object"]["beneficiary_account"] == "[erased]" for e in Event.objects.filter(payment=erased)
    )
    assert Delivery.objects.get(channel=Channel.EMAIL).recipient == "[erased]"
    assert Payment.objects.get(pk=kept.pk).beneficiary_account == "DE89370400440532013000"
    entry = AuditEntry.objects.get(action="beneficiary.erased")
    assert entry.object_id == MASKED_IBAN and entry.after["payments"] == 1
    assert not Payment.objects.filter(beneficiary_account_hash=field_hash(IBAN)).exists()


def test_admin_action_erases_every_payment_to_the_selected_beneficiary(merchant_a, django_user_model):
    first = create(merchant_a, reference="E-1")
    create(merchant_a, reference="E-2")
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    answer = client.post(
        reverse("admin:payments_payment_changelist"),
        {"action": "erase_beneficiaries", "_selected_action": [first.pk]},
    )
    assert answer.status_code == 302
    assert set(Payment.objects.values_list("beneficiary_name", flat=True)) == {"[erased]"}
    assert AuditEntry.objects.filter(action="beneficiary.erased", actor=f"user:{admin_user.pk}").count() == 1


def test_the_csv_export_masks_accounts_for_operators_and_a_full_export_is_stepped_up_and_audited(
    merchant_a, alice
):
    """Issue 11's export meets issue 13: full numbers only for the roles that may reveal, audited."""
    create(merchant_a, reference="A-1")
    operator = UserFactory(username="otto@a.example")
    MembershipFactory(user=operator, merchant=merchant_a, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(operator)
    body = b"".join(client.get(reverse("dashboard:payment_export_csv")).streaming_content).decode("utf-8-sig")
    assert IBAN not in body and MASKED_IBAN in body
    assert not AuditEntry.objects.filter(action="payment.export_revealed").exists()

    owner = Client()
    owner.force_login(alice)
    session = owner.session
    session[VERIFIED_AT_SESSION_KEY] = time.time() - 3600  # the second factor is no longer fresh
    session.save()
    stale = owner.get(reverse("dashboard:payment_export_csv"), {"account": IBAN})
    assert stale.status_code == 302 and reverse("accounts:two_factor_verify") in stale["Location"]
    session = owner.session
    session[VERIFIED_AT_SESSION_KEY] = time.time()
    session.save()
    response = owner.get(reverse("dashboard:payment_export_csv"), {"account": IBAN})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [r["beneficiary_account"] for r in rows] == [IBAN]
    entry = AuditEntry.objects.get(action="payment.export_revealed")
    assert entry.actor_user == alice and entry.after == {"filters": {"account": [MASKED_IBAN]}}


@pytest.mark.usefixtures("media")
def test_a_batch_row_error_keeps_beneficiary_data_masked(
    merchant_a, alice, django_capture_on_commit_callbacks
):
    """Issue 11 keeps a row error's offending value; an account, e-mail or phone is kept masked."""
    from payments.models import BatchRowError

    card = "4111 1111 1111 1111"  # a real card number: refused, and never stored
    data = [("PAY-1", "10.00", "USD", "card", "Ann", card)]
    batch = upload(merchant_a, csv_bytes(data), user=alice, capture=django_capture_on_commit_callbacks)
    error = BatchRowError.objects.get(batch=batch, code="raw_card_number")
    assert error.value == "\u2022\u2022\u2022\u2022 1111" and error.beneficiary_name == "Ann"
    assert not BatchRowError.objects.filter(value__contains="4111 1111").exists()


def test_a_full_xlsx_export_is_stepped_up_and_audited_like_the_csv(merchant_a, alice):
    import openpyxl

    create(merchant_a, reference="A-1")
    owner = Client()
    owner.force_login(alice)
    session = owner.session
    session[VERIFIED_AT_SESSION_KEY] = time.time() - 3600
    session.save()
    stale = owner.get(reverse("dashboard:payment_export_xlsx"))
    assert stale.status_code == 302 and reverse("accounts:two_factor_verify") in stale["Location"]
    assert not AuditEntry.objects.filter(action="payment.export_revealed").exists()
    session = owner.session
    session[VERIFIED_AT_SESSION_KEY] = time.time()
    session.save()
    response = owner.get(reverse("dashboard:payment_export_xlsx"), {"reference": "A-1"})
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[1][values[0].index("beneficiary_account")] == IBAN
    entry = AuditEntry.objects.get(action="payment.export_revealed")
    assert entry.actor_user == alice and entry.after == {"filters": {"reference": ["A-1"]}}
