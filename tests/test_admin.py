"""The admin side as an admin and a device depend on it: permissions, the Attest device action
and its limits, check-in, completion and timeout, the RBAC file, the admin page, and
`harness serve` as a real process."""

from __future__ import annotations

import base64
import datetime as dt
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from harness.cli import app as cli_app
from harness.server import ManualClock, Principal, RbacError, ServerConfig, create_app, parse_rbac
from harness.status import AttestationStatus, StatusDetail
from tests.serving import seed_device, served

ALICE = "alice-token-0123456789"  # may take the action
BOB = "bob-token-0123456789ab"  # may read the report, not take the action
AS_ALICE = {"Authorization": f"Bearer {ALICE}"}
AS_BOB = {"Authorization": f"Bearer {BOB}"}
ATTEST = "/admin/devices/attest"
CHECKIN = "/enrollment/checkin"
REPORT = "/admin/reports/device-attestation"
START = dt.datetime(2025, 3, 1, 9, 0, 0, 250_000, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def client(tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    config = ServerConfig(
        data_dir=tmp_path,
        principals={ALICE: Principal("alice", remote_tasks=True), BOB: Principal("bob", remote_tasks=False)},
    )
    with served(config, clock) as test_client:
        yield test_client


def assert_error(response: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "hresult", "reason"}, body
    assert re.fullmatch(r"0x[0-9A-F]{8}", body["hresult"]), body
    assert body["reason"], body
    if error is not None:
        assert body["error"] == error, body
    return body


def add_device(
    client: TestClient,
    emm: str,
    *,
    status: AttestationStatus = AttestationStatus.NOT_ATTESTED,
    detail: StatusDetail = StatusDetail.TPM_NOT_READY,
    ownership: str = "Corporate",
    name: str | None = None,
) -> None:
    """A device as the report knows it after an enrollment, without a TPM behind it."""
    seed_device(
        client.app.state.context,  # type: ignore[attr-defined]
        emm,
        name=name,
        ownership=ownership,
        status=status,
        detail=detail,
        checks=[{"name": "TPM is ready", "passed": False, "detail": "lockout"}],
        credential=credential_of(emm),
    )


def credential_of(emm: str) -> str:
    """The device credential add_device gives a device (the server keeps only its SHA-256)."""
    return f"credential-of-{emm}"


def enroll_for_real(client: TestClient, emm: str) -> None:
    """A device enrolling through the HTTP API (with evidence that cannot be attested), with
    the credential of its first enrollment."""
    if client.get(f"/admin/devices/{emm}", headers=AS_BOB).status_code == 404:
        add_device(client, emm)
    request = {
        "EnrollmentVersion": "5.0",
        "ContextItems": {
            "DeviceName": f"PC-{emm}",
            "EmmDeviceId": emm,
            "OSVersion": "10.0.22631.2792",
            "AIKPub": base64.b64encode(os.urandom(280)).decode(),
            "TPMVersion": "2.0",
        },
    }
    response = client.post("/enrollment", json=request, headers={"Device-Credential": credential_of(emm)})
    assert response.status_code == 200, response.text


def attest(client: TestClient, *ids: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post(
        ATTEST, json={"deviceIds": list(ids)}, headers=AS_ALICE if headers is None else headers
    )


def action_of(client: TestClient, emm: str) -> dict[str, Any] | None:
    response = client.get(f"/admin/devices/{emm}", headers=AS_BOB)
    assert response.status_code == 200, response.text
    action: dict[str, Any] | None = response.json()["action"]
    return action


def checkin(client: TestClient, emm: str) -> list[dict[str, Any]]:
    response = client.post(
        CHECKIN, json={"emmDeviceId": emm}, headers={"Device-Credential": credential_of(emm)}
    )
    assert response.status_code == 200, response.text
    commands: list[dict[str, Any]] = response.json()["commands"]
    return commands


# --- who may do what ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-known-token"}, {"Authorization": f"Basic {ALICE}"}],
    ids=["none", "unknown", "basic"],
)
def test_attest_needs_a_known_token(client: TestClient, headers: dict[str, str]) -> None:
    add_device(client, "d1")
    assert_error(attest(client, "d1", headers=headers), 401, "unauthenticated")
    assert action_of(client, "d1") is None


def test_attest_needs_remote_tasks(client: TestClient) -> None:
    add_device(client, "d1")
    body = assert_error(attest(client, "d1", headers=AS_BOB), 403, "forbidden")
    assert "Remote tasks" in body["reason"] and "bob" in body["reason"]
    assert body["hresult"] == "0x80070005"
    assert action_of(client, "d1") is None
    # A refused action does not start the one-minute interval for others.
    assert attest(client, "d1").status_code == 202


def test_without_remote_tasks_the_report_is_still_readable(client: TestClient) -> None:
    add_device(client, "d1")
    response = client.get(REPORT, headers=AS_BOB)
    assert response.status_code == 200
    assert response.json()["total"] == 1


def test_authentication_is_checked_before_the_body(client: TestClient) -> None:
    assert_error(client.post(ATTEST, json={"deviceIds": []}), 401)
    assert_error(client.post(ATTEST, json={"deviceIds": []}, headers=AS_BOB), 403)


# --- what an action may ask for ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"deviceIds": []}, "deviceIds"),
        ({"deviceIds": [f"d{i}" for i in range(101)]}, "deviceIds"),
        ({}, "deviceIds"),
        ({"deviceIds": "d1"}, "deviceIds"),
        ({"deviceIds": [""]}, "deviceIds"),
        ({"deviceIds": ["x" * 129]}, "deviceIds"),
        ({"deviceIds": ["d1"], "force": True}, "force"),
        ({"device_ids": ["d1"]}, "device_ids"),
    ],
    ids=["empty", "101-ids", "missing", "not-a-list", "empty-id", "long-id", "extra-field", "snake-case"],
)
def test_attest_refuses_a_malformed_request(client: TestClient, body: dict[str, Any], names: str) -> None:
    add_device(client, "d1")
    response = client.post(ATTEST, json=body, headers=AS_ALICE)
    assert names in assert_error(response, 400, "malformed_request")["reason"]
    assert action_of(client, "d1") is None
    assert attest(client, "d1").status_code == 202, "a refused request must not start the interval"


