"""The FastAPI application: routers, error bodies, and the request size limit."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..protocol import ServiceError
from ..status import HResult
from . import _admin, _admin_page, _aik_ca, _checkin, _enrollment, _idp, _openapi, _push
from ._clock import Clock, SystemClock
from ._config import ServerConfig
from ._context import ServerContext, ServiceFailure
from ._ratelimit import RateLimits

log = logging.getLogger(__name__)


def _error(status_code: int, error: str, hresult: int, reason: str, **headers: str) -> JSONResponse:
    body = ServiceError(error=error, hresult=f"0x{hresult:08X}", reason=reason)
    return JSONResponse(status_code=status_code, content=body.model_dump(), headers=headers or None)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:10]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


class BodyLimit:
    """Refuse bodies over a limit with 413 before any handler parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(
            413, "request_too_large", HResult.E_FAIL, f"request body is over {self.max_bytes} bytes"
        )
        await response(scope, receive, send)


class ReadableTarget:
    """Refuse a path or query string that is not UTF-8 once percent-decoded, with 400.

    Starlette would decode such bytes to U+FFFD and the id a client meant would silently
    become another one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or b""
            for part, what in ((raw_path, "path"), (scope.get("query_string", b""), "query string")):
                try:
                    unquote_to_bytes(part).decode("utf-8")
                except UnicodeDecodeError:
                    response = _error(400, "malformed_request", HResult.E_FAIL, f"the {what} is not UTF-8")
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_app(config: ServerConfig, clock: Clock | None = None) -> FastAPI:
    ctx = ServerContext.open(config, clock or SystemClock())
    app = FastAPI(
        title="Enrollment attestation reference server",
        version=__version__,
        description="AIK CA, identity provider, MDM enrollment, attestation evaluator and report.",
        # No /docs or /redoc: both load their scripts from a CDN, blank in an offline lab and
        # outside any CSP. /openapi.json is the document; docs/protocol.md explains it.
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = ctx
    app.state.rate_limits = RateLimits(
        config.rate_per_address,
        config.rate_per_device,
        config.rate_unauthenticated_per_address,
        config.unbound_rows_per_address,
    )
    app.state.push = _push.PushHub()
    for module in (_aik_ca, _idp, _enrollment, _checkin, _push, _admin, _admin_page):
        app.include_router(module.router)

    @app.exception_handler(ServiceFailure)
    async def service_failure(_: Request, exc: ServiceFailure) -> JSONResponse:
        return _error(exc.status_code, exc.error, exc.hresult, exc.reason, **exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_failure(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "malformed_request")
        # Keeps the Allow header of a 405 (and any other header the exception carries).
        return _error(exc.status_code, error, HResult.E_FAIL, str(exc.detail), **(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "malformed_request", HResult.E_FAIL, _describe_validation(exc))

    @app.get("/health", tags=["Health"], responses=_openapi.errors())
    def health() -> dict[str, Any]:
        return {"status": "ok", "time": ctx.clock.now().isoformat()}

    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(ReadableTarget)
    _openapi.install(app, config.max_body_bytes)
    return app
