"""TPM backends: the protocol, the swtpm-process, real-device and docker drivers."""

import os

# tpm2-tss logs every TPM error response to stderr; the client reports those errors
# itself, so the library stays quiet unless the user set TSS2_LOG.
os.environ.setdefault("TSS2_LOG", "all+NONE")

from ._backend import TPMBackend, TPMDevice, TPMFamily, TPMRequest
from ._conditions import (
    Hierarchy,
    change_owner_auth,
    disable_hierarchy,
    leave_unstarted,
    lock_out,
    reset_lockout,
)
from ._device import DeviceBackend, ExternalTPM, parse_tcti
from ._docker import (
    RUN_LABEL,
    DockerBackend,
    DockerTPM,
    engine_unavailable,
    preflight,
    remove_run_containers,
)
from ._engine_pool import EnginePoolBackend, preflight_all, remove_run_everywhere
from ._engines import Engine, EngineTLS, engine_from_env, parse_engine, schedule, spread
from ._esapi import TimedESAPI
from ._manufacture import EKAlgorithm, Manufactured, create_ek, manufacture
from ._swtpm import SwtpmBackend, SwtpmProcess, close_all, live_pids, swtpm_binary

__all__ = [
    "RUN_LABEL",
    "DeviceBackend",
    "DockerBackend",
    "DockerTPM",
    "EKAlgorithm",
    "Engine",
    "EnginePoolBackend",
    "EngineTLS",
    "ExternalTPM",
    "Hierarchy",
    "Manufactured",
    "SwtpmBackend",
    "SwtpmProcess",
    "TPMBackend",
    "TPMDevice",
    "TPMFamily",
    "TPMRequest",
    "TimedESAPI",
    "change_owner_auth",
    "close_all",
    "create_ek",
    "disable_hierarchy",
    "engine_from_env",
    "engine_unavailable",
    "leave_unstarted",
    "live_pids",
    "lock_out",
    "manufacture",
    "parse_engine",
    "parse_tcti",
    "preflight",
    "preflight_all",
    "remove_run_containers",
    "remove_run_everywhere",
    "reset_lockout",
    "schedule",
    "spread",
    "swtpm_binary",
]