def test_attest_takes_100_ids_and_answers_per_id(client: TestClient) -> None:
    add_device(client, "known-1")
    add_device(client, "known-2")
    ids = ["known-1", *(f"ghost-{i}" for i in range(97)), "known-2", "known-1"]
    assert len(ids) == 100
    response = attest(client, *ids)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["queued"] == 2 and body["unknown"] == 97
    assert body["requestedBy"] == "alice"
    results = [(d["deviceId"], d["result"]) for d in body["devices"]]
    # In the order asked, each id once.
    assert results[0] == ("known-1", "queued")
    assert results[-1] == ("known-2", "queued")
    assert results[1:-1] == [(f"ghost-{i}", "unknown") for i in range(97)]
    assert action_of(client, "known-1") == {
        "id": body["actionId"],
        "requestedAt": "2025-03-01T09:00:00Z",
        "requestedBy": "alice",
        "state": "pending",
        "expectedBy": "2025-03-01T09:05:00Z",
        "overdue": False,
        "deliveredAt": None,
        "completedAt": None,
    }


def test_attest_with_only_unknown_ids_queues_nothing(client: TestClient) -> None:
    add_device(client, "d1")
    body = assert_error(attest(client, "ghost-1", "ghost-2"), 404, "unknown_devices")
    assert "ghost-1" in body["reason"]
    assert attest(client, "d1").status_code == 202, "nothing was queued, so no interval started"


# --- one minute between actions ----------------------------------------------------------------


