"""Runs that stop early still report: a lost server, an interrupt, a TPM that died under its device."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.fleet import DeviceRun, RunOptions, RunStopped, run_fleet
from harness.report import write_reports
from harness.scenario import parse_scenario
from harness.server import EmbeddedServer
from harness.tpm import SwtpmBackend, SwtpmProcess, TPMRequest

from .conftest import needs_swtpm

ROOT = Path(__file__).resolve().parent.parent

EIGHT_LAPTOPS = """
name: eight
seed: 11
groups:
  - name: laptops
    count: 8
    platform: physical
    expect: {status: Attested}
"""


@needs_swtpm
def test_a_server_lost_mid_run_keeps_finished_devices_and_errors_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    servers: list[EmbeddedServer] = []
    enter = EmbeddedServer.__enter__

    def capture(self: EmbeddedServer) -> EmbeddedServer:
        servers.append(self)
        return enter(self)

    monkeypatch.setattr(EmbeddedServer, "__enter__", capture)
    finished: list[str] = []

    def stop_after_two(run: DeviceRun) -> None:
        finished.append(run.key)
        if len(finished) == 2:
            servers[0].stop()  # the embedded server goes away, as a crashed one would

    scenario = parse_scenario(EIGHT_LAPTOPS, "eight.yaml")
    with pytest.raises(RunStopped) as stopped:
        run_fleet([scenario], RunOptions(workers=1), progress=stop_after_two)
    result = stopped.value.result
    assert "the reference server stopped answering" in str(stopped.value)
    assert len(result.devices) == 8
    judged, rest = result.devices[:2], result.devices[2:]
    assert all(d.matched and not d.error for d in judged)
    assert all(d.actual is None and not d.matched for d in rest)
    assert all(d.error.startswith("the reference server stopped answering") for d in rest)
    # A device cut short keeps the key and world it would have had, so the run history follows it.
    assert [d.key for d in result.devices] == [f"eight/laptops/{i}@11" for i in range(8)]
    assert all(d.world for d in result.devices)
    # The pool stopped at the first device that found the server gone: no device ran after it.
    assert len(finished) == 2
    summary = result.summary
    assert (summary.total, summary.matched, summary.errors) == (8, 2, 6)
    assert summary.stopped.startswith("the reference server stopped answering")
    assert not summary.interrupted

    paths = write_reports(result, tmp_path)
    assert json.loads(paths["json"].read_text())["summary"]["errors"] == 6
    suite = ET.parse(paths["junit"]).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "6"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert str(properties["stopped"]).startswith("the reference server stopped answering")
    assert "The run stopped early" in paths["html"].read_text()


def _serve(data: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--port", "0", "--data-dir", str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    for line in server.stdout:
        if "http://" in line:
            url = line[line.index("http://") :].split()[0].rstrip("/")
            return server, url
    raise AssertionError("harness serve printed no URL")


def _results(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    return data


@needs_swtpm
def test_harness_run_against_a_server_that_is_stopped_writes_all_reports_and_exits_2(
    tmp_path: Path,
) -> None:
    server, url = _serve(tmp_path / "server")
    try:
        scenario = tmp_path / "eight.yaml"
        scenario.write_text(EIGHT_LAPTOPS)
        out = tmp_path / "out"
        token = (tmp_path / "server" / "admin-token").read_text().strip()
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                str(scenario),
                "--out",
                str(out),
                "--workers",
                "2",
                "--server",
                url,
                "--admin-token",
                token,
                "--pki-dir",
                str(tmp_path / "server" / "pki"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert run.stderr is not None
        seen = []
        for line in run.stderr:
            seen.append(line)
            if " done " in line:  # the first device is judged: now the server goes away
                server.send_signal(signal.SIGTERM)
                break
        rest = run.stderr.read()
        run.wait(timeout=120)
    finally:
        server.kill()
        server.wait()
    assert run.returncode == 2, "".join(seen) + rest
    assert "the reference server stopped answering" in rest
    data = _results(out)
    summary = data["summary"]
    assert summary["stopped"].startswith("the reference server stopped answering")
    assert summary["matched"] >= 1
    assert summary["errors"] == summary["total"] - summary["matched"] > 0
    assert (out / "junit.xml").exists() and (out / "index.html").exists()


class _DyingBackend(SwtpmBackend):
    """Real swtpm processes that die (SIGKILL) as soon as they are up, as a crashed one would."""

    def start(self, request: TPMRequest, workdir: Path) -> SwtpmProcess:
        tpm = super().start(request, workdir)
        os.kill(tpm.pid, signal.SIGKILL)
        while tpm.death() is None:  # dead before anyone uses it, not merely dying
            time.sleep(0.001)
        return tpm


@needs_swtpm
def test_a_swtpm_that_died_reports_its_exit_status(swtpm_workdir: Path) -> None:
    tpm = SwtpmBackend().start(TPMRequest(), swtpm_workdir)
    try:
        assert tpm.death() is None
        os.kill(tpm.pid, signal.SIGKILL)
        died = None
        while died is None:  # the kernel reaps it at once; poll() sees it on the next look
            died = tpm.death()
        assert died == f"swtpm (pid {tpm.pid}) was killed by SIGKILL"
    finally:
        tpm.close()
    assert tpm.death() is None  # closed by the harness: stopped, not died


DEAD_AND_ABSENT = """
name: dead-and-absent
seed: 5
groups:
  - name: laptop
    platform: physical
    expect: {status: Attested}
  - name: no-tpm
    platform: physical
    tpm: {family: none}
    expect: {status: Not attested, detail: "TPM isn't available"}
"""


@needs_swtpm
def test_a_dead_tpm_is_a_harness_error_and_an_absent_one_still_a_status() -> None:
    scenario = parse_scenario(DEAD_AND_ABSENT, "dead.yaml")
    result = run_fleet([scenario], RunOptions(workers=1), backend=_DyingBackend())
    laptop, absent = result.devices
    assert laptop.error.startswith("TPM process died: swtpm (pid "), laptop.error
    assert "killed by SIGKILL" in laptop.error
    assert not laptop.matched
    # No TPM on purpose is what the scenario set up: a status, not an error.
    assert absent.matched and not absent.error
    assert absent.actual is not None and absent.actual.detail == "TPM isn't available"
    assert (result.summary.errors, result.summary.matched) == (1, 1)


REJUDGED = """
name: rejudged
seed: 3
groups:
  - name: laptop
    platform: physical
    expect: {status: Attested}
  - name: previous-device-token
    platform: physical
    entra: {token: previous-device}
    expect: {status: Not attested, detail: "Entra token doesn't match device identity"}
  - name: hyper-v
    platform: hyper-v
    expect: {status: Not attested, detail: "Feature isn't supported"}
"""


@needs_swtpm
def test_harness_verify_rejudges_a_runs_bundles_as_the_server_judged_them(tmp_path: Path) -> None:
    scenario = tmp_path / "rejudged.yaml"
    scenario.write_text(REJUDGED)
    out = tmp_path / "out"
    ran = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    assert (out / "bundles" / "trust" / "aik-roots").is_dir()
    devices = _results(out)["devices"]
    bundles = [out / "bundles" / f"{d['device_id']}.json" for d in devices]
    verified = subprocess.run(
        [sys.executable, "-m", "harness", "verify", "--json", *map(str, bundles)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 1, verified.stderr  # not every bundle attests
    verdicts = json.loads(verified.stdout)
    assert len(verdicts) == 3
    for device, verdict in zip(devices, verdicts, strict=True):
        assert (verdict["status"], verdict["detail"]) == (
            device["actual"]["status"],
            device["actual"]["detail"],
        ), device["group"]
