"""The push channel: how an Attest device action reaches an online device at once.

Intune does not wait for a device's schedule: a device action sends a push notification
(Windows Push Notification Services) to the channel the device holds open, and the device
starts an MDM session (a check-in) when it gets it. A device that holds no channel (powered
off, offline, the push service blocked by a firewall) gets nothing and finds the command at
its next scheduled check-in.

The channel here is a long-poll: `POST /enrollment/push` waits until a notification is sent to
the device or the wait ends. Notifications go out in batches on the server's clock, as a
service fans a large selection out over time: the more devices an action selects, the later
the last of them is told (the page: "up to 15 min depending on activity of device and number
of devices selected").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from ..protocol import PushMessage, PushRequest, PushResponse
from . import _auth
from ._actions import PUSH_BATCH, PUSH_BATCH_INTERVAL
from ._clock import ManualClock
from ._context import ServerContext
from ._deps import context
from ._openapi import DEVICE_SECURITY, errors
from ._schema import iso

router = APIRouter(prefix="/enrollment", tags=["MDM enrollment"])

# A channel counts as open while a poll is waiting or the last one ended this recently (real
# seconds): the device re-polls at once, and a notification sent in between waits for it.
CHANNEL_GRACE = 30.0  # generous: a loaded CI machine may take seconds to re-poll


@dataclass(frozen=True)
class Notification:
    action_id: int
    sent_at: dt.datetime


@dataclass
class _Waiter:
    """A poll waiting on the event loop; its future is only a wake-up call. The notifications
    stay in the hub until the poll takes them under the lock, so a wake-up that races the
    poll's own timeout loses nothing."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


@dataclass
class PushHub:
    """Channels by device id, the notifications due, and those sent and not yet fetched."""

    batch: int = PUSH_BATCH
    interval: dt.timedelta = PUSH_BATCH_INTERVAL
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _due: list[tuple[dt.datetime, str, int]] = field(default_factory=list)
    _sent: dict[str, list[Notification]] = field(default_factory=dict)
    _waiting: dict[str, _Waiter] = field(default_factory=dict)
    _last_seen: dict[str, float] = field(default_factory=dict)

    def schedule(self, action_id: int, device_ids: list[str] | tuple[str, ...], now: dt.datetime) -> None:
        """Notify the action's devices: the first batch now, each next one an interval later."""
        with self._lock:
            for index, device_id in enumerate(device_ids):
                self._due.append((now + (index // self.batch) * self.interval, device_id, action_id))
            self._due.sort()

    def release(self, now: dt.datetime) -> list[tuple[str, int]]:
        """Send every notification due by `now` to its device's open channel; returns (device, action)
        pairs sent. A device without an open channel is not told (its push is lost)."""
        sent: list[tuple[str, int]] = []
        with self._lock:
            due = [entry for entry in self._due if entry[0] <= now]
            self._due = [entry for entry in self._due if entry[0] > now]
            for _, device_id, action_id in due:
                if not self._open(device_id):
                    continue
                self._sent.setdefault(device_id, []).append(Notification(action_id, now))
                sent.append((device_id, action_id))
                self._hand_over(device_id)
        return sent

    def next_due(self) -> dt.datetime | None:
        with self._lock:
            return self._due[0][0] if self._due else None

    def _open(self, device_id: str) -> bool:
        seen = self._last_seen.get(device_id)
        return device_id in self._waiting or (seen is not None and time.monotonic() - seen < CHANNEL_GRACE)

    def _hand_over(self, device_id: str) -> None:
        # Under the lock: wake the waiting poll, which takes what was sent.
        waiter = self._waiting.get(device_id)
        if waiter is not None and self._sent.get(device_id):
            waiter.loop.call_soon_threadsafe(_wake, waiter.future)

    def _take(self, device_id: str, future: asyncio.Future[None]) -> list[Notification]:
        # Under the lock. Only the device's current poll takes: a poll a newer one replaced
        # answers a connection the device has given up on, and what it took would be lost.
        current = self._waiting.get(device_id)
        if current is not None and current.future is not future:
            return []
        self._waiting.pop(device_id, None)
        return self._sent.pop(device_id, [])

    async def wait(self, device_id: str, seconds: float) -> list[Notification]:
        """What is sent to the device within `seconds` (empty when nothing was)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            previous = self._waiting.get(device_id)
            if previous is not None:  # one channel per device: a new poll replaces the old one
                previous.loop.call_soon_threadsafe(_wake, previous.future)
            self._waiting[device_id] = _Waiter(loop, future)
            self._hand_over(device_id)
        try:
            await asyncio.wait_for(asyncio.shield(future), seconds)
        except TimeoutError:
            pass
        except BaseException:  # the poll was abandoned: leave what was sent for the next one
            with self._lock:
                current = self._waiting.get(device_id)
                if current is not None and current.future is future:
                    del self._waiting[device_id]
                self._last_seen[device_id] = time.monotonic()
            raise
        with self._lock:
            self._last_seen[device_id] = time.monotonic()
            return self._take(device_id, future)


def hub(request: Request) -> PushHub:
    found: PushHub = request.app.state.push
    return found


def pushed(sent: list[tuple[str, int]], hub: PushHub) -> dict[str, Any]:
    """What an admin answer says of the pushes: the devices told now, and when the next batch goes."""
    following = hub.next_due()
    return {
        "pushed": [{"deviceId": device_id, "actionId": action_id} for device_id, action_id in sent],
        "nextPushAt": None if following is None else following.isoformat(),
    }


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@router.post(
    "/push",
    response_model=PushResponse,
    response_model_by_alias=True,
    responses=errors(400, 401, 413),
    openapi_extra=DEVICE_SECURITY,
)
async def push_channel(
    body: PushRequest,
    authorization: _auth.AuthorizationHeader = None,
    device_credential: _auth.CredentialHeader = None,
    ctx: ServerContext = Depends(context),
    channels: PushHub = Depends(hub),
) -> PushResponse:
    """The device's push channel, a long-poll: answers when a notification is sent, or after the wait.

    Only an enrolled device may hold one (its device credential, or the Entra token of the
    device its id is bound to); anything else is 401.
    """

    def identify() -> _auth.Caller:
        return _auth.identify(
            ctx,
            body.emm_device_id,
            token=_auth.bearer(authorization),
            credential=device_credential,
            now=ctx.clock.now(),
        )

    caller = await run_in_threadpool(identify)
    if caller.proof not in (_auth.Proof.CREDENTIAL, _auth.Proof.TOKEN):
        raise _auth.refuse(f"a push channel needs the {_auth.CREDENTIAL_HEADER} of an enrolled device")
    # On the real clock nobody advances time: the channels' own polls send batches that fell due.
    # A manual clock's batches go out with the admin call that moved it, which reports them.
    if not isinstance(ctx.clock, ManualClock):
        channels.release(ctx.clock.now())
    notes = await channels.wait(body.emm_device_id, body.wait_seconds)
    return PushResponse(
        notifications=[PushMessage(actionId=n.action_id, sentAt=iso(n.sent_at)) for n in notes]
    )
