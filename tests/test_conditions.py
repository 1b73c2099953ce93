"""TPM conditions, platform control and the client's TPM probe, against a real swtpm."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from tpm2_pytss import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_CAP,
    TPM2_HC,
    TPM2B_SENSITIVE_CREATE,
    TPMT_SIG_SCHEME,
    TSS2_Exception,
)

from harness.client import PytssTPM, key_templates, probe_family
from harness.errors import TPMError
from harness.pki import CertificateAuthority, TPMIdentity
from harness.status import HResult, from_tpm_rc
from harness.tpm import (
    ControlChannel,
    ExternalTPM,
    PlatformControl,
    SwtpmBackend,
    SwtpmProcess,
    TimedESAPI,
    TPMRequest,
    change_owner_auth,
    disable_hierarchy,
    leave_unstarted,
    lock_out,
    manufacture,
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


# --- platform control: what firmware and power do to a TPM ----------------------------------


def transient_objects(tpm: SwtpmProcess) -> int:
    with TimedESAPI(tpm.tcti) as esapi:
        _, data = esapi.get_capability(TPM2_CAP.HANDLES, TPM2_HC.TRANSIENT_FIRST, 16)
    return len(data.data.handles)


def leave_a_transient_object(tpm: SwtpmProcess) -> None:
    # Closing the TSS context does not flush: without a resource manager the object stays.
    with TimedESAPI(tpm.tcti) as esapi:
        srk(esapi)


def test_a_reset_restarts_an_unstarted_tpm_and_drops_its_transient_objects(tpm: SwtpmProcess) -> None:
    assert isinstance(tpm, PlatformControl)
    leave_a_transient_object(tpm)
    assert transient_objects(tpm) == 1
    tpm.leave_unstarted()
    tpm.reset()
    assert transient_objects(tpm) == 0
    with TimedESAPI(tpm.tcti) as esapi:
        srk(esapi)  # started again: TPM2_Startup(CLEAR) was sent


def test_a_power_cycle_keeps_persistent_keys_and_loses_the_rest(tpm: SwtpmProcess) -> None:
    with TimedESAPI(tpm.tcti) as esapi:
        parent = srk(esapi)
        esapi.evict_control(ESYS_TR.OWNER, parent, 0x81000100)
    assert transient_objects(tpm) == 1
    tpm.power_cycle()
    assert transient_objects(tpm) == 0
    with TimedESAPI(tpm.tcti) as esapi:
        esapi.tr_from_tpmpublic(0x81000100)  # raises if the persistent key were gone


def test_clear_forgets_the_owner_and_its_keys_but_keeps_the_ek_certificate(swtpm_workdir: Path) -> None:
    tpm = SwtpmBackend().start(TPMRequest(), swtpm_workdir)
    try:
        issuer = CertificateAuthority.create("Clear Test CA", "Test Vendor", now=dt.datetime.now(dt.UTC))
        identity = TPMIdentity("id:49465800", "SLB9672", "id:001A000D")
        with TimedESAPI(tpm.tcti) as esapi:
            made = manufacture(esapi, identity=identity, issuer=issuer, now=dt.datetime.now(dt.UTC))
            persisted = srk(esapi)
            esapi.evict_control(ESYS_TR.OWNER, persisted, 0x81000100)
            change_owner_auth(esapi, b"another operating system's secret")
        tpm.clear()
        with TimedESAPI(tpm.tcti) as esapi:
            srk(esapi)  # the owner authorization is empty again
            with pytest.raises(TSS2_Exception):
                esapi.tr_from_tpmpublic(0x81000100)
        provider = PytssTPM(tpm.tcti)
        try:
            assert provider.endorsement_key().certificate == made.ek_certificate
        finally:
            provider.close()
    finally:
        tpm.close()


def test_a_tpm_without_platform_control_cannot_be_left_unstarted() -> None:
    external = ExternalTPM("mssim:host=127.0.0.1,port=1")
    assert not isinstance(external, PlatformControl)
    with pytest.raises(TPMError, match="has no platform interface"):
        leave_unstarted(external)


def test_a_control_channel_nobody_listens_on_is_reported(swtpm_workdir: Path) -> None:
    channel = ControlChannel(swtpm_workdir / "nobody.ctrl", timeout=1)
    assert not channel.answers()
    with pytest.raises(TPMError, match="does not answer"):
        channel.init()
