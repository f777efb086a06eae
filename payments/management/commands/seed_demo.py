import hashlib
import hmac
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from merchants.models import ApiKey, Membership, Merchant, hash_api_key
from payments.models import Event, Payment
from payments.services.payments import payment_create
from payments.validation import PaymentInvalid

DEMO_PASSWORD = "paydesk-demo"  # noqa: S105 - printed for the local demo only
USERS = [
    ("owner@demo.paydesk.local", Membership.Role.OWNER),
    ("operator@demo.paydesk.local", Membership.Role.OPERATOR),
    ("approver@demo.paydesk.local", Membership.Role.APPROVER),
]
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


def demo_api_key() -> tuple[str, str]:
    """Derive the demo key from SECRET_KEY so that running the seed twice prints the same key."""
    digest = hmac.new(settings.SECRET_KEY.encode(), b"paydesk-demo-key", hashlib.sha256).hexdigest()
    prefix = digest[:12]
    return f"pdk_{prefix}_{digest[12:56]}", prefix


class Command(BaseCommand):
    help = "Create a demo merchant, its team, an API key and a few days of payments (idempotent)."

    def handle(self, *args, **options):
        User = get_user_model()
        with transaction.atomic():
            merchant, _ = Merchant.objects.get_or_create(
                slug="demo", defaults={"name": "Demo Trading Co.", "four_eyes": True}
            )
            owner = None
            for email, role in USERS:
                user = User.objects.filter(username=email).first()
                if user is None:
                    user = User.objects.create_user(username=email, email=email, password=DEMO_PASSWORD)
                Membership.objects.get_or_create(user=user, merchant=merchant, defaults={"role": role})
                owner = owner or user
            admin = User.objects.filter(username="admin").first()
            if admin is None:
                User.objects.create_superuser("admin", "admin@paydesk.local", DEMO_PASSWORD)
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
                self.stderr.write(f"skipped {ref}: {exc}")
                continue
            when = timezone.now() - timedelta(days=days, hours=created)
            Payment.objects.filter(pk=payment.pk).update(created_at=when)
            Event.objects.filter(payment=payment, type="payment.created").update(created_at=when)
            created += 1
        self.stdout.write(
            self.style.SUCCESS(f"Demo merchant '{merchant.name}' ready ({created} new payments).")
        )
        self.stdout.write(f"Dashboard: http://127.0.0.1:8000/  (password for every login: {DEMO_PASSWORD})")
        for email, role in USERS:
            self.stdout.write(f"  {role:<9} {email}")
        self.stdout.write("Admin: http://127.0.0.1:8000/admin/  login: admin")
        self.stdout.write("API key (read, write, approve):")
        self.stdout.write(raw)
