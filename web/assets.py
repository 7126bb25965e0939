"""Front-end libraries the app serves itself: htmx for the admin panel and Swagger UI for the
API reference. `make` installs them from npm (package.json pins the versions) into
static/vendor, which git ignores; where npm is missing, pages load the same pinned files from a
CDN, checked by their integrity hash."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDN = "https://unpkg.com"


@dataclass(frozen=True)
class Asset:
    package: str  # the npm package (its version is the one package.json pins)
    path: str  # the file, inside the package
    vendored: str  # where `make` copies it, under static/vendor
    integrity: str  # of that version's file: the browser refuses any other


ASSETS = {
    "htmx": Asset(
        "htmx.org",
        "dist/htmx.min.js",
        "htmx.min.js",
        "sha384-/TgkGk7p307TH7EXJDuUlgG3Ce1UVolAOFopFekQkkXihi5u/6OCvVKyz1W+idaz",
    ),
    "swagger_js": Asset(
        "swagger-ui-dist",
        "swagger-ui-bundle.js",
        "swagger-ui/swagger-ui-bundle.js",
        "sha384-7xcoc6ZKDFF7Ek627QTC3Bg/K+5Y36NJ8MWAE43D2m6+3Sh9XO3tdsfHhrS8gNIQ",
    ),
    "swagger_css": Asset(
        "swagger-ui-dist",
        "swagger-ui.css",
        "swagger-ui/swagger-ui.css",
        "sha384-3nuX7df3EaAoiqLBeyS1Ola0Gpg9ryJKVtarubwfnA1cOH8AWHUdbPSIvEqPZ9VH",
    ),
}


def links(static_folder: str | Path) -> dict[str, dict[str, str]]:
    """Each asset's URL (the local copy, or the CDN's) and integrity hash, for templates."""
    pins = json.loads((ROOT / "package.json").read_text())["dependencies"]
    out: dict[str, dict[str, str]] = {}
    for name, asset in ASSETS.items():
        local = Path(static_folder) / "vendor" / asset.vendored
        if local.exists():
            src = f"/static/vendor/{asset.vendored}"
        else:
            src = f"{CDN}/{asset.package}@{pins[asset.package]}/{asset.path}"
        out[name] = {"src": src, "integrity": asset.integrity}
    return out


def from_cdn(static_folder: str | Path) -> bool:
    """Whether any page loads a library from the CDN (its origin must then be allowed)."""
    return any(link["src"].startswith(CDN) for link in links(static_folder).values())
