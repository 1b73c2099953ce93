"""Power and ownership events a TPM meets in the field, each with what must survive it.

Sleep and resume, a power loss, TPM2_Clear and a firmware update (TPM2_ChangeEPS) go
through the platform's controls; the rows compare what the TPM holds before and after.
Clear and ChangeEPS destroy keys, so they run only when the check may be destructive.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tpm2_pytss import ESYS_TR, TPM2_ALG, TPM2_CAP, TPM2_SE, TPM2_SU, TPMT_SYM_DEF, TSS2_Exception

from ..errors import TPMError
from ..tpm import TimedESAPI
from ._model import EK_PROFILE, TPM_PART3, WINDOWS_ATTESTATION, Row, failed, judged, skipped
from ._nv import EK_CERT_INDICES
from ._platform import ResetLine
from ._tpmio import (
    PERMANENT_DISABLE_CLEAR,
    PERMANENT_LOCKOUT_AUTH_SET,
    PT_PERMANENT,
    PT_STARTUP_CLEAR,
    STARTUP_PH_ENABLE,
    certifies,
    create_test_key,
    ek_spki,
    nv_certificate,
    pcr_value,
    prop,
    srk_spki,
)

AREA = "Lifecycle"
_PCR = 15  # PC Client PCRs 0-15 are saved by Shutdown(STATE); 15 is unused by firmware
_TEST_PERSISTENT = 0x81000FF0
SLEEP_CLAUSE = f"{TPM_PART3} §9.3 Startup, §9.4 Shutdown (TPM Resume); Windows S3 sleep and hibernate"
RESET_CLAUSE = f"{TPM_PART3} §9.2 _TPM_Init, §9.3 Startup(CLEAR) after no orderly shutdown"
CLEAR_CLAUSE = f"{TPM_PART3} §24.6 Clear; {EK_PROFILE} §2.2.1.3 (PLATFORMCREATE: the EK certificate survives)"
EPS_CLAUSE = (
    f"{TPM_PART3} §24.5 ChangeEPS; {WINDOWS_ATTESTATION} (a firmware update re-issues the EK certificate)"
)

Reissue = Callable[[TimedESAPI], str]


@dataclass(frozen=True)
class LifecycleTarget:
    tcti: tuple[str, str]
    reset_line: ResetLine | None
    no_line_reason: str
    destructive: bool
    not_destructive_reason: str
    reissue: Reissue | None = None  # the tool's own vendor CA, for a unit vendor-check made


def lifecycle_rows(target: LifecycleTarget) -> list[Row]:
    rows = [_guarded("life.sleep_resume", SLEEP_CLAUSE, lambda: _sleep_resume(target), target, False)]
    rows.append(_guarded("life.unorderly_reset", RESET_CLAUSE, lambda: _unorderly(target), target, False))
    rows.append(_guarded("life.clear", CLEAR_CLAUSE, lambda: _clear(target), target, True, needs_line=False))
    eps = _guarded("life.change_eps", EPS_CLAUSE, lambda: _change_eps(target), target, True, needs_line=False)
    rows.append(eps)
    rows.append(_reissued(target, eps))
    return rows


def _guarded(
    row_id: str,
    clause: str,
    action: Callable[[], Row],
    target: LifecycleTarget,
    destructive: bool,
    *,
    needs_line: bool = True,
) -> Row:
    if needs_line and target.reset_line is None:
        return skipped(row_id, AREA, f"cannot run: {target.no_line_reason}", clause)
    if destructive and not target.destructive:
        return skipped(row_id, AREA, f"destructive, not run: {target.not_destructive_reason}", clause)
    try:
        return action()
    except (TSS2_Exception, TPMError) as exc:
        return failed(row_id, AREA, f"TPM error: {exc}", clause)


def _saved_contexts(esapi: TimedESAPI) -> tuple[Any, Any]:
    key = create_test_key(esapi)
    saved_key = esapi.context_save(key)
    esapi.flush_context(key)
    session = esapi.start_auth_session(
        ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.HMAC, TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL), TPM2_ALG.SHA256
    )
    return saved_key, esapi.context_save(session)


def _loads(esapi: TimedESAPI, context: Any) -> bool:
    try:
        handle = esapi.context_load(context)
    except TSS2_Exception:
        return False
    esapi.flush_context(handle)
    return True


def _clock(esapi: TimedESAPI) -> tuple[int, int]:
    info = esapi.read_clock().clockInfo
    return int(info.resetCount), int(info.restartCount)


def _sleep_resume(target: LifecycleTarget) -> Row:
    assert target.reset_line is not None
    with TimedESAPI(target.tcti) as esapi:
        saved_key, saved_session = _saved_contexts(esapi)
        esapi.pcr_event(ESYS_TR.PCR15, os.urandom(16))
        pcr = pcr_value(esapi, _PCR)
        resets, restarts = _clock(esapi)
        esapi.shutdown(TPM2_SU.STATE)
    target.reset_line.restart(power_lost=False)
    with TimedESAPI(target.tcti) as esapi:
        esapi.startup(TPM2_SU.STATE)
        kept = {
            f"PCR {_PCR}": pcr_value(esapi, _PCR) == pcr,
            "saved object context": _loads(esapi, saved_key),
            "saved session context": _loads(esapi, saved_session),
        }
        after_resets, after_restarts = _clock(esapi)
    kept["resetCount"] = after_resets == resets
    counted = after_restarts == restarts + 1
    lost = [what for what, ok in kept.items() if not ok]
    evidence = (
        f"Shutdown(STATE), _TPM_Init via {target.reset_line}, Startup(STATE): "
        f"must survive {', '.join(kept)}; "
        + (f"LOST {', '.join(lost)}; " if lost else "all survived; ")
        + f"restartCount {restarts} -> {after_restarts} (must be +1)"
    )
    return judged(not lost and counted, "life.sleep_resume", AREA, evidence, SLEEP_CLAUSE)


def _unorderly(target: LifecycleTarget) -> Row:
    assert target.reset_line is not None
    with TimedESAPI(target.tcti) as esapi:
        saved_key, _ = _saved_contexts(esapi)
        esapi.pcr_event(ESYS_TR.PCR15, os.urandom(16))
        ek = ek_spki(esapi)
        certificates = _ek_certificates(esapi)
        resets, _ = _clock(esapi)
    target.reset_line.restart(power_lost=True)
    with TimedESAPI(target.tcti) as esapi:
        esapi.startup(TPM2_SU.CLEAR)
        survive = {"the EK": ek_spki(esapi) == ek}
        for index, (_, certificate) in certificates.items():
            survive[f"EK certificate 0x{index:08X}"] = nv_certificate(esapi, index) == certificate
        gone = {
            f"PCR {_PCR} (reset to zero)": pcr_value(esapi, _PCR) == bytes(32),
            "the saved object context": not _loads(esapi, saved_key),
        }
        after_resets, _ = _clock(esapi)
    gone["the boot (resetCount +1)"] = after_resets == resets + 1
    bad = [w for w, ok in survive.items() if not ok] + [w for w, ok in gone.items() if not ok]
    evidence = (
        f"no Shutdown, power lost via {target.reset_line}, Startup(CLEAR): must survive "
        f"{', '.join(survive)}; must not survive {', '.join(gone)}; "
        + (f"WRONG: {', '.join(bad)}" if bad else "as required")
    )
    return judged(not bad, "life.unorderly_reset", AREA, evidence, RESET_CLAUSE)


def _ek_certificates(esapi: TimedESAPI) -> dict[int, Any]:
    found = {}
    for entry in EK_CERT_INDICES:
        certificate = nv_certificate(esapi, entry.index)
        if certificate is not None:
            found[entry.index] = (entry.ek_type, certificate)
    return found


def _platform_usable(esapi: TimedESAPI) -> bool:
    return bool((prop(esapi, PT_STARTUP_CLEAR) or 0) & STARTUP_PH_ENABLE)


def _clear(target: LifecycleTarget) -> Row:
    with TimedESAPI(target.tcti) as esapi:
        if (prop(esapi, PT_PERMANENT) or 0) & PERMANENT_DISABLE_CLEAR:
            return skipped("life.clear", AREA, "TPM2_ClearControl has disabled TPM2_Clear", CLEAR_CLAUSE)
        authority = ESYS_TR.PLATFORM if _platform_usable(esapi) else ESYS_TR.LOCKOUT
        if authority == ESYS_TR.LOCKOUT and (prop(esapi, PT_PERMANENT) or 0) & PERMANENT_LOCKOUT_AUTH_SET:
            reason = (
                "no platform authorisation, and the lockout authorisation is set "
                "(vendor-check knows only the empty one)"
            )
            return skipped("life.clear", AREA, reason, CLEAR_CLAUSE)
        ek, srk = ek_spki(esapi), srk_spki(esapi)
        certificates = _ek_certificates(esapi)
        key = create_test_key(esapi)
        esapi.evict_control(ESYS_TR.OWNER, key, _TEST_PERSISTENT)
        esapi.flush_context(key)
        esapi.clear(authority)
        survive = {"the EK": ek_spki(esapi) == ek}
        for index, (_, certificate) in certificates.items():
            survive[f"EK certificate 0x{index:08X}"] = nv_certificate(esapi, index) == certificate
        _, listed = esapi.get_capability(TPM2_CAP.HANDLES, _TEST_PERSISTENT, 1)
        persisted = [int(h) for h in listed.data.handles]
        gone = {
            f"storage key persisted at 0x{_TEST_PERSISTENT:08X}": _TEST_PERSISTENT not in persisted,
            "the storage root key (new storage seed)": srk_spki(esapi) != srk,
        }
    bad = [w for w, ok in survive.items() if not ok] + [w for w, ok in gone.items() if not ok]
    who = "platform" if authority == ESYS_TR.PLATFORM else "lockout"
    evidence = (
        f"TPM2_Clear with {who} authorisation: must survive {', '.join(survive)}; "
        f"must not survive {', '.join(gone)}; " + (f"WRONG: {', '.join(bad)}" if bad else "as required")
    )
    return judged(not bad, "life.clear", AREA, evidence, CLEAR_CLAUSE)


def _change_eps(target: LifecycleTarget) -> Row:
    with TimedESAPI(target.tcti) as esapi:
        if not _platform_usable(esapi):
            return skipped(
                "life.change_eps",
                AREA,
                "the platform hierarchy is disabled (firmware turns it off after boot); "
                "TPM2_ChangeEPS needs platform authorisation",
                EPS_CLAUSE,
            )
        ek, srk = ek_spki(esapi), srk_spki(esapi)
        certificates = _ek_certificates(esapi)
        esapi.change_eps(ESYS_TR.PLATFORM)
        new_ek = ek_spki(esapi)
        changed = {"the EK (new endorsement seed)": new_ek != ek}
        for index, (ek_type, certificate) in certificates.items():
            changed[f"EK certificate 0x{index:08X} no longer certifies the EK"] = not certifies(
                certificate, ek_spki(esapi, ek_type)
            )
        survive = {"the storage root key": srk_spki(esapi) == srk}
    bad = [w for w, ok in changed.items() if not ok] + [w for w, ok in survive.items() if not ok]
    evidence = f"TPM2_ChangeEPS: must change {', '.join(changed)}; must survive {', '.join(survive)}; " + (
        f"WRONG: {', '.join(bad)}" if bad else "as required"
    )
    return judged(not bad, "life.change_eps", AREA, evidence, EPS_CLAUSE)


def _reissued(target: LifecycleTarget, eps: Row) -> Row:
    row_id = "life.firmware_update.reissued"
    if eps.status != "pass":
        return skipped(row_id, AREA, f"needs a new EK: life.change_eps is {eps.status}", EPS_CLAUSE)
    if target.reissue is None:
        return skipped(
            row_id,
            AREA,
            "vendor-check holds no key of this vendor's CA: the vendor's update must re-issue the "
            "EK certificate; until then the TPM fails ek.key_matches_template",
            EPS_CLAUSE,
        )
    try:
        with TimedESAPI(target.tcti) as esapi:
            issued = target.reissue(esapi)
            certificate = nv_certificate(esapi, 0x01C00002)
            good = certificate is not None and certifies(certificate, ek_spki(esapi))
    except (TSS2_Exception, TPMError) as exc:
        return failed(row_id, AREA, f"TPM error: {exc}", EPS_CLAUSE)
    evidence = f"{issued}; the new certificate at 0x01C00002 " + (
        "certifies the new EK" if good else "does NOT certify the new EK"
    )
    return judged(good, row_id, AREA, evidence, EPS_CLAUSE)
