"""Devices as tasks: the device task itself, Docker Swarm replicated jobs, Kubernetes manifests.

The Swarm tests need a swarm manager with the device image: `make test` starts a private
engine as one (scripts/docker-engine.sh run --swarm); elsewhere they skip and say why. The
task and manifest tests need no engine.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from harness.client import ClientReport
from harness.cluster import (
    RUN_MARKER,
    issuers_of,
    k8s_manifests,
    slot_index,
    task_server_url,
    unpack_vendor_cas,
    vendor_ca_bundle,
)
from harness.errors import BackendUnavailable, HarnessError
from harness.fleet import (
    AdminReader,
    DeviceRun,
    DeviceTask,
    FleetRun,
    RunOptions,
    check_device,
    plan_fleet,
    run_from_json,
    run_to_json,
    task_from_json,
    task_to_json,
)
from harness.results import ClientStep
from harness.scenario import load_scenario, parse_scenario
from harness.tpm import RUN_LABEL, swarm_client, swarm_preflight

ROOT = Path(__file__).resolve().parent.parent
STATUS_DETAILS = ROOT / "scenarios" / "status-details.yaml"
K8S_VERSION = "1.33"  # backoffLimitPerIndex is GA from 1.33


def _swarm_skip_reason() -> str:
    reason = os.environ.get("HARNESS_SWARM_UNAVAILABLE") or os.environ.get("HARNESS_DOCKER_UNAVAILABLE")
    if reason:
        return reason
    try:
        swarm_preflight()
    except BackendUnavailable as exc:
        return f"{exc} (make test starts one: scripts/docker-engine.sh run --swarm -- pytest)"
    return ""


SWARM_SKIP = _swarm_skip_reason()
needs_swarm = pytest.mark.skipif(bool(SWARM_SKIP), reason=SWARM_SKIP or "swarm available")


# --- plans and runs as JSON -------------------------------------------------------------------


def test_every_plan_of_status_details_survives_json_unchanged() -> None:
    plans, expectations = plan_fleet([load_scenario(STATUS_DETAILS)])
    task = DeviceTask(server_url="http://127.0.0.1:1", plans=plans)
    text = task_to_json(task)
    assert task_from_json(text).plans == plans
    # Only the world travels: no expected status or detail is in what a task is handed.
    for expectation in expectations.values():
        if expectation.detail:
            assert str(expectation.detail) not in text
    assert "expect" not in text


def test_a_device_run_with_its_bytes_survives_one_json_line() -> None:
    report = ClientReport(
        emm_device_id="d", nonce=b"\x00\xffnonce", entra_keys={"dev": b"\x30\x82key"}, token="t.o.k"
    )
    report.steps.append(ClientStep(step="tpm.create", ok=True, detail="AIK", seconds=0.5))
    run = DeviceRun(key="s/g/0", emm_device_id="d", report=report, tpm_seconds=1.5, error="")
    line = run_to_json(run)
    assert "\n" not in line
    assert run_from_json(line) == run


def test_a_task_that_is_not_one_is_refused_with_the_field() -> None:
    with pytest.raises(HarnessError, match=r"task.json is not a device task: plans"):
        task_from_json('{"server_url": "http://x"}', "task.json")
    with pytest.raises(HarnessError, match="outside this task's 0 plan"):
        DeviceTask(server_url="http://x", plans=[]).plan(0)


def test_the_device_index_comes_from_a_number_or_swarms_slot_zero() -> None:
    assert slot_index("7") == 7
    # Swarm renders {{.Task.Slot}} of slot 0 as the node id.
    assert slot_index("oud7bncpqxkic13omj1kbjuy7") == 0
    with pytest.raises(HarnessError, match="must be a number"):
        slot_index("-1")


def test_vendor_cas_travel_as_one_document_and_unpack_private(tmp_path: Path) -> None:
    plans, _ = plan_fleet([load_scenario(STATUS_DETAILS)])
    with FleetRun([load_scenario(STATUS_DETAILS)], RunOptions()) as run:
        assert run.session is not None
        session = run.session
        document = vendor_ca_bundle(session.env.pki_dir, issuers_of(plans))
    unpack_vendor_cas(document, tmp_path / "cas")
    written = sorted(p.name for p in (tmp_path / "cas").iterdir())
    assert written == sorted(json.loads(document))
    assert all(stat.S_IMODE((tmp_path / "cas" / n).stat().st_mode) == 0o600 for n in written)
    with pytest.raises(HarnessError, match="not a CA file"):
        unpack_vendor_cas(json.dumps({"../escape.key.pem": "x"}), tmp_path / "bad")
    assert not (tmp_path / "escape.key.pem").exists()


def test_the_server_url_tasks_get_is_one_they_can_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_SERVER_ADVERTISE", raising=False)
    assert task_server_url("http://127.0.0.1:8000", 1, True) == "http://127.0.0.1:8000"
    with pytest.raises(HarnessError, match="--server-bind"):
        task_server_url("http://127.0.0.1:8000", 3, True)
    with pytest.raises(HarnessError, match="HARNESS_SERVER_ADVERTISE"):
        task_server_url("http://0.0.0.0:8000", 3, True)
    monkeypatch.setenv("HARNESS_SERVER_ADVERTISE", "10.0.0.7")
    assert task_server_url("http://0.0.0.0:8000", 3, True) == "http://10.0.0.7:8000"


def _task(task_id: str, state: str, created: str, exit_code: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state, "Message": state, "Timestamp": created}
    if exit_code is not None:
        status["ContainerStatus"] = {"ExitCode": exit_code}
        status["Err"] = f"task: non-zero exit ({exit_code})"
    return {"ID": task_id, "CreatedAt": created, "Status": status}


def test_a_slot_is_judged_from_its_tasks_states_restarts_and_output() -> None:
    # Swarm's task list as the API gives it; the device's own run comes from the task's output.
    from harness.cluster._swarm import SwarmFleet, _Slot

    plans, _ = plan_fleet([load_scenario(ROOT / "scenarios" / "smoke.yaml")])
    fleet = SwarmFleet(None, None, concurrency=2, restarts=1)  # type: ignore[arg-type]
    slot = _Slot(plans[0])
    killed = _task("a" * 25, "failed", "2026-01-01T00:00:01Z", 137)
    assert fleet._judge(slot, [killed]) is None  # Swarm restarts it: not judged yet
    again = _task("b" * 25, "running", "2026-01-01T00:00:05Z")
    assert fleet._judge(slot, [again, killed]) is None
    done = _task("b" * 25, "complete", "2026-01-01T00:00:05Z")
    fleet._outputs["b" * 25] = DeviceRun(key=plans[0].key, emm_device_id=plans[0].emm_device_id)
    run = fleet._judge(slot, [done, killed])
    assert run is not None and not run.error
    assert [s.step for s in run.steps] == ["swarm.task"]
    assert "aaaaaaaaaaaa failed: task: non-zero exit (137) (exit code 137)" in run.steps[0].detail
    other = _Slot(plans[1])
    twice = [killed, _task("c" * 25, "failed", "2026-01-01T00:00:09Z", 3)]
    lost = fleet._judge(other, twice)
    assert lost is not None
    assert lost.error.startswith("the device's task failed 2 time(s) and Swarm restarts it at most 1")
    assert "cccccccccccc failed" in lost.error and "(exit code 3)" in lost.error


# --- harness device run, as a process here ------------------------------------------------------


def test_harness_device_run_lives_one_device_from_its_plan_and_the_server_judges_it(tmp_path: Path) -> None:
    scenario = parse_scenario(
        "name: task\nseed: 3\ngroups:\n"
        "  - {name: laptop, expect: {status: Attested}}\n"
        "  - name: online-ek-refused\n"
        "    tpm: {vendor: intel, ek_certificate: online}\n"
        "    network: {ek_service: refused}\n"
        "    expect: {status: Not attested, detail: AIK certificate wasn't provided}\n"
        "  - name: online-ek\n"
        "    tpm: {vendor: amd, ek_certificate: online}\n"
        "    expect: {status: Attested}\n",
        "task.yaml",
    )
    plans, expectations = plan_fleet([scenario])
    with FleetRun([scenario], RunOptions()) as run:
        assert run.session is not None
        session = run.session
        task_file, cas_file = tmp_path / "task.json", tmp_path / "cas.json"
        task_file.write_text(task_to_json(DeviceTask(server_url="http://127.0.0.1:1", plans=plans)))
        cas_file.write_text(vendor_ca_bundle(session.env.pki_dir, issuers_of(plans)))
        with AdminReader(session.admin_url, session.admin_token) as admin:
            for index, plan in enumerate(plans):
                done = subprocess.run(
                    [sys.executable, "-m", "harness", "device", "run", "--plan", str(task_file),
                     "--vendor-cas", str(cas_file), "--server", session.env.server_url],
                    env={**os.environ, "HARNESS_DEVICE_INDEX": str(index)},
                    capture_output=True, text=True, timeout=120,
                )  # fmt: skip
                assert done.returncode == 0, done.stderr
                (line,) = [x for x in done.stdout.splitlines() if x.startswith(RUN_MARKER)]
                run = run_from_json(line.removeprefix(RUN_MARKER))
                assert run.key == plan.key and not run.error
                result = check_device(plan, expectations[plan.key], run, admin)
                assert result.matched, (result.actual, result.evidence.decision)


def test_harness_device_run_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    task_file = tmp_path / "task.json"
    task_file.write_text('{"server_url": "http://127.0.0.1:1", "plans": [], "expected": "Attested"}')
    done = subprocess.run(
        [sys.executable, "-m", "harness", "device", "run", "--plan", str(task_file), "--index", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "not a device task: expected: Extra inputs are not permitted" in done.stderr


def test_a_scenario_with_steps_is_refused_under_swarm_with_the_reason(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(ROOT / "scenarios" / "recovery.yaml"), "--swarm",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "has steps" in done.stderr and "--backend process or docker" in done.stderr
    assert not (tmp_path / "out" / "results.json").exists()


# --- Kubernetes manifests -----------------------------------------------------------------------


def _manifests(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    with FleetRun([], RunOptions(pki_dir=tmp_path / "pki")):
        pass  # the vendor CAs a server started with --pki-dir would trust
    return subprocess.run(
        [sys.executable, "-m", "harness", "k8s", "manifests", str(STATUS_DETAILS),
         "--server-url", "http://enrollment-harness-server.lab.svc:8080", "--pki-dir", str(tmp_path / "pki"),
         "--namespace", "lab", "--image", "registry.example/enrollment-harness/device:1", *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_status_details_as_an_indexed_job_validates_against_the_kubernetes_schemas(tmp_path: Path) -> None:
    done = _manifests(
        tmp_path,
        "--lagging-replica-url",
        "http://replica:8081",
        "--foreign-identity-url",
        "http://other:8082",
    )
    assert done.returncode == 0, done.stderr
    objects = list(yaml.safe_load_all(done.stdout))
    for document in objects:
        # strict: a field the API does not know is an error, not ignored.
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    kinds = [o["kind"] for o in objects]
    assert kinds == [
        "Namespace", "ServiceAccount", "ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap", "Job"
    ]  # fmt: skip
    job = objects[-1]
    assert job["spec"]["completionMode"] == "Indexed"
    plans, _ = plan_fleet([load_scenario(STATUS_DETAILS)])
    assert job["spec"]["completions"] == len(plans)  # one completion index per device
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["containers"][0]["args"][-2:] == ["--index-env", "JOB_COMPLETION_INDEX"]
    task = task_from_json(objects[-2]["data"]["task.json"])
    assert task.plans == plans  # completion index i runs plan i
    assert "expect" not in done.stdout


def test_a_manifest_with_an_unknown_field_fails_the_schema_check(tmp_path: Path) -> None:
    done = _manifests(tmp_path, "--lagging-replica-url", "http://r:1", "--foreign-identity-url", "http://f:2")
    job = list(yaml.safe_load_all(done.stdout))[-1]
    job["spec"]["completionIndex"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_manifests_refuse_a_world_that_needs_a_service_no_url_was_given_for(tmp_path: Path) -> None:
    done = _manifests(tmp_path)
    assert done.returncode == 2
    assert "needs the lagging replica: --lagging-replica-url" in done.stderr


def test_k8s_manifests_hold_the_vendor_cas_only_in_the_secret(tmp_path: Path) -> None:
    plans, _ = plan_fleet([load_scenario(ROOT / "scenarios" / "smoke.yaml")])
    with FleetRun([], RunOptions(pki_dir=tmp_path / "pki")):
        pass
    objects = k8s_manifests(plans, pki_dir=tmp_path / "pki", image="i", server_url="http://s:1")
    holding = [o["kind"] for o in objects if "PRIVATE KEY" in json.dumps(o)]
    assert holding == ["Secret"]


# --- Docker Swarm ---------------------------------------------------------------------------------


def _leftovers(client: Any, run_id: str) -> dict[str, int]:
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    return {
        "services": len(client.services.list(filters=selector)),
        "configs": len(client.configs.list(filters=selector)),
        "secrets": len(client.secrets.list(filters=selector)),
        "containers": len(client.containers.list(all=True, filters=selector)),
    }


NOTHING = {"services": 0, "configs": 0, "secrets": 0, "containers": 0}

SWARM_FLEET = """
name: swarm-fleet
seed: 11
groups:
  - {name: laptops, count: 3, expect: {status: Attested}}
  - name: lagging-replica-nonce
    network: {nonce_from: lagging-replica}
    expect: {status: Not attested, detail: Client request is rejected}
  - name: enrollment-reset
    network: {enrollment: reset}
    expect: {status: Not attested, detail: Client request is rejected}
