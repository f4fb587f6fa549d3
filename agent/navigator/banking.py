"""The core-banking operations the navigator's self-service flows need, and a demo backend on the profile store.

:class:`CoreBanking` is the adapter interface (a bank plugs in its own ESB/API client); :class:`DemoCoreBanking`
answers from :mod:`profiles` for demos and tests. Implementations may block (network); the engine calls them
synchronously from the call's dialog thread.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from core.errors import InvalidInputError, NotFoundError
from profiles.models import Customer

__all__ = ["DEMO_INSTALLMENT_RATES", "CoreBanking", "DemoCoreBanking", "InstallmentQuote", "ProfileReader",
           "demo_card_last4"]  # fmt: skip

_CENT = Decimal("0.01")
DEMO_INSTALLMENT_RATES = {3: Decimal("0.0075"), 6: Decimal("0.0070"), 12: Decimal("0.0066"), 24: Decimal("0.0065")}
"""Demo fee per period as a share of the amount, by number of periods."""


@dataclass(frozen=True)
class InstallmentQuote:
    """A bill instalment quote; money in CNY, rounded to the fen."""

    periods: int
    principal_per_period: Decimal
    fee_per_period: Decimal
    per_period: Decimal
    """Principal plus fee, each period."""
    total_fee: Decimal


class CoreBanking(Protocol):
    """What the navigator asks of the bank's core systems. Errors are :class:`core.errors.VoxdeskError`."""

    def verify_identity(self, customer_id: str, card_last4: str, birth_date: date) -> bool:
        """Whether the card's last four digits and the date of birth match the customer."""
        ...

    def balance(self, customer_id: str) -> Decimal:
        """The available balance of the customer's main account, CNY."""
        ...

    def installment_quote(self, customer_id: str, amount: Decimal, periods: int) -> InstallmentQuote:
        """The cost of paying ``amount`` (CNY) of the bill in ``periods`` monthly instalments."""
        ...

    def book_appointment(self, customer_id: str, branch_id: str, when: datetime) -> str:
        """Book a branch visit at ``when`` (branch local time); returns the confirmation id."""
        ...

    def report_lost_card(self, customer_id: str, card_last4: str) -> str:
        """Block the card as lost; returns the loss report's reference id."""
        ...


class ProfileReader(Protocol):
    """The part of :class:`profiles.store.ProfileStore` the demo needs."""

    def get(self, customer_id: str) -> Customer: ...


def demo_card_last4(customer_id: str) -> str:
    """DEMO ONLY: the last four digits of the customer's card, derived from the customer id (SHA-256), since the
    profile store keeps no card numbers. A real adapter asks the card system."""
    return f"{int(hashlib.sha256(customer_id.encode()).hexdigest(), 16) % 10_000:04d}"


def _reference(prefix: str, *parts: str) -> str:
    return prefix + hashlib.sha256("|".join(parts).encode()).hexdigest()[:8].upper()


class DemoCoreBanking:
    """:class:`CoreBanking` over the profile store: the balance is the sum of the customer's holdings (CNY), the
    card's last four digits come from :func:`demo_card_last4`, bookings and loss reports only return deterministic
    references. Not for production."""

    def __init__(self, profiles: ProfileReader, *, rates: dict[int, Decimal] | None = None) -> None:
        self._profiles = profiles
        self._rates = rates or DEMO_INSTALLMENT_RATES

    def verify_identity(self, customer_id: str, card_last4: str, birth_date: date) -> bool:
        try:
            customer = self._profiles.get(customer_id)
        except NotFoundError:
            return False
        return customer.birth_date == birth_date and demo_card_last4(customer_id) == card_last4

    def balance(self, customer_id: str) -> Decimal:
        customer = self._profiles.get(customer_id)
        return sum((h.amount_cny for h in customer.holdings), Decimal(0)).quantize(_CENT)

    def installment_quote(self, customer_id: str, amount: Decimal, periods: int) -> InstallmentQuote:
        if periods not in self._rates:
            raise InvalidInputError("unsupported number of instalment periods", periods=periods)
        if amount <= 0:
            raise InvalidInputError("the instalment amount must be positive")
        self._profiles.get(customer_id)
        return quote(amount, periods, self._rates[periods])

    def book_appointment(self, customer_id: str, branch_id: str, when: datetime) -> str:
        self._profiles.get(customer_id)
        return _reference("AP", customer_id, branch_id, when.isoformat())

    def report_lost_card(self, customer_id: str, card_last4: str) -> str:
        self._profiles.get(customer_id)
        return _reference("LC", customer_id, card_last4)


def quote(amount: Decimal, periods: int, rate: Decimal) -> InstallmentQuote:
    """An instalment quote with a flat fee of ``rate`` × ``amount`` per period (CNY, rounded half up to the fen)."""
    principal = (amount / periods).quantize(_CENT, ROUND_HALF_UP)
    fee = (amount * rate).quantize(_CENT, ROUND_HALF_UP)
    return InstallmentQuote(periods, principal, fee, principal + fee, fee * periods)
