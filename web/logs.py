"""Log format: plain text by default; with LOG_FORMAT=json one JSON object a line, carrying the
automation, client and message ids a record is about (for a platform's log search)."""

from __future__ import annotations

import logging
import sys

from flask import Flask
from pythonjsonlogger.json import JsonFormatter

from scheduler.logs import Attach

FIELDS = "{asctime}{levelname}{name}{process}{threadName}{message}"


def configure(app: Flask) -> None:
    if app.config["LOG_FORMAT"] != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
        root.setLevel(logging.INFO)
    formatter = JsonFormatter(FIELDS, style="{", rename_fields={"levelname": "level"})
    for handler in root.handlers:
        handler.setFormatter(formatter)
        if not any(isinstance(f, Attach) for f in handler.filters):
            handler.addFilter(Attach())
