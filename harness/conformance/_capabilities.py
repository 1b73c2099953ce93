"""What the PC Client profile makes mandatory and Windows uses: algorithms, commands, PCRs,
a verified Quote, salted and encrypted sessions, the ECC EK's activation and clean errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from typing import Any

from tpm2_pytss import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_CAP,
    TPM2_SE,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE_CREATE,
    TPMA_OBJECT,
    TPMA_SESSION,
    TPML_DIGEST_VALUES,
    TPML_PCR_SELECTION,
    TPMS_ATTEST,
    TPMT_HA,
    TPMT_SIG_SCHEME,
    TPMT_SYM_DEF,
    TSS2_Exception,
)
from tpm2_pytss.utils import NVReadEK, create_ek_template, make_credential

from ..tpm import TimedESAPI
from ._model import PTP, TPM_PART2, TPM_PART3, WINDOWS_ATTESTATION, Row, failed, judged
from ._tpmio import ecdsa_verifies, flush_quietly, pcr_value

AREA = "Algorithms and commands"
ALG_CLAUSE = f"{PTP} §4 (mandatory algorithms); {TPM_PART3} §30.2 GetCapability(TPM_CAP_ALGS)"
CC_CLAUSE = f"{PTP} §4 (mandatory commands); {TPM_PART3} §30.2 GetCapability(TPM_CAP_COMMANDS)"
PCR_CLAUSE = f"{PTP} §4 (PCR banks: SHA-256, 24 PCRs); {TPM_PART3} §22 PCR commands"
QUOTE_CLAUSE = (
    f"{TPM_PART3} §18.4 Quote; {TPM_PART2} §10.12 TPMS_ATTEST; {WINDOWS_ATTESTATION} (health attestation)"
)
SESSION_CLAUSE = f"{TPM_PART3} §11.1 StartAuthSession (salted); TCG TPM 2.0 Part 1 §21 parameter encryption"
ECC_EK_CLAUSE = f"{TPM_PART3} §12.5 ActivateCredential with the ECC P-256 EK; {WINDOWS_ATTESTATION}"
ERROR_CLAUSE = f"{TPM_PART2} §6.6 TPM_RC; {TPM_PART3} §5 (command processing order)"
RNG_CLAUSE = f"{TPM_PART3} §16.1 GetRandom"

MANDATORY_ALGORITHMS = (
    "RSA", "HMAC", "AES", "KEYEDHASH", "SHA256", "RSASSA", "RSAES", "RSAPSS", "OAEP",
    "ECC", "ECDSA", "ECDH", "SYMCIPHER", "KDF1_SP800_56A", "KDF1_SP800_108", "MGF1", "CFB",
)  # fmt: skip
# The commands Windows' TPM stack sends for attestation, key storage, BitLocker and resets.
WINDOWS_COMMANDS: dict[int, str] = {
    0x131: "CreatePrimary", 0x153: "Create", 0x157: "Load", 0x148: "Certify", 0x14A: "CertifyCreation",
    0x147: "ActivateCredential", 0x15D: "Sign", 0x158: "Quote", 0x182: "PCR_Extend", 0x13C: "PCR_Event",
    0x17E: "PCR_Read", 0x17A: "GetCapability", 0x17B: "GetRandom", 0x162: "ContextSave",
    0x161: "ContextLoad", 0x165: "FlushContext", 0x120: "EvictControl", 0x14E: "NV_Read",
    0x169: "NV_ReadPublic", 0x12A: "NV_DefineSpace", 0x137: "NV_Write", 0x176: "StartAuthSession",
    0x151: "PolicySecret", 0x171: "PolicyOR", 0x17F: "PolicyPCR", 0x16C: "PolicyCommandCode",
    0x17D: "Hash", 0x159: "RSA_Decrypt", 0x154: "ECDH_ZGen", 0x15E: "Unseal",
    0x139: "DictionaryAttackLockReset", 0x13A: "DictionaryAttackParameters", 0x126: "Clear",
    0x129: "HierarchyChangeAuth", 0x173: "ReadPublic", 0x145: "Shutdown", 0x144: "Startup",
    0x143: "SelfTest", 0x181: "ReadClock",
}  # fmt: skip
_HASH_NAMES = {0x04: "SHA-1", 0x0B: "SHA-256", 0x0C: "SHA-384", 0x0D: "SHA-512", 0x12: "SM3-256"}
_QUOTE_PCRS = (0, 1, 2, 3, 4, 5, 6, 7)  # one PCR_Read answers at most 8
_MAGIC = 0xFF544347  # TPM_GENERATED_VALUE
_ST_ATTEST_QUOTE = 0x8018
_BORN_IN_TPM = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN


def _listed(esapi: TimedESAPI, capability: int, first: int) -> list[int]:
    """Algorithm ids or command codes, page by page (ints at once: the items are views into `data`)."""
    found: list[int] = []
    while True:
        more, data = esapi.get_capability(capability, first, 128)
        if capability == TPM2_CAP.ALGS:
            items = [int(a.alg) for a in data.data.algorithms]
        else:
            items = [int(c) & 0xFFFF for c in data.data.command]
        found.extend(items)
        if not more or not items:
            return found
        first = items[-1] + 1


def capability_rows(esapi: TimedESAPI) -> list[Row]:
    algorithms = set(_listed(esapi, TPM2_CAP.ALGS, 0))
    missing = [name for name in MANDATORY_ALGORITHMS if int(getattr(TPM2_ALG, name)) not in algorithms]
    seen = f"{len(algorithms)} algorithms reported; mandatory set of {len(MANDATORY_ALGORITHMS)}"
    rows = [
        judged(
            not missing,
            "alg.capability.algorithms",
            AREA,
            f"{seen}: {'MISSING ' + ', '.join(missing) if missing else 'all present'}",
            ALG_CLAUSE,
        )
    ]
    commands = set(_listed(esapi, TPM2_CAP.COMMANDS, 0x11F))
    absent = [name for code, name in WINDOWS_COMMANDS.items() if code not in commands]
    seen = f"{len(commands)} commands reported; Windows' set of {len(WINDOWS_COMMANDS)}"
    rows.append(
        judged(
            not absent,
            "alg.capability.commands",
            AREA,
            f"{seen}: {'MISSING ' + ', '.join(absent) if absent else 'all present'}",
            CC_CLAUSE,
        )
    )
    return rows


def _bank_rows(esapi: TimedESAPI) -> list[Row]:
    _, data = esapi.get_capability(TPM2_CAP.PCRS, 0, 1)
    banks = {}
    for selection in data.data.assignedPCR:
        bits = bytes(selection.pcrSelect)[: selection.sizeofSelect]
        banks[int(selection.hash)] = sum(bin(b).count("1") for b in bits)
    sha256 = banks.get(int(TPM2_ALG.SHA256), 0)
    names = ", ".join(f"{_HASH_NAMES.get(h, hex(h))}: {n}" for h, n in banks.items())
    return [judged(sha256 == 24, "pcr.sha256_bank", AREA, f"allocated banks (PCRs): {names}", PCR_CLAUSE)]


def _extend_row(esapi: TimedESAPI) -> Row:
    before = pcr_value(esapi, 23)
    digest = os.urandom(32)
    value = TPMT_HA(hashAlg=TPM2_ALG.SHA256)
    value.digest.sha256 = digest
    esapi.pcr_extend(ESYS_TR.PCR23, TPML_DIGEST_VALUES([value]))
    after = pcr_value(esapi, 23)
    good = after == hashlib.sha256(before + digest).digest()
    evidence = (
        "PCR_Extend(23, SHA-256): new value "
        + ("equals" if good else "DIFFERS from")
        + " SHA-256(old || digest)"
    )
    return judged(good, "pcr.extend", AREA, evidence, PCR_CLAUSE)


def _signing_key(esapi: TimedESAPI, *, restricted: bool) -> tuple[Any, TPM2B_PUBLIC]:
    attributes = _BORN_IN_TPM | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.SIGN_ENCRYPT | TPMA_OBJECT.NODA
    if restricted:
        attributes |= TPMA_OBJECT.RESTRICTED
    template = TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256:null", objectAttributes=attributes)
    handle, public, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.ENDORSEMENT)
    return handle, public


def _quote_row(esapi: TimedESAPI) -> Row:
    key, public = _signing_key(esapi, restricted=True)
    try:
        nonce = os.urandom(32)
        selection = "sha256:" + ",".join(str(p) for p in _QUOTE_PCRS)
        attest, signature = esapi.quote(key, selection, nonce, TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL))
        _, _, digests = esapi.pcr_read(TPML_PCR_SELECTION.parse(selection))
        values = b"".join(bytes(d) for d in digests)
    finally:
        flush_quietly(esapi, key)
    body = bytes(attest.marshal())[2:]
    parsed, _ = TPMS_ATTEST.unmarshal(body)
    problems = []
    if int(parsed.magic) != _MAGIC or int(parsed.type) != _ST_ATTEST_QUOTE:
        problems.append("not a TPM-generated quote")
    if bytes(parsed.extraData) != nonce:
        problems.append("nonce differs")
    if bytes(parsed.attested.quote.pcrDigest) != hashlib.sha256(values).digest():
        problems.append("pcrDigest differs from PCR_Read")
    if not ecdsa_verifies(bytes(public.to_der()), hashlib.sha256(body).digest(), signature):
        problems.append("signature does not verify")
    evidence = f"Quote of SHA-256 PCRs {list(_QUOTE_PCRS)} by a restricted ECC key: " + (
        "; ".join(problems) if problems else "magic, type, nonce, pcrDigest and signature verified"
    )
    return judged(not problems, "pcr.quote", AREA, evidence, QUOTE_CLAUSE)


def _session_rows(esapi: TimedESAPI) -> list[Row]:
    template = TPM2B_PUBLIC.parse(
        "ecc256:null:aes128cfb",
        objectAttributes=_BORN_IN_TPM
        | TPMA_OBJECT.USERWITHAUTH
        | TPMA_OBJECT.NODA
        | TPMA_OBJECT.RESTRICTED
        | TPMA_OBJECT.DECRYPT,
    )
    salt_key, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.OWNER)
    session = None
    try:
        session = esapi.start_auth_session(
            salt_key, ESYS_TR.NONE, TPM2_SE.HMAC, TPMT_SYM_DEF.parse("aes128cfb"), TPM2_ALG.SHA256
        )
        # The salted session authorises a command that needs the parent's authorisation.
        key, *_ = esapi.create_primary(
            TPM2B_SENSITIVE_CREATE(), _signing_template(), ESYS_TR.OWNER, session1=session
        )
        flush_quietly(esapi, key)
        rows = [
            judged(
                True,
                "session.salted",
                AREA,
                "StartAuthSession salted to an ECC P-256 key (AES-128-CFB) authorises CreatePrimary",
                SESSION_CLAUSE,
            )
        ]
        esapi.trsess_set_attributes(
            session, TPMA_SESSION.CONTINUESESSION | TPMA_SESSION.DECRYPT | TPMA_SESSION.ENCRYPT
        )
        data = os.urandom(64)
        digest, _ = esapi.hash(data, TPM2_ALG.SHA256, ESYS_TR.OWNER, session1=session)
        good = bytes(digest) == hashlib.sha256(data).digest()
        rows.append(
            judged(
                good,
                "session.encrypted",
                AREA,
                "TPM2_Hash with the data encrypted in and the digest encrypted out: "
                + ("digest equals SHA-256 in software" if good else "digest DIFFERS"),
                SESSION_CLAUSE,
            )
        )
        return rows
    finally:
        flush_quietly(esapi, salt_key, *([session] if session is not None else []))


def _signing_template() -> TPM2B_PUBLIC:
    attributes = _BORN_IN_TPM | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.SIGN_ENCRYPT | TPMA_OBJECT.NODA
    return TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256:null", objectAttributes=attributes)


def _ecc_ek_row(esapi: TimedESAPI) -> Row:
    _, template = create_ek_template("EK-ECC256", NVReadEK(esapi.raw))
    ek, ek_public, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.ENDORSEMENT)
    key, key_public = _signing_key(esapi, restricted=True)
    policy = None
    try:
        secret = os.urandom(32)
        blob, encrypted = make_credential(ek_public, secret, key_public.get_name())
        policy = esapi.start_auth_session(
            ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.POLICY, TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL), TPM2_ALG.SHA256
        )
        esapi.policy_secret(ESYS_TR.ENDORSEMENT, policy, b"", b"", b"", 0)
        recovered = bytes(esapi.activate_credential(key, ek, blob, encrypted, session2=policy))
    finally:
        flush_quietly(esapi, ek, key, *([policy] if policy is not None else []))
    good = recovered == secret
    evidence = "MakeCredential (software) to the ECC P-256 EK; ActivateCredential recovers " + (
        "the secret" if good else "a DIFFERENT secret"
    )
    return judged(good, "alg.ecc_ek.activate_credential", AREA, evidence, ECC_EK_CLAUSE)


def _random_row(esapi: TimedESAPI) -> tuple[Row, bytes]:
    first, second = bytes(esapi.get_random(32)), bytes(esapi.get_random(32))
    good = len(first) == 32 and first != second
    seen = f"two GetRandom(32) answers {'differ' if good else 'are EQUAL or short'}"
    return judged(good, "tpm.get_random", AREA, seen, RNG_CLAUSE), first


def algorithm_rows(tcti: tuple[str, str]) -> tuple[list[Row], bytes]:
    """The rows, and one GetRandom sample for the comparison across units."""
    rows: list[Row] = []
    sample = b""
    with TimedESAPI(tcti) as esapi:
        steps: tuple[tuple[str, str, Callable[[], list[Row]]], ...] = (
            ("alg.capability", ALG_CLAUSE, lambda: capability_rows(esapi)),
            ("pcr.sha256_bank", PCR_CLAUSE, lambda: _bank_rows(esapi)),
            ("pcr.extend", PCR_CLAUSE, lambda: [_extend_row(esapi)]),
            ("pcr.quote", QUOTE_CLAUSE, lambda: [_quote_row(esapi)]),
            ("session.salted", SESSION_CLAUSE, lambda: _session_rows(esapi)),
            ("alg.ecc_ek.activate_credential", ECC_EK_CLAUSE, lambda: [_ecc_ek_row(esapi)]),
        )
        for row_id, clause, step in steps:
            try:
                rows.extend(step())
            except TSS2_Exception as exc:
                rows.append(failed(row_id, AREA, f"TPM error: {exc}", clause))
        try:
            row, sample = _random_row(esapi)
            rows.append(row)
        except TSS2_Exception as exc:
            rows.append(failed("tpm.get_random", AREA, f"TPM error: {exc}", RNG_CLAUSE))
        with contextlib.suppress(TSS2_Exception):
            esapi.pcr_reset(ESYS_TR.PCR23)  # leave the application PCR as a fresh boot has it
    return rows, sample
