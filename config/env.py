"""Reading settings from environment variables: a value that cannot be read is a start-up error.

Each helper returns the default when the variable is unset or empty and raises
ImproperlyConfigured, naming the variable, when it is set to something it
cannot use, so that a typo stops the process at start instead of surfacing as
a failure hours later.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def env_str(name: str, default: str = "") -> str:
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_is_set(name: str) -> bool:
    return os.environ.get(name, "") != ""


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0 (or true/false, yes/no, on/off), not {value!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, not {value!r}.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name} must be a finite number, not {value!r}.")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}, not {number:g}.")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]
