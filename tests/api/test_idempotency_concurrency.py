"""On PostgreSQL, concurrent requests with one Idempotency-Key are settled by the unique constraint."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from payments.models import GatewayAttempt, IdempotencyKey, Payment
from tests.factories import MerchantFactory, make_api_key, payment_input

THREADS = 50
LIST = "/api/v1/payments"


def _post_all(raw_key: str, idem: str, body: dict, n: int) -> list:
    barrier = threading.Barrier(n)
    answers: list = [None] * n

    def worker(i: int) -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            answers[i] = client.post(
                LIST,
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {raw_key}",
                HTTP_IDEMPOTENCY_KEY=idem,
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(a is not None for a in answers), "a request thread did not answer"
    return answers


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_50_concurrent_identical_posts_make_one_payment_and_one_attempt(sandbox_wire):
    sandbox_wire.hold = True  # the sandbox's callbacks go nowhere; only the submission matters here
    merchant = MerchantFactory()
    raw_key = make_api_key(merchant, ("read", "write"))

    answers = _post_all(raw_key, "concurrent-create-1", payment_input(), THREADS)

    assert Payment.objects.count() == 1
    assert GatewayAttempt.objects.count() == 1
    originals = [a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a]
    assert len(originals) == 1, [a.status_code for a in answers]
    original = originals[0]
    assert original.json()["id"] == Payment.objects.get().public_id
    for answer in answers:
        if answer is original:
            continue
        if answer.status_code == 409:
            assert answer.json()["code"] == "idempotency_request_in_progress"
        else:
            assert answer.status_code == 201, answer.content
            assert answer["Idempotent-Replayed"] == "true"
            assert answer.content == original.content

    # The same key with a different body: 422 and no new row, however many try at once.
    different = _post_all(raw_key, "concurrent-create-1", payment_input(amount="99.00"), 10)
    assert {a.status_code for a in different} == {422}
    assert {a.json()["code"] for a in different} == {"idempotency_key_reused"}
    assert Payment.objects.count() == 1 and GatewayAttempt.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1
