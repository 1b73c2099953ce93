"""The pytest plugin: scenario YAML as tests, run by a real pytest in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness.fleet import RunOptions, run_fleet
from harness.scenario import load_scenario

from .conftest import needs_swtpm, swtpm_pids_under

ROOT = Path(__file__).resolve().parent.parent

TWO_GROUPS = """\
name: plugin-two-groups
seed: 11
groups:
  - name: laptops
    count: 2
    platform: physical
    expect: {status: Attested}
  - name: azure-vm
    platform: azure-vm
    expect: {status: Not attested, detail: "Feature isn't supported"}
"""

# The Azure VM's expectation is deliberately wrong: the server will say it is not supported.
WRONG_EXPECTATION = """\
name: plugin-wrong
seed: 12
groups:
  - name: laptop
    platform: physical
    expect: {status: Attested}
  - name: azure-vm
    platform: azure-vm
    expect: {status: Attested}
"""

# Line 5 holds the misspelt field.
SCHEMA_ERROR = """\
name: plugin-bad
groups:
  - name: laptops
    count: 1
    tmp: {vendor: nuvoton}
    expect: {status: Attested}
"""

# A scenario with steps: the outage heals and the device retries at its check-in. The
# steady laptop's last expectation is deliberately wrong: it stays Attested.
STEPS = """\
name: plugin-steps
seed: 21
groups:
  - name: outage
    platform: physical
    network: {aik_ca: refused}
    expect: {status: Not attested, detail: "AIK certificate wasn't provided"}
  - name: steady
    platform: physical
    expect: {status: Attested}
steps:
  - world: {group: outage, aik_ca: reachable}
  - check_in: {groups: [outage, steady]}
  - expect: {group: outage, status: Attested}
  - expect: {group: steady, status: Attested}
"""
STEPS_WRONG = STEPS.replace(
    "  - expect: {group: steady, status: Attested}\n",
    '  - expect: {group: steady, status: Not attested, detail: "TPM isn\'t ready"}\n',
)

# Writes what each xdist worker was handed, so that the test can see there was one server.
RECORD_WORKERS = """\
import json, os

def pytest_configure(config):
    if hasattr(config, "workerinput"):
        session = config.workerinput.get("harness_session") or {}
        record = {"worker": config.workerinput["workerid"], "pid": os.getpid(), **session}
        with open(os.environ["WORKER_RECORD"], "a") as out:
            out.write(json.dumps(record) + "\\n")
