"""Advisories with the published ranges, and trust stores read from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import TrustError
from harness.pki import TPMIdentity
from harness.trust import default_advisories, load_advisories, load_trust
from harness.verifier import matching_advisory, parse_version

INFINEON = "id:49465800"
STMICRO = "id:53544D20"
BUNDLE_TRUST = Path(__file__).parent / "data" / "bundles" / "trust"


def firmware(text: str) -> str:
    major, minor = (int(p) for p in text.split("."))
    return f"id:{major:04X}{minor:04X}"


def advisory_for(manufacturer: str, model: str, version: str) -> str | None:
    hit = matching_advisory(TPMIdentity(manufacturer, model, firmware(version)), default_advisories())
    return hit.name if hit else None


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("4.33", True),
        ("4.34", False),  # ADV170012 lists up to 4.33, then 4.40-4.42
        ("4.41", True),
        ("4.43", False),
        ("5.61", True),
        ("5.62", False),
        ("6.42", True),
        ("6.43", False),
        ("7.40", True),
        ("7.61", True),
        ("7.62", False),
        ("26.13", False),
        ("133.32", True),
        ("133.33", False),
    ],
)
def test_roca_uses_the_published_infineon_ranges(version: str, affected: bool) -> None:
    name = advisory_for(INFINEON, "SLB9670", version)
    assert (name == "ROCA (CVE-2017-15361)") is affected


def test_tpm_fail_on_stmicro_matches_only_the_named_model() -> None:
    assert advisory_for(STMICRO, "ST33TPHF2ESPI", "73.8") == "TPM-FAIL (CVE-2019-16863)"
    assert advisory_for(STMICRO, "ST33TPHF2ESPI", "73.20") is None
    assert advisory_for(STMICRO, "ST33KTPM2X", "73.8") is None


def test_every_shipped_advisory_cites_its_source() -> None:
    assert all(a.source for a in default_advisories())
    assert {a.name for a in default_advisories()} >= {
        "ROCA (CVE-2017-15361)",
        "TPM-FAIL (CVE-2019-16863)",
        "TPM-FAIL (CVE-2019-11090)",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4.43", (4, 43)), ("133.32", (133, 32)), ("id:0004002B", (4, 43)), ("11.8.65", (11, 8, 65))],
)
def test_versions_parse_to_number_tuples(text: str, expected: tuple[int, ...]) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    ("body", "line", "field"),
    [
        ("advisories:\n  - {name: x, manufacturer: 'id:49465800', affected: ['1.0']}\n", 2, "source"),
        (
            "advisories:\n  - name: x\n    source: y\n    manufacturer: 'id:49465800'\n"
            "    affected: ['4.x']\n",
            5,
            "advisories[0].affected[0]",
        ),
        (
            "advisories:\n  - name: x\n    source: y\n    manufacturer: nope\n    affected: ['1.0']\n",
            4,
            "advisories[0].manufacturer",
        ),
        (
            "advisories:\n  - name: x\n    source: y\n    manufacturer: 'id:49465800'\n"
            "    affected: ['5.0..4.0']\n",
            5,
            "advisories[0].affected[0]",
        ),
    ],
)
def test_bad_advisory_file_names_file_line_and_field(
    tmp_path: Path, body: str, line: int, field: str
) -> None:
    path = tmp_path / "advisories.yaml"
    path.write_text(body)
    with pytest.raises(TrustError) as caught:
        load_advisories(path)
    assert caught.value.line == line
    assert field in caught.value.field


def test_own_advisory_file_replaces_the_shipped_list(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "advisories:\n  - name: in-house\n    source: our lab\n    manufacturer: 'id:4E544300'\n"
        "    affected: ['7.0..7.2']\n"
    )
    store = load_trust(BUNDLE_TRUST, advisories=path)
    assert [a.name for a in store.advisories] == ["in-house"]
    assert matching_advisory(TPMIdentity("id:4E544300", "NPCT75x", firmware("7.2")), store.advisories)


def test_directory_store_reads_its_folders() -> None:
    store = load_trust(BUNDLE_TRUST)
    assert len(store.aik_roots) == 1 and len(store.ek_roots) == 1
    assert len(store.token_keys) == 1
    assert store.advisories == default_advisories()


def test_manifest_file_lists_its_certificates(tmp_path: Path) -> None:
    manifest = tmp_path / "trust.yaml"
    roots = sorted((BUNDLE_TRUST / "aik-roots").iterdir())
    manifest.write_text(f"aik_roots: ['{roots[0]}']\ntoken_audience: urn:other\n")
    store = load_trust(manifest)
    assert len(store.aik_roots) == 1 and not store.ek_roots
    assert store.token_audience == "urn:other"


@pytest.mark.parametrize(
    ("body", "field"),
    [("aik_roots: ['missing.pem']\n", "aik_roots[0]"), ("trusted: yes\n", "trusted")],
)
def test_bad_manifest_names_the_field(tmp_path: Path, body: str, field: str) -> None:
    manifest = tmp_path / "trust.yaml"
    manifest.write_text(body)
    with pytest.raises(TrustError) as caught:
        load_trust(manifest)
    assert caught.value.field == field


def test_a_file_that_is_no_certificate_is_refused(tmp_path: Path) -> None:
    (tmp_path / "aik-roots").mkdir()
    (tmp_path / "aik-roots" / "root.pem").write_text("not a certificate")
    with pytest.raises(TrustError, match=r"root\.pem"):
        load_trust(tmp_path)
