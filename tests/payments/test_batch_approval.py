"""Who may approve a batch: roles, four-eyes (users and API keys), the merchant's threshold."""

import pytest

from merchants.models import ApiKey, Membership
from payments.models import Event
from payments.services.batches.lifecycle import BatchForbidden, BatchStateError, batch_approve
from tests.conftest import work_callbacks
from tests.factories import MembershipFactory, UserFactory, make_api_key
from tests.payments.test_batch_support import csv_bytes, media, rows, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


@pytest.fixture
def four_eyes(merchant_a):
    merchant_a.four_eyes = True
    merchant_a.save()
    return merchant_a


@pytest.fixture
def validated(merchant_a, alice, django_capture_on_commit_callbacks):
    """A validated batch of 3 x 10.00 USD uploaded by alice (owner)."""

    def make(user=None, api_key=None, n=3, amount="10.00"):
        batch = upload(
            merchant_a,
            csv_bytes(rows(n, amount=amount, prefix=f"P{amount}")),
            user=user if api_key is None else None,
            api_key=api_key,
            capture=django_capture_on_commit_callbacks,
        )
        assert batch.status == "validated"
        return batch

    return make


def test_with_four_eyes_the_uploader_cannot_approve_and_nothing_changes(four_eyes, validated, alice):
    batch = validated(user=alice)
    with pytest.raises(BatchForbidden) as exc:
        batch_approve(batch=batch, user=alice)
    assert exc.value.code == "four_eyes_required"
    batch.refresh_from_db()
    assert batch.status == "validated" and batch.approved_by is None
    assert not Event.objects.filter(batch=batch, type="batch.approved").exists()


def test_with_four_eyes_someone_else_approves(four_eyes, validated, alice, carol):
    batch = validated(user=alice)
    batch = batch_approve(batch=batch, user=carol)
    assert batch.status == "approved"
    assert batch.approved_by == carol and batch.approved_at is not None
    assert Event.objects.filter(batch=batch, type="batch.approved", actor=f"user:{carol.pk}").exists()


def test_without_four_eyes_the_uploader_may_approve(validated, alice):
    batch = validated(user=alice)
    assert batch_approve(batch=batch, user=alice).status == "approved"


@pytest.mark.parametrize("role", [Membership.Role.OPERATOR, Membership.Role.VIEWER])
def test_operators_and_viewers_cannot_approve(validated, alice, merchant_a, role):
    batch = validated(user=alice)
    user = UserFactory(username=f"{role}@a.example")
    MembershipFactory(user=user, merchant=merchant_a, role=role)
    with pytest.raises(BatchForbidden) as exc:
        batch_approve(batch=batch, user=user)
    assert exc.value.code == "role_cannot_approve"


def test_a_member_of_another_merchant_cannot_approve(validated, alice, mallory):
    batch = validated(user=alice)
    with pytest.raises(BatchForbidden):
        batch_approve(batch=batch, user=mallory)


def test_above_the_merchant_threshold_only_an_approver_may_approve(validated, merchant_a, alice, carol):
    merchant_a.batch_approval_threshold_minor = 2500  # 25.00
    merchant_a.save()
    batch = validated(user=alice)  # 30.00 USD
    with pytest.raises(BatchForbidden) as exc:
        batch_approve(batch=batch, user=alice)  # the owner
    assert exc.value.code == "approver_required"
    assert batch_approve(batch=batch, user=carol).status == "approved"


def test_at_or_below_the_threshold_an_owner_may_approve(validated, merchant_a, alice):
    merchant_a.batch_approval_threshold_minor = 3000
    merchant_a.save()
    assert batch_approve(batch=validated(user=alice), user=alice).status == "approved"


def test_an_api_key_counts_as_its_creator_for_four_eyes(four_eyes, validated, merchant_a, alice, carol):
    upload_key = ApiKey.objects.get(prefix=make_api_key(merchant_a, ("read", "write"), alice).split("_")[1])
    batch = validated(api_key=upload_key)
    alice_approves = ApiKey.objects.get(prefix=make_api_key(merchant_a, ("approve",), alice).split("_")[1])
    with pytest.raises(BatchForbidden) as exc:
        batch_approve(batch=batch, api_key=alice_approves)
    assert exc.value.code == "four_eyes_required"
    with pytest.raises(BatchForbidden):
        batch_approve(batch=batch, user=alice)  # the key's creator in person
    carol_approves = ApiKey.objects.get(prefix=make_api_key(merchant_a, ("approve",), carol).split("_")[1])
    batch = batch_approve(batch=batch, api_key=carol_approves)
    assert (batch.status, batch.approved_by, batch.approved_by_key) == ("approved", carol, carol_approves)


def test_an_api_key_needs_the_approve_scope(validated, merchant_a, alice, carol):
    batch = validated(user=alice)
    key = ApiKey.objects.get(prefix=make_api_key(merchant_a, ("read", "write"), carol).split("_")[1])
    with pytest.raises(BatchForbidden) as exc:
        batch_approve(batch=batch, api_key=key)
    assert exc.value.code == "scope_required"


def test_with_four_eyes_a_key_without_a_creator_cannot_approve(four_eyes, validated, merchant_a, alice):
    batch = validated(user=alice)
    key = ApiKey.objects.get(prefix=make_api_key(merchant_a, ("approve",), None).split("_")[1])
    with pytest.raises(BatchForbidden) as exc:
        batch_approve(batch=batch, api_key=key)
    assert exc.value.code == "four_eyes_required"


def test_only_a_validated_batch_can_be_approved_once(
    validated, alice, carol, django_capture_on_commit_callbacks
):
    batch = validated(user=alice)
    batch_approve(batch=batch, user=carol)
    with pytest.raises(BatchStateError) as exc:
        batch_approve(batch=batch, user=carol)
    assert exc.value.code == "invalid_state"


def test_approval_queues_the_start_on_commit(validated, alice, carol, django_capture_on_commit_callbacks):
    batch = validated(user=alice)
    with django_capture_on_commit_callbacks() as callbacks:
        batch_approve(batch=batch, user=carol)
    assert len(work_callbacks(callbacks)) == 1
