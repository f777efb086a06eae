from django.core.management.base import BaseCommand, CommandError

from merchants.models import Merchant
from merchants.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a merchant; prints the key once, alone, as the last line."

    def add_arguments(self, parser):
        parser.add_argument("merchant_slug")
        parser.add_argument("--scopes", default="read,write")
        parser.add_argument("--name", default="")

    def handle(self, *args, merchant_slug, scopes, name, **options):
        merchant = Merchant.objects.filter(slug=merchant_slug).first()
        if merchant is None:
            raise CommandError(f"No merchant with slug {merchant_slug!r}.")
        try:
            key, raw = api_key_create(
                merchant=merchant, scopes=[s.strip() for s in scopes.split(",") if s.strip()], name=name
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Created {key.public_id} with scopes {','.join(key.scopes)}; store it now.")
        self.stdout.write(raw)