def test_one_minute_between_accepted_actions(client: TestClient, clock: ManualClock) -> None:
    add_device(client, "d1")
    add_device(client, "d2")
    first = attest(client, "d1")
    assert first.status_code == 202
    too_soon = attest(client, "d2")
    body = assert_error(too_soon, 429, "too_many_actions")
    assert too_soon.headers["Retry-After"] == "60"
    assert "1 minute" in body["reason"]

    clock.advance(45.5)
    assert attest(client, "d2").headers["Retry-After"] == "15"  # 14.5 s rounded up
    clock.advance(14.4)
    still = attest(client, "d2")
    assert still.status_code == 429
    assert still.headers["Retry-After"] == "1"  # never 0 while refused
    assert action_of(client, "d2") is None

    clock.advance(0.1)  # exactly 60 s after the first action
    second = attest(client, "d2")
    assert second.status_code == 202, second.text
    assert second.json()["actionId"] == first.json()["actionId"] + 1
    # The interval restarts from the second accepted action, not from the refusals.
    assert attest(client, "d1").headers["Retry-After"] == "60"


def test_the_interval_is_server_wide(client: TestClient) -> None:
    add_device(client, "d1")
    ctx = client.app.state.context  # type: ignore[attr-defined]
    ctx.principals["carol-token-0123456789"] = Principal("carol", remote_tasks=True)
    assert attest(client, "d1").status_code == 202
    response = attest(client, "d1", headers={"Authorization": "Bearer carol-token-0123456789"})
    assert response.status_code == 429


# --- check-in, delivery, completion, timeout ---------------------------------------------------


def test_checkin_needs_the_device_credential(client: TestClient) -> None:
    add_device(client, "d1")
    before = action_of(client, "d1"), client.get(REPORT, headers=AS_BOB).json()
    for headers in ({}, {"Device-Credential": "guessed"}, {"Device-Credential": credential_of("d2")}):
        assert_error(
            client.post(CHECKIN, json={"emmDeviceId": "d1"}, headers=headers), 401, "unauthenticated"
        )
    # An unknown device is refused the same way, so check-ins cannot probe which ids exist.
    assert_error(client.post(CHECKIN, json={"emmDeviceId": "ghost"}), 401, "unauthenticated")
    assert (action_of(client, "d1"), client.get(REPORT, headers=AS_BOB).json()) == before


@pytest.mark.parametrize("body", [{}, {"emmDeviceId": ""}, {"emmDeviceId": "d1", "extra": 1}])
def test_checkin_refuses_a_malformed_request(client: TestClient, body: dict[str, Any]) -> None:
    assert_error(client.post(CHECKIN, json=body), 400)


def test_checkin_delivers_the_command_once(client: TestClient, clock: ManualClock) -> None:
    add_device(client, "d1")
    add_device(client, "d2")
    assert checkin(client, "d1") == []
    action_id = attest(client, "d1").json()["actionId"]
    assert checkin(client, "d2") == [], "only the devices asked"
    clock.advance(30)
    assert checkin(client, "d1") == [{"type": "Attest", "actionId": action_id}]
    assert checkin(client, "d1") == []
    action = action_of(client, "d1")
    assert action is not None
    assert action["state"] == "delivered"
    assert action["deliveredAt"] == "2025-03-01T09:00:30Z"


def test_checkin_updates_last_checkin(client: TestClient, clock: ManualClock) -> None:
    add_device(client, "d1")
    clock.advance(3600)
    checkin(client, "d1")
    (row,) = client.get(REPORT, headers=AS_BOB).json()["rows"]
    assert row["Last check-in"] == "2025-03-01T10:00:00Z"
    assert row["Enrollment date"] == "2025-03-01T09:00:00Z"


def test_enrollment_after_delivery_completes_the_action(client: TestClient, clock: ManualClock) -> None:
    enroll_for_real(client, "d1")
    attest(client, "d1")
    clock.advance(60)
    assert len(checkin(client, "d1")) == 1
    clock.advance(120)
    enroll_for_real(client, "d1")
    action = action_of(client, "d1")
    assert action is not None
    assert action["state"] == "completed"
    assert action["completedAt"] == "2025-03-01T09:03:00Z"
    clock.advance(3600)
    action = action_of(client, "d1")
    assert action is not None and action["state"] == "completed", "a completed action never times out"


