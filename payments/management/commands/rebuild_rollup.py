"""`manage.py rebuild_rollup`: recompute the home page's daily figures from the Events.

The lifecycle core keeps the rollup as payments change; this rebuilds it whole,
for payments that predate it or after a manual repair. Stop the workers first.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from payments.services.lifecycle.rollups import rollup_rebuild


class Command(BaseCommand):
    help = "Recompute the home page's daily rollup from the Events (stop the workers first)."

    def handle(self, *args, **options) -> None:
        rows = rollup_rebuild()
        self.stdout.write(f"rollup rebuilt: {rows} rows")
