"""The built-in world conditions, one module each; importing this package registers them.

The order of BUILT_IN is the registration order: it orders each section's fields in the
scenario model and the conditions' hooks in a device's life.
"""

import importlib

BUILT_IN = (
    "_tpm_ek_certificate",
    "_tpm_state",
    "_tpm_mdm_key",
    "_tpm_change",
    "_firmware_update",
    "_os_upgrade",
    "_client_aik_support",
    "_client_power_off",
    "_client_diagnostic_log",
    "_lagging_replica",
    "_entra_join",
    "_entra_token",
    "_network_aik_ca",
    "_network_ek_service",
    "_network_enrollment",
    "_network_nonce_from",
    "_history",
    "_wipe",
)
for _module in BUILT_IN:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["BUILT_IN"]
