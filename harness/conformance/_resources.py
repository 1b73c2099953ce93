"""Context management and the PTP's minimum resources, as Windows' resource manager leans on them.

Runs on a TPM with nothing of vendor-check's loaded. Behind a resource manager (the
kernel's /dev/tpmrm0, tpm2-abrmd) slots are virtual and "full" never comes; those rows say so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from tpm2_pytss import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_RH,
    TPM2_SE,
    TPM2_ST,
    TPM2B_SENSITIVE_CREATE,
    TPMT_SIG_SCHEME,
    TPMT_SYM_DEF,
    TPMT_TK_HASHCHECK,
    TSS2_Exception,
)

from ..tpm import TimedESAPI
from ._model import PTP, TPM_PART2, TPM_PART3, Row, failed, judged, skipped
from ._tpmio import (
    PT_ACTIVE_SESSIONS_MAX,
    PT_HR_LOADED_MIN,
    PT_HR_PERSISTENT_MIN,
    PT_HR_TRANSIENT_MIN,
    PT_INPUT_BUFFER,
    PT_MAX_COMMAND_SIZE,
    PT_MAX_RESPONSE_SIZE,
    PT_NV_INDEX_MAX,
    PT_PCR_COUNT,
    PT_PCR_SELECT_MIN,
    create_test_key,
    ecdsa_verifies,
    flush_quietly,
    properties,
    rc,
    test_key_template,
)

AREA = "Resources"
MINIMUM_CLAUSE = f"{PTP} §4 (TPM_PT minimum values); {TPM_PART2} §6.13"
CONTEXT_CLAUSE = (
    f"{TPM_PART3} §28.2 ContextSave, §28.3 ContextLoad; Windows TPM Base Services resource manager"
)
FULL_CLAUSE = f"{TPM_PART2} §6.6 (TPM_RC_OBJECT_MEMORY 0x902, TPM_RC_SESSION_MEMORY 0x903); {PTP} §4"
_RC_OBJECT_MEMORY = 0x902
_RC_SESSION_MEMORY = 0x903
_FILL_LIMIT = 96  # well past any real TPM's slots: more means a resource manager virtualises them

# (TPM_PT, name, PTP minimum)
MINIMUMS: tuple[tuple[int, str, int], ...] = (
    (PT_INPUT_BUFFER, "TPM_PT_INPUT_BUFFER", 1024),
    (PT_HR_TRANSIENT_MIN, "TPM_PT_HR_TRANSIENT_MIN", 3),
    (PT_HR_PERSISTENT_MIN, "TPM_PT_HR_PERSISTENT_MIN", 7),
    (PT_HR_LOADED_MIN, "TPM_PT_HR_LOADED_MIN", 3),
    (PT_ACTIVE_SESSIONS_MAX, "TPM_PT_ACTIVE_SESSIONS_MAX", 64),
    (PT_PCR_COUNT, "TPM_PT_PCR_COUNT", 24),
    (PT_PCR_SELECT_MIN, "TPM_PT_PCR_SELECT_MIN", 3),
    (PT_NV_INDEX_MAX, "TPM_PT_NV_INDEX_MAX", 2048),
    (PT_MAX_COMMAND_SIZE, "TPM_PT_MAX_COMMAND_SIZE", 4096),
    (PT_MAX_RESPONSE_SIZE, "TPM_PT_MAX_RESPONSE_SIZE", 4096),
)


def minimum_rows(values: dict[int, int]) -> list[Row]:
    rows = []
    for number, name, minimum in MINIMUMS:
        value = values.get(number)
        row_id = f"res.min.{name.removeprefix('TPM_PT_').lower()}"
        if value is None:
            rows.append(failed(row_id, AREA, f"{name} not reported", MINIMUM_CLAUSE))
        else:
            seen = f"{name} = {value} (PTP minimum {minimum})"
            rows.append(judged(value >= minimum, row_id, AREA, seen, MINIMUM_CLAUSE))
    return rows


def _sign_and_verify(esapi: TimedESAPI, key: Any, public_der: bytes, session: Any = ESYS_TR.PASSWORD) -> bool:
    digest = hashlib.sha256(b"vendor-check context probe").digest()
    scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.ECDSA)
    scheme.details.any.hashAlg = TPM2_ALG.SHA256
    ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
    return ecdsa_verifies(public_der, digest, esapi.sign(key, digest, scheme, ticket, session1=session))


def _context_rows(esapi: TimedESAPI) -> list[Row]:
    rows = []
    key, public, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), test_key_template(), ESYS_TR.OWNER)
    public_der = bytes(public.to_der())
    try:
        saved = esapi.context_save(key)
        esapi.flush_context(key)
        key = esapi.context_load(saved)
        good = _sign_and_verify(esapi, key, public_der)
        rows.append(
            judged(
                good,
                "res.context.object",
                AREA,
                "ContextSave, FlushContext, ContextLoad of an ECC key; it then signs and the signature "
                + ("verifies" if good else "does NOT verify"),
                CONTEXT_CLAUSE,
            )
        )
        session = esapi.start_auth_session(
            ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.HMAC, TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL), TPM2_ALG.SHA256
        )
        saved_session = esapi.context_save(session)
        session = esapi.context_load(saved_session)
        good = _sign_and_verify(esapi, key, public_der, session)
        flush_quietly(esapi, session)
        rows.append(
            judged(
                good,
                "res.context.session",
                AREA,
                "ContextSave and ContextLoad of an HMAC session; it then authorises TPM2_Sign "
                + ("which verifies" if good else "which does NOT verify"),
                CONTEXT_CLAUSE,
            )
        )
    finally:
        flush_quietly(esapi, key)
    return rows


def _fill(
    row_id: str, what: str, minimum: int | None, expected: int, load: Callable[[], Any], esapi: TimedESAPI
) -> Row:
    loaded: list[Any] = []
    answer = None
    try:
        while len(loaded) < _FILL_LIMIT:
            try:
                loaded.append(load())
            except TSS2_Exception as exc:
                answer = rc(exc)
                break
    finally:
        flush_quietly(esapi, *loaded)
    if answer is None:
        return skipped(
            row_id,
            AREA,
            f"{len(loaded)} {what} loaded without running out: a resource manager virtualises the slots",
            FULL_CLAUSE,
        )
    seen = f"{len(loaded)} {what} loaded (PTP minimum {minimum}), then response code 0x{answer:03X}"
    good = answer == expected and (minimum is None or len(loaded) >= minimum)
    want = f"; expected 0x{expected:03X} after at least {minimum}"
    return judged(good, row_id, AREA, seen if good else seen + want, FULL_CLAUSE)


def resource_rows(tcti: tuple[str, str]) -> list[Row]:
    with TimedESAPI(tcti) as esapi:
        values = properties(esapi, 0x100, 48)
        rows = minimum_rows(values)
        try:
            rows.extend(_context_rows(esapi))
        except TSS2_Exception as exc:
            rows.append(failed("res.context.object", AREA, f"TPM error: {exc}", CONTEXT_CLAUSE))
        counter = iter(range(1, 10_000))
        rows.append(
            _fill(
                "res.objects.full",
                "transient objects",
                values.get(PT_HR_TRANSIENT_MIN),
                _RC_OBJECT_MEMORY,
                lambda: create_test_key(esapi, unique=next(counter).to_bytes(4, "big")),
                esapi,
            )
        )
        rows.append(
            _fill(
                "res.sessions.full",
                "sessions",
                values.get(PT_HR_LOADED_MIN),
                _RC_SESSION_MEMORY,
                lambda: esapi.start_auth_session(
                    ESYS_TR.NONE,
                    ESYS_TR.NONE,
                    TPM2_SE.HMAC,
                    TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL),
                    TPM2_ALG.SHA256,
                ),
                esapi,
            )
        )
    return rows
