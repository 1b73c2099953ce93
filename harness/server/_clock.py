"""Where the server reads the time: the real clock, or one that tests advance."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol

from ..errors import ClockLimitError as ClockLimitError


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """An aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


# The latest instant a manual clock may reach. Every lifetime the server adds to "now"
# (nonces, tokens, the 15-minute action window) must still be a representable date, and
# ISO dates stop at 9999; centuries of margin make that hold for any sane configuration.
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


class ManualClock:
    """Starts at a given instant (default: real now) and moves only when advanced."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime.now(dt.UTC)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> dt.datetime:
        if not 0 <= seconds < float("inf"):
            raise ClockLimitError("a clock only moves forward, by a finite amount")
        with self._lock:
            if seconds > (LATEST - self._now).total_seconds():
                raise ClockLimitError(f"the clock cannot move past {LATEST:%Y-%m-%d}")
            self._now += dt.timedelta(seconds=seconds)
            return self._now
