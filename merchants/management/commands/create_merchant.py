from django.core.management.base import BaseCommand

from merchants.services import merchant_create


class Command(BaseCommand):
    help = "Create a merchant with an owner; prints the merchant's slug as the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--slug", default="")

    def handle(self, *args, name, owner_email, slug, **options):
        merchant = merchant_create(name=name, owner_email=owner_email, slug=slug)
        self.stderr.write(f"Created merchant {merchant.name!r} owned by {owner_email}")
        self.stdout.write(merchant.slug)
