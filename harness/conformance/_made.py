"""swtpm units vendor-check makes itself: manufactured like a vendor's line, and its to break.

Each unit is one swtpm process with an RSA 2048 EK (and, when asked, an ECC P-256 EK) whose
certificates a vendor CA created for the run issues, with the identity the TPM itself reports.
Because vendor-check owns these TPMs, destructive rows run on them without --destructive,
and after TPM2_ChangeEPS the CA re-issues the certificates as a vendor's firmware update does.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from tpm2_pytss import ESYS_TR, TSS2_Exception

from ..errors import TPMError
from ..pki import CertificateAuthority, TPMIdentity
from ..tpm import EKAlgorithm, SwtpmProcess, TimedESAPI, TPMRequest, manufacture
from ._lifecycle import Reissue
from ._nv import EK_CERT_INDICES
from ._tpmio import properties

_INDEX = {"rsa2048": 0x01C00002, "ecc256": 0x01C0000A}


@dataclass(frozen=True)
class MadeUnit:
    spec: str
    tpm: SwtpmProcess
    reissue: Reissue


@dataclass(frozen=True)
class MadeUnits:
    units: list[MadeUnit]
    anchors: list[x509.Certificate]


def _identity(esapi: TimedESAPI) -> TPMIdentity:
    values = properties(esapi, 0x105, 8)  # TPM_PT_MANUFACTURER .. TPM_PT_FIRMWARE_VERSION_1
    text = b"".join(values.get(0x106 + i, 0).to_bytes(4, "big") for i in range(4))
    model = text.rstrip(b"\0").decode("ascii", errors="replace").replace("\0", " ").strip() or "TPM"
    return TPMIdentity(f"id:{values[0x105]:08X}", model, f"id:{values.get(0x10B, 0):08X}")


def _provision(
    esapi: TimedESAPI, issuer: CertificateAuthority, algorithms: tuple[EKAlgorithm, ...], now: dt.datetime
) -> TPMIdentity:
    identity = _identity(esapi)
    for algorithm in algorithms:
        manufacture(esapi, identity=identity, issuer=issuer, algorithm=algorithm, now=now)
    return identity


def _reissuer(issuer: CertificateAuthority, algorithms: tuple[EKAlgorithm, ...]) -> Reissue:
    def reissue(esapi: TimedESAPI) -> str:
        for entry in EK_CERT_INDICES:
            try:
                old = esapi.tr_from_tpmpublic(entry.index)
            except TSS2_Exception:
                continue
            esapi.nv_undefine_space(old, ESYS_TR.PLATFORM)
        _provision(esapi, issuer, algorithms, dt.datetime.now(dt.UTC))
        indices = ", ".join(f"0x{_INDEX[a]:08X}" for a in algorithms)
        return f"'{issuer.name}' re-issued the EK certificates at {indices}"

    return reissue


@contextmanager
def made_units(count: int, *, ecc: bool = True, now: dt.datetime | None = None) -> Iterator[MadeUnits]:
    """`count` manufactured swtpm units; every process and directory is gone on exit."""
    when = now or dt.datetime.now(dt.UTC)
    issuer = CertificateAuthority.create("vendor-check EK CA", "vendor-check", now=when)
    algorithms: tuple[EKAlgorithm, ...] = ("rsa2048", "ecc256") if ecc else ("rsa2048",)
    # Unix socket paths must stay short: the system temp dir, not a deep working directory.
    workdir = Path(tempfile.mkdtemp(prefix="vchk-"))
    units: list[MadeUnit] = []
    try:
        for _ in range(count):
            tpm = SwtpmProcess(TPMRequest(), workdir)
            units.append(MadeUnit(f"{tpm.tcti[0]}:{tpm.tcti[1]}", tpm, _reissuer(issuer, algorithms)))
            try:
                with TimedESAPI(tpm.tcti) as esapi:
                    _provision(esapi, issuer, algorithms, when)
            except TSS2_Exception as exc:
                raise TPMError(f"cannot manufacture an swtpm unit: {exc}") from exc
        yield MadeUnits(units, [issuer.certificate])
    finally:
        for unit in units:
            unit.tpm.close()
        shutil.rmtree(workdir, ignore_errors=True)
