"""The harness's catalogue of TPM vendors and platforms: how the world is manufactured.

The reference server never reads this: it learns about a device only from what
the device sends.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vendor:
    key: str
    manufacturer_id: str  # TCG vendor id, "id:49465800"
    display: str
    organization: str
    ca_name: str
    model: str
    firmware: str  # "major.minor"


VENDORS: dict[str, Vendor] = {
    v.key: v
    for v in (
        Vendor(
            "infineon",
            "id:49465800",
            "Infineon",
            "Infineon Technologies AG",
            "Infineon OPTIGA(TM) RSA Manufacturing CA 042",
            "SLB9672",
            "26.13",
        ),
        Vendor(
            "nuvoton",
            "id:4E544300",
            "Nuvoton",
            "Nuvoton Technology Corporation",
            "Nuvoton TPM Root CA 2111",
            "NPCT75x",
            "7.2",
        ),
        Vendor(
            "stmicro",
            "id:53544D20",
            "STMicroelectronics",
            "STMicroelectronics NV",
            "STM TPM EK Intermediate CA 06",
            "ST33KTPM2X",
            "9.257",
        ),
        Vendor(
            "intel",
            "id:494E5443",
            "Intel",
            "Intel Corporation",
            "Intel PTT EK Platform CA",
            "PTT",
            "600.18",
        ),
        Vendor(
            "amd",
            "id:414D4400",
            "AMD",
            "Advanced Micro Devices, Inc.",
            "AMDTPM ECC EK CA",
            "AMD fTPM",
            "3.87",
        ),
        Vendor(
            "microsoft",
            "id:4D534654",
            "Microsoft",
            "Microsoft Corporation",
            "Global Virtual TPM CA - 03",
            "Virtual TPM",
            "1.38",
        ),
        # Microsoft Pluton as the TPM of a physical PC (AMD Ryzen 6000 and later, Snapdragon X):
        # TPM_PT_MANUFACTURER "MSFT" like a Hyper-V vTPM; only the vendor string, the EK
        # certificate's tpmModel, tells them apart. The CA name and firmware are the harness's
        # stand-ins, not published values.
        Vendor(
            "pluton",
            "id:4D534654",
            "Microsoft Pluton",
            "Microsoft Corporation",
            "Microsoft Pluton TPM EK CA",
            "Pluton.TPM.A",
            "6.1",
        ),
        # VMware's vTPM reports TPM_PT_MANUFACTURER "VMW" and carries an EK certificate
        # signed by the vCenter's VMware Certificate Authority (VMCA).
        Vendor(
            "vmware",
            "id:564D5700",
            "VMware",
            "VMware, Inc.",
            "VMware Certificate Authority",
            "VMware Virtual TPM",
            "1.0",
        ),
        # libtpms, the TPM behind swtpm (QEMU/KVM, Xen) and VirtualBox 7's vTPM, reports
        # TPM_PT_MANUFACTURER "IBM"; swtpm_setup signs its EK certificates with a local CA.
        Vendor(
            "ibm",
            "id:49424D00",
            "IBM",
            "swtpm",
            "swtpm-localca",
            "swtpm",
            "0.20",
        ),
    )
}


# A contract manufacturer's EK CA, trusted like a vendor's: it signs the EK certificates of
# TPMs whose vendor id a scenario gives raw (id:XXXXXXXX), so the only fault left in their
# chain is the one the scenario chose.
ODM_CA = ("odm", "Contoso Devices Platform EK CA", "Contoso Devices Ltd")


def unlisted_ca_key(vendor_key: str) -> str:
    """The CA key of a vendor's newer EK CA that the AIK CA has not imported."""
    return f"{vendor_key}-unlisted"


def firmware_version(text: str) -> str:
    """'7.85' -> 'id:00070055' (16 bits major, 16 bits minor); 'id:…' is kept as it is."""
    if text.lower().startswith("id:"):
        value = text[3:]
        if len(value) != 8 or not all(c in "0123456789abcdefABCDEF" for c in value):
            raise ValueError(f"firmware '{text}' is not id: and 8 hex digits")
        return "id:" + value.upper()
    major, dot, minor = text.partition(".")
    if not (major.isdigit() and (not dot or minor.isdigit())):
        raise ValueError(f"firmware '{text}' is not 'major.minor' or 'id:XXXXXXXX'")
    major_value, minor_value = int(major), int(minor or 0)
    if major_value > 0xFFFF or minor_value > 0xFFFF:
        raise ValueError(f"firmware '{text}' does not fit 16.16 bits")
    return f"id:{major_value:04X}{minor_value:04X}"


@dataclass(frozen=True)
class PlatformProfile:
    """What Windows reports on a platform (SMBIOS manufacturer and model) and its TPM."""

    manufacturer: str
    model: str
    tpm_vendor: str
    name_prefix: str


PLATFORMS: dict[str, PlatformProfile] = {
    "hyper-v": PlatformProfile("Microsoft Corporation", "Virtual Machine", "microsoft", "HV"),
    "azure-vm": PlatformProfile("Microsoft Corporation", "Virtual Machine", "microsoft", "AZ"),
    "avd": PlatformProfile("Microsoft Corporation", "Virtual Machine", "microsoft", "AVD"),
    "cloud-pc": PlatformProfile(
        "Microsoft Corporation", "Cloud PC Enterprise 2vCPU/8GB/128GB", "microsoft", "CPC"
    ),
    "dev-box": PlatformProfile("Microsoft Corporation", "Microsoft Dev Box 8vCPU/32GB", "microsoft", "DBX"),
    # Third-party hypervisors, by the SMBIOS system manufacturer and product name their
    # guests report (VMware 7.x hardware, VirtualBox, QEMU's q35 machine, Parallels, Xen HVM).
    "vmware": PlatformProfile("VMware, Inc.", "VMware7,1", "vmware", "VMW"),
    "virtualbox": PlatformProfile("innotek GmbH", "VirtualBox", "ibm", "VBOX"),
    "kvm": PlatformProfile("QEMU", "Standard PC (Q35 + ICH9, 2009)", "ibm", "KVM"),
    # Parallels' vTPM manufacturer id is not published; libtpms's stands in for it.
    "parallels": PlatformProfile(
        "Parallels Software International Inc.", "Parallels Virtual Platform", "ibm", "PRL"
    ),
    "xen": PlatformProfile("Xen", "HVM domU", "ibm", "XEN"),
}

# Physical laptops and desktops a fleet is drawn from when a group names no hardware.
PHYSICAL_MODELS: tuple[tuple[str, str, str], ...] = (
    ("LENOVO", "ThinkPad T14 Gen 4", "infineon"),
    ("LENOVO", "ThinkPad X1 Carbon Gen 11", "intel"),
    ("Dell Inc.", "Latitude 7440", "nuvoton"),
    ("Dell Inc.", "OptiPlex 7010", "stmicro"),
    ("HP", "HP EliteBook 840 G10", "infineon"),
    ("Microsoft Corporation", "Surface Laptop 5", "nuvoton"),
    ("ASUSTeK COMPUTER INC.", "ExpertBook B9403CVA", "amd"),
    # Pluton as the TPM: Lenovo's ThinkPad Z13 (AMD Ryzen 6000 Pro), the first PC shipped with
    # it, and Surface Laptop, 7th Edition (Snapdragon X).
    ("LENOVO", "ThinkPad Z13 Gen 1", "pluton"),
    ("Microsoft Corporation", "Surface Laptop, 7th Edition", "pluton"),
)
