"""vendor-check: validate a TPM and its EK certificate chain for Windows enrollment attestation.

For TPM vendors: a chip behind /dev/tpmrm0, a firmware simulator on the mssim TCTI or a
provisioned swtpm, checked row by row against the TCG EK Credential Profile and what
Windows relies on, with the spec clause beside each row.
"""

from ._check import load_ek_cas, run_vendor_check
from ._model import Latency, Row, RowStatus, VendorCheckError, VendorReport
from ._report import write_vendor_reports
from ._roca import FINGERPRINT_PRIMES, roca_fingerprint

__all__ = [
    "FINGERPRINT_PRIMES",
    "Latency",
    "Row",
    "RowStatus",
    "VendorCheckError",
    "VendorReport",
    "load_ek_cas",
    "roca_fingerprint",
    "run_vendor_check",
    "write_vendor_reports",
]
