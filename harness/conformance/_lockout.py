"""Dictionary-attack protection: its parameters, a real lockout, and the noDA exemption.

The lockout row changes the DA parameters for a moment and locks the TPM, so it runs only
when the check may be destructive; it restores the parameters and resets the lockout
(with the lockout authorisation, empty on a TPM no one has taken ownership of).
"""

from __future__ import annotations

from typing import Any

from tpm2_pytss import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_RH,
    TPM2_ST,
    TPM2B_AUTH,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPMA_OBJECT,
    TPMS_SENSITIVE_CREATE,
    TPMT_SIG_SCHEME,
    TPMT_TK_HASHCHECK,
    TSS2_Exception,
)

from ..tpm import TimedESAPI
from ._model import TPM_PART1, TPM_PART3, Row, failed, judged, skipped
from ._tpmio import (
    PERMANENT_IN_LOCKOUT,
    PERMANENT_LOCKOUT_AUTH_SET,
    PT_LOCKOUT_COUNTER,
    PT_LOCKOUT_INTERVAL,
    PT_LOCKOUT_RECOVERY,
    PT_MAX_AUTH_FAIL,
    PT_PERMANENT,
    flush_quietly,
    prop,
    properties,
    rc,
    test_key_template,
)

AREA = "Dictionary-attack protection"
DA_CLAUSE = f"{TPM_PART1} §19.8 (dictionary attack protection); {TPM_PART3} §25.3 DictionaryAttackParameters"
LOCKOUT_CLAUSE = f"{TPM_PART1} §19.8.6; {TPM_PART3} §25.2 DictionaryAttackLockReset"
NODA_CLAUSE = f"{TPM_PART1} §19.8.2 (objects with noDA are exempt); TPMA_OBJECT.noDA"
_RC_LOCKOUT = 0x921
_TRIES = 3
_WRONG_NODA = 2


def _auth_failed(code: int) -> bool:
    # TPM_RC_AUTH_FAIL (0x08E) or TPM_RC_BAD_AUTH (0x0A2), format 1 with a session number.
    return bool(code & 0x80) and (code & 0x3F) in (0x0E, 0x22)


def _keyed(esapi: TimedESAPI, *, no_da: bool) -> Any:
    """A key whose authorisation is b'right', under a noDA storage primary."""
    parent, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), _storage_template(), ESYS_TR.OWNER)
    try:
        sensitive = TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(userAuth=TPM2B_AUTH(b"right")))
        private, public, *_ = esapi.create(parent, sensitive, test_key_template(no_da=no_da))
        key = esapi.load(parent, private, public)
    finally:
        flush_quietly(esapi, parent)
    esapi.tr_set_auth(key, b"wrong")
    return key


def _storage_template() -> TPM2B_PUBLIC:
    return TPM2B_PUBLIC.parse(
        "ecc256:null:aes128cfb",
        objectAttributes=TPMA_OBJECT.FIXEDTPM
        | TPMA_OBJECT.FIXEDPARENT
        | TPMA_OBJECT.SENSITIVEDATAORIGIN
        | TPMA_OBJECT.USERWITHAUTH
        | TPMA_OBJECT.NODA
        | TPMA_OBJECT.RESTRICTED
        | TPMA_OBJECT.DECRYPT,
    )


def _wrong_sign(esapi: TimedESAPI, key: Any) -> int:
    scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL)
    ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
    try:
        esapi.sign(key, b"\0" * 32, scheme, ticket)
    except TSS2_Exception as exc:
        return rc(exc)
    return 0


