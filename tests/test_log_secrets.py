"""No password, API key, webhook secret, gateway secret or full account number in the logs of the suite.

tests/conftest.py collects every log record of the run and puts this module
last, so that a whole-suite run (`make test`, CI) checks everything the other
tests made PayDesk log.
"""

import re

from tests.conftest import SuiteLog

# What must never be logged, as the suite produces it.
SECRETS = {
    "API key": re.compile(r"pdk_[0-9a-f]{12}_[A-Za-z0-9_\-]{20,}"),
    "webhook secret": re.compile(r"whsec_[A-Za-z0-9+/=]{16,}"),
    "password": re.compile(
        r"pw-for-tests-1|paydesk-demo|a-new-long-pw-42|reset-pw-long-42|long-enough-pw-7|not-the-password"
    ),
    "gateway secret": re.compile(
        r"sandbox-dev-secret|paypal-client-secret-value|BEGIN (RSA |EC )?PRIVATE KEY|api_v3_key_[A-Za-z0-9]+"
    ),
    # The suite's card-like and IBAN account numbers, in full (masked forms are •••• 1234).
    "full account number": re.compile(
        r"\b4000000000\d{6}\b|\b(?:DE89370400440532013000|FR7630006000011234567890189|GB29NWBK60161331926819)\b"
    ),
}


def leaks(lines) -> list[tuple[str, str, str]]:
    return [
        (kind, logger, text[:300])
        for logger, text in lines
        for kind, pattern in SECRETS.items()
        if pattern.search(text)
    ]


def test_the_scan_finds_a_secret_when_there_is_one():
    planted = [("x", "sent with Authorization: Bearer pdk_0123456789ab_" + "A" * 43)]
    assert [kind for kind, _, _ in leaks(planted)] == ["API key"]
    assert leaks([("x", "paid •••• 1234")]) == []


def test_no_secret_in_the_logs_of_the_whole_suite():
    assert SuiteLog.lines is not None
    found = leaks(SuiteLog.lines)
    assert not found, "\n".join(f"{kind} in {logger}: {text}" for kind, logger, text in found[:20])
