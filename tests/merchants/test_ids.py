import re

import pytest
from django.db import IntegrityError, transaction

from merchants.ids import ID_LENGTH, PublicIdField, new_public_id
from payments.models import Event, Payment
from tests.factories import PaymentFactory


def test_public_id_is_prefix_and_base62_random_part():
    value = new_public_id("pay")
    assert re.fullmatch(rf"pay_[A-Za-z0-9]{{{ID_LENGTH}}}", value)
    assert value != new_public_id("pay")


def test_deconstruct_omits_our_defaults_and_keeps_other_values():
    _name, path, _args, kwargs = PublicIdField(prefix="key").deconstruct()
    assert path == "merchants.ids.PublicIdField"
    assert kwargs == {"prefix": "key"}

    _name, _path, _args, kwargs = PublicIdField(prefix="evt", unique=False, max_length=50).deconstruct()
    assert kwargs == {"prefix": "evt", "unique": False, "max_length": 50}


def test_payment_and_event_ids_stay_unique_through_a_constraint():
    for model, name in ((Payment, "payment_unique_public_id"), (Event, "event_unique_public_id")):
        assert not model._meta.get_field("public_id").unique
        constraint = next(c for c in model._meta.constraints if c.name == name)
        assert constraint.fields == ("public_id",)


@pytest.mark.django_db
def test_the_database_refuses_a_second_payment_with_the_same_public_id():
    first = PaymentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentFactory(public_id=first.public_id, merchant=first.merchant)
