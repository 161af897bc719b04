"""Column types: exact money and encrypted strings."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, String
from sqlalchemy.types import TypeDecorator

from provisioner import secrets

CENT = Decimal("0.01")


def to_money(value: Any) -> Decimal:
    """Exact two-decimal money from str/int/Decimal; floats are refused (they are inexact)."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a string or Decimal")
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class Money(TypeDecorator[Decimal]):
    """Decimal in Python, integer minor units in the database (exact on SQLite too)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return int(to_money(value) * 100)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(CENT)


class Encrypted(TypeDecorator[str]):
    """A string stored Fernet-encrypted; plaintext only in memory."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else secrets.encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else secrets.decrypt(value)
