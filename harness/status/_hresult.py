"""HRESULTs a Windows client reports in AttestationStatusHResult.

The client derives each from what it really met (a TPM return code, a refused
connection, a CA's answer) and the server maps it to a status detail. The
values are the ones Windows uses for the same conditions.
"""

from __future__ import annotations

from enum import IntEnum

TPM20_RC_BASE = 0x80280000  # TBS maps a TPM 2.0 response code rc to 0x80280000 | rc


class HResult(IntEnum):
    S_OK = 0x00000000
    # TBS / platform
    TBS_E_TPM_NOT_FOUND = 0x8028400F
    TPM_E_PCP_UNSUPPORTED_TPM_VERSION = 0x80290411  # a TPM 1.2 where 2.0 is required
    # TPM 2.0 response codes as TBS reports them (TPM_20_E_*)
    TPM_E_LOCKOUT = TPM20_RC_BASE | 0x921
    TPM_E_AUTH_FAIL = TPM20_RC_BASE | 0x08E
    TPM_E_BAD_AUTH = TPM20_RC_BASE | 0x0A2
    TPM_E_HIERARCHY = TPM20_RC_BASE | 0x085
    TPM_E_INITIALIZE = TPM20_RC_BASE | 0x100
    TPM_E_NV_DEFINED = TPM20_RC_BASE | 0x14C
    # WinHTTP, as HRESULT_FROM_WIN32
    WINHTTP_CANNOT_CONNECT = 0x80072EFD
    WINHTTP_CONNECTION_ERROR = 0x80072EFE
    WINHTTP_TIMEOUT = 0x80072EE2
    # Key storage
    NTE_EXISTS = 0x8009000F
    NTE_NOT_SUPPORTED = 0x80090029
    # Certificate services answers (the AIK CA)
    CERTSRV_E_INVALID_EK = 0x80094810
    CERTSRV_E_INVALID_IDBINDING = 0x80094811
    CERTSRV_E_INVALID_ATTESTATION = 0x80094812
    CERTSRV_E_KEY_ATTESTATION = 0x80094813
    CERTSRV_E_EXPIRED_CHALLENGE = 0x80094815
    CERTSRV_E_INVALID_RESPONSE = 0x80094816
    E_FAIL = 0x80004005


# Cause classes: one definition, read by the client (what it retries by itself) and by the
# verifier (which status detail a reported failure means).
TPM_ABSENT = frozenset({HResult.TBS_E_TPM_NOT_FOUND, HResult.TPM_E_PCP_UNSUPPORTED_TPM_VERSION})
# "TPM isn't ready": usable after a reset of its lockout or ownership, so worth a retry.
TPM_NOT_READY = frozenset(
    {
        HResult.TPM_E_LOCKOUT,
        HResult.TPM_E_AUTH_FAIL,
        HResult.TPM_E_BAD_AUTH,
        HResult.TPM_E_HIERARCHY,
        HResult.TPM_E_INITIALIZE,
    }
)
# A service the client could not reach; which one depends on how far it got.
NETWORK = frozenset(
    {HResult.WINHTTP_CANNOT_CONNECT, HResult.WINHTTP_CONNECTION_ERROR, HResult.WINHTTP_TIMEOUT}
)

_RC_FORMAT_ONE = 0x080
_RC_FORMAT_ONE_ERROR = 0x03F


def from_tpm_rc(rc: int) -> int:
    """The HRESULT Windows reports for a TPM 2.0 response code.

    Format-one codes carry the number of the handle, session or parameter at
    fault in their upper bits; the error itself (and so the HRESULT) is the same
    whichever one it was.
    """
    code = rc & 0xFFFF
    if code & _RC_FORMAT_ONE:
        code = _RC_FORMAT_ONE | (code & _RC_FORMAT_ONE_ERROR)
    return TPM20_RC_BASE | code


def describe(value: int) -> str:
    try:
        return f"0x{value:08X} ({HResult(value).name})"
    except ValueError:
        return f"0x{value:08X}"
