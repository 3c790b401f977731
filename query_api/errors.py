"""Typed errors of the query API, mapped to HTTP in one place (app.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class QueryError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(QueryError):
    status = 400


class Unauthorized(QueryError):
    status = 401


class NotFound(QueryError):
    status = 404


INVALID_KEY = (
    "Invalid API key or site ID. Please make sure you're using a valid API key with access to "
    "the site you've requested."
)


class Forbidden(QueryError):
    status = 403


class Conflict(QueryError):
    status = 409


class TooLarge(QueryError):
    status = 413


class Unavailable(QueryError):
    status = 503


class ErrorOut(BaseModel):
    """Every error body: `{"error": "<message>"}` (Plausible's shape)."""

    error: str


READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Invalid parameters, with the reason"},
    401: {"model": ErrorOut, "description": "Invalid API key, share link or site ID"},
}