def test_enrollment_before_delivery_leaves_the_command_queued(client: TestClient, clock: ManualClock) -> None:
    # The device enrolled on its own before hearing of the action: it still gets the command.
    enroll_for_real(client, "d1")
    action_id = attest(client, "d1").json()["actionId"]
    clock.advance(10)
    enroll_for_real(client, "d1")
    action = action_of(client, "d1")
    assert action is not None and action["state"] == "pending"
    assert checkin(client, "d1") == [{"type": "Attest", "actionId": action_id}]


def test_an_undelivered_action_stays_pending_until_the_device_checks_in(
    client: TestClient, clock: ManualClock
) -> None:
    # An offline device picks the command up at its next scheduled check-in, hours later.
    add_device(client, "d1")
    action_id = attest(client, "d1").json()["actionId"]
    clock.advance(5 * 60)
    action = action_of(client, "d1")
    assert action is not None and (action["state"], action["overdue"]) == ("pending", False)
    clock.advance(1)
    action = action_of(client, "d1")
    assert action is not None and (action["state"], action["overdue"]) == ("pending", True)
    clock.advance(8 * 3600)
    assert checkin(client, "d1") == [{"type": "Attest", "actionId": action_id}]
    action = action_of(client, "d1")
    assert action is not None and action["state"] == "delivered"


def test_a_delivered_action_completes_when_the_device_enrolls_however_late(
    client: TestClient, clock: ManualClock
) -> None:
    enroll_for_real(client, "d1")
    attest(client, "d1")
    clock.advance(14 * 60)
    assert len(checkin(client, "d1")) == 1
    clock.advance(3600)
    action = action_of(client, "d1")
    assert action is not None and (action["state"], action["overdue"]) == ("delivered", True)
    enroll_for_real(client, "d1")
    action = action_of(client, "d1")
    assert action is not None and action["state"] == "completed"
    assert action["completedAt"] is not None


def test_the_expected_time_grows_with_the_devices_selected_and_stays_within_15_minutes(
    client: TestClient,
) -> None:
    ids = [f"d{i:03}" for i in range(100)]
    for device_id in ids:
        add_device(client, device_id)
    assert attest(client, *ids).status_code == 202
    first, last = action_of(client, ids[0]), action_of(client, ids[-1])
    assert first is not None and last is not None
    # Pushed in batches of 20 every 2 minutes, then up to 5 minutes to sync.
    assert first["expectedBy"] == "2025-03-01T09:05:00Z"
    assert last["expectedBy"] == "2025-03-01T09:13:00Z"


def test_a_new_action_replaces_the_open_one(client: TestClient, clock: ManualClock) -> None:
    add_device(client, "d1")
    first = attest(client, "d1").json()["actionId"]
    assert len(checkin(client, "d1")) == 1
    clock.advance(60)
    second = attest(client, "d1").json()["actionId"]
    action = action_of(client, "d1")
    assert action is not None and (action["id"], action["state"]) == (second, "pending")
    assert checkin(client, "d1") == [{"type": "Attest", "actionId": second}]
    assert first != second


def test_device_detail_shows_evidence_and_no_action(client: TestClient) -> None:
    add_device(client, "d1")
    detail = client.get("/admin/devices/d1", headers=AS_BOB).json()
    assert detail["action"] is None
    assert detail["decision"] == "recorded by the test"
    assert detail["attempts"][0]["checks"] == [{"name": "TPM is ready", "passed": False, "detail": "lockout"}]
    assert detail["retryRecommended"] is True


# --- the report on a large fleet ------------------------------------------------------------


