"""SignExpectedPcr= and SplitArtifacts=pcrs on a real Debian UKI with two profiles.

`kosi genkey`'s key and certificate are the defaults of SignExpectedPcrKey=/Certificate=, so
SignExpectedPcr=auto signs (systemd-measure is in the tools tree). Every profile's .pcrsig
is checked with openssl against the UKI's .pcrpkey, and its policy against one computed here
from the UKI's own sections (PCR 11 as systemd-stub extends it, then the TPM2 PolicyPCR
digest); <Output>.pcrs must hold the same PCR 11 values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess
from pathlib import Path

import pytest

from kosi.errors import KosiError
from tests.boot.pe_cpio import pe_sections

CONF = """\
[Distribution]
Distribution=debian
Release=trixie

[Output]
Format=uki
SplitArtifacts=pcrs

[Content]
Bootable=yes
Packages=linux-image-amd64
KernelCommandLine=quiet
"""
PROFILES = {
    "10-debug.conf": "[UKIProfile]\nProfile=ID=debug\nCmdline=systemd.log_level=debug\n",
    "20-rescue.conf": "[UKIProfile]\nProfile=ID=rescue\nCmdline=systemd.unit=rescue.target\n",
}
#: the order in which systemd-stub measures sections into PCR 11 (.pcrsig is not measured)
MEASURED = (".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrpkey",
            ".profile", ".dtbauto", ".hwids")  # fmt: skip
PHASES = ("enter-initrd", "leave-initrd", "sysinit", "ready")


def extend(pcr: bytes, data: bytes) -> bytes:
    return hashlib.sha256(pcr + hashlib.sha256(data).digest()).digest()


def pcr11(sections: dict[str, bytes]) -> list[bytes]:
    """PCR 11 after each boot phase, for a profile's `sections` (name -> content)."""
    pcr = bytes(32)
    for name in MEASURED:
        if name in sections:
            pcr = extend(pcr, name.encode() + b"\0")
            pcr = extend(pcr, sections[name])
    values = []
    for phase in PHASES:
        pcr = extend(pcr, phase.encode())
        values.append(pcr)
    return values


def policy_pcr(value: bytes) -> bytes:
    """TPM2_PolicyPCR over PCR 11 of the sha256 bank, starting from an empty policy."""
    selection = struct.pack(">IHB", 1, 0x000B, 3) + bytes([0, 0x08, 0])
    return hashlib.sha256(bytes(32) + struct.pack(">I", 0x17F) + selection + hashlib.sha256(value).digest()).digest()


def profiles_of(uki: bytes) -> list[tuple[dict[str, bytes], dict]]:
    """(sections as the profile is measured, its .pcrsig) for the base and every profile."""
    sections = pe_sections(uki)
    base: dict[str, bytes] = {}
    out = []
    current: dict[str, bytes] = {}
    for name, content in sections:
        if name == ".pcrsig":
            out.append((dict(current), json.loads(content.rstrip(b"\0"))))
            continue
        if name == ".profile" and out:  # a joined profile starts: it overrides the base's sections
            current = {k: v for k, v in base.items() if k != ".profile"}
        current[name] = content
        if not out:
            base = current
    return out


