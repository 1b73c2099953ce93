"""The built-in world conditions, one module each; importing this package registers them.

The registration order orders each section's fields in the scenario model and the
conditions' hooks in a device's life: the modules named in _ORDER first, in that order
(a network condition's hook can then override what a TPM condition set on the path), then
every other module of this package by name, so that a new condition needs no edit here.
"""

import importlib
import pkgutil

_ORDER = (
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
_OTHERS = sorted({module.name for module in pkgutil.iter_modules(__path__)} - set(_ORDER))
# Every module of the package, in the order it was imported (and its conditions registered).
BUILT_IN: tuple[str, ...] = (*_ORDER, *_OTHERS)
for _module in BUILT_IN:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["BUILT_IN"]