def test_report_filters_and_pages_a_large_fleet(client: TestClient) -> None:
    statuses = list(AttestationStatus)
    ownerships = ["Corporate", "Personal"]
    expected: dict[tuple[str, str], set[str]] = {}
    for index in range(3000):
        status, ownership = statuses[index % 4], ownerships[index % 7 % 2]
        emm = f"dev-{index:05d}"
        # Many devices share a name: paging must still be a total order.
        add_device(client, emm, status=status, ownership=ownership, name=f"PC-{index % 50:03d}")
        expected.setdefault((status, ownership), set()).add(emm)

    def pages(params: dict[str, str], limit: int) -> tuple[int, list[str]]:
        seen: list[str] = []
        offset, total = 0, -1
        while True:
            query = {**params, "offset": str(offset), "limit": str(limit)}
            body = client.get(REPORT, params=query, headers=AS_BOB).json()
            total = body["total"]
            seen += [row["Device ID"] for row in body["rows"]]
            if not body["rows"]:
                return total, seen
            offset += limit

    total, seen = pages({}, 1000)
    assert total == 3000 and len(seen) == 3000 and len(set(seen)) == 3000
    status, ownership = "Not started", "Personal"
    total, seen = pages({"status": status, "ownership": ownership}, 97)
    assert total == len(seen) == len(set(seen)) == len(expected[(status, ownership)])
    assert set(seen) == expected[(status, ownership)]
    total, seen = pages({"ownership": "Corporate"}, 333)
    corporate = set().union(*(ids for (_, o), ids in expected.items() if o == "Corporate"))
    assert total == len(seen) and set(seen) == corporate


@pytest.mark.parametrize(
    "where", ["", "WHERE status=?", "WHERE ownership=?", "WHERE status=? AND ownership=?"]
)
def test_report_pages_come_from_an_index_not_a_sort(client: TestClient, where: str) -> None:
    # Deep pages of a large fleet stay cheap only if no page sorts the whole table.
    db = client.app.state.context.store._db  # type: ignore[attr-defined]
    params = ["x"] * where.count("?")
    plan = db.execute(
        f"EXPLAIN QUERY PLAN SELECT * FROM devices {where} "
        "ORDER BY device_name, emm_device_id LIMIT 100 OFFSET 5000",
        params,
    ).fetchall()
    text = " | ".join(str(row[-1]) for row in plan)
    assert "TEMP B-TREE" not in text, text
    assert "INDEX" in text, text


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}, {"ownership": "Borrowed"}]
)
def test_report_refuses_bad_paging_and_filters(client: TestClient, params: dict[str, str]) -> None:
    assert_error(client.get(REPORT, params=params, headers=AS_BOB), 400)


# --- moving the server's clock -------------------------------------------------------------------


def test_clock_advance(client: TestClient, clock: ManualClock) -> None:
    response = client.post("/admin/clock/advance", json={"seconds": 90}, headers=AS_ALICE)
    assert response.status_code == 200, response.text
    assert dt.datetime.fromisoformat(response.json()["now"]) == START + dt.timedelta(seconds=90)
    assert clock.now() == START + dt.timedelta(seconds=90)


def test_clock_advance_needs_remote_tasks(client: TestClient, clock: ManualClock) -> None:
    # Moving time expires every nonce, token and action: not for a report reader.
    assert_error(client.post("/admin/clock/advance", json={"seconds": 90}, headers=AS_BOB), 403, "forbidden")
    assert clock.now() == START


def test_clock_advance_stops_short_of_the_end_of_dates(client: TestClient, clock: ManualClock) -> None:
    """Advancing towards year 9999 is refused with 400 before any date the server computes
    (nonce expiry, token lifetime) could overflow; the server keeps answering."""
    ten_years = 10 * 366 * 24 * 3600
    answers = [
        client.post("/admin/clock/advance", json={"seconds": ten_years}, headers=AS_ALICE) for _ in range(800)
    ]
    assert {a.status_code for a in answers} == {200, 400}
    assert_error(answers[-1], 400)
    assert clock.now().year < 9999
    assert client.get(REPORT, headers=AS_BOB).status_code == 200
    assert client.post("/entra/nonce").status_code == 200
    token = client.post("/entra/token", json={"upn": "u@contoso.com"})
    assert token.status_code == 200, token.text


@pytest.mark.parametrize(
    "body", [{"seconds": -1}, {}, {"seconds": "soon"}, {"seconds": 1, "minutes": 1}, {"seconds": 1e12}]
)
def test_clock_advance_refuses_a_bad_request(client: TestClient, clock: ManualClock, body: Any) -> None:
    assert_error(client.post("/admin/clock/advance", json=body, headers=AS_ALICE), 400)
    assert clock.now() == START


