"""The bank-file rail: bank transfers paid by an ISO 20022 pain.001 file the merchant gives its bank.

Nothing is called: at execution the batch's bank-transfer payments go to
`processing` (this gateway answers every submission so, at once), and a
worker writes them into the batch's pain.001.001.09 file
(payments/services/batches/bank_files.py), which the merchant downloads and
sends to the bank. The bank answers with status reports (pain.002) and
debit notifications (camt.054) that the merchant uploads; their entries
settle each payment by its EndToEndId, the payment's reference.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from payments.gateways import CallbackRejected, Gateway, GatewayResult, Outcome, VerifiedCallback
from payments.models import GatewayAttempt, Payment

# ISO 20022 Max35Text: the EndToEndId (our reference) and, for a non-IBAN account, Othr/Id (Max34Text).
MAX_END_TO_END_ID = 35
MAX_OTHER_ACCOUNT = 34
# Two letters and two digits: the account is meant as an IBAN and must be a valid one.
_LOOKS_LIKE_IBAN = re.compile(r"[A-Za-z]{2}[0-9]{2}")


def looks_like_iban(account: str) -> bool:
    return bool(_LOOKS_LIKE_IBAN.match(account.replace(" ", "")))


class BankFileGateway(Gateway):
    slug = "bank_file"
    payouts = True
    realtime = False
    needs_funding_account = True
    # Outcomes come from uploaded bank reports (payments/services/batches/bank_reports.py), not callbacks.
    CALLBACK_TYPES: frozenset[str] = frozenset()

    def row_problems(self, row: dict[str, Any]) -> list[tuple[str, str, str]]:
        problems = []
        if len(row["reference"]) > MAX_END_TO_END_ID:
            problems.append(
                (
                    "reference",
                    "reference_too_long",
                    _("A bank transfer's reference is its EndToEndId: at most %(n)d characters.")
                    % {"n": MAX_END_TO_END_ID},
                )
            )
        account = row["beneficiary_account"]
        if looks_like_iban(account):
            try:
                IBAN(account)
            except SchwiftyException as exc:
                problems.append(
                    (
                        "beneficiary_account",
                        "invalid_iban",
                        _("Not a valid IBAN: %(reason)s.") % {"reason": exc},
                    )
                )
        elif len(account) > MAX_OTHER_ACCOUNT:
            problems.append(
                (
                    "beneficiary_account",
                    "invalid_account",
                    _("A bank account number has at most %(n)d characters.") % {"n": MAX_OTHER_ACCOUNT},
                )
            )
        return problems

    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        """The payment goes into its batch's bank file: processing until the bank reports on it."""
        return GatewayResult(outcome=Outcome.PROCESSING)

    def submit_batch(self, items: list[tuple[Payment, GatewayAttempt]]) -> list[GatewayResult | None]:
        return [GatewayResult(outcome=Outcome.PROCESSING) for _item in items]

    def query(self, attempt: GatewayAttempt) -> GatewayResult | None:
        """The bank is never asked: its reports are uploaded. Nothing final to tell."""
        return None

    def verify_callback(self, request: HttpRequest) -> VerifiedCallback:
        raise CallbackRejected("the bank-file rail takes no callbacks: upload bank reports instead")
