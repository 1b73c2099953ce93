"""The TPM backend registry: one name type for the scenario field, --backend and
--harness-backend, and an external TPM selected by its TCTI (device:SPEC)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app as cli_app
from harness.errors import BackendUnavailable, HarnessError, ScenarioError
from harness.fleet import RunOptions, choose_backend, run_fleet
from harness.pki import TPMIdentity, create_vendor_cas, vendor_ca
from harness.scenario import Scenario, parse_scenario
from harness.tpm import (
    BACKEND_NAMES,
    BACKENDS,
    BackendSpec,
    SwtpmBackend,
    TimedESAPI,
    TPMRequest,
    UnknownBackend,
    check_backend,
    describe_backends,
    manufacture,
)

from .conftest import needs_swtpm

ONE_LAPTOP = """
name: {name}
seed: 11
{backend}
groups:
  - name: laptop
    platform: physical
    expect: {{status: Attested}}
"""


def scenario(name: str, backend: str = "") -> Scenario:
    return parse_scenario(ONE_LAPTOP.format(name=name, backend=backend), f"{name}.yaml")


@pytest.mark.parametrize(
    ("text", "name", "tcti"),
    [
        ("process", "process", ""),
        ("docker", "docker", ""),
        ("device:/dev/tpmrm0", "device", "device:/dev/tpmrm0"),
        ("device:mssim:host=127.0.0.1,port=2321", "device", "mssim:host=127.0.0.1,port=2321"),
        ("device:swtpm:path=/run/tpm.sock", "device", "swtpm:path=/run/tpm.sock"),
    ],
)
def test_a_backend_is_named_as_the_cli_takes_it_and_back(text: str, name: str, tcti: str) -> None:
    spec = BackendSpec.parse(text)
    assert (spec.name, spec.tcti) == (name, tcti)
    assert str(spec) == text
    assert BackendSpec.parse(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dockr", "unknown TPM backend 'dockr' (use one of process, docker, device:TCTI, swarm)"),
        ("process:fast", "takes no argument"),
        ("device", "needs a TCTI"),
        ("device::conf", "needs a TCTI"),
    ],
)
def test_a_backend_the_registry_does_not_know_is_refused_with_the_choices(text: str, message: str) -> None:
    with pytest.raises(UnknownBackend, match=re.escape(message)):
        BackendSpec.parse(text)


def test_every_registered_backend_is_described_for_the_help_texts() -> None:
    assert set(BACKENDS) == set(BACKEND_NAMES)
    help_text = describe_backends()
    assert all(f"'{name}" in help_text for name in BACKEND_NAMES)


def test_the_scenario_field_takes_the_registrys_names_and_names_the_line_when_wrong() -> None:
    assert scenario("a", "backend: docker").backend == BackendSpec("docker")
    with pytest.raises(ScenarioError, match=r"d\.yaml:4: backend: unknown TPM backend 'dockr'"):
        scenario("d", "backend: dockr")


def test_the_option_wins_and_scenarios_must_agree_without_one() -> None:
    docker, process = scenario("x", "backend: docker"), scenario("y")
    assert choose_backend(BackendSpec("process"), [docker]) == BackendSpec("process")
    assert choose_backend(None, [docker]) == BackendSpec("docker")
    assert choose_backend(None, [process]) == BackendSpec("process")
    with pytest.raises(HarnessError, match=r"different TPM backends \(docker, process\)"):
        choose_backend(None, [docker, process])


def test_cli_refuses_an_unknown_backend_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(ONE_LAPTOP.format(name="one", backend=""), encoding="utf-8")
    result = CliRunner().invoke(
        cli_app, ["run", str(path), "--backend", "dockr", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "unknown TPM backend 'dockr'" in result.output


def test_an_external_tpm_that_cannot_be_reached_is_refused_before_anything_starts() -> None:
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        check_backend(BackendSpec.parse("device:mssim:host=127.0.0.1,port=1"))


def test_an_external_tpm_serves_one_device_at_a_time() -> None:
    with pytest.raises(BackendUnavailable, match="one device at a time"):
        check_backend(BackendSpec.parse("device:/dev/tpmrm0"), workers=2)


@needs_swtpm
def test_a_device_attests_with_a_tpm_the_harness_did_not_start(swtpm_workdir: Path) -> None:
    # A TPM made elsewhere (here a swtpm provisioned by the test with a vendor's EK certificate),
    # selected by its TCTI: the fleet neither starts nor manufactures it.
    pki = swtpm_workdir / "external-pki"
    create_vendor_cas(pki, now=dt.datetime.now(dt.UTC))
    tpm = SwtpmBackend().start(TPMRequest(), swtpm_workdir)
    try:
        with TimedESAPI(tpm.tcti) as esapi:
            manufacture(
                esapi,
                identity=TPMIdentity("id:49465800", "SLB9672", "id:001A000D"),
                issuer=vendor_ca(pki, "infineon"),
                now=dt.datetime.now(dt.UTC),
            )
        name, conf = tpm.tcti
        backend = BackendSpec.parse(f"device:{name}:{conf}")
        result = run_fleet([scenario("external")], RunOptions(backend=backend, pki_dir=pki))
        device = result.devices[0]
        assert device.matched, (device.error, device.evidence.decision)
        steps = [s.step for s in device.evidence.client_steps]
        assert "factory.manufacture" not in steps and "aik.activate_credential" in steps
    finally:
        tpm.close()
