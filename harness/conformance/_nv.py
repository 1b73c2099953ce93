"""The EK credential NV indices and the attributes the profile gives them (pure checks)."""

from __future__ import annotations

from dataclasses import dataclass

from tpm2_pytss import TPM2_NT, TPMA_NV

from ._model import EK_PROFILE, TPM_PART2, Row, failed, passed, warned


@dataclass(frozen=True)
class EKIndex:
    index: int
    label: str
    ek_type: str  # tpm2-pytss create_ek_template name
    clause: str


# EK Credential Profile v2.4 §2.2.1.4 (Low Range) and §2.2.1.5 (High Range); tpm2-pytss
# internal/templates.py names the same indices.
EK_CERT_INDICES: tuple[EKIndex, ...] = (
    EKIndex(0x01C00002, "RSA 2048 (low range)", "EK-RSA2048", f"{EK_PROFILE} §2.2.1.4"),
    EKIndex(0x01C0000A, "ECC NIST P-256 (low range)", "EK-ECC256", f"{EK_PROFILE} §2.2.1.4"),
    EKIndex(0x01C00012, "RSA 2048 (high range H-1)", "EK-HIGH-RSA2048", f"{EK_PROFILE} §2.2.1.5"),
    EKIndex(0x01C00014, "ECC NIST P-256 (high range H-2)", "EK-HIGH-ECC256", f"{EK_PROFILE} §2.2.1.5"),
    EKIndex(0x01C00016, "ECC NIST P-384 (high range H-3)", "EK-HIGH-ECC384", f"{EK_PROFILE} §2.2.1.5"),
    EKIndex(0x01C00018, "ECC NIST P-521 (high range H-4)", "EK-HIGH-ECC521", f"{EK_PROFILE} §2.2.1.5"),
    EKIndex(0x01C0001A, "ECC SM2 P-256 (high range H-5)", "EK-HIGH-ECCSM2P256", f"{EK_PROFILE} §2.2.1.5"),
    EKIndex(0x01C0001C, "RSA 3072 (high range H-6)", "EK-HIGH-RSA3072", f"{EK_PROFILE} §2.2.1.5"),
    EKIndex(0x01C0001E, "RSA 4096 (high range H-7)", "EK-HIGH-RSA4096", f"{EK_PROFILE} §2.2.1.5"),
)
# The profile's EK certificate chain: intermediates the platform ships, one per index.
CHAIN_FIRST, CHAIN_LAST = 0x01C00100, 0x01C001FF
CHAIN_CLAUSE = f"{EK_PROFILE} §2.2.1.6 (EK certificate chain, 0x01C00100-0x01C001FF)"
ATTRIBUTE_CLAUSE = f"{EK_PROFILE} §2.2.1.3 (EK certificate index attributes); TPMA_NV in {TPM_PART2}"

# What the profile requires of an EK certificate index: only the platform writes it, once
# (PPWRITE, WRITEDEFINE); owner and anyone with the empty index auth can read it
# (OWNERREAD, AUTHREAD, PPREAD); reading never counts toward lockout (NO_DA); it survives
# TPM2_Clear (PLATFORMCREATE); it holds a certificate (WRITTEN).
REQUIRED: tuple[tuple[TPMA_NV, str], ...] = (
    (TPMA_NV.PPWRITE, "PPWRITE"),
    (TPMA_NV.PPREAD, "PPREAD"),
    (TPMA_NV.OWNERREAD, "OWNERREAD"),
    (TPMA_NV.AUTHREAD, "AUTHREAD"),
    (TPMA_NV.NO_DA, "NO_DA"),
    (TPMA_NV.WRITEDEFINE, "WRITEDEFINE"),
    (TPMA_NV.PLATFORMCREATE, "PLATFORMCREATE"),
    (TPMA_NV.WRITTEN, "WRITTEN"),
)
FORBIDDEN: tuple[tuple[TPMA_NV, str], ...] = (
    (TPMA_NV.OWNERWRITE, "OWNERWRITE"),
    (TPMA_NV.AUTHWRITE, "AUTHWRITE"),
    (TPMA_NV.POLICYWRITE, "POLICYWRITE"),
)
_NT_SHIFT = 4
_NT_MASK = 0xF0


def attribute_names(attributes: int) -> str:
    names = [name for flag, name in (*REQUIRED, *FORBIDDEN) if attributes & flag]
    nt = (attributes & _NT_MASK) >> _NT_SHIFT
    return "|".join(names) + f" (nt={nt}, 0x{attributes:08X})"


def check_nv_attributes(row_id: str, area: str, attributes: int, clause: str, *, strict: bool) -> Row:
    """One index's TPMA_NV against the profile; a chain index is held to it with warnings."""
    missing = [name for flag, name in REQUIRED if not attributes & flag]
    extra = [name for flag, name in FORBIDDEN if attributes & flag]
    nt = (attributes & _NT_MASK) >> _NT_SHIFT
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"writable outside the platform: {', '.join(extra)}")
    if nt != TPM2_NT.ORDINARY:
        problems.append(f"index type {nt}, not ordinary")
    seen = attribute_names(attributes)
    if not problems:
        return passed(row_id, area, seen, clause)
    evidence = f"{'; '.join(problems)} — seen {seen}"
    return failed(row_id, area, evidence, clause) if strict else warned(row_id, area, evidence, clause)