def lockout_rows(tcti: tuple[str, str], *, destructive: bool, why_not: str) -> list[Row]:
    rows: list[Row] = []
    with TimedESAPI(tcti) as esapi:
        values = properties(esapi, PT_LOCKOUT_COUNTER, 4)
        tries, interval = values.get(PT_MAX_AUTH_FAIL, 0), values.get(PT_LOCKOUT_INTERVAL, 0)
        recovery, counter = values.get(PT_LOCKOUT_RECOVERY, 0), values.get(PT_LOCKOUT_COUNTER, 0)
        locked = bool((prop(esapi, PT_PERMANENT) or 0) & PERMANENT_IN_LOCKOUT)
        seen = (
            f"maxTries {tries}, recoveryTime {interval} s, lockoutRecovery {recovery} s, "
            f"failedTries {counter}, {'IN LOCKOUT' if locked else 'not in lockout'}"
        )
        rows.append(judged(tries > 0 and not locked, "da.parameters", AREA, seen, DA_CLAUSE))
        try:
            rows.append(_no_da_row(esapi, counter))
        except TSS2_Exception as exc:
            rows.append(failed("da.noda_exempt", AREA, f"TPM error: {exc}", NODA_CLAUSE))
        if not destructive:
            rows.append(skipped("da.lockout", AREA, f"destructive, not run: {why_not}", LOCKOUT_CLAUSE))
            return rows
        if (prop(esapi, PT_PERMANENT) or 0) & PERMANENT_LOCKOUT_AUTH_SET:
            # A wrong lockout authorisation would itself lock the lockout hierarchy for lockoutRecovery.
            reason = "the lockout authorisation is set and vendor-check knows only the empty one"
            rows.append(skipped("da.lockout", AREA, reason, LOCKOUT_CLAUSE))
            return rows
        try:
            rows.append(_lockout_row(esapi, tries, interval, recovery))
        except TSS2_Exception as exc:
            rows.append(failed("da.lockout", AREA, f"TPM error: {exc}", LOCKOUT_CLAUSE))
    return rows


def _no_da_row(esapi: TimedESAPI, counter: int) -> Row:
    key = _keyed(esapi, no_da=True)
    try:
        answers = [_wrong_sign(esapi, key) for _ in range(_WRONG_NODA)]
    finally:
        flush_quietly(esapi, key)
    after = prop(esapi, PT_LOCKOUT_COUNTER) or 0
    refused = all(_auth_failed(a) for a in answers)
    seen = (
        f"{_WRONG_NODA} wrong authorisations of a noDA key answered "
        f"{', '.join(f'0x{a:03X}' for a in answers)}; failedTries {counter} -> {after}"
    )
    return judged(refused and after == counter, "da.noda_exempt", AREA, seen, NODA_CLAUSE)


def _lockout_row(esapi: TimedESAPI, tries: int, interval: int, recovery: int) -> Row:
    esapi.dictionary_attack_lock_reset(ESYS_TR.LOCKOUT)
    esapi.dictionary_attack_parameters(_TRIES, max(interval, 1), max(recovery, 1), ESYS_TR.LOCKOUT)
    key = _keyed(esapi, no_da=False)
    answers: list[int] = []
    try:
        while len(answers) <= _TRIES + 1:
            answers.append(_wrong_sign(esapi, key))
            if answers[-1] == _RC_LOCKOUT or answers[-1] == 0:
                break
        esapi.tr_set_auth(key, b"right")
        right_refused = _wrong_sign(esapi, key) == _RC_LOCKOUT
    finally:
        flush_quietly(esapi, key)
        esapi.dictionary_attack_lock_reset(ESYS_TR.LOCKOUT)
        esapi.dictionary_attack_parameters(tries, interval, recovery, ESYS_TR.LOCKOUT)
    failures = sum(1 for a in answers if _auth_failed(a))
    locked = bool(answers) and answers[-1] == _RC_LOCKOUT
    codes = ", ".join(f"0x{a:03X}" for a in answers)
    seen = (
        f"maxTries set to {_TRIES}; wrong authorisations answered {codes}; "
        f"the right one then {'refused with TPM_RC_LOCKOUT' if right_refused else 'ACCEPTED'}; "
        f"lockout reset and parameters restored ({tries}, {interval}, {recovery})"
    )
    good = locked and failures == _TRIES and right_refused
    return judged(good, "da.lockout", AREA, seen, LOCKOUT_CLAUSE)