@pytest.fixture(scope="module")
def pcr_project(tmp_path_factory, kosi_build) -> Path:
    project = tmp_path_factory.mktemp("pcrs")
    (project / "mkosi.conf").write_text(CONF)
    (project / "mkosi.uki-profiles").mkdir()
    for name, text in PROFILES.items():
        (project / "mkosi.uki-profiles" / name).write_text(text)
    (project / "mkosi.output").mkdir()
    genkey = subprocess.run(
        ["python3", str(Path(__file__).resolve().parents[2] / "bin/kosi"), "-C", str(project), "genkey"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert genkey.returncode == 0, genkey.stdout
    result = kosi_build(project)
    (project / "build.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    return project


def openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.image
def test_every_profile_has_a_pcr_signature_that_verifies(pcr_project, tmp_path):
    uki = (pcr_project / "mkosi.output/image.efi").read_bytes()
    names = [name for name, _ in pe_sections(uki)]
    assert names.count(".pcrpkey") == 1 and names.count(".pcrsig") == 3 and names.count(".profile") == 3
    pcrpkey = dict(pe_sections(uki))[".pcrpkey"]
    (tmp_path / "pcrpkey.pem").write_bytes(pcrpkey)
    # the embedded public key is the one of genkey's certificate
    certificate_key = openssl("x509", "-in", str(pcr_project / "mkosi.crt"), "-noout", "-pubkey").stdout
    assert certificate_key.strip() == pcrpkey.rstrip(b"\0").strip()
    # systemd's key fingerprint: sha256 of the PKCS#1 RSAPublicKey, DER
    der = openssl("rsa", "-pubin", "-in", str(tmp_path / "pcrpkey.pem"), "-RSAPublicKey_out", "-outform", "DER").stdout
    profiles = profiles_of(uki)
    assert [sections[".profile"].split(b"\n")[0] for sections, _ in profiles] == [b"ID=main", b"ID=debug", b"ID=rescue"]
    policies = set()
    for sections, pcrsig in profiles:
        expected = {policy_pcr(value).hex() for value in pcr11(sections)}
        entries = pcrsig["sha256"]
        assert {tuple(entry["pcrs"]) for entry in entries} == {(11,)}
        assert {entry["pol"] for entry in entries} == expected  # one policy per boot phase
        policies |= expected
        for index, entry in enumerate(entries):
            assert entry["pkfp"] == hashlib.sha256(der).hexdigest()
            (tmp_path / "pol").write_bytes(bytes.fromhex(entry["pol"]))
            (tmp_path / "sig").write_bytes(base64.b64decode(entry["sig"]))
            verify = openssl(
                "dgst", "-sha256", "-verify", str(tmp_path / "pcrpkey.pem"), "-signature", str(tmp_path / "sig"),
                str(tmp_path / "pol"),
            )  # fmt: skip
            assert verify.returncode == 0, verify.stdout
            if index == 0:  # a signature of another policy does not verify
                (tmp_path / "pol").write_bytes(bytes(32))
                assert openssl(
                    "dgst", "-sha256", "-verify", str(tmp_path / "pcrpkey.pem"), "-signature", str(tmp_path / "sig"),
                    str(tmp_path / "pol"),
                ).returncode != 0  # fmt: skip
    assert len(policies) == 12  # the profiles differ, so do their policies


@pytest.mark.image
def test_split_pcrs_are_the_default_profiles_pcr11(pcr_project):
    uki = (pcr_project / "mkosi.output/image.efi").read_bytes()
    digests = json.loads((pcr_project / "mkosi.output/image.pcrs").read_text())
    base, _ = profiles_of(uki)[0]
    expected = pcr11(base)
    assert [(entry["pcr"], entry["phase"]) for entry in digests["sha256"]] == [
        (11, "enter-initrd"),
        (11, "enter-initrd:leave-initrd"),
        (11, "enter-initrd:leave-initrd:sysinit"),
        (11, "enter-initrd:leave-initrd:sysinit:ready"),
    ]
    assert [entry["hash"] for entry in digests["sha256"]] == [value.hex() for value in expected]


@pytest.mark.image
def test_unsigned_profile_is_refused_by_ukify_without_sign_profile(default_tools_tree, tmp_path):
    """SignExpectedPcr=no in a [UKIProfile] needs ukify's --sign-profile=; the tools tree's
    ukify 257 lacks it, and signing the profile anyway is refused."""
    from kosi.boot.pcrs import ukify_pcr_arguments, ukify_supports
    from kosi.config.model import Config
    from kosi.tools.command import tools_command

    (tmp_path / "k.key").write_text("key")
    (tmp_path / "k.crt").write_text("crt")
    config = Config({"SignExpectedPcrKey": tmp_path / "k.key", "SignExpectedPcrCertificate": tmp_path / "k.crt"})
    sandbox = tools_command(default_tools_tree, [tmp_path])
    assert ukify_pcr_arguments(config, sandbox, [("debug", True)])[:2] == [
        "--pcr-banks=sha256",
        f"--pcr-private-key={tmp_path / 'k.key'}",
    ]
    if ukify_supports("--sign-profile", sandbox):
        assert "--sign-profile=debug" in ukify_pcr_arguments(config, sandbox, [("debug", True), ("rescue", False)])
        return
    with pytest.raises(KosiError, match="UKI profile rescue: SignExpectedPcr=no needs ukify's --sign-profile="):
        ukify_pcr_arguments(config, sandbox, [("debug", True), ("rescue", False)])
