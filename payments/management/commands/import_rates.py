"""`manage.py import_rates FILE`: store reference exchange rates from an ECB eurofxref XML or a CSV.

The CSV has the header `date,base,currency,rate` (1 base = rate currency).
`--url` fetches the ECB's daily file (or any URL serving one of these formats)
instead; the django-q2 schedule `rates_fetch_task` does the same where
PAYDESK_RATES_URL is set.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.services.controls import RatesInvalid, rates_import_file, rates_source


class Command(BaseCommand):
    help = "Import reference exchange rates (ECB eurofxref XML or date,base,currency,rate CSV)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="path of the eurofxref XML or CSV file")
        parser.add_argument("--source", default="", help="where the rates come from (default: the file name)")

    def handle(self, *args, **options) -> None:
        path = Path(options["file"])
        source = options["source"] or rates_source(path.name)
        try:
            count, days = rates_import_file(path.read_bytes(), source=source)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except RatesInvalid as exc:
            raise CommandError(f"{path.name}: {exc}") from None
        self.stdout.write(f"{count} rates for {len(days)} day(s), latest {days[-1]}, from {source}")
