"""Scenario groups on TPMs the harness did not make: `tpm: {tcti: SPEC}` and the `device:` backend."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ScenarioError
from harness.fleet import RunOptions, choose_backend
from harness.scenario import parse_scenario
from harness.tpm import BackendSpec, TimedESAPI
from harness.windows import MDM_KEY_HANDLE

from .conftest import VendorSwtpm, needs_swtpm, provision_with_swtpm_setup, swtpm_pids_under

EXTERNAL_GROUP = """
name: {name}
seed: 5
groups:
  - name: vendor-tpm
    count: {count}
    tpm:
      tcti: {tcti}
    expect: {expect}
"""
NOT_TRUSTED = '{status: Not attested, detail: "TPM isn\'t trusted"}'


def test_a_group_setting_an_external_tpm_cannot_take_is_refused_at_its_line() -> None:
    text = """
name: refused
groups:
  - name: vendor-tpm
    tpm:
      tcti: device:/dev/tpmrm0
      state: lockout
    expect: {status: Attested}
"""
    with pytest.raises(ScenarioError) as error:
        parse_scenario(text, "vendor.yaml")
    assert str(error.value).startswith(
        "vendor.yaml:7: groups[0].tpm.state: the external TPM at device:/dev/tpmrm0"
    )
    assert "never does" in str(error.value)


def test_a_default_an_external_tpm_cannot_take_is_refused_where_it_is_written() -> None:
    text = """
name: refused
defaults:
  tpm:
    vendor: infineon
groups:
  - name: vendor-tpm
    tpm: {tcti: "mssim:host=127.0.0.1,port=2321"}
    expect: {status: Attested}
"""
    with pytest.raises(ScenarioError, match=r"vendor.yaml:5: defaults.tpm.vendor: the external TPM at mssim"):
        parse_scenario(text, "vendor.yaml")


def test_a_bare_device_path_is_the_device_tcti() -> None:
    text = EXTERNAL_GROUP.format(name="n", count=1, tcti="/dev/tpmrm0", expect="{status: Attested}")
    assert parse_scenario(text).groups[0].tpm.tcti == "device:/dev/tpmrm0"


def test_the_device_backend_refuses_tpm_settings_it_would_ignore() -> None:
    text = """
name: ignored
groups:
  - name: laptops
    tpm:
      ek_certificate: unlisted-ca
    expect: {status: Attested}
