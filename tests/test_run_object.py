"""The run object's own rules, without a TPM: what travels to other processes, and the clock lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.fleet import FleetEnvironment, FleetRun, FleetSession
from harness.scenario import parse_scenario

STEPS = """
name: with-steps
groups:
  - name: laptops
    count: 2
    expect: {status: Attested}
steps:
  - check_in: {groups: [laptops]}
"""


def _session(tmp_path: Path, **extra: object) -> FleetSession:
    return FleetSession(
        env=FleetEnvironment(server_url="http://127.0.0.1:1", pki_dir=tmp_path, workdir=tmp_path),
        admin_url="http://127.0.0.1:1",
        admin_token="t",
        run_id="r",
        **extra,  # type: ignore[arg-type]
    )


def test_a_worker_gets_what_it_needs_to_run_steps_with_the_session(tmp_path: Path) -> None:
    session = _session(tmp_path, principal_tokens={"admin": "t", "helpdesk": "h"}, stepped=("with-steps",))
    joined = FleetSession.from_dict(session.to_dict())
    assert joined.principal_tokens == {"admin": "t", "helpdesk": "h"}
    assert joined.stepped == ("with-steps",)


def test_steps_on_a_server_not_started_for_them_are_refused_with_the_reason(tmp_path: Path) -> None:
    run = FleetRun.join(_session(tmp_path))  # a server given by URL: no manual clock, no admins
    with pytest.raises(HarnessError, match=r"has steps.*run it with the embedded server"):
        run.run_steps(parse_scenario(STEPS, "steps.yaml"))


def test_a_scenario_with_steps_split_over_two_processes_is_refused_not_run_twice(tmp_path: Path) -> None:
    first, second = FleetRun.join(_session(tmp_path)), FleetRun.join(_session(tmp_path))
    with first._clock_lock().exclusive("with-steps"):
        pass
    with (
        pytest.raises(HarnessError, match=r"already ran .* in another process.*--dist load"),
        second._clock_lock().exclusive("with-steps"),
    ):
        pass


def test_no_device_begins_while_a_scenario_with_steps_holds_the_clock(tmp_path: Path) -> None:
    steps, device = FleetRun.join(_session(tmp_path)), FleetRun.join(_session(tmp_path))
    began: list[float] = []

    def one_device() -> None:
        with device._clock_lock().shared():
            began.append(time.monotonic())

    with steps._clock_lock().exclusive("with-steps"):
        thread = threading.Thread(target=one_device)
        thread.start()
        time.sleep(0.3)
        assert began == []  # waiting for the steps to end
        released = time.monotonic()
    thread.join(timeout=5)
    assert began and began[0] >= released
