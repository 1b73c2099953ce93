"""vendor-check on swtpm units: the destructive lifecycle on units it made, many units in one
run, and the comparison of two reports."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tpm2_pytss import ESYS_TR
from typer.testing import CliRunner

from harness.cli import app
from harness.conformance import Target, compare_reports, made_units, run_vendor_check, write_vendor_reports
from harness.tpm import SwtpmProcess, TimedESAPI, TPMRequest

from .conftest import needs_swtpm, provision_with_swtpm_setup, swtpm_pids_under

pytestmark = needs_swtpm


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vchu-", dir="/tmp"))  # unix socket paths must stay short
    yield path
    assert swtpm_pids_under(path) == []
    shutil.rmtree(path, ignore_errors=True)


def _rows(out: Path) -> dict[str, dict[str, str]]:
    return {r["key"]: r for r in json.loads((out / "report.json").read_text())["rows"]}


def test_destructive_run_on_a_unit_vendor_check_made(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["vendor-check", "--swtpm", "1", "--destructive", "--out", str(tmp_path), "--runs", "3"]
    )
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path)
    assert len(rows) >= 60
    for row in ("life.sleep_resume", "life.unorderly_reset", "life.clear", "life.change_eps"):
        assert rows[row]["status"] == "pass", rows[row]
    # The firmware update's new EK got its certificate from the unit's vendor CA again.
    assert rows["life.firmware_update.reissued"]["status"] == "pass"
    assert rows["da.lockout"]["status"] == "pass" and "0x921" in rows["da.lockout"]["evidence"]
    assert rows["res.objects.full"]["status"] == "pass" and "0x902" in rows["res.objects.full"]["evidence"]
    assert rows["pcr.quote"]["status"] == "pass"
    assert rows["alg.ecc_ek.activate_credential"]["status"] == "pass"
    # Every timed row carries its time net of the TCTI's round trip.
    timed = [r for r in rows.values() if r["latency"] and r["id"] != "timing.round_trip"]
    assert timed and all(r["latency"]["net_median_ms"] is not None for r in timed)
    assert rows["timing.round_trip"]["latency"]["runs"] == 3
    sign = rows["tpm.sign"]["latency"]
    assert sign["runs"] == 3 and sign["spread_ms"] == pytest.approx(
        sign["max_ms"] - sign["min_ms"], abs=0.011
    )
    # Every row states its evidence and its clause, in JSON and JUnit alike.
    assert all(r["evidence"] and r["clause"] for r in rows.values())
    junit = (tmp_path / "junit.xml").read_text()
    assert junit.count("<testcase ") == len(rows) and 'name="clause"' in junit


def test_external_tpm_runs_no_destructive_row_without_the_flag(workdir: Path) -> None:
    tpm = SwtpmProcess(TPMRequest(), workdir)
    try:
        report = run_vendor_check(f"{tpm.tcti[0]}:{tpm.tcti[1]}", runs=1, flow=False)
    finally:
        tpm.close()
    for row in ("life.clear", "life.change_eps", "da.lockout"):
        assert report.row(row).status == "skipped" and "--destructive" in report.row(row).evidence
    # swtpm's control channel is the platform's reset line: sleep and power loss still run.
    assert report.row("life.sleep_resume").status == "pass"
    assert report.row("life.unorderly_reset").status == "pass"
    assert report.row("tpm.left_as_found").status == "pass"


def test_two_units_from_one_copied_state_fail_uniqueness_by_name(workdir: Path) -> None:
    state, _, _ = provision_with_swtpm_setup(workdir)
    units = [SwtpmProcess(TPMRequest(state_from=state), workdir) for _ in range(2)]
    units.insert(1, SwtpmProcess(TPMRequest(), workdir))
    try:
        report = run_vendor_check([f"{u.tcti[0]}:{u.tcti[1]}" for u in units], runs=1, flow=False)
    finally:
        for unit in units:
            unit.close()
    row = report.row("units.ek_unique")
    assert row.status == "fail"
    assert "unit1 and unit3 have the same EK" in row.evidence and "unit2" not in row.evidence.split("(")[0]
    assert report.row("units.rng_unique").status == "pass"
    assert {u.name for u in report.units} == {"unit1", "unit2", "unit3"}
    assert report.units[0].ek_fingerprint == report.units[2].ek_fingerprint != report.units[1].ek_fingerprint
    # Per-unit rows: each unit has its own.
    assert [r.unit for r in report.rows if r.id == "tpm.left_as_found"] == ["unit1", "unit2", "unit3"]


def test_comparing_a_unit_with_an_ecc_ek_and_one_without(tmp_path: Path) -> None:
    reports = {}
    for name, ecc in (("with-ecc", True), ("rsa-only", False)):
        with made_units(1, ecc=ecc) as made:
            unit = made.units[0]
            report = run_vendor_check(
                [Target(unit.spec, made=True, reissue=unit.reissue)], anchors=made.anchors, runs=1, flow=False
            )
        write_vendor_reports(report, tmp_path / name)
        reports[name] = json.loads((tmp_path / name / "report.json").read_text())
    comparison = compare_reports(reports["with-ecc"], reports["rsa-only"])
    ecc_rows = {r["key"] for r in reports["with-ecc"]["rows"] if r["key"].startswith("ek[0x01C0000A].")}
    assert ecc_rows
    assert {c.key for c in comparison.rows} == ecc_rows | {"ek.nv.0x01C0000A"}
    assert {(c.old, c.new) for c in comparison.rows if c.key == "ek.nv.0x01C0000A"} == {("pass", "skipped")}
    assert "not compared" in comparison.latency_note  # one run each: the noise is unknown
    result = CliRunner().invoke(
        app,
        [
            "vendor-check",
            "--compare",
            str(tmp_path / "with-ecc/report.json"),
            str(tmp_path / "rsa-only/report.json"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert f"{len(comparison.rows)} requirement(s) changed" in result.output
    assert "ek.nv.0x01C0000A: pass -> skipped" in result.output


def test_destructive_rows_on_an_external_tpm_with_a_lockout_authorisation(workdir: Path) -> None:
    """--destructive on a TPM whose owner set a lockout authorisation: the lockout row does not
    guess it (a wrong one would lock the lockout hierarchy); Clear and ChangeEPS use the platform
    authorisation, and the EK certificate cannot be re-issued without the vendor's CA."""
    tpm = SwtpmProcess(TPMRequest(), workdir)
    try:
        with TimedESAPI(tpm.tcti) as esapi:
            esapi.hierarchy_change_auth(ESYS_TR.LOCKOUT, b"owner's secret")
        report = run_vendor_check(f"{tpm.tcti[0]}:{tpm.tcti[1]}", runs=1, flow=False, destructive=True)
    finally:
        tpm.close()
    assert report.row("da.lockout").status == "skipped"
    assert "lockout authorisation is set" in report.row("da.lockout").evidence
    assert report.row("life.clear").status == "pass" and "platform" in report.row("life.clear").evidence
    assert report.row("life.change_eps").status == "pass"
    reissued = report.row("life.firmware_update.reissued")
    assert reissued.status == "skipped" and "vendor's update must re-issue" in reissued.evidence
