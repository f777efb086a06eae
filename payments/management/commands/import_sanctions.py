"""`manage.py import_sanctions FILE --list NAME`: replace one sanctions list from a CSV.

Columns: `name` and optionally `aliases` (separated by `;`) and `id`. Every name
and alias becomes a screened name; beneficiary names are compared with them
fuzzily (rapidfuzz token sort ratio, PAYDESK_SANCTIONS_THRESHOLD).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.services.controls import sanctions_import


class Command(BaseCommand):
    help = "Replace one sanctions list from a CSV of names and aliases."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--list", required=True, dest="list_name", help="the list's name, e.g. OFAC-SDN")

    def handle(self, *args, **options) -> None:
        path = Path(options["file"])
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        reader = csv.DictReader(io.StringIO(text))
        if "name" not in (reader.fieldnames or []):
            raise CommandError("the CSV needs a `name` column (and optionally `aliases`, `id`)")
        count = sanctions_import(list_name=options["list_name"], rows=list(reader))
        self.stdout.write(f"{count} names screened from {options['list_name']}")