"""
    scenario = parse_scenario(text, "fleet.yaml")
    with pytest.raises(
        ScenarioError, match=r"fleet.yaml:6: groups\[0\].tpm.ek_certificate: the external TPM of"
    ):
        choose_backend(BackendSpec.parse("device:/dev/tpmrm0"), [scenario])
    assert choose_backend(BackendSpec.parse("process"), [scenario]) == BackendSpec("process")


@pytest.fixture(scope="module")
def swtpm_setup_tpm() -> Iterator[tuple[VendorSwtpm, Path, Path]]:
    """A swtpm provisioned by swtpm_setup with its local CA: the harness neither made nor manufactured it."""
    workdir = Path(tempfile.mkdtemp(prefix="ext-", dir="/tmp"))  # unix socket paths stay short
    state, root, issuer = provision_with_swtpm_setup(workdir)
    tpm = VendorSwtpm(state)
    try:
        yield tpm, root, issuer
    finally:
        tpm.close()
        assert swtpm_pids_under(workdir) == []
        shutil.rmtree(workdir, ignore_errors=True)


def _run(
    tmp_path: Path, tpm: VendorSwtpm, expect: str, *extra: str, count: int = 1
) -> tuple[int, dict[str, object]]:
    name, conf = tpm.tcti
    path = tmp_path / "vendor.yaml"
    path.write_text(EXTERNAL_GROUP.format(name="vendor", count=count, tcti=f"{name}:{conf}", expect=expect))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads((out / "results.json").read_text())


def _trust(tmp_path: Path, root: Path, issuer: Path, vendors: str = "") -> Path:
    store = tmp_path / "trust"
    (store / "ek-roots").mkdir(parents=True)
    (store / "ek-intermediates").mkdir()
    shutil.copy(root, store / "ek-roots" / "swtpm-root.pem")
    shutil.copy(issuer, store / "ek-intermediates" / "swtpm-issuer.pem")
    if vendors:
        (store / "trust.yaml").write_text(vendors)
    return store


def _persistent_handles(tpm: VendorSwtpm) -> list[int]:
    from tpm2_pytss import TPM2_CAP

    with TimedESAPI(tpm.tcti) as esapi:
        _, data = esapi.get_capability(TPM2_CAP.HANDLES, 0x81000000, 64)
        return [int(h) for h in data.data.handles]


@needs_swtpm
def test_swtpm_setup_tpm_with_its_ca_is_not_trusted_for_its_unregistered_manufacturer_id(
    swtpm_setup_tpm: tuple[VendorSwtpm, Path, Path], tmp_path: Path
) -> None:
    # swtpm_setup writes the TPM 1.2 style IBM id 00001014 into the EK certificate's SAN; it is
    # not in the TCG vendor registry, so the AIK CA refuses the EK although the chain is good.
    tpm, root, issuer = swtpm_setup_tpm
    code, results = _run(tmp_path, tpm, NOT_TRUSTED, "--trust", str(_trust(tmp_path, root, issuer)))
    device = results["devices"][0]  # type: ignore[index]
    assert code == 0, device
    assert device["actual"]["detail"] == "TPM isn't trusted"
    assert "id:00001014 is not in the TCG vendor registry" in json.dumps(device["evidence"])
    assert MDM_KEY_HANDLE not in _persistent_handles(tpm)


@needs_swtpm
def test_swtpm_setup_tpm_attests_once_the_trust_store_registers_its_manufacturer(
    swtpm_setup_tpm: tuple[VendorSwtpm, Path, Path], tmp_path: Path
) -> None:
    tpm, root, issuer = swtpm_setup_tpm
    vendors = 'vendors: {"00001014": "IBM (swtpm_setup)", "49424D00": IBM}\n'
    store = _trust(tmp_path, root, issuer, vendors)
    # Two devices, two workers, one TPM: they take turns, and each finds no MDM key of the other.
    code, results = _run(
        tmp_path, tpm, "{status: Attested}", "--trust", str(store), "--workers", "2", count=2
    )
    devices = results["devices"]  # type: ignore[index]
    assert code == 0, devices
    assert [d["actual"]["status"] for d in devices] == ["Attested", "Attested"]  # type: ignore[index]
    steps = [s["step"] for s in devices[0]["evidence"]["client_steps"]]  # type: ignore[index]
    assert "world.tpm.external" in steps and "factory.manufacture" not in steps
    assert MDM_KEY_HANDLE not in _persistent_handles(tpm)


@needs_swtpm
def test_swtpm_setup_tpm_without_its_ca_is_not_trusted_with_the_chain_named(
    swtpm_setup_tpm: tuple[VendorSwtpm, Path, Path], tmp_path: Path
) -> None:
    tpm, *_ = swtpm_setup_tpm
    store = tmp_path / "empty-trust"
    store.mkdir()
    (store / "trust.yaml").write_text('vendors: {"00001014": "IBM (swtpm_setup)"}\n')
    code, results = _run(tmp_path, tpm, NOT_TRUSTED, "--trust", str(store))
    device = results["devices"][0]  # type: ignore[index]
    assert code == 0, device
    evidence = json.dumps(device["evidence"])
    assert "is not a trusted root" in evidence and "serial 0x" in evidence


@needs_swtpm
def test_a_device_already_holding_an_mdm_key_keeps_it(
    swtpm_setup_tpm: tuple[VendorSwtpm, Path, Path], tmp_path: Path
) -> None:
    # Not the harness's key: it stays, and the device reports what Windows would.
    from tpm2_pytss import ESYS_TR

    from harness.world.conditions._tpm_mdm_key import leave_mdm_key

    tpm, root, issuer = swtpm_setup_tpm
    leave_mdm_key(tpm)  # it uses only the TPM's TCTI
    try:
        _run(tmp_path, tpm, NOT_TRUSTED, "--trust", str(_trust(tmp_path, root, issuer)))
        assert MDM_KEY_HANDLE in _persistent_handles(tpm)
    finally:
        with TimedESAPI(tpm.tcti) as esapi:
            esapi.evict_control(ESYS_TR.OWNER, esapi.tr_from_tpmpublic(MDM_KEY_HANDLE), MDM_KEY_HANDLE)


def test_run_options_keep_the_device_backend() -> None:
    assert RunOptions(backend="device:/dev/tpmrm0").backend == BackendSpec("device", "device:/dev/tpmrm0")
