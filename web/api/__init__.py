"""The JSON API under /api: a thin layer over the engine's operations. Each view reads its input
(checked against the OpenAPI document in `spec`), calls one journey operation and answers JSON.

`init_app` registers it: the blueprint, the gate in front of every /api request (token,
unknown routes, body size), the JSON error handlers, and the CSRF exemption. Call it after
any CSRFProtect is set up, or exempt `web.api.bp` by hand: the API authenticates with bearer
tokens, not cookies, so it needs no CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from scheduler.engine import Context
from scheduler.errors import JourneyError
from scheduler.models import ApiToken
from web import acting_person, journey_context, throttle
from web.api import errors, idempotency, inputs, spec, tokens
from web.api.errors import ApiError
from web.extensions import db

bp = Blueprint("api", __name__, url_prefix="/api")


class EmailConverter(BaseConverter):
    """A path segment that is an email address (a client may be named by it)."""

    regex = r"[^/@]+@[^/@]+"


# Endpoints anyone may read: the contract and its docs.
PUBLIC = frozenset({"api.openapi", "api.docs"})


def init_app(app: Flask) -> None:
    from web.api import (  # noqa: F401  (declare the routes)
        abtests,
        automations,
        clients,
        docs,
        metrics,
        risk,
        versions,
    )

    program = app.extensions["journey"].program
    app.extensions["journey_api"] = {"contract": inputs.Contract(spec.document(program))}
    app.url_map.converters["email"] = EmailConverter
    app.register_blueprint(bp)
    # First of the app's before-request functions, so that an /api request is authenticated
    # (or refused in the API's shape) before anything else looks at it.
    app.before_request_funcs.setdefault(None, []).insert(0, gate)
    app.register_error_handler(ApiError, errors.handle_api_error)
    app.register_error_handler(HTTPException, errors.handle_http_error)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)


bp.register_error_handler(ApiError, errors.handle_api_error)
bp.register_error_handler(JourneyError, errors.handle_journey_error)
bp.register_error_handler(HTTPException, errors.handle_http_error)
bp.register_error_handler(Exception, errors.handle_unexpected)


def gate() -> Response | None:
    """Every /api request: the body limit, the token, then unknown routes and methods (after
    the token, so that nothing about the API shows to a caller without one)."""
    if not errors.under_api():
        return None
    request.max_content_length = inputs.MAX_BODY
    try:
        if request.endpoint not in PUBLIC:
            g.api_token = authenticate_throttled()
            # The token's owner acts through this request (the unit of work was opened to
            # check the token, before its owner was known).
            journey_context().actor = acting_person()
        if request.routing_exception is not None:
            assert isinstance(request.routing_exception, HTTPException)
            return errors.respond(errors.from_http(request.routing_exception))
    except ApiError as exc:
        return errors.respond(exc)
    except Exception as exc:
        db.session.rollback()
        return errors.handle_unexpected(exc)
    return None


def authenticate_throttled() -> ApiToken:
    """The token, unless this address has sent too many bad ones lately (then 429, with no
    token checked until the wait is over)."""
    address = throttle.client_address()
    wait = throttle.API_TOKEN.retry_after(address)
    if wait:
        raise ApiError(
            429,
            f"too many requests with a missing or bad API token from this address: "
            f"try again in {throttle.wait_words(wait)}",
            headers={"Retry-After": str(wait)},
        )
    try:
        return authenticate()
    except ApiError:
        throttle.API_TOKEN.failed(address)
        raise


def authenticate() -> ApiToken:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if not header:
        raise ApiError(401, "an API token is required: Authorization: Bearer <token>")
    if scheme.lower() != "bearer" or not raw.strip():
        raise ApiError(401, "use Authorization: Bearer <token>")
    token = tokens.verify(db.session, raw.strip(), journey_context().now())
    if token is None:
        raise ApiError(401, "the API token is unknown or revoked")
    return token


def ctx() -> Context:
    return journey_context()


def reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(payload)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


View = Callable[..., Response]


def action(view: View) -> View:
    """A view that changes something: it runs in one unit of work, committed (and its
    automations dispatched) only if it succeeds; a POST with an Idempotency-Key runs once."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        context = ctx()
        key = idempotency.requested_key()
        claim = None
        if key is not None:
            token: ApiToken = g.api_token
            claimed = idempotency.claim(db.session, token.id, key, context.now())
            if isinstance(claimed, Response):
                return claimed
            claim = claimed
        try:
            response = view(*args, **kwargs)
        except (ApiError, JourneyError) as exc:
            context.rollback()
            error = exc if isinstance(exc, ApiError) else errors.from_journey(exc)
            response = errors.respond(error)
        except HTTPException as exc:
            context.rollback()
            response = errors.respond(errors.from_http(exc))
        except Exception:
            context.rollback()
            if claim is not None:
                idempotency.release(db.session, claim)
            raise
        if claim is not None:
            idempotency.remember(db.session, claim, response)
        context.commit()
        return response

    return wrapper
