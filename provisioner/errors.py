"""Errors a user sees. Each names what was wrong; none leaves anything half-written."""

from __future__ import annotations


class ProvisionerError(Exception):
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)


class ValidationError(ProvisionerError):
    status = 422


class NotFound(ProvisionerError):
    status = 404


class Conflict(ProvisionerError):
    status = 409


class Forbidden(ProvisionerError):
    status = 403


class PaymentRequired(ProvisionerError):
    status = 402
