"""Security headers on every response, from one after-request hook: a Content-Security-Policy
for each part of the app (none allows inline script; the panel allows its own files only), and
X-Content-Type-Options, Referrer-Policy, X-Frame-Options, and Strict-Transport-Security when
BASE_URL is https. A part that sets its own policy (the portal, an email preview) keeps it."""

from __future__ import annotations

import secrets

from flask import Flask, Response, current_app, g, request

# The panel: its own scripts (htmx) and stylesheet, nothing inline, nothing from elsewhere.
PANEL = (
    "default-src 'none'; script-src {scripts}; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# flask-admin (/records) marks its script and style tags with a nonce; its widgets set styles
# from script, which a policy does not govern.
RECORDS = (
    "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# The API answers JSON; its reference (/api/docs) is Swagger UI, served by the app (or the
# pinned CDN files): its script and stylesheet files, the document it reads, its data: icons.
API = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
API_DOCS = (
    "default-src 'none'; script-src {scripts}; style-src {styles}; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# An email shown in the panel's preview frame: its inline styles, nothing else, sandboxed.
EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox"
)
HSTS = "max-age=63072000; includeSubDomains"


def nonce() -> str:
    """This response's nonce, for the tags flask-admin must mark; made on first use."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return str(g.csp_nonce)


def sources(*names: str) -> str:
    """'self', and the CDN files among the named assets (where npm did not install them)."""
    links = current_app.jinja_env.globals.get("assets", {})
    cdn = [links[n]["src"] for n in names if links.get(n, {}).get("src", "").startswith("https:")]
    return " ".join(["'self'", *cdn])


def policy_for(path: str) -> str:
    if path == "/api/docs":
        return API_DOCS.format(scripts=sources("swagger_js"), styles=sources("swagger_css"))
    if path == "/api" or path.startswith("/api/"):
        return API
    if path == "/records" or path.startswith("/records/"):
        return RECORDS.format(nonce=nonce())
    return PANEL.format(scripts=sources("htmx"))


def headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", policy_for(request.path))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if current_app.config["BASE_URL"].startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    app.after_request(headers)
