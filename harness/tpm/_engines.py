"""Docker engines as the harness sees them: where to reach one, how to trust it, how big it is.

A fleet can spread its devices over several engines (local sockets, tcp:// with TLS,
ssh://). Each is an Engine; its weight is its CPU count from `docker info`, since a
device's cost on an engine is TPM key generation, which is CPU-bound. spread() and
schedule() turn weights into device counts and a device order.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import BackendUnavailable, HarnessError

LOOPBACK = "127.0.0.1"
_REMOTE_SCHEMES = ("tcp", "ssh", "http", "https")


@dataclass(frozen=True)
class EngineTLS:
    """Client TLS for a tcp:// engine, as DOCKER_CERT_PATH lays it out (ca.pem, cert.pem, key.pem)."""

    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    verify: bool = True

    @classmethod
    def from_cert_path(cls, directory: Path, verify: bool = True) -> EngineTLS:
        return cls(directory / "ca.pem", directory / "cert.pem", directory / "key.pem", verify)


@dataclass(frozen=True)
class Engine:
    """One Docker engine: its URL, TLS, the address its published ports bind to, its weight."""

    url: str
    tls: EngineTLS | None = None
    # The host address the engine publishes device ports on. Loopback unless the user names
    # one: a device's TPM and its control channel are not for the network to reach.
    bind: str = LOOPBACK
    publish_host: str | None = None  # where the controller reaches published ports
    # How many devices it takes relative to the others; None until measured (`docker info` NCPU)
    # or given by the user (weight=N).
    weight: int | None = None

    @property
    def remote(self) -> bool:
        return urlsplit(self.url).scheme in _REMOTE_SCHEMES

    @property
    def host(self) -> str:
        """Where published ports are reached: the override, the bind address, or the engine's host."""
        if self.publish_host:
            return self.publish_host
        if self.bind not in (LOOPBACK, "0.0.0.0", "::"):
            return self.bind
        hostname = urlsplit(self.url).hostname
        return hostname if self.remote and hostname else LOOPBACK

    def check_reachable(self) -> None:
        """A remote engine publishing on its own loopback cannot be reached from here: say so."""
        if self.remote and _is_loopback(self.bind) and not self.publish_host:
            raise BackendUnavailable(
                f"engine {self.url} publishes device ports on its loopback, which this machine "
                "cannot reach; name an address of that host with HARNESS_DOCKER_BIND (or bind=...)"
            )

    def client(self, timeout: int = 30) -> Any:
        """A connected, pinged client; BackendUnavailable when the engine does not answer."""
        try:
            import docker
        except ImportError as exc:  # pragma: no cover - docker is a dependency of the package
            raise BackendUnavailable("the docker SDK is not installed (pip install 'docker[ssh]')") from exc
        try:
            tls: Any = False
            if self.tls is not None:
                tls = docker.tls.TLSConfig(
                    client_cert=(str(self.tls.client_cert), str(self.tls.client_key))
                    if self.tls.client_cert and self.tls.client_key
                    else None,
                    ca_cert=str(self.tls.ca_cert) if self.tls.ca_cert else None,
                    verify=self.tls.verify,
                )
            client = docker.DockerClient(base_url=self.url, tls=tls, timeout=timeout)
            client.ping()
        except Exception as exc:  # the SDK raises DockerException, requests', ssh and socket errors
            raise BackendUnavailable(f"no Docker engine answers ({self.url}): {exc}") from exc
        return client

    @property
    def spec(self) -> str:
        """The engine as parse_engine() reads it back: how it travels to other processes."""
        parts = [self.url, f"bind={self.bind}"]
        if self.publish_host:
            parts.append(f"publish-host={self.publish_host}")
        if self.weight is not None:
            parts.append(f"weight={self.weight}")
        if self.tls is not None and self.tls.ca_cert is not None:
            parts.append(f"tls={self.tls.ca_cert.parent}")
        return ",".join(parts)

    def measured(self) -> Engine:
        """This engine with its weight set: the user's, else its CPU count from `docker info`."""
        if self.weight is not None:
            return self
        client = self.client()
        try:
            cpus = int(client.info().get("NCPU") or 1)
        finally:
            client.close()
        return replace(self, weight=max(cpus, 1))


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def default_url() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def engine_from_env() -> Engine:
    """The engine the environment names: DOCKER_HOST, DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, and the
    harness's HARNESS_DOCKER_BIND and HARNESS_DOCKER_PUBLISH_HOST."""
    return parse_engine(default_url())


def parse_engine(spec: str) -> Engine:
    """'URL[,bind=ADDR][,publish-host=HOST][,weight=N][,tls=CERT_DIR]', as `--engine` takes it.

    Without bind=, HARNESS_DOCKER_BIND applies; TLS defaults to DOCKER_CERT_PATH when
    DOCKER_TLS_VERIFY is set, as the docker CLI does.
    """
    url, *options = [part.strip() for part in spec.split(",")]
    if not url or "://" not in url:
        raise HarnessError(
            f"engine '{spec}': expected a URL such as unix:///run/docker.sock, tcp://host:2376"
        )
    bind = os.environ.get("HARNESS_DOCKER_BIND") or LOOPBACK
    publish = os.environ.get("HARNESS_DOCKER_PUBLISH_HOST") or None
    weight: int | None = None
    tls: EngineTLS | None = None
    if os.environ.get("DOCKER_TLS_VERIFY") and urlsplit(url).scheme == "tcp":
        cert_path = Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
        tls = EngineTLS.from_cert_path(cert_path)
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not value:
            raise HarnessError(f"engine '{spec}': '{option}' is not key=value")
        if key == "bind":
            _check_address(spec, value)
            bind = value
        elif key == "publish-host":
            publish = value
        elif key == "weight":
            if not value.isdigit() or int(value) < 1:
                raise HarnessError(f"engine '{spec}': weight must be a whole number of 1 or more")
            weight = int(value)
        elif key == "tls":
            tls = EngineTLS.from_cert_path(Path(value))
        else:
            raise HarnessError(f"engine '{spec}': unknown option '{key}' (bind, publish-host, weight, tls)")
    return Engine(url=url, tls=tls, bind=bind, publish_host=publish, weight=weight)


def _check_address(spec: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise HarnessError(f"engine '{spec}': bind must be an IP address, not '{value}'") from exc


def spread(count: int, weights: Sequence[int]) -> list[int]:
    """How many of `count` devices each engine takes: proportional to weight, largest remainder."""
    if not weights or any(w < 1 for w in weights):
        raise HarnessError("engines need a weight of 1 or more each")
    total = sum(weights)
    shares = [count * w // total for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(count * weights[i] % total), i))
    for i in remainders[: count - sum(shares)]:
        shares[i] += 1
    return shares


def schedule(weights: Sequence[int]) -> list[int]:
    """One period of engine indexes in smooth weighted round-robin order.

    Device n goes to schedule[n % len(schedule)]: any run of consecutive devices is spread
    close to the weights, so a fleet cut short still used every engine.
    """
    if not weights or any(w < 1 for w in weights):
        raise HarnessError("engines need a weight of 1 or more each")
    current = [0] * len(weights)
    total = sum(weights)
    order: list[int] = []
    for _ in range(total):
        for i, weight in enumerate(weights):
            current[i] += weight
        chosen = max(range(len(weights)), key=lambda i: current[i])
        current[chosen] -= total
        order.append(chosen)
    return order
