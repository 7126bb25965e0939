"""Real-browser testing: the app served by a real HTTP server on loopback, driven by headless
Chromium through Playwright (the `chromium` and `page` fixtures are in conftest)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

# Where screenshots go: `make screenshots` sets it to docs/screenshots; else a temporary folder.
SHOTS = os.environ.get("JOURNEY_SCREENSHOTS")


def serve(app: Any) -> tuple[str, Any]:
    """Serve `app` on a free loopback port in a thread; returns its base URL and the server."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def shot(page: Any, name: str, tmp_path: Path) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def csp_violations(page: Any) -> list[str]:
    """Collect every Content-Security-Policy violation the page meets from now on: Chromium's
    console errors and the `securitypolicyviolation` events (frames included)."""
    found: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", on_console)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
    )
    return found