def test_clock_advance_refuses_nan(client: TestClient) -> None:
    response = client.post(
        "/admin/clock/advance",
        content=b'{"seconds": NaN}',
        headers={**AS_ALICE, "content-type": "application/json"},
    )
    assert_error(response, 400)


def test_clock_advance_needs_a_token(client: TestClient) -> None:
    assert_error(client.post("/admin/clock/advance", json={"seconds": 1}), 401)


def test_clock_advance_on_the_real_clock(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data_dir=tmp_path, principals={ALICE: Principal("alice", True)}))
    with TestClient(app) as real:
        body = assert_error(real.post("/admin/clock/advance", json={"seconds": 1}, headers=AS_ALICE), 404)
        assert "real clock" in body["reason"]
    app.state.context.store.close()


# --- RBAC files ------------------------------------------------------------------------------


GOOD_RBAC = """\
principals:
  - name: alice
    token: "alice-token-0123456789"
    permissions:
      remote_tasks: true
  - name: bob
    token: "bob-token-0123456789ab"
"""


def test_rbac_file_gives_principals_and_permissions() -> None:
    assert parse_rbac(GOOD_RBAC) == {
        ALICE: Principal("alice", remote_tasks=True),
        BOB: Principal("bob", remote_tasks=False),
    }


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (
            GOOD_RBAC.replace("remote_tasks: true", "remote_task: true"),
            5,
            "principals[0].permissions.remote_task",
            "unknown field",
        ),
        (
            GOOD_RBAC.replace("remote_tasks: true", "remote_tasks: maybe"),
            5,
            "principals[0].permissions.remote_tasks",
            "boolean",
        ),
        (
            GOOD_RBAC.replace('token: "bob-token-0123456789ab"', 'token: "short"'),
            7,
            "principals[1].token",
            "at least 16",
        ),
        (
            GOOD_RBAC.replace('token: "bob-token-0123456789ab"', 'token: "has a space in it xx"'),
            7,
            "principals[1].token",
            "without spaces",
        ),
        (GOOD_RBAC.replace("bob-token-0123456789ab", ALICE), 7, "principals[1].token", "used twice"),
        (GOOD_RBAC.replace("name: bob", "name: alice"), 6, "principals[1].name", "used twice"),
        (
            GOOD_RBAC.replace('    token: "bob-token-0123456789ab"\n', ""),
            6,
            "principals[1].token",
            "required",
        ),
        (GOOD_RBAC + "admins: []\n", 8, "admins", "unknown field"),
        (GOOD_RBAC + "  - name: [\n", 9, "", "not valid YAML"),
        ("principals: []\n", 1, "principals", "at least 1"),
        ("- alice\n", 1, "", "mapping"),
        ("", 1, "", "mapping"),
    ],
    ids=[
        "unknown-permission",
        "not-a-boolean",
        "short-token",
        "token-with-space",
        "duplicate-token",
        "duplicate-name",
        "missing-token",
        "unknown-top-level",
        "bad-yaml",
        "no-principals",
        "not-a-mapping",
        "empty",
    ],
)
def test_rbac_errors_name_the_line_and_field(text: str, line: int, field: str, message: str) -> None:
    with pytest.raises(RbacError) as caught:
        parse_rbac(text, "rbac.yaml")
    error = caught.value
    assert (error.path, error.line, error.field) == ("rbac.yaml", line, field), str(error)
    assert message in error.message
    # A token is a secret: it is never repeated in an error.
    for token in (ALICE, BOB, "short"):
        if token in text:
            assert token not in str(error)


def test_serve_with_a_bad_rbac_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    rbac = tmp_path / "rbac.yaml"
    rbac.write_text(GOOD_RBAC.replace("remote_tasks", "remote_taskz"), "utf-8")
    result = CliRunner().invoke(
        cli_app, ["serve", "--rbac", str(rbac), "--data-dir", str(tmp_path / "d"), "--port", "0"]
    )
    assert result.exit_code == 2, result.output
    output = result.output
    assert f"{rbac}:5: principals[0].permissions.remote_taskz: unknown field" in output
    assert "Traceback" not in output
    assert isinstance(result.exception, SystemExit)


