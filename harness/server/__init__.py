"""The reference server: AIK CA, identity provider, MDM enrollment, evaluator, report.

It imports nothing from scenarios: it knows only what a real service would.
"""

from ..errors import RbacError
from ._app import create_app
from ._clock import Clock, ManualClock, SystemClock
from ._config import Principal, ServerConfig
from ._rbac import load_rbac, parse_rbac
from ._serve import EmbeddedServer, bind_loopback, serve_foreground
from ._standalone import StandaloneServer, default_data_dir, prepare_standalone

__all__ = [
    "Clock",
    "EmbeddedServer",
    "ManualClock",
    "Principal",
    "RbacError",
    "ServerConfig",
    "StandaloneServer",
    "SystemClock",
    "bind_loopback",
    "create_app",
    "default_data_dir",
    "load_rbac",
    "parse_rbac",
    "prepare_standalone",
    "serve_foreground",
]
