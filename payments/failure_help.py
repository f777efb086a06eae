"""Failure codes in plain words: what happened and what to do next (pages, not the API)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class FailureHelp:
    explanation: str | Promise
    next_step: str | Promise


FAILURES: dict[str, FailureHelp] = {
    "card_declined": FailureHelp(
        _("The card's bank declined the payment."),
        _("Ask the customer to use another card or to contact their bank, then create a new payment."),
    ),
    "insufficient_funds": FailureHelp(
        _("There was not enough money on the account."),
        _("Ask the customer to top up or use another account, then create a new payment."),
    ),
    "processing_error": FailureHelp(
        _("The gateway had a temporary problem."),
        _("Retry the payment: a retry is a new attempt and pays at most once."),
    ),
    "rejected_after_review": FailureHelp(
        _("PayDesk's reviewers rejected the payment after the risk check held it."),
        _("Check the beneficiary and the amount with your team; contact support if it looks legitimate."),
    ),
    "gateway_not_configured": FailureHelp(
        _("No gateway account is set up for this method and currency."),
        _("Ask an owner to add the gateway's credentials, then create the payment again."),
    ),
    "expired": FailureHelp(
        _("The customer did not complete the payment in time."),
        _("Send the customer a new payment request."),
    ),
}
UNKNOWN = FailureHelp(
    _("The gateway refused the payment."),
    _("Check the beneficiary's details; if they are right, try again or contact support with the id."),
)


def failure_help(code: str, retryable: bool = False) -> FailureHelp:
    """The explanation and next step of a failure code (a generic one for codes we do not know)."""
    found = FAILURES.get(code)
    if found is not None:
        return found
    if retryable:
        return FAILURES["processing_error"]
    return UNKNOWN
