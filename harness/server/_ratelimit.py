"""Rate limits on the endpoints a device calls before it can prove who it is.

Counted in real time, not on the server's clock: a limit protects the process from load,
and a manual clock that tests move would otherwise open or shut it at will.

A device's own limit counts only requests that proved they come from it (its credential, or
the token of the Entra device its id is bound to or claimed by), so naming a device id is not
enough to lock that device out. Requests that prove nothing are counted per client address
instead, and those that would create a record for an unknown id more tightly still.
"""

from __future__ import annotations

import time

from fastapi import Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ._context import too_many_requests


class RateLimits:
    """Moving one-minute windows: per client address (every request), per authenticated device,
    per address for requests that proved nothing, per address for records made by them."""

    def __init__(
        self,
        per_address: int,
        per_device: int,
        unauthenticated_per_address: int = 300,
        unbound_rows_per_address: int = 60,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._address = RateLimitItemPerMinute(per_address)
        self._device = RateLimitItemPerMinute(per_device)
        self._unauthenticated = RateLimitItemPerMinute(unauthenticated_per_address)
        self._unbound_rows = RateLimitItemPerMinute(unbound_rows_per_address)

    def check(self, request: Request) -> None:
        """Every request, before anything else: the per-address ceiling."""
        address = _address(request)
        self._take(self._address, "address", address, f"client address {address}")

    def authenticated(self, device_key: str) -> None:
        """A request that proved it comes from the device `device_key` names."""
        self._take(self._device, "device", device_key, "this device")

    def unauthenticated(self, request: Request) -> None:
        """A device request that proved nothing (it is refused or judged as unauthenticated)."""
        address = _address(request)
        self._take(
            self._unauthenticated,
            "unauthenticated",
            address,
            f"client address {address} without a device credential or valid token",
        )

    def new_unbound_row(self, request: Request) -> None:
        """An unauthenticated enrollment that would add a record for an id the server never saw."""
        address = _address(request)
        self._take(
            self._unbound_rows,
            "unbound",
            address,
            f"client address {address} for new device ids without a device credential or valid token",
        )

    def _take(self, item: RateLimitItemPerMinute, kind: str, key: str, who: str) -> None:
        if self._limiter.hit(item, kind, key):
            return
        reset = self._limiter.get_window_stats(item, kind, key).reset_time
        raise too_many_requests(
            "rate_limited", f"more than {item.amount} requests a minute from {who}", reset - time.time()
        )


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
