"""POST /api/v1/payments commits at most three times (issue 15): claim + payment, the in-process
sandbox's own record (the gateway's side), answer + stored response.

Before issue 15 the same request made 4 commits of ours (the claim, the payment, the answer, the
stored response) besides the sandbox's, and 13 statements on PostgreSQL.
"""

from unittest import mock

import pytest

from payments.gateways import sandbox
from payments.models import IdempotencyKey, Payment
from tests.commits import count_commits
from tests.factories import payment_input

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_real_time_payment_with_a_key_commits_at_most_three_times(api):
    # The sandbox's callbacks are sent by a worker, not by the request: recorded, not run inline.
    with mock.patch.object(sandbox, "enqueue_delivery", autospec=True) as deliver:
        api.post("/api/v1/payments", payment_input(reference="warm-up"), idem="warm-up")
        with count_commits() as record:
            answer = api.post("/api/v1/payments", payment_input(reference="R-1"), idem="k-1")
    assert answer.status_code == 201, answer.content
    assert deliver.call_count == 2
    print(  # noqa: T201 - the figures of the closing note, shown with -s
        f"\nPOST /payments: {len(record.statements)} statements, {len(record.commits)} commits "
        f"({len(record.ours)} ours, {len(record.sandbox)} the in-process sandbox's)"
    )
    assert len(record.commits) <= 3
    assert len(record.ours) == 2
    claim_and_payment, answer_and_response = record.ours
    assert "payments_idempotencykey" in claim_and_payment[0]
    assert any('INSERT INTO "payments_payment"' in s for s in claim_and_payment)
    assert "payments_idempotencykey" in answer_and_response[-1]
    assert any("payments_gatewayattempt" in s for s in answer_and_response)
    stored = IdempotencyKey.objects.get(key="k-1")
    assert stored.completed_at is not None and bytes(stored.response_body) == answer.content
    assert Payment.objects.get(reference="R-1").status == "processing"
    again = api.post("/api/v1/payments", payment_input(reference="R-1"), idem="k-1")
    assert again["Idempotent-Replayed"] == "true" and again.content == answer.content


def test_an_invalid_payment_with_a_key_stores_its_answer_in_one_commit(api):
    api.get("/api/v1/payments")  # the key's last use is recorded once a minute, not here
    with count_commits() as record:
        answer = api.post("/api/v1/payments", payment_input(amount="1.001"), idem="bad-1")
    assert answer.status_code == 422
    assert len(record.commits) == 1 and "payments_idempotencykey" in record.commits[0][0]
    again = api.post("/api/v1/payments", payment_input(amount="1.001"), idem="bad-1")
    assert again.status_code == 422 and again["Idempotent-Replayed"] == "true"
    assert again.content == answer.content
