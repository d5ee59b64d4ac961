"""Domain errors. Services raise these; one handler maps them to HTTP."""

from __future__ import annotations


class AppError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None  # sent with the answer (Retry-After, say)

    def __init__(self, message: str, *, detail: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class InvalidInput(AppError):
    status_code = 422


class Unauthenticated(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403
