"""System checks: a configuration mistake stops `runserver`, `qcluster` and `migrate` at start-up.

Values that cannot even be read (numbers, booleans, DATABASE_URL, LOG_LEVEL)
are refused while the settings load (config/env.py); what needs the gateway
registry or a closer look is checked here. Every message names the
environment variable to fix.

- paydesk.E001: a payment method is routed to a gateway that does not exist.
- paydesk.E002: a routed gateway lacks a setting it needs.
- paydesk.E003: a URL in the environment is malformed.
- paydesk.W001: a payment method is routed to the sandbox while DEBUG is off.
  A deployment that means it (a staging site, or methods with no real rail
  yet) says so with SILENCED_SYSTEM_CHECKS=paydesk.W001.
- paydesk.W002: a translation catalogue is not compiled, or older than its .po
  (pages would be English, or stale): run `manage.py compile_translations`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from payments.gateways import get_gateway, url_problem
from payments.translations import catalogue_paths


def route_variable(method: str) -> str:
    return f"PAYDESK_GATEWAY_{method.upper()}"


def check_gateway_routes(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Every method's gateway exists and has its settings; the sandbox only while DEBUG (or accepted)."""
    messages: list[CheckMessage] = []
    routed: dict[str, list[str]] = {}
    for method, slug in settings.PAYDESK_GATEWAY_ROUTES.items():
        if slug not in settings.PAYDESK_GATEWAYS:
            messages.append(
                Error(
                    f"{route_variable(method)}={slug!r} names no gateway, so {method} payments "
                    "and batches could never be submitted.",
                    hint=f"Use one of: {', '.join(sorted(settings.PAYDESK_GATEWAYS))}.",
                    id="paydesk.E001",
                )
            )
            continue
        routed.setdefault(slug, []).append(method)
    for slug, methods in routed.items():
        variables = ", ".join(route_variable(m) for m in methods)
        try:
            gateway = get_gateway(slug)
        except ImportError as exc:
            messages.append(
                Error(
                    f"The gateway of {variables}, {slug}, cannot be imported: {exc}.",
                    hint="Fix PAYDESK_GATEWAYS in config/settings.py.",
                    id="paydesk.E002",
                )
            )
            continue
        for variable, problem in gateway.settings_problems():
            messages.append(Error(f"{variable} {problem} (the gateway of {variables}).", id="paydesk.E002"))
        if slug == "sandbox" and not settings.DEBUG:
            messages.append(
                Warning(
                    f"{', '.join(methods)} payments go to the sandbox while DEBUG is off ({variables}): "
                    "they are only simulated, never paid.",
                    hint="Route them to a real gateway, or accept the sandbox on purpose with "
                    "SILENCED_SYSTEM_CHECKS=paydesk.W001.",
                    id="paydesk.W001",
                )
            )
    return messages


def url_settings() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each URL read from the environment: variable -> (value, allowed schemes)."""
    web = ("http", "https")
    urls = {
        "PAYDESK_PUBLIC_URL": (settings.PAYDESK_PUBLIC_URL, web),
        "TWILIO_API_BASE": (settings.TWILIO_API_BASE, web),
    }
    if settings.PAYDESK_PAYPAL_RETURN_URL != settings.PAYDESK_PUBLIC_URL + "/":  # set, not derived
        urls["PAYDESK_PAYPAL_RETURN_URL"] = (settings.PAYDESK_PAYPAL_RETURN_URL, web)
    for gateway, environments in settings.PAYDESK_GATEWAY_URLS.items():
        for environment, url in environments.items():
            urls[f"PAYDESK_{gateway.upper()}_{environment.upper()}_URL"] = (url, web)
    if settings.REDIS_URL and not settings.REDIS_URL.startswith("unix://"):  # a socket path names no host
        urls["REDIS_URL"] = (settings.REDIS_URL, ("redis", "rediss"))
    return urls


def check_urls(app_configs=None, **kwargs) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for variable, (value, schemes) in url_settings().items():
        problem = url_problem(value, schemes)
        if problem:
            messages.append(Error(f"{variable}={value!r} {problem}.", id="paydesk.E003"))
    return messages


def check_translations(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Every committed .po has an up-to-date .mo beside it (the .mo is built, never committed)."""
    messages: list[CheckMessage] = []
    for po in catalogue_paths():
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            messages.append(
                Warning(
                    f"{mo} is missing or older than its .po: that language shows English or old text.",
                    hint="Run `manage.py compile_translations` after installing or upgrading.",
                    id="paydesk.W002",
                )
            )
    return messages