def test_serve_with_a_missing_rbac_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = CliRunner().invoke(cli_app, ["serve", "--rbac", str(missing), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{missing}: cannot read" in result.output
    assert "Traceback" not in result.output


# --- the generated admin ---------------------------------------------------------------------


def test_without_principals_the_server_makes_an_admin_token_file(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data_dir=tmp_path))
    token_file = tmp_path / "admin-token"
    assert app.state.context.admin_token_file == token_file
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text("ascii").strip()
    assert len(token) >= 32
    with TestClient(app) as admin:
        headers = {"Authorization": f"Bearer {token}"}
        assert admin.get(REPORT, headers=headers).status_code == 200
        # The admin has Remote tasks: the action is judged on its ids, not refused with 403.
        assert_error(admin.post(ATTEST, json={"deviceIds": ["ghost"]}, headers=headers), 404)
    app.state.context.store.close()

    again = create_app(ServerConfig(data_dir=tmp_path))
    assert token_file.read_text("ascii").strip() == token, "a restarted server keeps the token"
    assert token in again.state.context.principals
    again.state.context.store.close()


def test_with_principals_no_token_file_is_written(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data_dir=tmp_path, principals={ALICE: Principal("alice", True)}))
    assert app.state.context.admin_token_file is None
    assert not (tmp_path / "admin-token").exists()
    app.state.context.store.close()


