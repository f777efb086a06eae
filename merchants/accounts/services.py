"""Second-factor use cases: enrol an authenticator app, recovery codes, verify, remove.

Built on django-otp: a TOTPDevice per authenticator app and one StaticDevice
holding the single-use recovery codes (django-otp deletes a static token when
it is used). Every change is written to the audit log.
"""

from __future__ import annotations

import segno
from django.db import transaction
from django_otp import devices_for_user
from django_otp import verify_token as otp_verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from merchants.audit import audit_record

TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
RECOVERY_CODE_COUNT = 10


def totp_setup_start(*, user) -> TOTPDevice:
    """Return the user's unconfirmed authenticator device, created on first call (same key on reload)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def totp_qr_svg(device: TOTPDevice) -> str:
    """The enrolment QR code as inline SVG (drawn here: no external service sees the key)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#000", light="#fff")


def totp_setup_confirm(*, device: TOTPDevice, token: str, request=None) -> list[str] | None:
    """Confirm the device with a code from the app; return new recovery codes, or None if it is wrong."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if device.confirmed or not device.verify_token(token.strip()):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        # One authenticator app at a time: enrolling anew replaces the old one.
        TOTPDevice.objects.filter(user=device.user, confirmed=True).exclude(pk=device.pk).delete()
        codes = _new_recovery_codes(device.user)
        audit_record(
            action="two_factor.enrolled",
            user=device.user,
            obj=device,
            after={"device": device.name, "recovery_codes": len(codes)},
            request=request,
        )
    return codes


def _new_recovery_codes(user) -> list[str]:
    static, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_NAME, defaults={"confirmed": True}
    )
    static.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=static, token=code) for code in codes])
    return codes


def recovery_codes_regenerate(*, user, request=None) -> list[str]:
    """Replace the user's recovery codes (the old ones stop working)."""
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        audit_record(action="two_factor.recovery_codes_replaced", user=user, request=request)
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def second_factor_verify(*, user, token: str, request=None):
    """Return the device that accepts `token` (an app code or a recovery code), or None.

    Each device applies django-otp's throttling (growing delays after
    failures); a recovery code is used up by this call. Failures and the use
    of a recovery code are audited.
    """
    token = "".join(token.split()).lower()
    if not token:
        return None
    for device in devices_for_user(user):
        accepted = otp_verify_token(user, device.persistent_id, token)
        if accepted is not None:
            if isinstance(accepted, StaticDevice):
                audit_record(
                    action="two_factor.recovery_code_used",
                    user=user,
                    after={"recovery_codes_left": accepted.token_set.count()},
                    request=request,
                )
            return accepted
    audit_record(action="two_factor.failed", user=user, request=request)
    return None


def two_factor_remove(*, user, request=None) -> None:
    """Remove every second factor of `user` (their next page asks to enrol again if it is required)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        audit_record(action="two_factor.removed", user=user, request=request)
