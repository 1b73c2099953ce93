"""The push channel as a device and an admin depend on it: an enrolled device holding a
long-poll hears an Attest device action at once; a device with no channel hears nothing;
a large selection is told in batches on the server's clock; nobody else may hold a channel."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.client import PushChannel, sync_delay
from harness.server import EmbeddedServer, ManualClock, Principal, ServerConfig
from harness.server._push import PushHub
from harness.status import AttestationStatus, StatusDetail
from tests.serving import seed_device

ADMIN = "admin-token-0123456789"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
START = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    config = ServerConfig(data_dir=tmp_path, principals={ADMIN: Principal("admin", remote_tasks=True)})
    embedded = EmbeddedServer(config, clock=ManualClock(START)).start()
    try:
        yield embedded
    finally:
        embedded.stop()


def credential(emm: str) -> str:
    return f"credential-of-{emm}"


def enrolled(server: EmbeddedServer, emm: str) -> None:
    """A device record with a device credential, as an enrollment leaves it."""
    seed_device(
        server.app.state.context,
        emm,
        status=AttestationStatus.NOT_STARTED,
        detail=StatusDetail.NONE,
        credential=credential(emm),
    )


def channel(server: EmbeddedServer, emm: str) -> PushChannel:
    held = PushChannel(server.url, emm, lambda: {"Device-Credential": credential(emm)})
    assert held.settled.wait(10)
    return held


def test_an_online_device_hears_the_action_at_once_and_an_offline_one_does_not(
    server: EmbeddedServer,
) -> None:
    for emm in ("online", "offline"):
        enrolled(server, emm)
    online = channel(server, "online")
    try:
        answer = httpx.post(
            f"{server.url}/admin/devices/attest", json={"deviceIds": ["online", "offline"]}, headers=AS_ADMIN
        )
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert [p["deviceId"] for p in body["pushed"]] == ["online"]
        assert body["nextPushAt"] is None
        assert online.wait_for(body["actionId"], 10)
        assert [n.sent_at for n in online.received()] == ["2025-03-01T09:00:00Z"]
    finally:
        online.close()
    # The offline device still finds the command at its next check-in.
    commands = httpx.post(
        f"{server.url}/enrollment/checkin",
        json={"emmDeviceId": "offline"},
        headers={"Device-Credential": credential("offline")},
    ).json()["commands"]
    assert commands == [{"type": "Attest", "actionId": body["actionId"]}]


def test_a_large_selection_is_told_in_batches_on_the_servers_clock(server: EmbeddedServer) -> None:
    ids = [f"d{i:02}" for i in range(25)]
    for emm in ids:
        enrolled(server, emm)
    channels = {emm: channel(server, emm) for emm in ids}
    try:
        body = httpx.post(
            f"{server.url}/admin/devices/attest", json={"deviceIds": ids}, headers=AS_ADMIN
        ).json()
        assert [p["deviceId"] for p in body["pushed"]] == ids[:20]
        assert body["nextPushAt"] == "2025-03-01T09:02:00+00:00"
        assert not channels[ids[-1]].wait_for(body["actionId"], 0.5)
        moved = httpx.post(
            f"{server.url}/admin/clock/advance", json={"seconds": 119}, headers=AS_ADMIN
        ).json()
        assert moved["pushed"] == []
        moved = httpx.post(f"{server.url}/admin/clock/advance", json={"seconds": 1}, headers=AS_ADMIN).json()
        assert [p["deviceId"] for p in moved["pushed"]] == ids[20:]
        assert moved["nextPushAt"] is None
        assert all(channels[emm].wait_for(body["actionId"], 10) for emm in ids)
    finally:
        for held in channels.values():
            held.close()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Device-Credential": "not-the-credential"}, {"Authorization": "Bearer not-a-token"}],
    ids=["none", "wrong-credential", "bad-token"],
)
def test_only_the_enrolled_device_may_hold_its_channel(
    server: EmbeddedServer, headers: dict[str, str]
) -> None:
    enrolled(server, "d1")
    answer = httpx.post(
        f"{server.url}/enrollment/push", json={"emmDeviceId": "d1", "waitSeconds": 1}, headers=headers
    )
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_poll_with_nothing_sent_ends_empty_after_its_wait(server: EmbeddedServer) -> None:
    enrolled(server, "d1")
    answer = httpx.post(
        f"{server.url}/enrollment/push",
        json={"emmDeviceId": "d1", "waitSeconds": 1},
        headers={"Device-Credential": credential("d1")},
    )
    assert answer.status_code == 200 and answer.json() == {"notifications": []}
    too_long = httpx.post(
        f"{server.url}/enrollment/push",
        json={"emmDeviceId": "d1", "waitSeconds": 31},
        headers={"Device-Credential": credential("d1")},
    )
    assert too_long.status_code == 400


def test_an_idle_device_syncs_later_than_one_in_use_and_both_within_five_minutes() -> None:
    ids = [f"device-{i}" for i in range(200)]
    busy = [sync_delay(i) for i in ids]
    idle = [sync_delay(i, idle=True) for i in ids]
    assert min(busy) >= 20 and max(busy) <= 120
    assert min(idle) >= 180 and max(idle) <= 300
    assert sync_delay("device-1") == sync_delay("device-1"), "fixed per device, so runs repeat"


def test_no_notification_is_lost_when_it_is_sent_as_a_poll_times_out() -> None:
    """A push sent in the instant a device's poll ends reaches that poll or the next one: the
    hub hands notifications over under its lock, never through a wake-up the poll may miss."""
    hub = PushHub(batch=10_000)
    devices = [f"device-{i}" for i in range(8)]
    received: dict[str, list[int]] = {d: [] for d in devices}
    sent: dict[str, list[int]] = {d: [] for d in devices}
    sending_done = threading.Event()

    async def poll(device: str) -> None:
        # Very short polls, so that many sends land just as one times out.
        while not sending_done.is_set():
            received[device] += [n.action_id for n in await hub.wait(device, 0.0005)]
        received[device] += [n.action_id for n in await hub.wait(device, 0.01)]

    def send() -> None:
        for action_id in range(10_000):
            device = devices[action_id % len(devices)]
            hub.schedule(action_id, [device], START)
            sent[device] += [a for d, a in hub.release(START) if d == device]
            if action_id % 50 == 0:
                time.sleep(0.001)
        sending_done.set()

    async def main() -> None:
        # Every device polls once first, so that its channel counts as open.
        await asyncio.gather(*(hub.wait(d, 0) for d in devices))
        sender = threading.Thread(target=send)
        sender.start()
        await asyncio.gather(*(poll(d) for d in devices))
        sender.join()

    asyncio.run(main())
    assert sum(len(v) for v in sent.values()) == 10_000
    assert received == sent
