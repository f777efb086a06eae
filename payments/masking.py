"""Account numbers as lists and pages show them: the last four characters only."""

from __future__ import annotations

MASK = "\u2022\u2022\u2022\u2022"


def mask_account(account: str | None) -> str:
    """Return `•••• 1234` for an account number (all of it masked if it has four characters or fewer)."""
    text = "".join((account or "").split())
    if not text:
        return ""
    if len(text) <= 4:
        return MASK
    return f"{MASK} {text[-4:]}"
