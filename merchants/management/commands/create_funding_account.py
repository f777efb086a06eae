from django.core.management.base import BaseCommand, CommandError

from merchants.models import Merchant
from merchants.services import FundingAccountInvalid, funding_account_create


class Command(BaseCommand):
    help = "Add a bank account the merchant pays from; prints the account's id as the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The merchant's slug.")
        parser.add_argument("--name", required=True, help="The account holder's name.")
        parser.add_argument("--iban", default="", help="The account's IBAN.")
        parser.add_argument(
            "--account-number", default="", help="A local account number (instead of an IBAN)."
        )
        parser.add_argument("--bic", default="", help="The bank's BIC.")
        parser.add_argument("--bank-code", default="", help="A local bank code (instead of a BIC).")
        parser.add_argument("--currency", required=True, help="ISO 4217 code of the account.")
        parser.add_argument(
            "--default", action="store_true", help="Make it the default of its currency (the first one is)."
        )

    def handle(self, *args, **options):
        merchant = Merchant.objects.filter(slug=options["slug"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with slug {options['slug']!r}.")
        try:
            account = funding_account_create(
                merchant=merchant,
                name=options["name"],
                currency=options["currency"],
                iban=options["iban"],
                account_number=options["account_number"],
                bic=options["bic"],
                bank_code=options["bank_code"],
                is_default=True if options["default"] else None,
            )
        except FundingAccountInvalid as exc:
            raise CommandError(str(exc)) from None
        marker = " (default)" if account.is_default else ""
        self.stdout.write(f"Funding account {account.name} {account.currency}{marker}:")
        self.stdout.write(account.public_id)
