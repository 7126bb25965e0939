"""The Flask app the actors run in: bound by the web process in embedded mode, created on
first use in a worker process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from scheduler.engine import Context

_app: Flask | None = None
_lock = threading.Lock()


def bind(app: Flask) -> None:
    global _app
    _app = app


def app() -> Flask:
    global _app
    with _lock:
        if _app is None:
            from web import create_app

            _app = create_app()
        return _app


@contextmanager
def context() -> Iterator[Context]:
    """An app context and a unit of work; the session is closed afterwards."""
    from web import journey_context
    from web.extensions import db

    with app().app_context():
        try:
            yield journey_context()
        finally:
            db.session.remove()
