"""Malformed commands, sent as raw bytes: the TPM must answer each with the response code the
specification names, not hang, crash or execute something."""

from __future__ import annotations

import struct

from tpm2_pytss import TSS2_Exception

from ..tpm import open_tcti
from ._model import TPM_PART2, TPM_PART3, Row, failed, passed, warned

AREA = "Malformed commands"
CLAUSE = f"{TPM_PART3} §5.2 (command header validation), §5.3 (unmarshalling); {TPM_PART2} §6.6 TPM_RC"
_NO_SESSIONS = 0x8001

# (row, what is wrong, the command bytes, the response code it must bring, its name)
CASES: tuple[tuple[str, str, bytes, int, str], ...] = (
    (
        "error.bad_tag",
        "a TPM 1.2 command (tag 0x00C1, TPM_ORD_GetRandom)",
        struct.pack(">HIII", 0x00C1, 14, 0x46, 16),
        0x01E,
        "TPM_RC_BAD_TAG",
    ),
    (
        "error.command_code",
        "command code 0x0000FFFF",
        struct.pack(">HII", _NO_SESSIONS, 10, 0xFFFF),
        0x143,
        "TPM_RC_COMMAND_CODE",
    ),
    (
        "error.insufficient",
        "TPM2_GetCapability without its last parameter",
        struct.pack(">HIIII", _NO_SESSIONS, 18, 0x17A, 6, 0x100),
        0x09A,
        "TPM_RC_INSUFFICIENT",
    ),
    (
        "error.value",
        "TPM2_GetCapability of capability 0x7FFFFFFE",
        struct.pack(">HIIIII", _NO_SESSIONS, 22, 0x17A, 0x7FFFFFFE, 0, 1),
        0x084,
        "TPM_RC_VALUE",
    ),
)


def _error_number(code: int) -> int:
    """Format-1 codes carry a parameter number; compare the error alone (Part 2 §6.6.2)."""
    return code & 0x0BF if code & 0x080 else code & 0xFFF


def malformed_rows(tcti: tuple[str, str]) -> list[Row]:
    rows = []
    for row_id, wrong, command, expected, name in CASES:
        try:
            channel = open_tcti(tcti)
        except TSS2_Exception as exc:
            rows.append(failed(row_id, AREA, f"cannot open the TCTI: {exc}", CLAUSE))
            continue
        try:
            channel.transmit(command)
            answer = bytes(channel.receive())
        except TSS2_Exception as exc:
            rows.append(failed(row_id, AREA, f"{wrong}: no TPM answer ({exc})", CLAUSE))
            continue
        finally:
            channel.close()
        rows.append(_judge(row_id, wrong, answer, expected, name))
    return rows


def _judge(row_id: str, wrong: str, answer: bytes, expected: int, name: str) -> Row:
    if len(answer) < 10:
        return failed(row_id, AREA, f"{wrong}: answer too short ({answer.hex()})", CLAUSE)
    code = struct.unpack(">I", answer[6:10])[0]
    seen = f"{wrong}: answered 0x{code:03X}; the specification names {name} (0x{expected:03X})"
    if _error_number(code) == expected:
        return passed(row_id, AREA, seen, CLAUSE)
    if code == 0:
        return failed(row_id, AREA, f"{wrong}: EXECUTED (TPM_RC_SUCCESS)", CLAUSE)
    # Refused, which is what matters for safety, but with another code than the one named.
    return warned(row_id, AREA, seen, CLAUSE)
