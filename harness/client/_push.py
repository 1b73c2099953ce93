"""The push channel a Windows device holds open to its MDM service once it is enrolled.

Windows registers a Windows Push Notification Services channel for its MDM enrollment; a
push on it makes the device start an MDM session (a check-in) at once. Here the channel is
a long-poll to the MDM service's `/enrollment/push`, held by a thread of the device. A
device whose channel cannot connect (a firewall blocking the push service, no network)
simply hears nothing and keeps its check-in schedule.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx

# Real seconds a poll is held open: short, so a closed device's thread ends promptly.
_POLL_SECONDS = 2
_RETRY_SECONDS = 0.3


@dataclass(frozen=True)
class PushNote:
    """A push the device received: which action sent it and when (the service's time, ISO 8601)."""

    action_id: int
    sent_at: str


class PushChannel:
    """A long-poll thread; `headers()` gives the device's current credential headers (None:
    not enrolled yet, so there is no channel to hold)."""

    def __init__(self, url: str, emm_device_id: str, headers: Callable[[], dict[str, str] | None]) -> None:
        self._url = f"{url}/enrollment/push"
        self._device_id = emm_device_id
        self._headers = headers
        self._notes: list[PushNote] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self.connected = False  # the last poll reached the service
        # Set once the channel has tried to connect (or has no credential to try with yet).
        self.settled = threading.Event()
        self._thread = threading.Thread(target=self._listen, name=f"push {emm_device_id}", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        with httpx.Client(timeout=_POLL_SECONDS + 10) as http:
            while not self._stop.is_set():
                headers = self._headers()
                if not headers:
                    self.settled.set()
                    self._stop.wait(_RETRY_SECONDS)
                    continue
                try:
                    response = http.post(
                        self._url,
                        json={"emmDeviceId": self._device_id, "waitSeconds": _POLL_SECONDS},
                        headers=headers,
                    )
                except httpx.HTTPError:
                    self.connected = False
                    self.settled.set()
                    self._stop.wait(_RETRY_SECONDS)
                    continue
                self.connected = response.is_success
                self.settled.set()
                if not response.is_success:
                    self._stop.wait(_RETRY_SECONDS)
                    continue
                notes = [
                    PushNote(int(n["actionId"]), str(n["sentAt"]))
                    for n in response.json().get("notifications", [])
                ]
                if notes:
                    with self._changed:
                        self._notes.extend(notes)
                        self._changed.notify_all()

    def received(self) -> list[PushNote]:
        """Pushes received and not yet taken."""
        with self._changed:
            return list(self._notes)

    def take(self, notes: list[PushNote]) -> None:
        """The device acted on these (it synced)."""
        with self._changed:
            self._notes = [n for n in self._notes if n not in notes]

    def wait_for(self, action_id: int, timeout: float) -> bool:
        """Whether a push of this action arrived within `timeout` real seconds."""
        with self._changed:
            return self._changed.wait_for(
                lambda: any(n.action_id == action_id for n in self._notes), timeout=timeout
            )

    def retarget(self, url: str) -> None:
        """The network path to the push service changed (it was blocked, or is again)."""
        self._url = f"{url}/enrollment/push"

    def close(self) -> None:
        # Not joined: the thread ends within one poll, and a device that closes need not wait.
        self._stop.set()
