"""The controller's admin client: a device's record, read from the admin API as an admin would."""

from __future__ import annotations

import datetime as dt
from types import TracebackType
from typing import Any

import httpx

from ..errors import ServerError, ServerLost


class AdminReader:
    """The admin API's device view, on one kept-alive connection for a whole run."""

    def __init__(self, url: str, token: str) -> None:
        self._http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def device(self, device_id: str) -> dict[str, Any] | None:
        """The server's record of a device, or None when it never heard of it."""
        try:
            response = self._http.get(f"/admin/devices/{device_id}")
        except httpx.TransportError as exc:
            # No answer at all: the server is gone, and every later device would wait for it too.
            raise ServerLost(f"{self._http.base_url}: {type(exc).__name__}: {exc or 'no answer'}") from exc
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot read the report from {self._http.base_url}: {exc}") from exc
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise ServerError(f"report for {device_id}: HTTP {response.status_code} {response.text[:200]}")
        body: dict[str, Any] = response.json()
        return body

    def server_time(self) -> dt.datetime:
        """The server's clock, as its health check reports it."""
        body = self._call("GET", "/health", None)
        return dt.datetime.fromisoformat(str(body["time"]))

    def advance_clock(self, seconds: float) -> None:
        """Move a manual clock forward (a server started for scenarios with steps has one)."""
        self._call("POST", "/admin/clock/advance", {"seconds": seconds})

    def _call(self, method: str, path: str, body: object) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ServerLost(f"{self._http.base_url}: {type(exc).__name__}: {exc or 'no answer'}") from exc
        except httpx.HTTPError as exc:
            raise ServerError(f"{method} {path}: {exc}") from exc
        if not response.is_success:
            raise ServerError(f"{method} {path}: HTTP {response.status_code} {response.text[:200]}")
        answer: dict[str, Any] = response.json()
        return answer

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