"""


def _pytest(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_a_scenario_file_is_collected_as_one_test_per_device(tmp_path: Path) -> None:
    _write(tmp_path, "fleet.yaml", TWO_GROUPS)
    # YAML that is no scenario (no top-level groups, not under scenarios/) is left alone.
    _write(tmp_path, "settings.yaml", "name: not-a-scenario\nitems: [1, 2]\n")
    done = _pytest(tmp_path, "--collect-only", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert collected == [
        "fleet.yaml::laptops[0]",
        "fleet.yaml::laptops[1]",
        "fleet.yaml::azure-vm[0]",
    ]


def test_files_under_a_scenarios_directory_are_scenarios_even_without_groups(tmp_path: Path) -> None:
    # Such a file is meant as a scenario, so its mistake is reported rather than the file skipped.
    (tmp_path / "scenarios").mkdir()
    _write(tmp_path / "scenarios", "x.yaml", "name: x\n")
    done = _pytest(tmp_path, "--collect-only", "-q", "scenarios")
    assert done.returncode != 0
    assert "scenarios/x.yaml:" in done.stdout and "groups" in done.stdout, done.stdout


def test_a_schema_error_names_the_file_line_and_field(tmp_path: Path) -> None:
    _write(tmp_path, "bad.yaml", SCHEMA_ERROR)
    done = _pytest(tmp_path, "--collect-only", "-q")
    assert done.returncode == 2, done.stdout + done.stderr  # pytest's "errors during collection"
    assert "bad.yaml:5: groups[0].tmp: unknown field" in done.stdout
    assert "Traceback" not in done.stdout


@needs_swtpm
def test_a_mismatch_shows_expected_actual_and_the_servers_reason_in_the_report_and_junit(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "wrong.yaml", WRONG_EXPECTATION)
    junit = tmp_path / "junit.xml"
    done = _pytest(tmp_path, "-q", f"--junitxml={junit}")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "1 failed, 1 passed" in out
    assert "expected Attested, got Not attested / Feature isn't supported" in out
    assert "reason:   platform.physical: model 'Virtual Machine' is a virtual machine" in out
    assert "failing checks:\n  - platform.physical:" in out
    assert "FAILED wrong.yaml::azure-vm[0]" in out

    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"laptop[0]", "azure-vm[0]"}
    vm = {p.get("name"): p.get("value") for p in cases["azure-vm[0]"].iter("property")}
    assert vm["expected_status"] == "Attested" and vm["expected_detail"] == ""
    assert vm["actual_status"] == "Not attested"
    assert vm["actual_detail"] == "Feature isn't supported"
    assert vm["reason"].startswith("platform.physical")
    assert cases["azure-vm[0]"].find("failure") is not None
    laptop = {p.get("name"): p.get("value") for p in cases["laptop[0]"].iter("property")}
    assert laptop["actual_status"] == laptop["expected_status"] == "Attested"
    assert laptop["device_id"]


@needs_swtpm
def test_xdist_workers_share_the_controllers_one_server_which_stops_at_the_end(tmp_path: Path) -> None:
    _write(tmp_path, "fleet.yaml", TWO_GROUPS.replace("count: 2", "count: 3"))
    _write(tmp_path, "steps.yaml", STEPS)
    _write(tmp_path, "conftest.py", RECORD_WORKERS)
    record = tmp_path / "workers.jsonl"
    out = tmp_path / "reports"
    done = _pytest(
        tmp_path, "-n", "2", "-v", f"--harness-out={out}", env={"WORKER_RECORD": str(record)}, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout and "skipped" not in done.stdout
    # The devices of the scenario with steps lived together, in one worker.
    steps_workers = {line.split()[0] for line in done.stdout.splitlines() if "PASSED steps.yaml::" in line}
    assert len(steps_workers) == 1, done.stdout

    workers = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(workers) == 2 and len({w["pid"] for w in workers}) == 2
    assert len({w["server_url"] for w in workers}) == 1, workers
    assert len({w["admin_token"] for w in workers}) == 1
    # Both workers ran devices, and the reports gathered every one of them in the controller.
    results = json.loads((out / "results.json").read_text())
    assert results["summary"]["total"] == 6 and results["summary"]["matched"] == 6
    assert results["summary"]["workers"] == 2
    stepped = [d for d in results["devices"] if d["scenario"] == "steps.yaml"]
    assert [c["step"] for c in stepped[0]["checkpoints"]] == ["enrollment", "step 3: expect"]
    # Every worker wrote its devices' evidence bundles into the one directory the controller made.
    assert len(list((out / "bundles").glob("*.json"))) == 6
    assert (out / "bundles" / "trust").is_dir()
    # The server belonged to the run: its port is closed and its work directory is gone.
    url = urlsplit(workers[0]["server_url"])
    with pytest.raises(OSError), socket.create_connection((url.hostname, url.port), timeout=2):
        pass
    assert not Path(workers[0]["workdir"]).exists()


@needs_swtpm
def test_a_scenario_with_steps_runs_under_pytest_and_a_failure_shows_every_checkpoint(tmp_path: Path) -> None:
    _write(tmp_path, "steps.yaml", STEPS_WRONG)
    junit = tmp_path / "junit.xml"
    done = _pytest(tmp_path, "-q", "-rA", f"--junitxml={junit}")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "1 failed, 1 passed" in out and "skipped" not in out
    assert "FAILED steps.yaml::steady[0]" in out
    # The failure names the checkpoint and lists every one, expected against actual.
    assert "checkpoint 'step 4: expect' failed: expected Not attested / TPM isn't ready, got Attested" in out
    assert "checkpoints (1 of 2 failed):" in out
    assert (
        "  ok   enrollment\n         expected Attested\n         actual   Attested\n"
        "  FAIL step 4: expect\n         expected Not attested / TPM isn't ready\n"
        "         actual   Attested\n"
    ) in out, out
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    steady = {p.get("name"): p.get("value") for p in cases["steady[0]"].iter("property")}
    assert steady["failed_checkpoint"] == "step 4: expect"
    outage = {p.get("name"): p.get("value") for p in cases["outage[0]"].iter("property")}
    assert outage["actual_status"] == "Attested" and outage["failed_checkpoint"] == ""


ROCA_LIKE = """\
advisories:
  - name: a flaw in the test's firmware
    source: this test
    manufacturer: "id:49465800"
    affected: ["26.13"]
