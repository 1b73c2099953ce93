"""TCG definitions shared by the manufacturer CAs, the client and the AIK CA.

The EK and AIK credential profiles put the TPM's manufacturer, model and
firmware version into a critical subjectAltName as a directoryName. Vendors
lay that name out differently (all three attributes in one RDN, or one RDN
each), so parsing accepts both.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

OID_TPM_MANUFACTURER = ObjectIdentifier("2.23.133.2.1")
OID_TPM_MODEL = ObjectIdentifier("2.23.133.2.2")
OID_TPM_VERSION = ObjectIdentifier("2.23.133.2.3")
OID_EK_CERTIFICATE = ObjectIdentifier("2.23.133.8.1")
OID_AIK_CERTIFICATE = ObjectIdentifier("2.23.133.8.3")

EK_CERT_NV_INDEX_RSA = 0x01C00002
EK_CERT_NV_INDEX_ECC = 0x01C0000A

# TCG vendor ID registry (the four ASCII characters of TPM_PT_MANUFACTURER).
TCG_VENDORS: dict[str, str] = {
    "414D4400": "AMD",
    "41544D4C": "Atmel",
    "4252434D": "Broadcom",
    "4353434F": "Cisco",
    "464C5953": "Flyslice",
    "474F4F47": "Google",
    "48504500": "HPE",
    "49424D00": "IBM",
    "49465800": "Infineon",
    "494E5443": "Intel",
    "4C454E00": "Lenovo",
    "4D534654": "Microsoft",
    "4E534D20": "National Semiconductor",
    "4E545A00": "Nationz",
    "4E544300": "Nuvoton",
    "51434F4D": "Qualcomm",
    "534D5343": "SMSC",
    "534D534E": "Samsung",
    "534E5300": "Sinosun",
    "53544D20": "STMicroelectronics",
    "54584E00": "Texas Instruments",
    "57454300": "Winbond",
}

MICROSOFT_VTPM_ID = "4D534654"


def vendor_hex(manufacturer_id: str) -> str:
    """Normalise 'id:49465800' or '49465800' to upper-case hex."""
    value = manufacturer_id.removeprefix("id:").strip().upper()
    if len(value) != 8 or any(c not in "0123456789ABCDEF" for c in value):
        raise ValueError(f"not a TCG manufacturer id: {manufacturer_id!r}")
    return value


def vendor_id_from_int(value: int) -> str:
    return f"{value:08X}"


@dataclass(frozen=True)
class TPMIdentity:
    """The TPM's manufacturer ('id:49465800'), model and firmware version ('id:00070002')."""

    manufacturer: str
    model: str
    version: str

    @property
    def vendor_hex(self) -> str:
        return vendor_hex(self.manufacturer)

    @property
    def vendor_name(self) -> str:
        return TCG_VENDORS.get(self.vendor_hex, "unknown")


def tpm_san(identity: TPMIdentity, *, one_rdn: bool = True) -> x509.SubjectAlternativeName:
    attributes = [
        x509.NameAttribute(OID_TPM_MANUFACTURER, identity.manufacturer),
        x509.NameAttribute(OID_TPM_MODEL, identity.model),
        x509.NameAttribute(OID_TPM_VERSION, identity.version),
    ]
    name = x509.Name([x509.RelativeDistinguishedName(attributes)]) if one_rdn else x509.Name(attributes)
    return x509.SubjectAlternativeName([x509.DirectoryName(name)])


def parse_tpm_san(cert: x509.Certificate) -> TPMIdentity | None:
    """The TPM identity in a certificate's SAN, whatever the RDN layout; None if absent."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    found: dict[ObjectIdentifier, str] = {}
    for directory_name in san.get_values_for_type(x509.DirectoryName):
        for rdn in directory_name.rdns:
            for attribute in rdn:
                if attribute.oid in (OID_TPM_MANUFACTURER, OID_TPM_MODEL, OID_TPM_VERSION):
                    value = attribute.value
                    found[attribute.oid] = value if isinstance(value, str) else value.decode()
    if OID_TPM_MANUFACTURER not in found:
        return None
    return TPMIdentity(
        manufacturer=found[OID_TPM_MANUFACTURER],
        model=found.get(OID_TPM_MODEL, ""),
        version=found.get(OID_TPM_VERSION, ""),
    )
