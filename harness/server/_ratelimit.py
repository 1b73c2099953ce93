"""Rate limits on the endpoints a device calls before it can prove who it is.

Counted in real time, not on the server's clock: a limit protects the process from load,
and a manual clock that tests move would otherwise open or shut it at will.
"""

from __future__ import annotations

import time

from fastapi import Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ._context import too_many_requests


class RateLimits:
    """A moving one-minute window per client address and per device id a request names."""

    def __init__(self, per_address: int, per_device: int) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._address = RateLimitItemPerMinute(per_address)
        self._device = RateLimitItemPerMinute(per_device)

    def check(self, request: Request, device_id: str | None = None) -> None:
        address = request.client.host if request.client else "unknown"
        self._take(self._address, "address", address, f"client address {address}")
        if device_id:
            self._take(self._device, "device", device_id, "this device id")

    def _take(self, item: RateLimitItemPerMinute, kind: str, key: str, who: str) -> None:
        if self._limiter.hit(item, kind, key):
            return
        reset = self._limiter.get_window_stats(item, kind, key).reset_time
        raise too_many_requests(
            "rate_limited", f"more than {item.amount} requests a minute from {who}", reset - time.time()
        )
