"""Which platform is virtual is data (platforms.yaml), cited, replaceable through a trust store,
and judged on evidence: no swtpm needed."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from harness.catalog import PHYSICAL_MODELS, PLATFORMS, VENDORS
from harness.errors import TrustError
from harness.status import StatusDetail
from harness.trust import default_platforms, load_trust, parse_platforms, trust_for, verify_bundle

BUNDLES = Path(__file__).parent / "data" / "bundles"
NOW = dt.datetime.now(dt.UTC)

# SMBIOS strings (system manufacturer, product name) guests of each hypervisor or cloud report.
GUESTS = {
    "Hyper-V": ("Microsoft Corporation", "Virtual Machine"),
    "Windows 365": ("Microsoft Corporation", "Cloud PC Enterprise 2vCPU/8GB/128GB"),
    "Dev Box": ("Microsoft Corporation", "Microsoft Dev Box 8vCPU/32GB"),
    "VMware": ("VMware, Inc.", "VMware20,1"),
    "VirtualBox": ("innotek GmbH", "VirtualBox"),
    "VirtualBox 7": ("Oracle Corporation", "VirtualBox"),
    "QEMU q35": ("QEMU", "Standard PC (Q35 + ICH9, 2009)"),
    "Proxmox i440fx": ("QEMU", "Standard PC (i440FX + PIIX, 1996)"),
    "Parallels": ("Parallels Software International Inc.", "Parallels Virtual Platform"),
    "Parallels on Apple silicon": ("Parallels International GmbH.", "Parallels ARM Virtual Machine"),
    "Xen / Citrix Hypervisor": ("Xen", "HVM domU"),
    "AWS Nitro": ("Amazon EC2", "m7i.xlarge"),
    "Google Cloud": ("Google", "Google Compute Engine"),
    "Nutanix AHV": ("Nutanix", "AHV"),
    "OpenStack": ("OpenStack Foundation", "OpenStack Nova"),
}


def test_every_shipped_entry_cites_its_source() -> None:
    rules = default_platforms()
    assert rules.platforms and rules.tpms
    for rule in (*rules.platforms, *rules.tpms):
        assert rule.name and rule.source, rule


@pytest.mark.parametrize("guest", sorted(GUESTS))
def test_the_guests_of_hypervisors_and_clouds_are_virtual(guest: str) -> None:
    manufacturer, model = GUESTS[guest]
    assert default_platforms().virtual_platform(manufacturer, model) is not None, guest


@pytest.mark.parametrize(("manufacturer", "model", "vendor"), PHYSICAL_MODELS)
def test_the_catalogues_physical_pcs_are_not(manufacturer: str, model: str, vendor: str) -> None:
    rules = default_platforms()
    assert rules.virtual_platform(manufacturer, model) is None, model
    tpm = VENDORS[vendor]
    assert rules.virtual_tpm(tpm.manufacturer_id, tpm.model) is None, (model, tpm.model)


def test_the_catalogues_virtual_platforms_are_virtual() -> None:
    rules = default_platforms()
    for key, profile in PLATFORMS.items():
        assert rules.virtual_platform(profile.manufacturer, profile.model) is not None, key


def test_msft_alone_is_no_vtpm_the_vendor_string_decides() -> None:
    rules = default_platforms()
    pluton, vtpm = VENDORS["pluton"], VENDORS["microsoft"]
    assert pluton.manufacturer_id == vtpm.manufacturer_id == "id:4D534654"
    assert rules.virtual_tpm(pluton.manufacturer_id, pluton.model) is None
    assert rules.virtual_tpm(vtpm.manufacturer_id, vtpm.model) is not None
    assert rules.virtual_tpm("id:4D534654", "xCG fTPM") is not None  # Microsoft's reference TPM
    # A claim without evidence of the vendor string: MSFT could be either, VMW is always virtual.
    assert rules.virtual_tpm("id:4D534654", None) is None
    assert rules.virtual_tpm("id:564D5700", None) is not None


def test_a_platform_file_error_names_line_and_field() -> None:
    text = "platforms:\n  - name: x\n    source: y\n    vendor: z\n"
    with pytest.raises(TrustError, match=r"mine.yaml:4: platforms\[0\].vendor: unknown field"):
        parse_platforms(text, "mine.yaml")
    with pytest.raises(TrustError, match="source"):
        parse_platforms("tpms:\n  - name: x\n    manufacturer: id:4D534654\n", "mine.yaml")


def test_a_trust_store_replaces_the_platform_file_and_verify_follows_it(tmp_path: Path) -> None:
    """The recorded bundle (a LENOVO ThinkPad) attests with the shipped file and is a virtual
    machine with a file that says ThinkPads are: the data decides, offline as online."""
    trust = tmp_path / "trust"
    shutil.copytree(BUNDLES / "trust", trust)
    (trust / "mine.yaml").write_text(
        "platforms:\n  - name: Lab VMs posing as ThinkPads\n    source: our lab\n    model: ThinkPad*\n"
    )
    manifest = trust / "trust.yaml"
    manifest.write_text(manifest.read_text() + "platforms: mine.yaml\n")
    bundle = BUNDLES / "rsa-ek.json"
    shipped = verify_bundle(bundle, trust_for(bundle, None), at=None, now=NOW)
    assert shipped.verdict.detail is StatusDetail.NONE, shipped.verdict.decision
    replaced = verify_bundle(bundle, load_trust(trust), at=None, now=NOW)
    assert replaced.verdict.detail is StatusDetail.FEATURE_NOT_SUPPORTED
    assert "Lab VMs posing as ThinkPads" in replaced.verdict.decision


def test_a_written_trust_store_keeps_its_platform_file(tmp_path: Path) -> None:
    store = load_trust(BUNDLES / "trust")
    store.write(tmp_path)
    assert load_trust(tmp_path).platforms.platforms == store.platforms.platforms
    assert load_trust(tmp_path).platforms.tpms == store.platforms.tpms
