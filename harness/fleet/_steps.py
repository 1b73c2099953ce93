"""Scenario steps: what happens to a fleet after its first enrollment.

The devices of a scenario with steps stay alive (TPM, network path, client)
in the controller while the steps run in order: the world changes, admins
trigger the Attest device action, devices check in, the clock moves, and the
report is read against an expectation. Each expectation becomes a checkpoint
of every device it concerns.

Time is the scenario's virtual clock, which is the server's manual clock: it starts at
the first enrollment and moves only in advance_clock steps. Each device checks in on the
Windows MDM schedule (harness.client.next_checkin) counted from its enrollment; a step that
moves the clock past check-ins runs them in time order, each at its own moment.

Device actions arrive as Intune delivers them: the server pushes to the channel each enrolled
device holds open (a real long-poll, harness.client's PushChannel), in batches on its clock;
a device that hears a push syncs a short while later (harness.client.sync_delay). Those
syncs and the server's next push batch are moments the clock stops at too. A device whose
channel is blocked hears nothing and finds the command at its next scheduled check-in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any

import httpx

from ..client import next_checkin
from ..errors import ServerError
from ..results import Checkpoint, DeviceResult, Outcome
from ..scenario import Expectation, GroupExpectation, Scenario, Step, WorldChange
from ..tpm import TPMBackend
from ..world import REGISTRY
from ._device import DeviceRun, FleetEnvironment, LiveDevice
from ._plan import DevicePlan
from ._report_steps import check_columns, run_report

CheckDevice = Callable[[DevicePlan, Expectation, DeviceRun], DeviceResult]
# Real seconds to wait for a push the server says it sent, or for a channel's first poll.
_PUSH_WAIT = 30.0  # generous: a loaded CI machine may take seconds to pass a push on


class StepRunner:
    """Runs one scenario's devices and steps; `tokens` maps principal names to bearer tokens."""

    def __init__(
        self,
        scenario: Scenario,
        plans: list[DevicePlan],
        expectations: dict[str, Expectation],
        env: FleetEnvironment,
        *,
        admin_url: str,
        tokens: dict[str, str],
        check: CheckDevice,
    ) -> None:
        self.scenario = scenario
        self.plans = plans
        self.expectations = dict(expectations)
        self.env = env
        self.admin_url = admin_url
        self.tokens = tokens
        self.check = check
        self.devices: dict[str, LiveDevice] = {}
        self.checkpoints: dict[str, list[Checkpoint]] = {p.key: [] for p in plans}
        self.now = 0.0  # seconds of virtual time since the first enrollment
        self._enrolled_at: dict[str, float] = {p.key: 0.0 for p in plans}
        self._checked_at: dict[str, float] = {p.key: 0.0 for p in plans}  # last scheduled check-in
        self._origin = dt.datetime.now(dt.UTC)  # the server's time at virtual 0 (read in run)
        self._next_push: float | None = None  # when the server sends its next push batch

    def run(self, backend: TPMBackend) -> list[DeviceResult]:
        with ExitStack() as stack, httpx.Client(base_url=self.admin_url, timeout=30) as http:
            self._http = http
            for plan in self.plans:
                device = stack.enter_context(LiveDevice(plan, self.env, backend, push=True))
                self.devices[plan.key] = device
                device.guard(device.first_enrollment)
            self._origin = self._server_time()
            self._expect_all("enrollment")
            for index, step in enumerate(self.scenario.steps, start=1):
                self._step(index, step)
            return [self._result(plan) for plan in self.plans]

    def _group(self, name: str) -> list[LiveDevice]:
        return [self.devices[p.key] for p in self.plans if p.group == name]

    def _step(self, index: int, step: Step) -> None:
        label = f"step {index}: {step.kind}"
        if step.world is not None:
            for device in self._group(step.world.group):
                self._change(device, step.world)
        elif step.check_in is not None:
            for group in step.check_in.groups:
                for device in self._group(group):
                    device.guard(device.check_in)
        elif step.advance_clock is not None:
            self._advance(step.advance_clock.seconds)
        elif step.attest is not None:
            self._attest(label, step)
        elif step.report is not None:
            if step.report.attest is not None:
                self._settle(list(self.devices.values()))
            plans = [device.plan for device in self.devices.values()]
            found, answer = run_report(self._admin, label, step.report, plans)
            for key, checkpoint in found:
                self.checkpoints[key].append(checkpoint)
            if answer is not None and answer.is_success:
                self._pushes_sent(answer.json())
        elif step.expect_report is not None:
            for device in self._group(step.expect_report.group):
                checkpoint = check_columns(self._admin, label, step.expect_report, device.plan)
                self.checkpoints[device.plan.key].append(checkpoint)
        elif step.expect is not None:
            expected = Expectation(status=step.expect.status, detail=step.expect.detail)
            for device in self._group(step.expect.group):
                self.expectations[device.plan.key] = expected
                self._expect(device, label)
                if step.expect.action is not None:
                    self._expect_action(device, label, step.expect)

    def _change(self, device: LiveDevice, change: WorldChange) -> None:
        """The world's changes, in their registered order (harness.world)."""
        for step in REGISTRY.step_changes():
            value = getattr(change, step.name, None)
            if not value:
                continue
            device.guard(partial(device.change, step.name, value))
            if step.new_enrollment:  # a new enrollment starts a new schedule
                self._enrolled_at[device.plan.key] = self._checked_at[device.plan.key] = self.now

    def _advance(self, seconds: float) -> None:
        """Move the clock, stopping on the way at each device's scheduled check-in, each sync a
        push started, and each push batch the server sends, in time order."""
        target = self.now + seconds
        while True:
            due: list[tuple[float, int, str, LiveDevice | None]] = []
            for i, (key, d) in enumerate(self.devices.items()):
                due.append((next_checkin(self._enrolled_at[key], self._checked_at[key]), i, "schedule", d))
                sync = self._push_sync(d)
                if sync is not None:
                    due.append((sync, i, "push", d))
            if self._next_push is not None:
                due.append((self._next_push, -1, "batch", None))
            when, _, kind, device = min(due, key=lambda entry: (entry[0], entry[1]))
            if when > target:
                break
            self._move_clock(max(when - self.now, 0.0), force=kind == "batch")
            if device is None:
                if self._next_push is not None and self._next_push <= when:
                    self._next_push = None  # released already: never stop here twice
                continue
            if kind == "push":
                client = device.client
                if client is not None:
                    notes = client.pushes()
                    device.guard(partial(client.sync_after_push, notes))
            else:
                device.guard(device.check_in)
                self._checked_at[device.plan.key] = when
        self._move_clock(target - self.now)

    def _push_sync(self, device: LiveDevice) -> float | None:
        """When the device syncs for the pushes it heard (None: it heard none)."""
        notes = device.client.pushes() if device.client is not None else []
        if not notes:
            return None
        heard = min(self._virtual(n.sent_at) for n in notes)
        return heard + device.client.push_sync_delay() if device.client is not None else None

    def _virtual(self, stamp: str) -> float:
        return (dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) - self._origin).total_seconds()

    def _server_time(self) -> dt.datetime:
        try:
            response = self._http.get("/health")
            return dt.datetime.fromisoformat(str(response.json()["time"]))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise ServerError(f"cannot read the server's time: {exc}") from exc

    def _move_clock(self, seconds: float, *, force: bool = False) -> None:
        if seconds > 0 or force:
            response = self._admin("POST", "/admin/clock/advance", "admin", {"seconds": seconds})
            if not response.is_success:
                raise ServerError(
                    f"the server's clock cannot be advanced: HTTP {response.status_code} {response.text}"
                )
            self.now += seconds
            self._pushes_sent(response.json())

    def _pushes_sent(self, answer: dict[str, Any]) -> None:
        """Wait until each push the server sent has reached its device's channel, so that the
        devices' syncs are known before the clock moves on; note the next batch."""
        by_id = {d.plan.emm_device_id: d for d in self.devices.values()}
        for sent in answer.get("pushed") or []:
            device = by_id.get(str(sent.get("deviceId")))
            channel = device.client.push if device is not None and device.client is not None else None
            if channel is not None:
                channel.wait_for(int(sent["actionId"]), _PUSH_WAIT)
        following = answer.get("nextPushAt")
        self._next_push = None if following is None else self._virtual(str(following))

    def _expect_action(self, device: LiveDevice, label: str, expected: GroupExpectation) -> None:
        response = self._admin("GET", f"/admin/devices/{device.plan.emm_device_id}", "admin", None)
        action = response.json().get("action") if response.is_success else None
        state = str(action.get("state")) if isinstance(action, dict) else "no action"
        self.checkpoints[device.plan.key].append(
            Checkpoint(
                step=f"{label} (Attest device action)",
                expected=str(expected.action),
                actual=state,
                matched=state == expected.action,
                reason=(
                    f"requested {action.get('requestedAt')}, expected by {action.get('expectedBy')}"
                    + (", overdue" if action.get("overdue") else "")
                    if isinstance(action, dict)
                    else ""
                ),
            )
        )

    def _attest(self, label: str, step: Step) -> None:
        action = step.attest
        assert action is not None
        targets = [d for group in action.groups for d in self._group(group)]
        self._settle(targets)
        response = self._admin(
            "POST",
            "/admin/devices/attest",
            action.principal,
            {"deviceIds": [d.plan.emm_device_id for d in targets]},
        )
        try:
            reason = str(response.json().get("reason", "")) if not response.is_success else "accepted"
        except ValueError:
            reason = response.text[:200]
        if response.is_success:
            self._pushes_sent(response.json())
        retry = response.headers.get("Retry-After")
        if retry:
            reason += f" (Retry-After: {retry})"
        for device in targets:
            self.checkpoints[device.plan.key].append(
                Checkpoint(
                    step=f"{label} as {action.principal}",
                    expected=f"HTTP {action.expect_response}",
                    actual=f"HTTP {response.status_code}",
                    matched=response.status_code == action.expect_response,
                    reason=reason,
                )
            )

    def _settle(self, targets: list[LiveDevice]) -> None:
        """Wait until each enrolled device has tried to open its push channel."""
        for device in targets:
            channel = device.client.push if device.client is not None else None
            if channel is not None:
                channel.settled.wait(_PUSH_WAIT)

    def _admin(self, method: str, path: str, principal: str, body: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[principal]}"}
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ServerError(f"{method} {path}: {exc}") from exc
        return response

    def _expect_all(self, label: str) -> None:
        for device in self.devices.values():
            self._expect(device, label)

    def _expect(self, device: LiveDevice, label: str) -> None:
        expectation = self.expectations[device.plan.key]
        result = self.check(device.plan, expectation, device.finish())
        actual = result.actual
        self.checkpoints[device.plan.key].append(
            Checkpoint(
                step=label,
                expected=_outcome(result.expected),
                actual=_outcome(actual) if actual else "no record",
                matched=result.matched,
                reason=result.evidence.decision or result.error,
            )
        )

    def _result(self, plan: DevicePlan) -> DeviceResult:
        device = self.devices[plan.key]
        result = self.check(device.plan, self.expectations[plan.key], device.finish())
        checkpoints = self.checkpoints[plan.key]
        matched = all(c.matched for c in checkpoints) and not result.error
        return result.model_copy(
            update={
                "checkpoints": checkpoints,
                "matched": matched,
                "trace": result.trace or ([] if matched else device.run.trace),
            }
        )


def _outcome(outcome: Outcome) -> str:
    return f"{outcome.status} / {outcome.detail}" if outcome.detail else str(outcome.status)
