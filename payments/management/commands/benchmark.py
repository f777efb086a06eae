import importlib

from django.core.management.base import BaseCommand, CommandError

from payments.benchmarks import NAMES


class Command(BaseCommand):
    help = "Measure one capability against a baseline measured in the same run: " + ", ".join(NAMES)

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="name", required=True)
        for name in NAMES:
            try:
                module = importlib.import_module(f"payments.benchmarks.{name}")
            except ModuleNotFoundError:
                continue
            module.add_arguments(sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0]))

    def handle(self, *args, name, **options):
        try:
            module = importlib.import_module(f"payments.benchmarks.{name}")
        except ModuleNotFoundError:
            raise CommandError(f"benchmark {name!r} is not available") from None
        module.run(self, options)
