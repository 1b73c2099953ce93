"""vendor-check: a TPM the harness did not make, against what Windows attestation needs."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from tpm2_pytss import TSS2_Exception

from ..errors import TPMError
from ..tpm import parse_tcti
from ..trust import TrustStore
from ._advisories import current_advisories
from ._ek import EKFindings, ek_rows
from ._flow import enrollment_row
from ._identity import advisory_row, family_row, identity_rows
from ._model import TPM_PART2, Row, VendorCheckError, VendorReport, failed, passed
from ._ops import Operations, roca_row
from ._probe import Probe, tpm_family

HYGIENE_CLAUSE = (
    f"vendor-check's own promise: the TPM ends as it began (handle lists, {TPM_PART2} §7.2 TPM_HT)"
)


def load_ek_cas(paths: Sequence[Path]) -> list[x509.Certificate]:
    """Every certificate in the given PEM files; each is trusted as an anchor of the EK chain."""
    certificates: list[x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise VendorCheckError(f"--ek-ca {path}: cannot read: {exc.strerror or exc}") from exc
        try:
            found = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise VendorCheckError(f"--ek-ca {path}: not a PEM certificate file ({exc})") from exc
        certificates.extend(found)
    return certificates


def run_vendor_check(
    tcti_spec: str,
    ek_ca_files: Sequence[Path] = (),
    *,
    runs: int = 3,
    flow: bool = True,
    now: dt.datetime | None = None,
    advisories: Path | None = None,
    trust: TrustStore | None = None,
) -> VendorReport:
    """Check the TPM behind `tcti_spec`; VendorCheckError when it cannot run at all.

    A trust store adds its vendor EK roots and intermediates, its vendor registry and its
    advisories (`advisories` wins over the store's), as the reference server reads them.
    """
    if runs < 1:
        raise VendorCheckError(f"--runs must be at least 1, not {runs}")
    try:
        tcti = parse_tcti(tcti_spec)
    except TPMError as exc:
        raise VendorCheckError(str(exc)) from exc
    anchors = [*load_ek_cas(ek_ca_files), *(trust.ek_roots if trust else ())]
    when = now or dt.datetime.now(dt.UTC)
    report = VendorReport(tcti=tcti_spec, started=when.isoformat(timespec="seconds"), runs=runs)
    start = time.perf_counter()
    family = tpm_family(tcti)
    report.rows.append(family_row(family))
    if family != "2.0":
        report.seconds = time.perf_counter() - start
        return report
    before = _handles(tcti)
    probe = Probe(tcti)
    try:
        props = probe.properties()
        report.rows.extend(identity_rows(props, trust.vendors) if trust else identity_rows(props))
        if trust is not None and advisories is None:
            report.rows.append(advisory_row(props, trust.advisories, f"trust store ({trust.source})"))
        else:
            report.rows.append(advisory_row(props, *current_advisories(advisories)))
        findings: EKFindings = ek_rows(probe, props, anchors, when, trust.ek_intermediates if trust else ())
        report.rows.extend(findings.rows)
        report.rows.append(roca_row("roca.ek", "the RSA 2048 EK", findings.rsa_modulus))
        if findings.ek is None or findings.ek_public is None:
            report.rows.extend(Operations.skip_all("no RSA 2048 EK could be created"))
        else:
            report.rows.extend(Operations(probe, runs, findings.ek, findings.ek_public).run())
    except TSS2_Exception as exc:
        report.rows.append(
            failed("tpm.session", "TPM identity", f"TPM error, check stopped: {exc}", TPM_PART2)
        )
    finally:
        probe.close()
    if flow:
        report.rows.append(enrollment_row(tcti_spec, anchors, before["persistent"], trust))
    report.rows.append(_hygiene_row(before, _handles(tcti)))
    report.seconds = time.perf_counter() - start
    return report


def _handles(tcti: tuple[str, str]) -> dict[str, tuple[int, ...]]:
    probe = Probe(tcti)
    try:
        return probe.handles()
    finally:
        probe.close()


def _hygiene_row(before: dict[str, tuple[int, ...]], after: dict[str, tuple[int, ...]]) -> Row:
    counts = ", ".join(f"{len(v)} {k}" for k, v in before.items())
    changes = []
    for kind in before:
        added = sorted(set(after[kind]) - set(before[kind]))
        removed = sorted(set(before[kind]) - set(after[kind]))
        if added:
            changes.append(f"{kind} added {', '.join(f'0x{h:08X}' for h in added)}")
        if removed:
            changes.append(f"{kind} removed {', '.join(f'0x{h:08X}' for h in removed)}")
    if changes:
        return failed("tpm.left_as_found", "TPM state", "; ".join(changes), HYGIENE_CLAUSE)
    return passed(
        "tpm.left_as_found",
        "TPM state",
        f"handle lists equal before and after ({counts}); no NV written, nothing persisted, no auth changed",
        HYGIENE_CLAUSE,
    )
