"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from ._auth import Caller
from ._context import ServerContext
from ._ratelimit import RateLimits


async def context(request: Request) -> ServerContext:
    # async: resolved on the event loop, never holding one of the worker threads for a lookup
    ctx: ServerContext = request.app.state.context
    return ctx


def rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def rate_limited(request: Request) -> None:
    """The per-address ceiling of the device endpoints (429 with Retry-After when over it)."""
    rate_limits(request).check(request)


def count_device_request(request: Request, caller: Caller, emm_device_id: str) -> None:
    """Count a nonce, enrollment or check-in once its sender is known: against the device when
    it proved it is the device, against its address when it proved nothing (429 when over)."""
    limits = rate_limits(request)
    if caller.authenticated:
        limits.authenticated(caller.limit_key(emm_device_id))
    else:
        limits.unauthenticated(request)
