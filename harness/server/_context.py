"""What every route needs: configuration, clock, store and the server's own keys."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import ServiceFailure as ServiceFailure
from ..pki import CertificateAuthority, write_private
from ..status import HResult
from ..verifier import Policy
from ._clock import Clock
from ._config import Principal, ServerConfig
from ._rbac import default_admin
from ._report_cache import ReportCache
from ._secure import check_keys, private_dir
from ._store import Store


def bad_request(reason: str, error: str = "malformed_request") -> ServiceFailure:
    return ServiceFailure(400, error, HResult.E_FAIL, reason)


def unauthenticated(
    reason: str, *, realm: str, error: str = "unauthenticated", hresult: int = HResult.E_FAIL
) -> ServiceFailure:
    """401 with the WWW-Authenticate challenge every 401 carries (RFC 9110, section 15.5.2)."""
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
    return ServiceFailure(401, error, hresult, reason, headers=challenge)


def too_many_requests(error: str, reason: str, wait_seconds: float) -> ServiceFailure:
    """429 with Retry-After: whole seconds, at least one."""
    seconds = max(1, math.ceil(wait_seconds))
    return ServiceFailure(
        429, error, HResult.E_FAIL, f"{reason}; retry in {seconds} s", headers={"Retry-After": str(seconds)}
    )


@dataclass
class SigningKey:
    key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{path}: not an RSA key")
            key = loaded
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            write_private(
                path,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(key=key, kid=hashlib.sha256(spki).hexdigest()[:16])


@dataclass
class ServerContext:
    config: ServerConfig
    clock: Clock
    store: Store
    aik_ca: CertificateAuthority
    idp_key: SigningKey
    policy: Policy  # what the evaluator trusts; fixed for the server's life
    principals: dict[str, Principal] = field(default_factory=dict)  # bearer token -> principal
    admin_token_file: Path | None = None  # where the generated admin's token is, if one was made
    report_cache: ReportCache = field(init=False)

    def __post_init__(self) -> None:
        self.report_cache = ReportCache(self.store)

    @classmethod
    def open(cls, config: ServerConfig, clock: Clock) -> ServerContext:
        private_dir(config.data_dir)
        keys = private_dir(config.data_dir / "keys")
        if (keys / "aik-ca.cert.pem").exists():
            aik_ca = CertificateAuthority.load(keys, "aik-ca")
        else:
            aik_ca = CertificateAuthority.create(
                "Reference AIK CA", "Enrollment Attestation Harness", now=clock.now()
            )
            aik_ca.save(keys, "aik-ca")
        idp_key = SigningKey.load_or_create(keys / "idp.key.pem")
        check_keys(keys)
        policy = replace(
            config.trust.policy(
                own_aik_roots=(aik_ca.certificate,),
                own_token_keys={idp_key.kid: idp_key.key.public_key()},
            ),
            token_issuer=config.token_issuer,
            token_audience=config.token_audience,
        )
        principals, token_file = dict(config.principals), None
        if not principals:
            # A server nobody can administer is useless; make one admin and say where its token is.
            token_file = config.admin_token_path
            principals = default_admin(token_file)
        store = Store(config.db_path, action_timeout=config.attempt_timeout)
        return cls(config, clock, store, aik_ca, idp_key, policy, principals, token_file)