def test_db_file_is_configurable(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "fleet.sqlite3"
    app = create_app(ServerConfig(data_dir=tmp_path / "data", db_file=db, principals={ALICE: Principal("a")}))
    app.state.context.store.close()
    assert db.exists()
    assert not (tmp_path / "data" / "server.sqlite3").exists()


# --- the admin page (served, not rendered: see test_admin_browser.py) -----------------------


def test_admin_page_is_served_without_auth_under_a_strict_policy(client: TestClient) -> None:
    page = client.get("/admin/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    html = page.text
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, "no inline script"
    assert "<style" not in html and "style=" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "nothing from another origin"
    for column in ("Attest device", "All", "Corporate", "Personal", *[s.value for s in AttestationStatus]):
        assert column in html
    script = client.get("/admin/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "devices/attest" in script.text
    assert ".innerHTML" not in script.text
    assert client.get("/admin/app.css").headers["content-type"].startswith("text/css")


def test_admin_page_is_not_in_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/admin/" not in paths
    assert "post" in paths[ATTEST] and "post" in paths[CHECKIN] and "post" in paths["/admin/clock/advance"]


# --- `harness serve` as a real process --------------------------------------------------------


class ServeProcess:
    """`harness serve` in its own process group, its output read on a thread."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness", "serve", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first line so far, or still to come, that matches."""
        for line in self.output:
            if found := re.search(pattern, line):
                return found
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.output)}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for process in started:
        process.kill()


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_runs_until_signalled_and_leaves_nothing(
    tmp_path: Path, serve: list[ServeProcess], stop: signal.Signals
) -> None:
    data = tmp_path / "data"
    process = ServeProcess("--port", "0", "--data-dir", str(data), cwd=tmp_path)
    serve.append(process)
    url = process.wait_for(r"reference server on (http://127\.0\.0\.1:\d+)").group(1)
    token_file = Path(process.wait_for(r"its token is in (\S+) \(mode 0600\)").group(1))
    pki = Path(process.wait_for(r"vendor CAs\s+(\S+)").group(1))
    assert token_file == data / "admin-token"
    assert pki == data / "pki" and sorted(pki.glob("*.cert.pem"))
    token = token_file.read_text("ascii").strip()
    assert token not in "".join(process.output), "the token itself is never printed"

    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/admin/").status_code == 200
        assert http.get(REPORT, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert (
            http.post(
                "/admin/clock/advance", json={"seconds": 1}, headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 404
        ), "real clock by default"

    process.process.send_signal(stop)
    assert process.process.wait(timeout=20) == 0
    process.wait_for("server stopped")
    assert group_is_gone(process.process.pid)
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))  # the port was released


def test_serve_with_rbac_db_and_a_manual_clock(tmp_path: Path, serve: list[ServeProcess]) -> None:
    rbac = tmp_path / "rbac.yaml"
    rbac.write_text(GOOD_RBAC, "utf-8")
    db = tmp_path / "db" / "fleet.sqlite3"
    pki = tmp_path / "shared-pki"
    process = ServeProcess(
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        "--db",
        str(db),
        "--rbac",
        str(rbac),
        "--pki-dir",
        str(pki),
        "--manual-clock",
        cwd=tmp_path,
    )
    serve.append(process)
    url = process.wait_for(r"reference server on (http://\S+) ").group(1)
    process.wait_for(r"admins\s+alice \(remote tasks\), bob from ")
    process.wait_for(rf"--pki-dir {re.escape(str(pki))} ")
    assert db.exists()
    assert not (tmp_path / "data" / "admin-token").exists()
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get(REPORT, headers=AS_ALICE).status_code == 200
        assert http.get(REPORT, headers={"Authorization": "Bearer someone-else-000000"}).status_code == 401
        before = dt.datetime.fromisoformat(http.get("/health").json()["time"])
        moved = http.post("/admin/clock/advance", json={"seconds": 900}, headers=AS_ALICE)
        assert moved.status_code == 200, moved.text
        after = dt.datetime.fromisoformat(http.get("/health").json()["time"])
        assert after - before == dt.timedelta(seconds=900)
        assert http.post(ATTEST, json={"deviceIds": ["ghost"]}, headers=AS_BOB).status_code == 403
    process.process.send_signal(signal.SIGTERM)
    assert process.process.wait(timeout=20) == 0
    assert group_is_gone(process.process.pid)


def test_serve_on_a_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "harness", "serve", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert "cannot start the server" in result.stderr
    assert "Traceback" not in result.stderr


def _enroll_with_trigger(client: TestClient, emm: str, trigger: object) -> httpx.Response:
    request = {
        "EnrollmentVersion": "5.0",
        "ContextItems": {
            "DeviceName": f"PC-{emm}",
            "EmmDeviceId": emm,
            "OSVersion": "10.0.22631.2792",
            "TPMVersion": "2.0",
            "EnrollmentTrigger": trigger,
        },
    }
    return client.post("/enrollment", json=request, headers={"Device-Credential": credential_of(emm)})


def test_each_attempt_keeps_what_triggered_it(client: TestClient, clock: ManualClock) -> None:
    """The device's own word for its retries; 'attest-action' only from the server's own record
    of an Attest command it handed over, never from the device's claim alone."""
    enroll_for_real(client, "d1")
    clock.advance(180)
    assert _enroll_with_trigger(client, "d1", "device-retry").status_code == 200
    clock.advance(180)
    assert _enroll_with_trigger(client, "d1", "attest-action").status_code == 200
    clock.advance(180)
    assert client.post(ATTEST, json={"deviceIds": ["d1"]}, headers=AS_ALICE).status_code == 202
    assert checkin(client, "d1")
    assert _enroll_with_trigger(client, "d1", "device-retry").status_code == 200
    attempts = client.get("/admin/devices/d1", headers=AS_BOB).json()["attempts"]
    assert [a["trigger"] for a in attempts][-4:] == ["", "device-retry", "device-retry", "attest-action"]


def test_an_unknown_trigger_is_refused_and_records_nothing(client: TestClient) -> None:
    enroll_for_real(client, "d1")
    before = client.get("/admin/devices/d1", headers=AS_BOB).json()["attempts"]
    response = _enroll_with_trigger(client, "d1", "because")
    assert 400 <= response.status_code < 500 and "EnrollmentTrigger" in response.text
    assert client.get("/admin/devices/d1", headers=AS_BOB).json()["attempts"] == before
