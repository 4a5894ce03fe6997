"""Whose order is it: the one rule the return form and the status answer share.

An order is the customer's when it is linked to them or carries their known e-mail/phone;
otherwise only the e-mail or phone written on the order proves it, and proving it links the
order to the customer. Nothing about another customer's order (its status, its items) is
shown before that proof: a number alone is easy to guess.
"""

from __future__ import annotations

import re

from storage.models import Customer, Order

PHONE_DIGITS = 10
"""Phone numbers compare by their last digits, so ``+44 7700 900123`` matches ``07700 900123``."""
MIN_PHONE_DIGITS = 6


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)[-PHONE_DIGITS:]


def owns(customer: Customer, order: Order) -> bool:
    """The order is linked to the customer or carries their known e-mail or phone."""
    if order.customer_id == customer.id:
        return True
    if customer.email and order.email and customer.email.lower() == order.email.lower():
        return True
    return bool(customer.phone and order.phone and _digits(customer.phone) == _digits(order.phone))


def contact_matches(order: Order, contact: str) -> bool:
    """``contact`` (an e-mail address or a phone number) is the one written on the order."""
    if "@" in contact:
        return bool(order.email and order.email.lower() == contact.strip().lower())
    digits = _digits(contact)
    return bool(len(digits) >= MIN_PHONE_DIGITS and order.phone and _digits(order.phone) == digits)


def link(order: Order, customer: Customer, contact: str) -> None:
    """Link a proven order to the customer, who keeps the contact if they had none."""
    order.customer_id = customer.id
    if "@" in contact:
        customer.email = customer.email or contact.strip().lower()
    else:
        customer.phone = customer.phone or contact
