"""Conformance (`harness vendor-check`): TPMs and their EK credentials for Windows enrollment attestation.

For TPM vendors: chips behind /dev/tpmrm0, a firmware simulator on the mssim TCTI, provisioned
swtpms or units vendor-check makes itself, checked row by row against the TCG EK Credential
Profile, the PC Client Platform TPM Profile and what Windows relies on, with the clause beside
each row: identity, EK credentials, algorithms and commands, resources, dictionary-attack
protection, lifecycle (sleep, power loss, Clear, firmware update), uniqueness across units,
and a comparison of two reports (two firmware builds).
"""

from ._check import Target, load_ek_cas, run_vendor_check
from ._command import check_command, compare_command
from ._compare import Comparison, compare_reports, load_report
from ._made import MadeUnits, made_units
from ._model import Latency, Row, RowStatus, Unit, VendorCheckError, VendorReport
from ._report import write_vendor_reports
from ._roca import FINGERPRINT_PRIMES, roca_fingerprint

__all__ = [
    "FINGERPRINT_PRIMES",
    "Comparison",
    "Latency",
    "MadeUnits",
    "Row",
    "RowStatus",
    "Target",
    "Unit",
    "VendorCheckError",
    "VendorReport",
    "check_command",
    "compare_command",
    "compare_reports",
    "load_ek_cas",
    "load_report",
    "made_units",
    "roca_fingerprint",
    "run_vendor_check",
    "write_vendor_reports",
]
