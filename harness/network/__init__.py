"""Network conditions between a device and the services, real sockets on loopback, and the
services a device reaches besides the MDM service's (a TPM vendor's online EK service)."""

from ._ek_service import (
    AMD_MANUFACTURER,
    AMD_PATH,
    INTEL_PATH,
    EKCertificateService,
    amd_key,
    certificate_path,
    intel_key,
    publish,
)
from ._endpoints import RefusingEndpoint, ResettingEndpoint
from ._flaky import FlakyEndpoint
from ._link import Fault, Link, Route, Rule

__all__ = [
    "AMD_MANUFACTURER",
    "AMD_PATH",
    "INTEL_PATH",
    "EKCertificateService",
    "Fault",
    "FlakyEndpoint",
    "Link",
    "RefusingEndpoint",
    "ResettingEndpoint",
    "Route",
    "Rule",
    "amd_key",
    "certificate_path",
    "intel_key",
    "publish",
]
