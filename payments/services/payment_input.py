"""Payment input checked against the one specification and against the gateway it will go to.

payments.validation holds the rules of every field and knows no gateway;
this is where a use case adds the question only the gateway layer answers:
is the gateway routed for the method (or, for a batch row, its payout rail)
set up for this merchant and this currency? And the one rule that needs the
database: the merchant's blocklist (payments/controls.py).
"""

from __future__ import annotations

from merchants.models import Merchant
from payments.controls import blocklist_errors
from payments.gateways import setup_problem
from payments.validation import FieldError, PaymentInvalid, validate_payment_input


def payment_input_validate(
    *, merchant: Merchant, data: dict, memo: dict | None = None, payout: bool = False
) -> dict:
    """Return the cleaned fields of a payment or raise PaymentInvalid with every problem.

    `memo` is an optional dict kept by a caller that validates many inputs
    of one merchant in one unit of work (a batch, under the same settings
    and language): it remembers the gateway set-up answer per method and
    currency. Never share one across merchants.

    `payout=True` (batch rows) checks the method against its payout rail
    instead of its real-time gateway.
    """

    def route_check(method: str, currency: str):
        key = ("setup_problem", method, currency)
        if memo is not None and key in memo:
            return memo[key]
        problem = setup_problem(merchant, method, currency, payout=payout)
        if memo is not None:
            memo[key] = problem
        return problem

    clean = validate_payment_input(merchant, data, route_check=route_check)
    # The merchant's blocklist (payments/controls.py) needs the database, so it is asked here, once the
    # input meets the specification: refused the same way at every entry point.
    blocked = blocklist_errors(merchant, clean, memo)
    if blocked:
        raise PaymentInvalid([FieldError(*error) for error in blocked])
    return clean
