"""A TPM vendor's online EK-certificate service, and how a client finds its certificate there.

Intel PTT and AMD fTPM often ship without an EK certificate in NV. Windows then fetches
it from the vendor's service, keyed by the EK public key. The keys follow tpm2-tools'
`tpm2_getekcertificate` (tools/tpm2_getekcertificate.c), which talks to the same services:

- Intel (https://ekop.intel.com/ekcertservice/<key>): key = base64url of
  SHA-256(RSA modulus || 01 00 01), or SHA-256(x || y) for ECC, padding kept and
  URL-escaped ('=' as %3D).
- AMD (https://ftpm.amd.com/pki/aia/<key>): key = the first 16 bytes, as lower-case hex,
  of SHA-256(00 00 22 22 || exponent as 4 bytes || modulus), or
  SHA-256(00 00 44 44 || x || y) for ECC.

The harness's service plays both on loopback for one run. The factory publishes a
certificate by writing its DER into the service's directory; the service answers either
URL form for any certificate there whose key matches, and 404 otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

INTEL_PATH = "/ekcertservice/"
AMD_PATH = "/pki/aia/"
AMD_MANUFACTURER = "id:414D4400"
_RSA_DEFAULT_EXPONENT = 65537

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def _key_material(key: PublicKey) -> tuple[bytes, bytes]:
    """(Intel's hashed bytes, AMD's hashed bytes) for one EK public key."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        modulus = numbers.n.to_bytes((key.key_size + 7) // 8, "big")
        if numbers.e != _RSA_DEFAULT_EXPONENT:
            raise ValueError("the EK-certificate services key RSA EKs with the default exponent only")
        return modulus + b"\x01\x00\x01", b"\x00\x00\x22\x22" + numbers.e.to_bytes(4, "big") + modulus
    point = key.public_numbers()
    size = (key.curve.key_size + 7) // 8
    xy = point.x.to_bytes(size, "big") + point.y.to_bytes(size, "big")
    return xy, b"\x00\x00\x44\x44" + xy


def intel_key(key: PublicKey) -> str:
    digest = hashlib.sha256(_key_material(key)[0]).digest()
    return urllib.parse.quote(base64.urlsafe_b64encode(digest).decode("ascii"), safe="")


def amd_key(key: PublicKey) -> str:
    return hashlib.sha256(_key_material(key)[1]).digest()[:16].hex()


def certificate_path(manufacturer: str, key: PublicKey) -> str:
    """The path a client asks for: AMD's form for an AMD TPM, Intel's for any other."""
    if manufacturer.upper() == AMD_MANUFACTURER.upper():
        return AMD_PATH + amd_key(key)
    return INTEL_PATH + intel_key(key)


def publish(directory: Path, der: bytes) -> None:
    """The vendor's factory uploads an EK certificate it issued."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{hashlib.sha256(der).hexdigest()[:32]}.der").write_bytes(der)


class EKCertificateService:
    """The vendor's service on 127.0.0.1, serving the certificates published in `directory`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(directory))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ek-service", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> EKCertificateService:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _find_certificate(directory: Path, request_path: str) -> bytes | None:
    path = urllib.parse.unquote(request_path.split("?", 1)[0])
    for prefix, keyed in ((INTEL_PATH, intel_key), (AMD_PATH, amd_key)):
        if not path.startswith(prefix):
            continue
        wanted = path[len(prefix) :]
        for file in sorted(directory.glob("*.der")):
            der = file.read_bytes()
            key = x509.load_der_x509_certificate(der).public_key()
            if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) and (
                urllib.parse.unquote(keyed(key)) == wanted
            ):
                return der
    return None


def _handler(directory: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            der = _find_certificate(directory, self.path)
            body = der if der is not None else b"no EK certificate for this key\n"
            self.send_response(200 if der is not None else 404)
            self.send_header("Content-Type", "application/pkix-cert" if der is not None else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: a run's output is its report."""

    return Handler
