"""Where the AIK CA gets what it needs to trust an EK: NV chain indices, the vendor's online service."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tpm2_pytss import ESYS_TR

from harness.errors import ScenarioError
from harness.fleet import RunOptions, run_fleet
from harness.pki import CertificateAuthority, TPMIdentity
from harness.scenario import parse_scenario
from harness.tpm import TimedESAPI, manufacture, write_nv_certificate
from harness.trust import TrustStore

from .conftest import VendorSwtpm, needs_swtpm

pytestmark = needs_swtpm
NOW = dt.datetime.now(dt.UTC)
CHAIN_INDEX = 0x01C00100
GROUP = """
name: {name}
groups:
  - name: vendor-tpm
    tpm: {{tcti: "{tcti}"}}
    expect: {expect}
"""


@pytest.fixture
def chained_tpm() -> Iterator[tuple[VendorSwtpm, CertificateAuthority, CertificateAuthority]]:
    """A TPM whose EK certificate is issued by a vendor intermediate stored only in its NV chain index."""
    workdir = Path(tempfile.mkdtemp(prefix="ekc-", dir="/tmp"))
    root = CertificateAuthority.create("Chain Vendor Root CA", "Chain Vendor", now=NOW)
    intermediate = root.issue_intermediate("Chain Vendor EK Issuing CA 07", "Chain Vendor", now=NOW)
    state = workdir / "state"
    state.mkdir()
    tpm = VendorSwtpm(state)
    try:
        with TimedESAPI(tpm.tcti) as esapi:
            manufacture(
                esapi,
                identity=TPMIdentity("id:49465800", "SLB9672", "id:001A000D"),
                issuer=intermediate,
                now=NOW,
            )
            write_nv_certificate(esapi, CHAIN_INDEX, intermediate.certificate_der)
        yield tpm, root, intermediate
    finally:
        tpm.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _run(tpm: VendorSwtpm, expect: str, root: CertificateAuthority) -> tuple[str, str, str]:
    name, conf = tpm.tcti
    scenario = parse_scenario(GROUP.format(name="chain", tcti=f"{name}:{conf}", expect=expect), "chain.yaml")
    result = run_fleet([scenario], RunOptions(trust=TrustStore(ek_roots=(root.certificate,))))
    device = result.devices[0]
    assert device.actual is not None, device.error
    steps = " ".join(f"{s.step}: {s.detail}" for s in device.evidence.client_steps)
    return device.actual.status, device.actual.detail, f"{device.evidence.decision} {steps}"


def test_an_intermediate_from_the_nv_chain_index_lets_the_tpm_attest(
    chained_tpm: tuple[VendorSwtpm, CertificateAuthority, CertificateAuthority],
) -> None:
    tpm, root, _ = chained_tpm
    status, detail, seen = _run(tpm, "{status: Attested}", root)
    assert (status, detail) == ("Attested", ""), seen
    assert "1 chain certificate(s) from 0x01C00100" in seen


def test_without_the_nv_chain_entry_the_tpm_is_not_trusted_and_the_intermediate_is_named(
    chained_tpm: tuple[VendorSwtpm, CertificateAuthority, CertificateAuthority],
) -> None:
    tpm, root, _ = chained_tpm
    with TimedESAPI(tpm.tcti) as esapi:
        esapi.nv_undefine_space(esapi.tr_from_tpmpublic(CHAIN_INDEX), auth_handle=ESYS_TR.PLATFORM)
    status, detail, seen = _run(tpm, '{status: Not attested, detail: "TPM isn\'t trusted"}', root)
    assert (status, detail) == ("Not attested", "TPM isn't trusted"), seen
    assert "CN=Chain Vendor EK Issuing CA 07" in seen and "no intermediate certificate of that name" in seen


ONLINE = """
name: online
groups:
  - name: intel-ptt
    count: 2
    tpm: {vendor: intel, ek_certificate: online}
    expect: {status: Attested}
  - name: amd-ftpm
    tpm: {vendor: amd, ek_certificate: online}
    expect: {status: Attested}
  - name: intel-ptt-offline
    tpm: {vendor: intel, ek_certificate: online}
    network: {ek_service: refused}
    expect: {status: Not attested, detail: "AIK certificate wasn't provided"}
  - name: intel-ptt-no-certificate
    tpm: {vendor: intel, ek_certificate: none}
    expect: {status: Not attested, detail: "TPM isn't trusted"}
"""


def test_tpms_with_their_ek_certificate_online_attest_and_an_unreachable_service_is_a_network_fault() -> None:
    result = run_fleet([parse_scenario(ONLINE, "online.yaml")], RunOptions())
    by_group = {d.group: d for d in result.devices}
    for device in result.devices:
        assert device.matched, (device.name, device.actual, device.evidence.decision, device.error)
    steps = {s.step: s for s in by_group["intel-ptt"].evidence.client_steps}
    assert steps["tpm.ek"].detail.startswith("no EK certificate in NV")
    assert "fetched from the vendor's service (/ekcertservice/" in steps["ek.online_certificate"].detail
    offline = {s.step: s for s in by_group["intel-ptt-offline"].evidence.client_steps}
    assert (
        not offline["ek.online_certificate"].ok and "ConnectError" in offline["ek.online_certificate"].detail
    )
    assert "aik.challenge" not in offline


def test_online_ek_certificates_are_only_what_intel_and_amd_do() -> None:
    text = ONLINE.replace("vendor: amd, ek_certificate: online", "vendor: infineon, ek_certificate: online")
    with pytest.raises(ScenarioError, match=r"online.yaml:\d+: groups\[1\]: tpm.ek_certificate 'online'"):
        parse_scenario(text, "online.yaml")


def test_the_service_answers_both_vendors_url_forms_and_404_for_unknown_keys(tmp_path: Path) -> None:
    import httpx
    from cryptography.hazmat.primitives.asymmetric import rsa

    from harness.network import EKCertificateService, amd_key, intel_key, publish
    from harness.pki import certificate_der

    ca = CertificateAuthority.create("Online Vendor CA", "Online Vendor", now=NOW)
    ek = rsa.generate_private_key(65537, 2048).public_key()
    der = certificate_der(
        ca.issue_ek_certificate(ek, TPMIdentity("id:494E5443", "PTT", "id:000B0000"), now=NOW)
    )
    publish(tmp_path / "service", der)
    other = rsa.generate_private_key(65537, 2048).public_key()
    with EKCertificateService(tmp_path / "service") as service:
        assert httpx.get(f"{service.url}/ekcertservice/{intel_key(ek)}").content == der
        assert httpx.get(f"{service.url}/pki/aia/{amd_key(ek)}").content == der
        assert httpx.get(f"{service.url}/ekcertservice/{intel_key(other)}").status_code == 404
    assert len(amd_key(ek)) == 32 and intel_key(ek).endswith("%3D")  # 16 bytes as hex; padded base64url
