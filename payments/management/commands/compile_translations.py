from django.core.management.base import BaseCommand

from payments.translations import catalogue_paths, compile_catalogues


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/*.po into .mo (pure Python; no GNU gettext needed)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Rebuild even up-to-date catalogues.")

    def handle(self, *args, force: bool = False, **options):
        written = compile_catalogues(force=force)
        for path in written:
            self.stdout.write(f"compiled {path}")
        if not written:
            self.stdout.write(f"{len(catalogue_paths())} catalogue(s) up to date")
