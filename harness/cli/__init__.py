"""The `harness` command line: run, validate, report, diff, serve, vendor-check, verify,
device and k8s. Each command is a thin layer over the package that does the work."""

from . import _evidence  # noqa: F401  (registers vendor-check and verify on the app)
from ._commands import app, main

__all__ = ["app", "main"]
