"""TPM conditions and the client's TPM probe, against a real swtpm."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tpm2_pytss import ESYS_TR, TPM2_ALG, TPM2B_SENSITIVE_CREATE, TPMT_SIG_SCHEME, TSS2_Exception

from harness.client import key_templates, probe_family
from harness.hresult import HResult, from_tpm_rc
from harness.tpm import (
    SwtpmBackend,
    SwtpmProcess,
    TimedESAPI,
    TPMRequest,
    change_owner_auth,
    disable_hierarchy,
    leave_unstarted,
    lock_out,
    reset_lockout,
)

from .conftest import needs_swtpm

pytestmark = needs_swtpm


@pytest.fixture
def tpm(swtpm_workdir: Path) -> Iterator[SwtpmProcess]:
    backend = SwtpmBackend()
    device = backend.start(TPMRequest(), swtpm_workdir)
    yield device
    device.close()


def hresult_of(exc: TSS2_Exception) -> int:
    return from_tpm_rc(int(exc.rc))


def srk(esapi: TimedESAPI) -> object:
    handle, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), key_templates.srk(), ESYS_TR.OWNER)
    return handle


def certify_with_new_aik(esapi: TimedESAPI) -> None:
    parent = srk(esapi)
    private, public, *_ = esapi.create(parent, TPM2B_SENSITIVE_CREATE(), key_templates.aik())
    aik = esapi.load(parent, private, public)
    try:
        esapi.certify(aik, aik, b"nonce", TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL))
    finally:
        esapi.flush_context(aik)
        esapi.flush_context(parent)


def test_wrong_pins_lock_the_tpm_out_until_reset(tpm: SwtpmProcess) -> None:
    with TimedESAPI(tpm.tcti) as esapi:
        attempts = lock_out(esapi, max_tries=3)
        assert attempts == 4  # three failures count, the fourth meets the lockout
    with TimedESAPI(tpm.tcti) as esapi:
        # The AIK, like Windows' keys, is subject to dictionary-attack protection.
        with pytest.raises(TSS2_Exception) as caught:
            certify_with_new_aik(esapi)
        assert hresult_of(caught.value) == HResult.TPM_E_LOCKOUT
        reset_lockout(esapi)
        certify_with_new_aik(esapi)


def test_unknown_owner_auth_refuses_the_storage_root_key(tpm: SwtpmProcess) -> None:
    with TimedESAPI(tpm.tcti) as esapi:
        change_owner_auth(esapi, b"not Windows")
    with TimedESAPI(tpm.tcti) as esapi, pytest.raises(TSS2_Exception) as caught:
        srk(esapi)
    assert hresult_of(caught.value) == HResult.TPM_E_BAD_AUTH


@pytest.mark.parametrize(
    ("hierarchy", "handle"), [("endorsement", ESYS_TR.ENDORSEMENT), ("storage", ESYS_TR.OWNER)]
)
def test_disabled_hierarchy_refuses_primary_keys(tpm: SwtpmProcess, hierarchy: str, handle: int) -> None:
    with TimedESAPI(tpm.tcti) as esapi:
        disable_hierarchy(esapi, hierarchy)  # type: ignore[arg-type]
    with TimedESAPI(tpm.tcti) as esapi, pytest.raises(TSS2_Exception) as caught:
        esapi.create_primary(TPM2B_SENSITIVE_CREATE(), key_templates.srk(), handle)
    assert hresult_of(caught.value) == HResult.TPM_E_HIERARCHY


def test_reset_without_startup_leaves_the_tpm_uninitialised(tpm: SwtpmProcess) -> None:
    leave_unstarted(tpm)
    with TimedESAPI(tpm.tcti) as esapi, pytest.raises(TSS2_Exception) as caught:
        srk(esapi)
    assert hresult_of(caught.value) == HResult.TPM_E_INITIALIZE


def test_client_probe_tells_tpm_1_2_from_2_0(swtpm_workdir: Path, tpm: SwtpmProcess) -> None:
    assert probe_family(tpm.tcti) == "2.0"
    old = SwtpmBackend().start(TPMRequest(family="1.2"), swtpm_workdir)
    try:
        assert probe_family(old.tcti) == "1.2"
    finally:
        old.close()
