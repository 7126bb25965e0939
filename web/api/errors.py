"""One error shape for every failure under /api: `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from scheduler.errors import Conflict, Invalid, JourneyError, NotFound

log = logging.getLogger(__name__)

# The `code` of each HTTP status, for errors that carry no code of their own.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
}


class ApiError(Exception):
    """A refusal with its HTTP status, a stable machine-readable code and a message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.field = field
        self.headers = headers or {}


def from_journey(exc: JourneyError) -> ApiError:
    """The API's face of a refusal from the engine (`scheduler.errors`)."""
    if isinstance(exc, NotFound):
        return ApiError(404, exc.message, field=exc.field)
    if isinstance(exc, Conflict):
        return ApiError(409, exc.message, field=exc.field)
    if isinstance(exc, Invalid):
        return ApiError(422, exc.message, field=exc.field)
    return ApiError(400, exc.message, field=exc.field)


def from_http(exc: HTTPException) -> ApiError:
    """The API's face of a werkzeug exception (routing, body parsing, size limits...)."""
    status = exc.code or 500
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        message = f"{request.method} is not allowed here (allowed: {headers['Allow']})"
    elif status == 404:
        message = f"no such endpoint: {request.path}"
    else:
        message = exc.description or exc.name
    return ApiError(status, message, headers=headers)


def body(error: ApiError) -> dict[str, Any]:
    return {"error": {"code": error.code, "message": error.message, "field": error.field}}


def respond(error: ApiError) -> Response:
    response = jsonify(body(error))
    response.status_code = error.status
    response.headers.update(error.headers)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="journey"'
    return response


def under_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def handle_api_error(exc: ApiError) -> Response:
    return respond(exc)


def handle_journey_error(exc: JourneyError) -> Response:
    return respond(from_journey(exc))


def handle_http_error(exc: HTTPException) -> Response | HTTPException:
    """JSON under /api; elsewhere, whatever the app would have answered."""
    if not under_api():
        return exc
    return respond(from_http(exc))


def handle_unexpected(exc: Exception) -> Response:
    """The last resort: a bug must still answer in the API's shape, and be logged."""
    log.exception("unexpected error on %s %s", request.method, request.path)
    return respond(ApiError(500, "internal error; it has been logged"))