"""


@needs_swtpm
def test_trust_and_bundle_options_reach_the_run(tmp_path: Path) -> None:
    # Firmware 26.13 is on no shipped advisory; the run's own list makes the laptop unavailable.
    _write(
        tmp_path,
        "flawed.yaml",
        TWO_GROUPS.replace("count: 2", "count: 1").replace(
            "    platform: physical\n    expect: {status: Attested}",
            '    platform: physical\n    tpm: {vendor: infineon, firmware: "26.13"}\n'
            '    expect: {status: Not attested, detail: "TPM isn\'t available"}',
        ),
    )
    advisories = _write(tmp_path, "advisories.yaml", ROCA_LIKE)
    bundles = tmp_path / "evidence"
    done = _pytest(
        tmp_path, "-q", "flawed.yaml", f"--harness-advisories={advisories}", f"--harness-bundles={bundles}"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert len(list(bundles.glob("*.json"))) == 2
    assert (bundles / "trust").is_dir()  # `harness verify` judges the bundles against the run's trust


def test_an_unreadable_trust_store_or_engine_file_is_a_usage_error(tmp_path: Path) -> None:
    _write(tmp_path, "fleet.yaml", TWO_GROUPS)
    done = _pytest(tmp_path, "-q", f"--harness-trust={tmp_path / 'missing'}")
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error
    assert "harness:" in done.stderr and "missing" in done.stderr
    engines = _write(tmp_path, "engines.yaml", "engines:\n  - url: tcp://farm:2376\n    colour: red\n")
    done = _pytest(tmp_path, "-q", f"--harness-engines={engines}")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "engines.yaml:" in done.stderr


def test_a_run_without_scenarios_starts_no_server_for_its_workers(tmp_path: Path) -> None:
    _write(tmp_path, "test_plain.py", "def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    _write(tmp_path, "conftest.py", RECORD_WORKERS)
    record = tmp_path / "workers.jsonl"
    done = _pytest(tmp_path, "-n", "2", "-q", env={"WORKER_RECORD": str(record)})
    assert done.returncode == 0, done.stdout + done.stderr
    workers = [json.loads(line) for line in record.read_text().splitlines()]
    assert workers and all("server_url" not in w for w in workers)


@needs_swtpm
def test_pytest_and_harness_run_give_the_same_results(tmp_path: Path) -> None:
    path = _write(tmp_path, "same.yaml", TWO_GROUPS)
    out = tmp_path / "reports"
    done = _pytest(tmp_path, "-q", f"--harness-out={out}", "same.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    through_pytest = json.loads((out / "results.json").read_text())["devices"]
    through_run = run_fleet([load_scenario(path)], RunOptions(workers=1)).devices

    def essentials(device: dict[str, object]) -> tuple[object, ...]:
        keys = ("name", "group", "device_id", "expected", "actual", "matched", "error")
        return (*(device[k] for k in keys), device["evidence"]["decision"])  # type: ignore[index]

    assert [essentials(d) for d in through_pytest] == [
        essentials(d.model_dump(mode="json")) for d in through_run
    ]


def test_the_root_conftest_loads_the_plugin_once_with_or_without_entry_points() -> None:
    for autoload in ("", "1"):
        env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": autoload} if autoload else {}
        done = _pytest(ROOT, "--collect-only", "-q", "scenarios/smoke.yaml", env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "6 tests collected" in done.stdout, done.stdout


@needs_swtpm
@pytest.mark.parametrize("workers", [0, 2])
def test_ctrl_c_leaves_no_swtpm_and_no_work_directory(tmp_path: Path, workers: int) -> None:
    _write(tmp_path, "many.yaml", TWO_GROUPS.replace("count: 2", "count: 12"))
    base = Path(tempfile.mkdtemp(prefix="eah-plugin-", dir="/tmp"))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "many.yaml"]
            + (["-n", str(workers)] if workers else []),
            cwd=tmp_path,
            env={**os.environ, "HARNESS_TMPDIR": str(base)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not swtpm_pids_under(base):
            assert process.poll() is None and time.monotonic() < deadline, "no device started"
            time.sleep(0.05)
        # What a terminal's Ctrl-C does: SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 2, out.decode()
        assert b"KeyboardInterrupt" in out
        deadline = time.monotonic() + 10
        while swtpm_pids_under(base) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert swtpm_pids_under(base) == []
        assert list(base.iterdir()) == [], "the run's work directory was left behind"
    finally:
        for pid in swtpm_pids_under(base):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
