"""vendor-check: TPMs the harness did not make (or made for the purpose), against what Windows
attestation, the PC Client profile and the EK Credential Profile need."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from tpm2_pytss import TPM2_CAP, TSS2_Exception

from ..errors import TPMError
from ..tpm import TimedESAPI, parse_tcti
from ..trust import TrustStore
from ._advisories import current_advisories
from ._capabilities import algorithm_rows
from ._ek import EKFindings, ek_rows
from ._flow import enrollment_row
from ._identity import advisory_row, family_row, identity_rows
from ._lifecycle import LifecycleTarget, Reissue, lifecycle_rows
from ._lockout import lockout_rows
from ._malformed import malformed_rows
from ._model import TPM_PART2, TPM_PART3, Latency, Row, Unit, VendorCheckError, VendorReport, failed, passed
from ._ops import Operations, roca_row
from ._platform import reset_line_for
from ._probe import Probe, tpm_family
from ._resources import resource_rows
from ._tpmio import fingerprint
from ._units import unit_rows

HYGIENE_CLAUSE = (
    f"vendor-check's own promise: the TPM ends as it began (handle lists, {TPM_PART2} §7.2 TPM_HT)"
)
TIMING_CLAUSE = f"round-trip baseline: {TPM_PART3} §30.2 GetCapability of one property, the cheapest command"
NOT_DESTRUCTIVE = (
    "an external TPM; pass --destructive to lock it out, TPM2_Clear it and change its endorsement seed"
)


@dataclass(frozen=True)
class Target:
    """One TPM to check; `made` when vendor-check manufactured it (destructive rows may run)."""

    tcti: str
    made: bool = False
    reissue: Reissue | None = None


@dataclass(frozen=True)
class Options:
    anchors: tuple[x509.Certificate, ...]
    runs: int
    flow: bool
    now: dt.datetime
    advisories: Path | None
    trust: TrustStore | None
    destructive: bool


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
    tcti: str | Sequence[str | Target],
    ek_ca_files: Sequence[Path] = (),
    *,
    runs: int = 3,
    flow: bool = True,
    now: dt.datetime | None = None,
    advisories: Path | None = None,
    trust: TrustStore | None = None,
    destructive: bool = False,
    anchors: Sequence[x509.Certificate] = (),
) -> VendorReport:
    """Check each TPM; VendorCheckError when one cannot be checked at all.

    A trust store adds its vendor EK roots and intermediates, its vendor registry and its
    advisories (`advisories` wins over the store's), as the reference server reads them.
    With several TPMs each gets its own rows (unit1, unit2, ...) and rows across the units
    compare their EKs and random numbers.
    """
    if runs < 1:
        raise VendorCheckError(f"--runs must be at least 1, not {runs}")
    targets = (
        [Target(tcti)] if isinstance(tcti, str) else [t if isinstance(t, Target) else Target(t) for t in tcti]
    )
    if not targets:
        raise VendorCheckError("no TPM to check: give --tcti (repeatable) or --swtpm N")
    for target in targets:
        try:
            parse_tcti(target.tcti)
        except TPMError as exc:
            raise VendorCheckError(str(exc)) from exc
    when = now or dt.datetime.now(dt.UTC)
    options = Options(
        anchors=(*load_ek_cas(ek_ca_files), *anchors, *(trust.ek_roots if trust else ())),
        runs=runs,
        flow=flow,
        now=when,
        advisories=advisories,
        trust=trust,
        destructive=destructive,
    )
    report = VendorReport(started=when.isoformat(timespec="seconds"), runs=runs, destructive=destructive)
    start = time.perf_counter()
    samples: dict[str, bytes] = {}
    for number, target in enumerate(targets, 1):
        name = f"unit{number}" if len(targets) > 1 else ""
        rows, unit, sample = _check_unit(target, name, options)
        report.rows.extend(replace(r, unit=name) for r in rows)
        report.units.append(unit)
        if sample:
            samples[unit.name] = sample
    if len(targets) > 1:
        report.rows.extend(unit_rows(report.units, samples))
    report.seconds = time.perf_counter() - start
    return report


def _check_unit(target: Target, name: str, options: Options) -> tuple[list[Row], Unit, bytes]:
    tcti = parse_tcti(target.tcti)
    rows: list[Row] = []
    family = tpm_family(tcti)
    rows.append(family_row(family))
    if family != "2.0":
        return rows, Unit(name, target.tcti, target.made), b""
    baseline = _baseline(tcti, options.runs)
    rows.append(
        passed(
            "timing.round_trip",
            "Timing",
            f"TCTI {tcti[0]}: {baseline}; other times are net of it",
            TIMING_CLAUSE,
            baseline,
        )
    )
    before = _handles(tcti)
    trust = options.trust
    spki = b""
    probe = Probe(tcti)
    try:
        props = probe.properties()
        rows.extend(identity_rows(props, trust.vendors) if trust else identity_rows(props))
        if trust is not None and options.advisories is None:
            rows.append(advisory_row(props, trust.advisories, f"trust store ({trust.source})"))
        else:
            rows.append(advisory_row(props, *current_advisories(options.advisories)))
        findings: EKFindings = ek_rows(
            probe, props, options.anchors, options.now, trust.ek_intermediates if trust else ()
        )
        rows.extend(findings.rows)
        rows.append(roca_row("roca.ek", "the RSA 2048 EK", findings.rsa_modulus))
        if findings.ek_public is not None:
            spki = bytes(findings.ek_public.to_der())
            rows.append(
                passed(
                    "tpm.ek.fingerprint", "EK key", f"SHA-256 of the RSA EK: {fingerprint(spki)}", _FP_CLAUSE
                )
            )
        if findings.ek is None or findings.ek_public is None:
            rows.extend(Operations.skip_all("no RSA 2048 EK could be created"))
        else:
            rows.extend(Operations(probe, options.runs, findings.ek, findings.ek_public).run())
    except TSS2_Exception as exc:
        rows.append(failed("tpm.session", "TPM identity", f"TPM error, check stopped: {exc}", TPM_PART2))
    finally:
        probe.close()
    rows.extend(resource_rows(tcti))
    more, sample = algorithm_rows(tcti)
    rows.extend(more)
    rows.extend(malformed_rows(tcti))
    destructive = options.destructive or target.made
    rows.extend(lockout_rows(tcti, destructive=destructive, why_not=NOT_DESTRUCTIVE))
    if options.flow:
        rows.append(enrollment_row(target.tcti, options.anchors, before["persistent"], trust))
    rows.append(_hygiene_row(before, _handles(tcti)))
    line, why = reset_line_for(tcti)
    rows.extend(
        lifecycle_rows(LifecycleTarget(tcti, line, why, destructive, NOT_DESTRUCTIVE, target.reissue))
    )
    rows = [
        replace(r, latency=r.latency.net_of(baseline)) if r.latency and r.id != "timing.round_trip" else r
        for r in rows
    ]
    return rows, Unit(name, target.tcti, target.made, fingerprint(spki) if spki else ""), sample


_FP_CLAUSE = "vendor-check: the EK identifies the unit (compared across units)"


def _baseline(tcti: tuple[str, str], runs: int) -> Latency:
    seconds = []
    with TimedESAPI(tcti) as esapi:
        for _ in range(max(runs, 3)):
            start = time.perf_counter()
            esapi.get_capability(TPM2_CAP.TPM_PROPERTIES, 0x105, 1)
            seconds.append(time.perf_counter() - start)
    return Latency.of(seconds)


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
        f"handle lists equal before and after ({counts}); no NV written, nothing persisted, "
        "no auth changed (lifecycle rows, which follow, reset the TPM on purpose)",
        HYGIENE_CLAUSE,
    )
