"""Network conditions between a device and the services: real sockets on loopback."""

from ._endpoints import RefusingEndpoint, ResettingEndpoint
from ._flaky import FlakyEndpoint
from ._link import Fault, Link, Route, Rule

__all__ = ["Fault", "FlakyEndpoint", "Link", "RefusingEndpoint", "ResettingEndpoint", "Route", "Rule"]
