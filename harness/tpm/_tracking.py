"""Every TPM this process started and has not stopped yet, per kind.

A signal handler, an atexit hook or a backend's close() stops what is left
through here, so that no swtpm process or container outlives the run.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar


class _Closable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=_Closable)


class LiveSet(Generic[T]):
    """A thread-safe set of running TPMs; each adds itself when started and leaves when closed."""

    def __init__(self) -> None:
        self._items: set[T] = set()
        self._lock = threading.Lock()

    def add(self, item: T) -> None:
        with self._lock:
            self._items.add(item)

    def discard(self, item: T) -> None:
        with self._lock:
            self._items.discard(item)

    def snapshot(self) -> list[T]:
        with self._lock:
            return list(self._items)

    def close_all(self) -> None:
        # Closed outside the lock: each close() discards its item, which takes the lock.
        for item in self.snapshot():
            item.close()
