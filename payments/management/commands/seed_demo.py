import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from merchants.models import ApiKey, Membership, Merchant, hash_api_key
from merchants.services import funding_account_create
from payments.demo import ADMIN_USERNAME, DEMO_PASSWORD, DEMO_SLUG, USERS, demo_api_key
from payments.models import Event, Payment, PaymentBatch
from payments.services.batches.execute import batch_chunk_execute
from payments.services.batches.ingest import batch_validate
from payments.services.batches.lifecycle import BatchError, batch_approve, batch_start, batch_upload
from payments.services.batches.upload import store_bytes
from payments.services.payments import payment_create
from payments.validation import PaymentInvalid

# (reference, amount, currency, method, name, account, days ago)
PAYMENTS = [
    ("INV-1001", "1250.00", "USD", "card", "Acme Supplies", "4000000000001234", 3),
    ("INV-1002", "89.90", "EUR", "bank_transfer", "Jean Dupont", "FR7630006000011234567890189", 3),
    ("INV-1003", "15000", "JPY", "card", "Sato Kenji", "4000000000000002", 2),
    ("INV-1004", "320.00", "CNY", "alipay", "Li Wei", "alipay-user-0051", 2),
    ("INV-1005", "42.00", "USD", "card", "Corner Cafe", "4000000000000119", 2),
    ("INV-1006", "610.25", "USD", "paypal", "Maria Garcia", "maria.paypal.3155", 1),
    ("INV-1007", "75.00", "USD", "card", "Gadget Hub", "4000000000000077", 1),
    ("INV-1008", "1.250", "KWD", "bank_transfer", "Gulf Trading", "KW81CBKU0000000000001234560101", 1),
    ("INV-1009", "980.00", "CNY", "wechat_pay", "Wang Fang", "wx-openid-88211234", 0),
    ("INV-1010", "2400.00", "EUR", "bank_transfer", "Müller GmbH", "DE89370400440532013000", 0),
    ("INV-1011", "750000.00", "USD", "bank_transfer", "Offshore Holdings", "GB29NWBK60161331926819", 0),
]


class Command(BaseCommand):
    help = (
        "Create a demo merchant, its team, an API key and a few days of payments (safe to run twice). "
        "Prints the logins and, last, the API key. Refuses with DEBUG off unless --demo-in-production."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--demo-in-production",
            action="store_true",
            help="Seed even with DEBUG off (a public demo): new logins get random passwords, printed once.",
        )

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG and not options["demo_in_production"]:
            raise CommandError(
                "seed_demo creates demo logins and an API key; with DEBUG off it refuses unless "
                "given --demo-in-production."
            )
        User = get_user_model()
        passwords: dict[str, str] = {}

        def new_password(username: str) -> str:
            # A fixed, published password only while DEBUG; otherwise a random one, printed once.
            passwords[username] = DEMO_PASSWORD if settings.DEBUG else secrets.token_urlsafe(12)
            return passwords[username]

        with transaction.atomic():
            merchant, _ = Merchant.objects.get_or_create(
                slug=DEMO_SLUG, defaults={"name": "Demo Trading Co.", "four_eyes": True}
            )
            owner = None
            for email, role in USERS:
                user = User.objects.filter(username=email).first()
                if user is None:
                    user = User.objects.create_user(username=email, email=email, password=new_password(email))
                Membership.objects.get_or_create(user=user, merchant=merchant, defaults={"role": role})
                owner = owner or user
            if not User.objects.filter(username=ADMIN_USERNAME).exists():
                User.objects.create_superuser(
                    ADMIN_USERNAME, "admin@paydesk.local", new_password(ADMIN_USERNAME)
                )
            raw, prefix = demo_api_key()
            ApiKey.objects.get_or_create(
                prefix=prefix,
                defaults={
                    "merchant": merchant,
                    "name": "Demo key",
                    "key_hash": hash_api_key(raw),
                    "scopes": ["approve", "read", "write"],
                    "created_by": owner,
                },
            )
            if not merchant.funding_accounts.exists():
                # Accounts to pay bank transfers from (PAYDESK_PAYOUT_BANK_TRANSFER=bank_file).
                funding_account_create(
                    merchant=merchant,
                    name="Demo Trading Co.",
                    iban="DE44500105175407324931",
                    bic="INGDDEFFXXX",
                    currency="EUR",
                )
        created = seed_payments(merchant, owner, self.stderr)
        batches = seed_batches(merchant)
        if options["verbosity"] == 0:
            return
        self.stdout.write(
            self.style.SUCCESS(f"Demo merchant '{merchant.name}' ready ({created} new payments).")
        )
        if batches:
            self.stdout.write(f"Demo batches: {', '.join(batches)}")
        self.stdout.write(
            f"Dashboard: {settings.PAYDESK_PUBLIC_URL}/   Admin: {settings.PAYDESK_PUBLIC_URL}/admin/"
        )
        for username, role in [*USERS, (ADMIN_USERNAME, "platform admin")]:
            password = passwords.get(username, "(unchanged)")
            self.stdout.write(f"  {role:<14} {username:<28} password: {password}")
        self.stdout.write("API key (read, write, approve):")
        self.stdout.write(raw)


