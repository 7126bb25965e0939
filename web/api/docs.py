"""The contract, as JSON (/api/openapi.json), and the interactive reference (/api/docs):
Swagger UI, served by the app itself, reading that same document. A developer pastes a token
under "Authorize" and tries any call."""

from __future__ import annotations

from flask import Response, render_template

from web.api import bp, inputs, reply


@bp.get("/openapi.json")
def openapi() -> Response:
    return reply(inputs.contract().document)


@bp.get("/docs")
def docs() -> str:
    return render_template("api/docs.html")
