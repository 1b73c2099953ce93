"""Record the evidence bundles under tests/data/bundles from real enrollments.

Each bundle is one healthy device (a real swtpm, the simulated client, the embedded
server); the trust store the server used is written beside them. One more bundle has its
AIK certificate re-issued under a regional intermediate of a separate AIK root, the way
Microsoft issues AIK certificates, with a trust store that holds the root and the
intermediate. Run from the repository root: .venv/bin/python scripts/record_bundles.py
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

from harness.client import ClientConfig, Endpoints, Inventory, WindowsClient
from harness.pki import CertificateAuthority, certificate_der
from harness.protocol import b64
from harness.fleet import RecordedEnrollment, record_enrollment
from harness.server import EmbeddedServer, ServerConfig
from harness.pki import TPMIdentity
from harness.tpm import SwtpmBackend, TimedESAPI, TPMRequest, manufacture
from harness.trust import TrustStore
from harness.verifier import load_certificate

OUT = Path("tests/data/bundles")
IDENTITY = TPMIdentity("id:49465800", "SLB9672", "id:001A000D")  # Infineon 26.13


def enroll(server: EmbeddedServer, vendor: CertificateAuthority, ek: str, work: Path) -> RecordedEnrollment:
    tpm = SwtpmBackend().start(TPMRequest(), work)
    try:
        with TimedESAPI(tpm.tcti) as esapi:
            manufacture(esapi, identity=IDENTITY, issuer=vendor, algorithm=ek, now=dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
        inventory = Inventory(
            f"LAPTOP-{ek.upper()}",
            f"PF0{ek.upper()}",
            "LENOVO",
            "ThinkPad T14 Gen 4",
            "10.0.22631.2792",
            upn=f"{ek}@contoso.com",
        )
        report = WindowsClient(ClientConfig(Endpoints.single(server.url), inventory), tpm).run()
    finally:
        tpm.close()
    return record_enrollment(server, report)


def write(path: Path, bundle: dict[str, object], note: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**bundle, "note": note}, indent=2) + "\n", encoding="utf-8")


def via_intermediate(recorded: RecordedEnrollment, out: Path) -> None:
    now = recorded.now
    root = CertificateAuthority.create("Example TPM Root Certificate Authority", "Example AIK PKI", now=now)
    regional = root.issue_intermediate("Example Regional AIK CA 01", "Example AIK PKI", now=now)
    request = copy.deepcopy(recorded.bundle["request"])
    assert isinstance(request, dict)
    aik_public = load_certificate(recorded.evidence.aik_cert or b"").public_key()
    reissued = regional.issue_aik_certificate(aik_public, IDENTITY, now=now)  # type: ignore[arg-type]
    request["ContextItems"]["AIKCert"] = b64(certificate_der(reissued))
    bundle = {**recorded.bundle, "request": request}
    write(
        out / "aik-via-intermediate.json",
        bundle,
        "a real enrollment whose AIK certificate was re-issued by a regional intermediate; "
        "judge it with --trust tests/data/bundles/intermediate/trust",
    )
    TrustStore(
        aik_roots=(root.certificate,),
        aik_intermediates=(regional.certificate,),
        token_keys=recorded.trust.token_keys,
        token_issuer=recorded.trust.token_issuer,
        token_audience=recorded.trust.token_audience,
    ).write(out / "trust")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="eah-rec-", dir="/tmp"))
    try:
        vendor = CertificateAuthority.create("Test TPM Vendor CA", "Test Vendor", now=dt.datetime.now(dt.UTC))
        with EmbeddedServer(
            ServerConfig(data_dir=work / "server", manufacturer_roots=[vendor.certificate])
        ) as server:
            rsa = enroll(server, vendor, "rsa2048", work)
            ecc = enroll(server, vendor, "ecc256", work)
        if OUT.exists():
            shutil.rmtree(OUT)
        write(OUT / "rsa-ek.json", rsa.bundle, "a healthy device with an RSA 2048 EK (AIK: RSA 2048)")
        write(OUT / "ecc-ek.json", ecc.bundle, "a healthy device with an ECC P-256 EK (AIK: RSA 2048)")
        rsa.trust.write(OUT / "trust")
        via_intermediate(rsa, OUT / "intermediate")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
