"""vendor-check against swtpm TPMs the harness did not manufacture, and ones built to fail a row."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key
from typer.testing import CliRunner

from harness.cli import app
from harness.conformance import VendorReport, run_vendor_check
from harness.pki import (
    OID_AIK_CERTIFICATE,
    OID_EK_CERTIFICATE,
    CertificateAuthority,
    TPMIdentity,
    certificate_der,
    tpm_san,
)
from harness.tpm import SwtpmProcess, TimedESAPI, TPMRequest, create_ek, write_nv_certificate

from .conftest import needs_swtpm, provision_with_swtpm_setup, swtpm_pids_under

pytestmark = needs_swtpm
NOW = dt.datetime.now(dt.UTC)
IBM = TPMIdentity("id:49424D00", "swtpm", "id:20191023")  # what swtpm's GetCapability reports
_KEY_ENCIPHERMENT = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vchk-", dir="/tmp"))  # unix socket paths must stay short
    yield path
    assert swtpm_pids_under(path) == []
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def provisioned(workdir: Path) -> Iterator[tuple[SwtpmProcess, list[Path]]]:
    """A TPM made by swtpm_setup --create-ek-cert with a private swtpm-localca."""
    state, root, issuer = provision_with_swtpm_setup(workdir)
    tpm = SwtpmProcess(TPMRequest(state_from=state), workdir)
    try:
        yield tpm, [issuer, root]
    finally:
        tpm.close()


def _spec(tpm: SwtpmProcess) -> str:
    name, conf = tpm.tcti
    return f"{name}:{conf}"


def test_swtpm_setup_tpm_with_its_ca(provisioned: tuple[SwtpmProcess, list[Path]], tmp_path: Path) -> None:
    tpm, cas = provisioned
    args = ["vendor-check", "--tcti", _spec(tpm), "--out", str(tmp_path), "--runs", "1"]
    for ca in cas:
        args += ["--ek-ca", str(ca)]
    result = CliRunner().invoke(app, args)
    # swtpm_setup writes manufacturer id:00001014 into the SAN while the TPM reports IBM.
    assert result.exit_code == 1, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "junit.xml", "index.html"}
    rows = {r["id"]: r for r in json.loads((tmp_path / "report.json").read_text())["rows"]}
    assert rows["ek.chain"]["status"] == "pass"
    assert rows["tpm.manufacturer.registry"]["status"] == "pass"
    assert "id:49424D00" in rows["tpm.manufacturer.registry"]["evidence"]
    assert {rows[r]["status"] for r in ("roca.ek", "roca.aik", "roca.fresh")} == {"pass"}
    assert rows["ek.profile.san"]["status"] == "fail"
    assert rows["tpm.left_as_found"]["status"] == "pass"
    assert rows["ek.key_matches_template"]["status"] == "pass"
    junit = (tmp_path / "junit.xml").read_text()
    assert 'name="ek.chain"' in junit and 'name="roca.fresh"' in junit
    assert "Content-Security-Policy" in (tmp_path / "index.html").read_text()


def test_swtpm_setup_tpm_without_its_ca_names_the_certificate(
    provisioned: tuple[SwtpmProcess, list[Path]],
) -> None:
    report = run_vendor_check(_spec(provisioned[0]), [], runs=1, flow=False)
    chain = report.row("ek.chain")
    assert chain.status == "fail"
    assert "serial 0x" in chain.evidence and "CN=unknown" in chain.evidence


def _write_certificate(esapi: TimedESAPI, der: bytes) -> None:
    write_nv_certificate(esapi, 0x01C00002, der)


def _certificate(ca: CertificateAuthority, key: rsa.RSAPublicKey, fault: str) -> bytes:
    if fault not in ("wrong EKU", "non-critical SAN, empty subject"):
        return certificate_der(ca.issue_ek_certificate(key, IBM, now=NOW))
    eku = OID_AIK_CERTIFICATE if fault == "wrong EKU" else OID_EK_CERTIFICATE
    return certificate_der(
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.certificate.subject)
        .public_key(key)
        .serial_number(4242)
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(tpm_san(IBM), critical=fault == "wrong EKU")
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(_KEY_ENCIPHERMENT, critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("fault", "row"),
    [
        ("no certificate", "ek.certificate"),
        ("certificate for another key", "ek.key_matches_template"),
        ("wrong EKU", "ek.profile.eku"),
        ("non-critical SAN, empty subject", "ek.profile.san"),
    ],
)
def test_a_tpm_built_to_fail_one_row(fault: str, row: str, workdir: Path, tmp_path: Path) -> None:
    ca = CertificateAuthority.create("Vendor EK CA", "Vendor", now=NOW)
    tpm = SwtpmProcess(TPMRequest(), workdir)
    try:
        with TimedESAPI(tpm.tcti) as esapi:
            handle, public = create_ek(esapi, "rsa2048")
            esapi.flush_context(handle)
            key = load_der_public_key(public.to_der())
            assert isinstance(key, rsa.RSAPublicKey)
            if fault == "certificate for another key":
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
            if fault != "no certificate":
                _write_certificate(esapi, _certificate(ca, key, fault))
        pem = tmp_path / "ca.pem"
        pem.write_bytes(ca.certificate.public_bytes(Encoding.PEM))
        report: VendorReport = run_vendor_check(_spec(tpm), [pem], runs=1, flow=False)
    finally:
        tpm.close()
    assert report.row(row).status == "fail", report.row(row)
    others = [r.id for r in report.rows if r.status == "fail" and r.id != row]
    assert others == [], others
    assert report.row("tpm.left_as_found").status == "pass"


def test_unreachable_tpm_and_unreadable_ca_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    gone = runner.invoke(
        app, ["vendor-check", "--tcti", f"swtpm:path={tmp_path}/none.sock", "--out", str(tmp_path)]
    )
    assert gone.exit_code == 2 and "cannot reach the TPM" in gone.output
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    refused = runner.invoke(
        app, ["vendor-check", "--tcti", "swtpm:path=/x.sock", "--ek-ca", str(bad), "--out", str(tmp_path)]
    )
    assert refused.exit_code == 2 and "not a PEM certificate file" in refused.output


def _as_der(pem: Path, into: Path) -> None:
    into.parent.mkdir(parents=True, exist_ok=True)
    into.write_bytes(x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(Encoding.DER))


@pytest.mark.parametrize("layout", ["folders", "microsoft-bundle"])
def test_swtpm_setup_tpm_judged_with_a_trust_store(
    provisioned: tuple[SwtpmProcess, list[Path]], tmp_path: Path, layout: str
) -> None:
    """The same trust store `harness serve --trust` reads: root, intermediate, vendor registry;
    the vendor CAs either in ek-roots/ and ek-intermediates/ or in an ek-bundle/ laid out like
    Microsoft's TrustedTpm bundle (a folder per vendor with RootCA/ and IntermediateCA/, DER .crt)."""
    tpm, (issuer, root) = provisioned
    store = tmp_path / "trust"
    if layout == "folders":
        (store / "ek-roots").mkdir(parents=True)
        (store / "ek-intermediates").mkdir()
        shutil.copy(root, store / "ek-roots" / "swtpm-root.pem")
        shutil.copy(issuer, store / "ek-intermediates" / "swtpm-issuer.pem")
    else:
        _as_der(root, store / "ek-bundle" / "IBM" / "RootCA" / "swtpm-root.crt")
        _as_der(issuer, store / "ek-bundle" / "IBM" / "IntermediateCA" / "swtpm-issuer.crt")
    # swtpm_setup's certificates name the TPM 1.2 IBM id; this lab's registry accepts it.
    (store / "trust.yaml").write_text('vendors: {"00001014": "IBM (swtpm_setup)", "49424D00": IBM}\n')
    out = tmp_path / "out"
    args = ["vendor-check", "--tcti", _spec(tpm), "--out", str(out), "--runs", "1", "--trust", str(store)]
    result = CliRunner().invoke(app, args)
    rows = {r["id"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    assert rows["ek.chain"]["status"] == "pass", rows["ek.chain"]
    # EK certificate -> the store's intermediate -> the store's root.
    assert rows["ek.chain"]["evidence"].count(" -> ") == 2, rows["ek.chain"]
    assert rows["flow.enrollment"]["status"] == "pass", rows["flow.enrollment"]
    # The SAN still names another manufacturer than the TPM reports: a finding the store cannot hide.
    assert rows["ek.profile.san"]["status"] == "fail"
    assert result.exit_code == 1, result.output
