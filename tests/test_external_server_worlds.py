"""`--server URL` and worlds the harness cannot build next to a server it did not start: named
before the run (validate and the pre-flight) and reported as not applicable, never as failures."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.fleet import inapplicable_groups
from harness.scenario import load_scenario

from .conftest import needs_swtpm
from .test_partial_runs import ROOT, _serve

STATUS_DETAILS = ROOT / "scenarios" / "status-details.yaml"


def test_the_groups_that_need_a_lagging_replica_are_known_before_any_run() -> None:
    found = inapplicable_groups([load_scenario(STATUS_DETAILS)])
    assert {(g.group, g.devices) for g in found} == {("stale-nonce", 1), ("token-expired", 1)}
    assert all("lagging replica" in g.reason for g in found)
    assert inapplicable_groups([load_scenario(ROOT / "scenarios" / "smoke.yaml")]) == []


def test_validate_names_the_groups_that_cannot_run_with_server() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(STATUS_DETAILS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "not applicable with --server" in line]
    assert (
        len(lines) == 2
        and any("stale-nonce" in x for x in lines)
        and any("token-expired" in x for x in lines)
    )


@needs_swtpm
def test_status_details_against_an_external_server_exits_0_with_two_not_applicable(tmp_path: Path) -> None:
    server, url = _serve(tmp_path / "server")
    try:
        token = (tmp_path / "server" / "admin-token").read_text().strip()
        out = tmp_path / "out"
        run = subprocess.run(
            [
                sys.executable, "-m", "harness", "run", str(STATUS_DETAILS), "--out", str(out),
                "--workers", "2", "--server", url, "--admin-token", token,
                "--pki-dir", str(tmp_path / "server" / "pki"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    said = run.stdout + run.stderr
    assert run.returncode == 0, said
    # Named before the first device runs.
    first_device = said.find(" done ")
    for group in ("stale-nonce", "token-expired"):
        named = said.find(f"not applicable: {STATUS_DETAILS.relative_to(ROOT)}: group {group}")
        if named == -1:
            named = said.find(f"group {group}")
        assert named != -1 and (first_device == -1 or named < first_device), said
    results = json.loads((out / "results.json").read_text())
    skipped = {d["group"]: d for d in results["devices"] if d["not_applicable"]}
    assert set(skipped) == {"stale-nonce", "token-expired"}
    assert all(d["actual"] is None and not d["error"] for d in skipped.values())
    assert all(d["key"].startswith(f"status-details/{group}/") for group, d in skipped.items())
    summary = results["summary"]
    assert (summary["not_applicable"], summary["mismatched"], summary["errors"]) == (2, 0, 0), summary
    assert summary["matched"] == summary["total"] - 2
    suite = ET.parse(out / "junit.xml").getroot()
    assert sum(int(s.get("skipped", "0")) for s in suite.iter("testsuite")) == 2
    assert sum(int(s.get("failures", "0")) for s in suite.iter("testsuite")) == 0


def test_the_serve_banner_never_puts_the_token_on_a_command_line(tmp_path: Path) -> None:
    from harness.server import prepare_standalone

    server = prepare_standalone(data_dir=tmp_path / "server", port=0)
    try:
        banner = "\n".join(server.banner())
    finally:
        server.close()
    token = (tmp_path / "server" / "admin-token").read_text().strip()
    assert token not in banner and "$(cat" not in banner, banner
    assert f"--admin-token-file {tmp_path / 'server' / 'admin-token'}" in banner


def test_the_admin_token_is_read_from_a_file(tmp_path: Path) -> None:
    import pytest

    from harness.cli._token_option import read_admin_token
    from harness.errors import HarnessError

    stored = tmp_path / "admin-token"
    stored.write_text("secret-token-0123456789\n")
    assert read_admin_token(None, stored) == "secret-token-0123456789"
    assert read_admin_token("given", None) == "given"
    with pytest.raises(HarnessError, match="once"):
        read_admin_token("given", stored)
    with pytest.raises(HarnessError, match="cannot read"):
        read_admin_token(None, tmp_path / "missing")
