"""The verifier on recorded evidence bundles: no swtpm, the bytes under tests/data/bundles."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.pki import CertificateAuthority, certificate_der, parse_tpm_san
from harness.status import AttestationStatus, StatusDetail
from harness.trust import BundleError, TrustStore, load_trust, trust_for, verify_bundle
from harness.verifier import (
    certificate_chain_item,
    describe_certificate,
    judge_bundle,
    load_certificate,
    parse_bundle,
)

BUNDLES = Path(__file__).parent / "data" / "bundles"
INTERMEDIATE = BUNDLES / "intermediate"
NOW = dt.datetime.now(dt.UTC)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((BUNDLES / name).read_text())
    return data


def write(tmp_path: Path, data: dict[str, Any], name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def flip_item(data: dict[str, Any], item: str, offset: int) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    raw = bytearray(base64.b64decode(changed["request"]["ContextItems"][item]))
    raw[offset] ^= 0x01
    changed["request"]["ContextItems"][item] = base64.b64encode(bytes(raw)).decode()
    return changed


def failed(verdict: Any) -> list[str]:
    return [c.name for c in verdict.checks if not c.passed]


@pytest.mark.parametrize("name", ["rsa-ek.json", "ecc-ek.json"])
def test_recorded_bundle_attests_against_the_trust_store_beside_it(name: str) -> None:
    path = BUNDLES / name
    result = verify_bundle(path, trust_for(path, None), at=None, now=NOW)
    assert result.verdict.status == AttestationStatus.ATTESTED, result.verdict.decision
    assert result.check_time == parse_bundle(load(name)).check_time  # pinned, so expiry cannot bite


@pytest.mark.parametrize(
    ("item", "offset", "check"),
    [
        pytest.param("AIKAttestationClaim", 40, "mdm.signature", id="mdm-claim-body"),
        pytest.param("AadAIKAttestationClaim", 40, "entra.signature", id="entra-claim-body"),
        pytest.param("AIKAttestationClaim", 3, "mdm.magic", id="mdm-magic"),
    ],
)
def test_one_flipped_byte_of_a_claim_is_named(tmp_path: Path, item: str, offset: int, check: str) -> None:
    path = write(tmp_path, flip_item(load("rsa-ek.json"), item, offset))
    result = verify_bundle(path, load_trust(BUNDLES / "trust"), at=None, now=NOW)
    assert result.verdict.detail == StatusDetail.CLIENT_REQUEST_REJECTED
    assert check in failed(result.verdict)


def test_bundle_judged_after_its_token_expired_fails_authentication() -> None:
    bundle = parse_bundle(load("rsa-ek.json"))
    assert bundle.check_time is not None
    later = bundle.check_time + dt.timedelta(days=1)
    verdict = judge_bundle(bundle, load_trust(BUNDLES / "trust").policy(), at=later, now=NOW)
    assert verdict.detail == StatusDetail.AUTHENTICATION_FAILED


def test_bundle_without_the_nonce_it_claims_is_rejected() -> None:
    data = load("rsa-ek.json")
    data["nonce"]["value"] = base64.b64encode(b"\x00" * 32).decode()
    verdict = judge_bundle(parse_bundle(data), load_trust(BUNDLES / "trust").policy(), at=None, now=NOW)
    assert "nonce.issued" in failed(verdict)


def test_shipped_defaults_trust_no_harness_root() -> None:
    bundle = parse_bundle(load("rsa-ek.json"))
    verdict = judge_bundle(bundle, TrustStore().policy(), at=None, now=NOW)
    assert verdict.status == AttestationStatus.NOT_ATTESTED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"format": "v0"}, "format", id="format"),
        pytest.param({"extra": 1}, "extra: unknown field", id="unknown-field"),
        pytest.param({"request": {"EnrollmentVersion": "5.0"}}, "ContextItems", id="no-items"),
        pytest.param({"check_time": "yesterday"}, "check_time", id="bad-time"),
        pytest.param({"nonce": {"value": "***"}}, "nonce.value", id="bad-nonce"),
    ],
)
def test_malformed_bundle_names_the_field(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = write(tmp_path, {**load("rsa-ek.json"), **change})
    with pytest.raises(BundleError, match=message):
        verify_bundle(path, TrustStore(), at=None, now=NOW)


# --- AIK chains through intermediates --------------------------------------------------


def test_bundle_through_an_intermediate_attests_with_the_intermediate_in_the_trust_store() -> None:
    path = INTERMEDIATE / "aik-via-intermediate.json"
    result = verify_bundle(path, load_trust(INTERMEDIATE / "trust"), at=None, now=NOW)
    assert result.verdict.status == AttestationStatus.ATTESTED, result.verdict.decision
    chain = next(c for c in result.verdict.checks if c.name == "aik_cert.chain")
    assert "via 'CN=Example Regional AIK CA 01" in chain.detail


def test_removed_intermediate_is_named_by_its_subject(tmp_path: Path) -> None:
    trust = tmp_path / "trust"
    shutil.copytree(INTERMEDIATE / "trust", trust)
    shutil.rmtree(trust / "aik-intermediates")
    result = verify_bundle(INTERMEDIATE / "aik-via-intermediate.json", load_trust(trust), at=None, now=NOW)
    assert result.verdict.detail == StatusDetail.CLIENT_REQUEST_REJECTED
    assert result.verdict.decision.startswith("aik_cert.chain: issuer 'CN=Example Regional AIK CA 01")
    assert "(empty subject) serial 0x" in result.verdict.decision  # the AIK certificate, by serial


def _reissued(
    data: dict[str, Any], issuer: CertificateAuthority, chain: list[bytes] | None = None
) -> dict[str, Any]:
    """The bundle with its AIK certificate issued again, for the same AIK, by `issuer`."""
    changed = copy.deepcopy(data)
    items = changed["request"]["ContextItems"]
    old = load_certificate(base64.b64decode(items["AIKCert"]))
    identity = parse_tpm_san(old)
    assert identity is not None
    when = parse_bundle(data).check_time or NOW
    new = issuer.issue_aik_certificate(old.public_key(), identity, now=when)  # type: ignore[arg-type]
    items["AIKCert"] = base64.b64encode(certificate_der(new)).decode()
    if chain:
        items["AIKCertChain"] = base64.b64encode(certificate_chain_item(chain)).decode()
    return changed


def _store_with(root: CertificateAuthority, *intermediates: CertificateAuthority) -> TrustStore:
    recorded = load_trust(BUNDLES / "trust")
    return TrustStore(
        aik_roots=(root.certificate,),
        aik_intermediates=tuple(i.certificate for i in intermediates),
        token_keys=recorded.token_keys,
    )


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return CertificateAuthority.create("Test AIK Root", "Test AIK PKI", now=NOW - dt.timedelta(days=30))


def _judge(data: dict[str, Any], trust: TrustStore) -> Any:
    return judge_bundle(parse_bundle(data), trust.policy(), at=None, now=NOW)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        pytest.param({"ca": False}, "is not a CA (basicConstraints CA=false)", id="not-a-ca"),
        pytest.param({"key_cert_sign": False}, "lacks keyCertSign", id="no-keycertsign"),
    ],
)
def test_intermediate_that_may_not_issue_is_named_by_subject_and_serial(
    root: CertificateAuthority, options: dict[str, Any], problem: str
) -> None:
    when = NOW - dt.timedelta(days=30)
    broken = root.issue_intermediate("Broken Regional AIK CA", "Test AIK PKI", now=when, **options)
    verdict = _judge(_reissued(load("rsa-ek.json"), broken), _store_with(root, broken))
    assert verdict.detail == StatusDetail.CLIENT_REQUEST_REJECTED
    assert f"intermediate {describe_certificate(broken.certificate)} {problem}" in verdict.decision


def test_path_length_of_the_root_is_enforced(root: CertificateAuthority) -> None:
    when = NOW - dt.timedelta(days=30)
    upper = root.issue_intermediate("Upper AIK CA", "Test AIK PKI", now=when, path_length=0)
    lower = upper.issue_intermediate("Lower AIK CA", "Test AIK PKI", now=when)
    verdict = _judge(_reissued(load("rsa-ek.json"), lower), _store_with(root, upper, lower))
    assert f"intermediate {describe_certificate(upper.certificate)} allows 0" in verdict.decision


def test_intermediate_the_client_sends_in_aik_cert_chain_is_used(root: CertificateAuthority) -> None:
    when = NOW - dt.timedelta(days=30)
    regional = root.issue_intermediate("Regional AIK CA", "Test AIK PKI", now=when)
    data = _reissued(load("rsa-ek.json"), regional, chain=[certificate_der(regional.certificate)])
    verdict = _judge(data, _store_with(root))
    assert verdict.status == AttestationStatus.ATTESTED, verdict.decision


def test_a_chain_the_client_sends_does_not_make_its_own_root_trusted(root: CertificateAuthority) -> None:
    when = NOW - dt.timedelta(days=30)
    rogue_root = CertificateAuthority.create("Rogue AIK Root", "Rogue", now=when)
    rogue = rogue_root.issue_intermediate("Rogue Regional", "Rogue", now=when)
    chain = [certificate_der(rogue.certificate), certificate_der(rogue_root.certificate)]
    verdict = _judge(_reissued(load("rsa-ek.json"), rogue, chain=chain), _store_with(root))
    assert verdict.decision.startswith("aik_cert.chain: issuer 'CN=Rogue AIK Root")


# --- the command ---------------------------------------------------------------------


def test_verify_command_exit_codes_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["verify", str(BUNDLES / "rsa-ek.json")])
    assert good.exit_code == 0, good.output
    assert "Attested" in good.output and "pass mdm.signature" in good.output
    # What a bundle cannot carry is said, not silently assumed.
    assert "cannot judge offline: whether the nonce was used before" in good.output

    bad = write(tmp_path, flip_item(load("rsa-ek.json"), "AIKAttestationClaim", 40))
    flipped = runner.invoke(app, ["verify", str(bad), "--trust", str(BUNDLES / "trust"), "--json"])
    assert flipped.exit_code == 1, flipped.output
    (document,) = json.loads(flipped.stdout)
    assert document["detail"] == "Client request is rejected"
    assert document["decision"].startswith("mdm.signature")
    assert any("nonce was used before" in fact for fact in document["cannot_judge_offline"])

    malformed = write(tmp_path, {"format": "nonsense"}, "malformed.json")
    refused = runner.invoke(app, ["verify", str(malformed)])
    assert refused.exit_code == 2
    assert "format" in refused.output


def test_verify_at_overrides_the_pinned_time() -> None:
    bundle = parse_bundle(load("rsa-ek.json"))
    assert bundle.check_time is not None
    later = (bundle.check_time + dt.timedelta(days=2)).isoformat()
    result = CliRunner().invoke(app, ["verify", str(BUNDLES / "rsa-ek.json"), "--at", later, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)[0]["detail"] == "Authentication failed"
