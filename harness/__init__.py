"""Enrollment attestation harness: real emulated TPMs, a simulated Windows client,
a reference MDM server, and reports of expected versus actual attestation status."""

__version__ = "0.1.0"
