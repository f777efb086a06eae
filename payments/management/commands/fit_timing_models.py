from django.core.management.base import BaseCommand, CommandError

from payments.services.timing_models import timing_models_fit


class Command(BaseCommand):
    help = (
        "Fit the seed's C(r) (per gateway: the chance that a payment's callback has arrived r seconds "
        "after submission) and N(r) (per webhook endpoint: the chance that delivery attempt r succeeds), "
        "1/(1+e^{-k(r-theta)}), by maximum likelihood from recent history, and put them in force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--min-samples",
            type=int,
            default=50,
            help="Refuse to fit a curve on fewer observations than this (default 50).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Fit and print; save nothing.")
        parser.add_argument(
            "--note", default="manage.py fit_timing_models", help="Stored with each fit as who made it."
        )

    def handle(self, *args, min_samples: int, dry_run: bool, note: str, **options):
        if min_samples < 2:
            raise CommandError("--min-samples must be at least 2.")
        results = timing_models_fit(min_samples=min_samples, dry_run=dry_run, fitted_by=note)
        fitted = 0
        for result in results:
            name = "C(r)" if result.kind == "callback" else "N(r)"
            head = f"{name} {result.subject}: {result.data}"
            if result.fit is None:
                self.stdout.write(f"{head}; refused: {result.refused}. Nothing saved.")
                continue
            fitted += 1
            fit = result.fit
            line = f"{head}; k = {fit.k:.6g}, theta = {fit.theta:.6g} ({fit.iterations} Newton iterations)"
            if result.kind == "callback" and fit.k > 0:
                line += f"; C reaches 0.95 at {fit.inverse(0.95):.1f} s"
            self.stdout.write(line)
        if dry_run:
            self.stdout.write(f"dry run: {fitted} fitted, nothing saved.")
        elif fitted:
            self.stdout.write(self.style.SUCCESS(f"Saved {fitted} timing models; in force within a minute."))
        if not fitted:
            raise CommandError("No curve had enough data to fit; nothing saved.")
