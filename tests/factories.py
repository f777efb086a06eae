import factory
from django.contrib.auth import get_user_model

from merchants.models import Membership, Merchant
from merchants.services import api_key_create
from payments.models import Payment


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.LazyAttribute(lambda o: o.username)
    password = factory.django.Password("pw-for-tests-1")


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")
    slug = factory.Sequence(lambda n: f"merchant-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    merchant = factory.SubFactory(MerchantFactory)
    role = Membership.Role.OWNER


class PaymentFactory(factory.django.DjangoModelFactory):
    """A payment row in `created`, written directly (use services to move it)."""

    class Meta:
        model = Payment

    merchant = factory.SubFactory(MerchantFactory)
    reference = factory.Sequence(lambda n: f"REF-{n:06d}")
    amount_minor = 1000
    currency = "USD"
    method = "card"
    beneficiary_name = "Ada Lovelace"
    beneficiary_account = "4000000000001234"
    gateway = "sandbox"


def make_api_key(merchant, scopes=("read", "write"), created_by=None) -> str:
    _key, raw = api_key_create(merchant=merchant, scopes=list(scopes), created_by=created_by)
    return raw


def payment_input(**overrides) -> dict:
    data = {
        "reference": "ORDER-1",
        "amount": "12.50",
        "currency": "USD",
        "method": "card",
        "beneficiary_name": "Ada Lovelace",
        "beneficiary_account": "4000000000001234",
    }
    data.update(overrides)
    return data