"""


def _run_on_swarm(tmp_path: Path, text: str, run_id: str, **env: str) -> subprocess.Popen[bytes]:
    scenario = tmp_path / "swarm.yaml"
    scenario.write_text(text)
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), "--swarm", "--workers", "2",
         "--out", str(tmp_path / "out")],
        cwd=ROOT, env={**os.environ, "HARNESS_RUN_ID": run_id, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


@needs_swarm
def test_a_fleet_runs_as_swarm_tasks_with_helper_services_and_leaves_nothing(tmp_path: Path) -> None:
    process = _run_on_swarm(tmp_path, SWARM_FLEET, "swarm-fleet")
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["summary"]["matched"] == 5
    assert all(d["engine"] == "swarm" for d in results["devices"])
    assert (tmp_path / "out" / "junit.xml").exists() and (tmp_path / "out" / "index.html").exists()
    client = swarm_client()
    try:
        assert _leftovers(client, "swarm-fleet") == NOTHING
    finally:
        client.close()


def _kill_a_running_task(client: Any, run_id: str, process: subprocess.Popen[bytes]) -> str:
    """Kill the first task container that runs; returns its task id."""
    deadline = time.monotonic() + 300
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        for container in client.containers.list(filters=selector):
            # Past the interpreter's start: the device's TPM is being made or used.
            if time.monotonic() - _started(container) > 1.5:
                container.kill()
                return str(container.labels["com.docker.swarm.task.id"])
        time.sleep(0.2)
    raise AssertionError("no task of the run was seen running")


def _started(container: Any) -> float:
    import datetime as dt

    text = container.attrs["State"]["StartedAt"][:26].rstrip("Z")
    started = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()
    return time.monotonic() - (time.time() - started)


def _restarted_after(device: dict[str, Any], task_id: str) -> bool:
    steps = device["evidence"]["client_steps"]
    return any(s["step"] == "swarm.task" and task_id[:12] in s["detail"] for s in steps)


@needs_swarm
def test_a_task_killed_mid_run_is_restarted_by_swarm_and_shown(tmp_path: Path) -> None:
    process = _run_on_swarm(tmp_path, SWARM_FLEET, "swarm-kill-restart")
    client = swarm_client()
    try:
        killed = _kill_a_running_task(client, "swarm-kill-restart", process)
        _, stderr = process.communicate(timeout=600)
        results = json.loads((tmp_path / "out" / "results.json").read_text())
        shown = [d for d in results["devices"] if _restarted_after(d, killed)]
        assert len(shown) == 1, stderr.decode()
        # Swarm ran the device again (exit 137 was a failure under its restart policy).
        assert "exit code 137" in shown[0]["evidence"]["client_steps"][0]["detail"]
        assert shown[0]["actual"] is not None
        assert _leftovers(client, "swarm-kill-restart") == NOTHING
    finally:
        client.close()


@needs_swarm
def test_a_task_killed_with_no_restart_left_is_a_harness_error_with_every_report(tmp_path: Path) -> None:
    process = _run_on_swarm(tmp_path, SWARM_FLEET, "swarm-kill-error", HARNESS_SWARM_RESTARTS="0")
    client = swarm_client()
    try:
        killed = _kill_a_running_task(client, "swarm-kill-error", process)
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 1, stderr.decode()
        results = json.loads((tmp_path / "out" / "results.json").read_text())
        (failed,) = [d for d in results["devices"] if d["error"]]
        assert f"task {killed[:12]} failed" in failed["error"]
        assert "Swarm restarts it at most 0 time(s)" in failed["error"]
        assert failed["matched"] is False
        assert results["summary"]["errors"] == 1 and results["summary"]["matched"] == 4
        assert (tmp_path / "out" / "junit.xml").exists() and (tmp_path / "out" / "index.html").exists()
        assert _leftovers(client, "swarm-kill-error") == NOTHING
    finally:
        client.close()


@needs_swarm
def test_ctrl_c_during_a_swarm_run_leaves_no_service(tmp_path: Path) -> None:
    process = _run_on_swarm(tmp_path, SWARM_FLEET, "swarm-ctrl-c")
    client = swarm_client()
    try:
        deadline = time.monotonic() + 300
        while not client.containers.list(filters={"label": f"{RUN_LABEL}=swarm-ctrl-c"}):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 130, stderr.decode()
        assert json.loads((tmp_path / "out" / "results.json").read_text())["summary"]["interrupted"] is True
        assert _leftovers(client, "swarm-ctrl-c") == NOTHING
    finally:
        client.close()
