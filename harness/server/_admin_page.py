"""The admin page: one HTML page, its script and its style, all from this origin.

The page is served without authentication: it holds no data. It asks for the bearer
token and calls the JSON API with it, so every answer it shows was authorised there.
"""

from __future__ import annotations

import functools
from importlib import resources

import jinja2
from fastapi import APIRouter
from fastapi.responses import Response

from ..status import AttestationStatus
from ._admin import MAX_DEVICES_PER_ACTION

router = APIRouter(prefix="/admin", tags=["Admin page"])

# Script and style come only from this origin as files, so no inline code can run even if a
# device name slipped into the markup; the page talks only to its own server.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGE_SIZES = (25, 50, 100, 250)


@functools.cache
def _asset(name: str) -> str:
    return resources.files("harness.server").joinpath("admin_page", name).read_text("utf-8")


@functools.cache
def _page() -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.server", "admin_page"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("index.html.j2").render(
        statuses=[s.value for s in AttestationStatus],
        max_devices=MAX_DEVICES_PER_ACTION,
        page_sizes=PAGE_SIZES,
        default_page_size=50,
    )


@router.get("/", include_in_schema=False)
def admin_page() -> Response:
    return Response(_page(), media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/app.js", include_in_schema=False)
def admin_script() -> Response:
    return Response(_asset("app.js"), media_type="text/javascript; charset=utf-8", headers=_HEADERS)


@router.get("/app.css", include_in_schema=False)
def admin_style() -> Response:
    return Response(_asset("app.css"), media_type="text/css; charset=utf-8", headers=_HEADERS)
