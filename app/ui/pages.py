"""The console's HTML pages and static assets, and the security headers they are served with.

Pages are ``string.Template`` files from ``templates/``; every substituted value is HTML-escaped.
The Content-Security-Policy allows scripts and styles from this origin only (no inline script,
no ``eval``), so markup that reaches the page by mistake (a prompt, a model's answer) cannot run.
"""

from __future__ import annotations

import json
from functools import cache
from html import escape
from pathlib import Path
from string import Template

from fastapi.responses import FileResponse, HTMLResponse

from app.selection.utility import PRESETS

HERE = Path(__file__).parent
STATIC = HERE / "static"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
])  # fmt: skip

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@cache
def _template(name: str) -> Template:
    return Template((HERE / "templates" / name).read_text(encoding="utf-8"))


def _page(name: str, status_code: int = 200, **values: str) -> HTMLResponse:
    html = _template(name).substitute({k: escape(v, quote=True) for k, v in values.items()})
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def login_page(token: str, error: str = "", status_code: int = 200) -> HTMLResponse:
    """The admin-key form; ``token`` is the login form's CSRF token."""
    return _page(
        "login.html",
        status_code,
        token=token,
        error=error,
        error_hidden="" if error else "hidden",
    )


def console_page(
    *, csrf: str, default_preset: str, keys_enabled: bool, logged_in: bool
) -> HTMLResponse:
    """The console itself; the CSRF token rides in a meta tag for the scripts."""
    return _page(
        "console.html",
        csrf=csrf,
        presets=json.dumps(PRESETS),
        default_preset=default_preset,
        keys=str(keys_enabled).lower(),
        logout_hidden="" if logged_in else "hidden",
    )


@cache
def asset_names() -> frozenset[str]:
    return frozenset(p.name for p in STATIC.iterdir() if p.suffix in MEDIA_TYPES)


def asset(name: str) -> FileResponse | None:
    """A file of ``static/`` by its bare name (anything else: None)."""
    if name not in asset_names():
        return None
    path = STATIC / name
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)
