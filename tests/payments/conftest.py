"""Fixtures of the dashboard's batch pages: `uploaded` (bob uploads through the page) and `login`."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from payments.models import PaymentBatch
from tests.payments.test_batch_support import csv_bytes, media, rows  # noqa: F401


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def uploaded(bob, django_capture_on_commit_callbacks):
    """bob (operator) uploads through the page; the worker validates."""

    def make(data: bytes = b""):
        data = data or csv_bytes(rows(3) + [("BAD-1", "1.234", "USD", "card", "A", "4000000000001234")])
        with django_capture_on_commit_callbacks(execute=True):
            response = login(bob).post(
                reverse("dashboard:batch_new"),
                {"file": SimpleUploadedFile("pay.csv", data), "name": "Payroll"},
            )
        assert response.status_code == 302, response.content
        batch = PaymentBatch.objects.latest("pk")
        assert response["Location"] == reverse("dashboard:batch_detail", args=[batch.public_id])
        return batch

    return make
