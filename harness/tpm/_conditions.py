"""TPM conditions from the field, produced the way they happen to real TPMs.

Each function drives the TPM through the commands that put a real one in that
state (failed authorizations, a changed owner authorization, a platform that
disables a hierarchy, a reset with no TPM2_Startup), so the client later meets
the TPM's own response codes. Nothing here tells anyone what the outcome is.
"""

from __future__ import annotations

from typing import Literal

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

from ..errors import TPMError
from ._backend import RunningTPM
from ._esapi import TimedESAPI
from ._platform import PlatformControl

Hierarchy = Literal["endorsement", "storage"]

_TPM_RC_LOCKOUT = 0x921
_PIN_KEY = TPM2B_PUBLIC.parse(
    "rsa1024:rsassa-sha256:null",
    objectAttributes=TPMA_OBJECT.FIXEDTPM
    | TPMA_OBJECT.FIXEDPARENT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.USERWITHAUTH
    | TPMA_OBJECT.SIGN_ENCRYPT,
)
_PIN_PARENT = TPM2B_PUBLIC.parse(
    "ecc256:null:aes128cfb",
    objectAttributes=TPMA_OBJECT.FIXEDTPM
    | TPMA_OBJECT.FIXEDPARENT
    | TPMA_OBJECT.SENSITIVEDATAORIGIN
    | TPMA_OBJECT.USERWITHAUTH
    | TPMA_OBJECT.NODA
    | TPMA_OBJECT.RESTRICTED
    | TPMA_OBJECT.DECRYPT,
)


def lock_out(esapi: TimedESAPI, *, max_tries: int = 3, recovery_seconds: int = 86_400) -> int:
    """Wrong PINs until dictionary-attack protection locks the TPM; returns the attempts made.

    The DA parameters are a policy the owner of a real TPM sets (Windows uses 32
    tries); a small limit only makes the lockout quicker to reach.
    """
    esapi.dictionary_attack_parameters(max_tries, recovery_seconds, recovery_seconds, ESYS_TR.LOCKOUT)
    parent, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), _PIN_PARENT, ESYS_TR.OWNER)
    pin = TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(userAuth=TPM2B_AUTH(b"correct PIN")))
    private, public, *_ = esapi.create(parent, pin, _PIN_KEY)
    key = esapi.load(parent, private, public)
    esapi.flush_context(parent)
    esapi.tr_set_auth(key, b"wrong PIN")
    ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
    scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL)
    try:
        for attempt in range(1, max_tries + 2):
            try:
                esapi.sign(key, b"\0" * 32, scheme, ticket)
            except TSS2_Exception as exc:
                if int(exc.rc) & 0xFFFF == _TPM_RC_LOCKOUT:
                    return attempt
                continue
            raise TPMError("a signature with the wrong PIN succeeded")
    finally:
        esapi.flush_context(key)
    raise TPMError(f"the TPM did not lock out after {max_tries + 1} wrong PINs")


def reset_lockout(esapi: TimedESAPI) -> None:
    """What 'Clear TPM lockout' does with the lockout authorization."""
    esapi.dictionary_attack_lock_reset(ESYS_TR.LOCKOUT)


def change_owner_auth(esapi: TimedESAPI, secret: bytes) -> None:
    """Another OS or tool took ownership: the owner authorization is one Windows does not know."""
    esapi.hierarchy_change_auth(ESYS_TR.OWNER, secret)


def disable_hierarchy(esapi: TimedESAPI, hierarchy: Hierarchy) -> None:
    """The platform firmware turned a hierarchy off until the next TPM2_Startup(CLEAR)."""
    target = ESYS_TR.ENDORSEMENT if hierarchy == "endorsement" else ESYS_TR.OWNER
    esapi.hierarchy_control(ESYS_TR.PLATFORM, target, False)


def leave_unstarted(tpm: RunningTPM) -> None:
    """Reset the TPM through its platform interface and send no TPM2_Startup afterwards."""
    if not isinstance(tpm, PlatformControl):
        raise TPMError(f"{tpm.description} has no platform interface the harness can reset")
    tpm.leave_unstarted()
