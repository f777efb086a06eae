from django.core.management.base import BaseCommand

from payments.benchmarks import api, batch, dashboard, notify

BENCHMARKS = {"batch": batch, "api": api, "notify": notify, "dashboard": dashboard}


class Command(BaseCommand):
    help = "Measure one capability against a baseline measured in the same run: " + ", ".join(BENCHMARKS)

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="name", required=True)
        for name, module in BENCHMARKS.items():
            module.add_arguments(sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0]))

    def handle(self, *args, name, **options):
        BENCHMARKS[name].run(self, options)
