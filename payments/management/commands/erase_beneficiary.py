"""`manage.py erase_beneficiary MERCHANT_SLUG ACCOUNT`: tombstone one beneficiary's personal data."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from merchants.models import Merchant
from payments.services.controls import beneficiary_erase


class Command(BaseCommand):
    help = "Replace one beneficiary's personal data (by exact account) with a tombstone; audited."

    def add_arguments(self, parser) -> None:
        parser.add_argument("merchant", help="the merchant's slug")
        parser.add_argument("account", help="the beneficiary's account, exactly (spaces and case ignored)")

    def handle(self, *args, **options) -> None:
        merchant = Merchant.objects.filter(slug=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"no merchant {options['merchant']!r}")
        counts = beneficiary_erase(merchant=merchant, account=options["account"])
        self.stdout.write(
            "erased: {payments} payments, {events} events, {deliveries} deliveries".format(**counts)
        )
