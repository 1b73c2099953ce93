"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from ._context import ServerContext
from ._ratelimit import RateLimits


def context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.context
    return ctx


def rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def rate_limited(request: Request) -> None:
    """The per-address limit of the device endpoints (429 with Retry-After when over it)."""
    rate_limits(request).check(request)
