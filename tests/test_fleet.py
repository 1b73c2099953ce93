"""A small fleet end to end on real swtpm, and the promise that nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.fleet import RunOptions, run_fleet
from harness.report import write_reports
from harness.scenario import parse_scenario

from .conftest import needs_swtpm, swtpm_pids_under

ROOT = Path(__file__).resolve().parent.parent

SMALL_FLEET = """
name: small
seed: 7
groups:
  - name: laptops
    count: 2
    platform: physical
    tpm: {vendor: nuvoton}
    expect: {status: Attested}
  - name: ecc-ek-laptop
    platform: physical
    tpm: {vendor: amd, ek: ecc256, san_layout: rdn-per-attribute}
    expect: {status: Attested}
  - name: azure-vm
    platform: azure-vm
    expect: {status: Not attested, detail: "Feature isn't supported"}
  - name: wrong-expectation
    platform: physical
    expect: {status: Not attested, detail: "TPM isn't ready"}
"""


@needs_swtpm
def test_small_fleet_attests_end_to_end_and_reports(tmp_path: Path) -> None:
    scenario = parse_scenario(SMALL_FLEET, "small.yaml")
    result = run_fleet([scenario], RunOptions(workers=1))
    by_group = {d.group: d for d in result.devices}
    assert len(result.devices) == 5
    for group in ("laptops", "ecc-ek-laptop"):
        device = by_group[group]
        assert device.actual is not None and device.actual.status == "Attested", device.evidence.decision
        assert device.matched
        assert device.tpm_seconds > 0
        assert any(s.step == "aik.activate_credential" and s.ok for s in device.evidence.client_steps)
        assert all(c.passed for c in device.evidence.checks)
    vm = by_group["azure-vm"]
    assert vm.matched and vm.actual is not None
    assert vm.actual.detail == "Feature isn't supported"
    assert "platform.physical" in vm.evidence.decision
    # A wrong expectation is reported as a mismatch with the actual outcome beside it.
    wrong = by_group["wrong-expectation"]
    assert not wrong.matched and wrong.actual is not None and wrong.actual.status == "Attested"
    assert result.summary.matched == 4 and result.summary.mismatched == 1

    paths = write_reports(result, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert {d["name"] for d in data["devices"]} == {d.name for d in result.devices}
    suites = ET.parse(paths["junit"]).getroot()
    assert suites.get("failures") == "1"
    assert "TPM isn" in paths["html"].read_text()


@pytest.fixture
def run_base() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="eah-orphans-", dir="/tmp"))
    yield base
    for pid in swtpm_pids_under(base):
        os.kill(pid, signal.SIGKILL)
    subprocess.run(["rm", "-rf", str(base)], check=False)


def _start_harness(base: Path, out: Path, workers: int) -> subprocess.Popen[bytes]:
    scenario = out.parent / "many.yaml"
    scenario.write_text(
        "name: many\ngroups:\n  - name: laptops\n    count: 40\n    expect: {status: Attested}\n"
    )
    env = {**os.environ, "HARNESS_TMPDIR": str(base)}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_swtpm(base: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not swtpm_pids_under(base):
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        assert time.monotonic() < deadline, "the harness started no swtpm"
        time.sleep(0.05)


def _assert_nothing_left(base: Path) -> None:
    deadline = time.monotonic() + 10
    while swtpm_pids_under(base) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert swtpm_pids_under(base) == []
    assert list(base.iterdir()) == [], "the run's work directory was left behind"


@needs_swtpm
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_leaves_no_swtpm_and_no_temp_dir(run_base: Path, tmp_path: Path, workers: int) -> None:
    process = _start_harness(run_base, tmp_path / "out", workers)
    _wait_for_swtpm(run_base, process)
    time.sleep(0.5)
    # What a terminal's Ctrl-C does: SIGINT to the harness (and, with workers, to them too).
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    assert b"interrupted" in stderr
    _assert_nothing_left(run_base)
    _assert_partial_reports(tmp_path / "out")


def _assert_partial_reports(out: Path) -> None:
    """An interrupted run still reports: what finished, and the rest as errors with the reason."""
    data = json.loads((out / "results.json").read_text())
    summary = data["summary"]
    assert summary["interrupted"] is True
    assert summary["total"] == 40
    unfinished = [d for d in data["devices"] if d["actual"] is None]
    assert unfinished, "the interrupt came before all 40 devices finished"
    assert all("interrupted before this device finished" in d["error"] for d in unfinished)
    assert summary["errors"] >= len(unfinished)
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert {p.get("name"): p.get("value") for p in suite.iter("property")}.get("interrupted") == "true"
    assert "Interrupted:" in (out / "index.html").read_text()


@needs_swtpm
def test_sigterm_cleans_up_like_ctrl_c(run_base: Path, tmp_path: Path) -> None:
    process = _start_harness(run_base, tmp_path / "out", 1)
    _wait_for_swtpm(run_base, process)
    process.terminate()
    process.communicate(timeout=60)
    assert process.returncode == 130
    _assert_nothing_left(run_base)
    _assert_partial_reports(tmp_path / "out")


@needs_swtpm
def test_a_crashed_worker_takes_its_swtpm_with_it(run_base: Path, tmp_path: Path) -> None:
    process = _start_harness(run_base, tmp_path / "out", 2)
    _wait_for_swtpm(run_base, process)
    swtpm = swtpm_pids_under(run_base)[0]
    worker = int(Path(f"/proc/{swtpm}/stat").read_text().split(") ")[1].split()[1])
    assert worker != process.pid
    os.kill(worker, signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr.decode()
    assert b"worker died" in stderr
    _assert_nothing_left(run_base)
