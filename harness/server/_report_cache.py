"""The report page, rendered once per change of the store and shared by every reader.

Admins (and their dashboards) read the report while a fleet enrolls. Rendered per request, each
read takes a worker thread and the store, and enrollments queue behind the readers. Here a page
is rendered once for each version of the store's data (a counter every write moves), off the
event loop, by one reader while the others wait for the same bytes.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable

from starlette.concurrency import run_in_threadpool

from ._store import Store

_MAX_PAGES = 256  # distinct (filter, page) combinations kept


class ReportCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pages: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._locks: dict[Hashable, asyncio.Lock] = {}

    async def page(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The page for `key` as of the store's current version; `render` runs in a thread."""
        cached = self._fresh(key)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._fresh(key)
            if cached is not None:
                return cached
            # Read before rendering: a write during the render leaves this entry stale, never
            # a stale page marked fresh.
            version = self._store.version
            body = await run_in_threadpool(render)
            self._pages[key] = (version, body)
            self._pages.move_to_end(key)
            while len(self._pages) > _MAX_PAGES:
                dropped, _ = self._pages.popitem(last=False)
                self._locks.pop(dropped, None)
            return body

    def _fresh(self, key: Hashable) -> bytes | None:
        entry = self._pages.get(key)
        if entry is None or entry[0] != self._store.version:
            return None
        return entry[1]
