from django.core.management.base import BaseCommand, CommandError

from payments.services.risk_model import RiskModelFitError, risk_model_fit


class Command(BaseCommand):
    help = (
        "Fit k and theta of the risk model P(r) = 1/(1+e^{-k(r-theta)}) by maximum likelihood from "
        "reviewed history (held payments released or rejected after review) and put them in force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--min-samples",
            type=int,
            default=50,
            help="Refuse to fit on fewer reviewed payments than this (default 50).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Fit and print; save nothing.")
        parser.add_argument(
            "--note", default="manage.py fit_risk_model", help="Stored with the fit as who or what made it."
        )

    def handle(self, *args, min_samples: int, dry_run: bool, note: str, **options):
        if min_samples < 1:
            raise CommandError("--min-samples must be at least 1.")
        try:
            fit = risk_model_fit(min_samples=min_samples, dry_run=dry_run, fitted_by=note)
        except RiskModelFitError as exc:
            raise CommandError(f"{exc} Nothing saved.") from exc
        old_k, old_theta = fit.previous
        self.stdout.write(f"samples: {fit.samples} ({fit.positives} rejected after review)")
        self.stdout.write(f"k: {fit.k:.6f} (was {old_k:.6f})")
        self.stdout.write(f"theta: {fit.theta:.6f} (was {old_theta:.6f})")
        self.stdout.write(f"log-likelihood: {fit.log_likelihood:.6f} ({fit.iterations} Newton iterations)")
        self.stdout.write(
            f"held on the reviewed history: {fit.held_share:.1%} with the new parameters, "
            f"{fit.previous_held_share:.1%} with the old"
        )
        if fit.saved is None:
            self.stdout.write("dry run: nothing saved.")
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Saved risk model {fit.saved.pk}; in force within a minute.")
            )