def seed_payments(merchant: Merchant, owner, stderr) -> int:
    """A few days of real-time payments, one of each sandbox outcome; existing references are skipped."""
    created = 0
    for ref, amount, currency, method, name, account, days in PAYMENTS:
        if Payment.objects.filter(merchant=merchant, reference=ref).exists():
            continue
        data = {
            "reference": ref,
            "amount": amount,
            "currency": currency,
            "method": method,
            "beneficiary_name": name,
            "beneficiary_account": account,
            "description": "Demo payment",
        }
        try:
            payment = payment_create(merchant=merchant, data=data, user=owner)
        except PaymentInvalid as exc:
            stderr.write(f"skipped {ref}: {exc}")
            continue
        when = timezone.now() - timedelta(days=days, hours=created)
        Payment.objects.filter(pk=payment.pk).update(created_at=when)
        Event.objects.filter(payment=payment, type="payment.created").update(created_at=when)
        created += 1
    return created


# Demo batches (payments/services/batches/) -------------------------------------------------

DEMO_BATCHES = ("Payroll November (demo)", "Supplier payouts (demo)")


def _demo_batch_csv(kind: str) -> bytes:
    lines = ["reference,amount,currency,method,beneficiary_name,beneficiary_account,description"]
    if kind == "payroll":
        for i in range(1, 41):
            lines.append(
                f"PAYROLL-2026-11-{i:03d},{1800 + i * 37}.{i % 100:02d},EUR,bank_transfer,"
                f"Employee {i:03d},DE8937040044053201{i:04d},Salary November"
            )
        lines.append("PAYROLL-2026-11-041,12.345,EUR,bank_transfer,Precise,DE89370400440532010041,bad amount")
        lines.append("PAYROLL-2026-11-001,10.00,EUR,bank_transfer,Twice,DE89370400440532010042,duplicate")
    else:
        accounts = ["4000000000001234", "4000000000000002", "4000000000003155", "4000000000000077"]
        for i in range(1, 25):
            lines.append(
                f"SUPPLIER-2026-11-{i:03d},{250 + i * 13}.50,USD,card,Supplier {i:02d},"
                f"{accounts[i % len(accounts)]},Invoice {i:03d}"
            )
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def seed_batches(merchant: Merchant) -> list[str]:
    """Two demo batches: payroll waiting for approval, supplier payouts approved and executing.

    The operator uploads; the approver approves (the demo merchant has four-eyes on).
    Safe to run twice: existing demo batches are left alone.
    """
    User = get_user_model()
    operator = User.objects.get(username="operator@demo.paydesk.local")
    approver = User.objects.get(username="approver@demo.paydesk.local")
    made = []
    for name, kind in zip(DEMO_BATCHES, ("payroll", "supplier"), strict=True):
        if PaymentBatch.objects.filter(merchant=merchant, name=name).exists():
            continue
        upload = store_bytes(_demo_batch_csv(kind), f"{kind}-2026-11.csv")
        try:
            batch = batch_upload(merchant=merchant, upload=upload, user=operator, name=name)
        except BatchError:
            continue  # the same file is already there under another name
        batch = batch_validate(batch_id=batch.pk) or batch
        if kind == "supplier" and batch.status == "validated":
            batch_approve(batch=batch, user=approver)
            batch_start(batch_id=batch.pk)
            for chunk in batch.chunks.values_list("pk", flat=True):
                batch_chunk_execute(chunk_id=chunk)
        made.append(batch.public_id)
    return made
