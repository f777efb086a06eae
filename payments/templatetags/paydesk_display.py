"""Display helpers shared by the dashboard's pages: masked accounts, status words, failure advice."""

from django import template

from payments.masking import mask_account

register = template.Library()


@register.filter
def masked(account: str) -> str:
    return mask_account(account)


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key) if mapping else None
