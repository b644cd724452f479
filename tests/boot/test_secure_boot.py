"""SecureBoot=, SecureBootAutoEnroll=, SecureBootSignTool=, Bootloader=*-signed and ShimBootloader=.

Two real Debian trixie disk images are built once per session: one with SecureBoot=yes,
auto-enrollment and ShimBootloader=unsigned (shim, systemd-boot and a UKI, all signed with a
key made by `kosi genkey`, systemd-sbsign picked by SecureBootSignTool=auto), one with
Debian's signed shim and pre-signed systemd-boot in front of Type 1 entries whose kernels
sbsign signs. Their ESPs (SplitArtifacts=
partitions) are read with mtools and checked with sbverify from the tools tree. Booting
with Firmware=uefi-secure-boot needs SMM, which this host's qemu lacks, so no test boots.
"""

from __future__ import annotations

import struct
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from kosi.boot import shim, signing, systemd_boot
from kosi.config.values import Feature, KeySource
from kosi.distributions.debian import Debian
from kosi.errors import KosiError
from tests.conftest import BOOTABLE_CONF, REPO, build_project

FILE = KeySource()
EFI_CERT_X509 = uuid.UUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")


def key(key_source=FILE, certificate_source=FILE):
    return signing.SigningKey("/k/mkosi.key", key_source, "/k/mkosi.crt", certificate_source)


# ---- pure logic -----------------------------------------------------------------------------


def test_copies_of_one_binary_are_signed_once_and_stay_equal(tmp_path):
    class CountingSigner:
        calls: list[str] = []

        def sign(self, path):
            self.calls.append(path.name)
            path.write_bytes(path.read_bytes() + f"signed at {len(self.calls)}".encode())

    loader, copy, uki = tmp_path / "BOOTX64.EFI", tmp_path / "systemd-bootx64.efi", tmp_path / "linux.efi"
    loader.write_bytes(b"MZboot")
    copy.write_bytes(b"MZboot")
    uki.write_bytes(b"MZuki")
    signer = CountingSigner()
    signing.sign_once_per_content(signer, [loader, copy, uki])
    assert signer.calls == ["BOOTX64.EFI", "linux.efi"]
    assert copy.read_bytes() == loader.read_bytes() == b"MZbootsigned at 1"
    assert uki.read_bytes() == b"MZukisigned at 2"
    assert not list(tmp_path.glob(".*"))


def test_sbsign_command():
    cmd = signing.sign_command("sbsign", "/usr/bin/sbsign", key(), Path("/e/in.efi"), Path("/e/out.efi"))
    assert cmd == [
        "/usr/bin/sbsign",
        "--key",
        "/k/mkosi.key",
        "--cert",
        "/k/mkosi.crt",
        "--output",
        "/e/out.efi",
        "/e/in.efi",
    ]
    engine = signing.sign_command("sbsign", "sbsign", key(KeySource("engine", "pkcs11")), Path("i"), Path("o"))
    assert engine[5:7] == ["--engine", "pkcs11"]


def test_systemd_sbsign_command_passes_sources():
    cmd = signing.sign_command(
        "systemd-sbsign",
        "/usr/lib/systemd/systemd-sbsign",
        key(KeySource("provider", "pkcs11"), KeySource("provider", "pkcs11")),
        Path("/e/in.efi"),
        Path("/e/out.efi"),
    )
    assert cmd == [
        "/usr/lib/systemd/systemd-sbsign",
        "sign",
        "--private-key=/k/mkosi.key",
        "--certificate=/k/mkosi.crt",
        "--private-key-source=provider:pkcs11",
        "--certificate-source=provider:pkcs11",
        "--output=/e/out.efi",
        "/e/in.efi",
    ]
    plain = signing.sign_command("systemd-sbsign", "s", key(), Path("i"), Path("o"))
    assert not any("source" in arg for arg in plain)


def test_auto_prefers_systemd_sbsign_and_falls_back():
    assert signing.choose_tool("auto", key(), lambda t: True) == "systemd-sbsign"
    assert signing.choose_tool("auto", key(), lambda t: t == "sbsign") == "sbsign"
    with pytest.raises(KosiError, match="systemd-sbsign or sbsign"):
        signing.choose_tool("auto", key(), lambda t: False)


def test_providers_need_systemd_sbsign():
    provider = key(KeySource("provider", "pkcs11"))
    with pytest.raises(KosiError, match="SecureBootSignTool=sbsign cannot"):
        signing.choose_tool("sbsign", provider, lambda t: True)
    with pytest.raises(KosiError, match="needs systemd-sbsign"):
        signing.choose_tool("auto", provider, lambda t: t == "sbsign")
    with pytest.raises(KosiError, match="SecureBootSignTool=systemd-sbsign: systemd-sbsign is neither"):
        signing.choose_tool("systemd-sbsign", key(), lambda t: t == "sbsign")


def config(**values):
    defaults = dict(
        secure_boot_key=None,
        secure_boot_certificate=None,
        secure_boot_key_source=FILE,
        secure_boot_certificate_source=FILE,
    )
    return SimpleNamespace(**{**defaults, **values})


def test_missing_key_or_certificate_names_setting_and_genkey(tmp_path):
    with pytest.raises(KosiError) as error:
        signing.signing_key(config())
    assert "SecureBootKey=" in str(error.value) and "kosi genkey" in error.value.hint
    (tmp_path / "mkosi.key").write_text("k")
    with pytest.raises(KosiError, match="SecureBootCertificate="):
        signing.signing_key(config(secure_boot_key=tmp_path / "mkosi.key"))
    with pytest.raises(KosiError, match="SecureBootCertificate=.*no such file"):
        signing.signing_key(
            config(secure_boot_key=tmp_path / "mkosi.key", secure_boot_certificate=tmp_path / "gone.crt")
        )


def test_build_without_key_fails_at_once_naming_genkey(tmp_path):
    """Checked before the tools tree or any package: one line, no traceback."""
    (tmp_path / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\n\n[Output]\nFormat=disk\n\n"
        "[Content]\nBootable=yes\n\n[Validation]\nSecureBoot=yes\n"
    )
    result = subprocess.run(
        [str(REPO / "bin/kosi"), "-C", str(tmp_path), "build"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "SecureBoot=yes needs SecureBootKey=" in result.stderr and "kosi genkey" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    genkey(tmp_path)  # with mkosi.key/mkosi.crt the check passes; Bootable=no needs no key
    signing.check_keys(
        config(
            secure_boot=True,
            bootable=Feature.enabled,
            secure_boot_key=tmp_path / "mkosi.key",
            secure_boot_certificate=tmp_path / "mkosi.crt",
        )
    )
    signing.check_keys(config(secure_boot=True, bootable=Feature.disabled))


def test_readable_key_is_refused_when_the_configuration_is_loaded(tmp_path):
    """The loader refuses every *Key= file others can read; SecureBootKey= included."""
    (tmp_path / "mkosi.conf").write_text("[Validation]\nSecureBoot=yes\nSecureBootKey=sb.key\n")
    (tmp_path / "sb.key").write_text("secret")
    (tmp_path / "sb.key").chmod(0o640)
    result = subprocess.run([str(REPO / "bin/kosi"), "-C", str(tmp_path), "summary"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "sb.key holds a secret but is readable by others" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    (tmp_path / "sb.key").chmod(0o600)
    ok = subprocess.run([str(REPO / "bin/kosi"), "-C", str(tmp_path), "summary"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


def test_enroll_commands_sign_pk_kek_db_with_one_owner(tmp_path):
    cmds = signing.enroll_commands(
        key(),
        tmp_path / "db.esl",
        tmp_path / "auto",
        "2024-01-01 00:00:00",
        "g",
        ("cert-to-efi-sig-list", "sign-efi-sig-list"),
    )
    assert cmds[0] == ["cert-to-efi-sig-list", "-g", "g", "/k/mkosi.crt", str(tmp_path / "db.esl")]
    assert [c[-3] for c in cmds[1:]] == ["PK", "KEK", "db"]
    assert [Path(c[-1]).name for c in cmds[1:]] == ["PK.auth", "KEK.auth", "db.auth"]
    assert all(c[c.index("-t") + 1] == "2024-01-01 00:00:00" for c in cmds[1:])
    assert signing.enroll_timestamp(0) == "1970-01-01 00:00:00"


def test_type1_kernels_follow_the_entries(tmp_path):
    esp = tmp_path / "esp"
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"MZ")
    systemd_boot.write_type1_entry(esp, "debian", "6.12", kernel, [], "rw", "Debian")
    assert signing.type1_kernels(esp) == [esp / "debian/6.12/linux"]


def put(path, content=b"MZ"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_signed_systemd_boot_needs_the_signed_package(tmp_path):
    root = tmp_path / "root"
    put(root / systemd_boot.BINARY)
    assert systemd_boot.missing_packages(root, None, Debian.bootloader_packages) == ()
    assert systemd_boot.missing_packages(root, None, Debian.bootloader_packages, signed=True) == (
        "systemd-boot-efi-amd64-signed",
    )
    with pytest.raises(KosiError, match="systemd-boot-signed.*not in the image"):
        systemd_boot.install(tmp_path / "esp", root, None, signed=True)
    put(root / systemd_boot.SIGNED, b"MZsigned")
    assert systemd_boot.missing_packages(root, None, Debian.bootloader_packages, signed=True) == ()
    systemd_boot.install(tmp_path / "esp", root, None, signed=True)
    assert (tmp_path / "esp/EFI/BOOT/BOOTX64.EFI").read_bytes() == b"MZsigned"


def test_shim_goes_in_front_and_chains_to_grubx64(tmp_path):
    root, fetched, esp = tmp_path / "root", tmp_path / "fetched", tmp_path / "esp"
    with pytest.raises(KosiError, match="ShimBootloader=unsigned: .*shimx64.efi") as error:
        shim.install(esp, [root, fetched], "unsigned", packages=Debian.bootloader_packages)
    assert "shim-unsigned" in error.value.hint
    put(fetched / "usr/lib/shim/shimx64.efi", b"MZshim")
    put(fetched / "usr/lib/shim/mmx64.efi", b"MZmm")
    put(esp / "EFI/BOOT/BOOTX64.EFI", b"MZloader")
    signed = []
    shim.install(esp, [root, fetched], "unsigned", SimpleNamespace(sign=signed.append))
    assert (esp / "EFI/BOOT/BOOTX64.EFI").read_bytes() == b"MZshim"
    assert (esp / "EFI/BOOT/mmx64.efi").read_bytes() == b"MZmm"
    assert (esp / "EFI/BOOT/grubx64.efi").read_bytes() == b"MZloader"
    assert signed == [esp / "EFI/BOOT/BOOTX64.EFI", esp / "EFI/BOOT/mmx64.efi"]


def test_signed_bootloader_takes_the_prebuilt_uki_unless_unsigned(tmp_path):
    assert signing.wants_prebuilt_uki("systemd-boot-signed", "auto")
    assert signing.wants_prebuilt_uki("uki-signed", "signed")
    assert not signing.wants_prebuilt_uki("uki-signed", "unsigned")
    assert not signing.wants_prebuilt_uki("systemd-boot", "auto")
    context = SimpleNamespace(
        root=tmp_path / "root",
        config=SimpleNamespace(format="disk", bootloader="systemd-boot-signed", unified_kernel_images="signed"),
    )
    with pytest.raises(KosiError, match="no signed UKI for kernel 6.12") as error:
        signing.copy_prebuilt_uki(context, "6.12", tmp_path / "out.efi")
    assert "UnifiedKernelImages=unsigned" in error.value.hint
    put(tmp_path / "root/usr/lib/modules/6.12/vmlinuz-virt.efi", b"MZuki")
    assert signing.copy_prebuilt_uki(context, "6.12", tmp_path / "out.efi")
    assert (tmp_path / "out.efi").read_bytes() == b"MZuki"
    context.config.unified_kernel_images = "unsigned"
    assert not signing.copy_prebuilt_uki(context, "6.12", tmp_path / "other.efi")


def signed_boot(directory: Path, content: str, prebuilt: bool = False):
    """GenerateUKIs on test_steps' stand-in kernel with Bootloader=systemd-boot-signed."""
    from kosi.boot import steps
    from tests.boot.test_steps import KVER, loaded, with_kernel

    directory.mkdir()
    (directory / "my.initrd").write_bytes(b"initrd")
    context = with_kernel(
        loaded(
            directory,
            "[Output]\nFormat=disk\n[Content]\nKernelModulesInitrd=no\n"
            "Initrds=my.initrd\nBootloader=systemd-boot-signed\n" + content,
        )
    )
    if prebuilt:
        put(context.root / "usr/lib/modules" / KVER / "vmlinuz-virt.efi", b"MZuki")
    steps.GenerateUKIs().run(context)
    return context


def test_signed_boot_loader_takes_prebuilt_ukis_or_type1_entries(tmp_path):
    """UnifiedKernelImages=auto without a pre-built UKI: Type 1 entries (the distribution's
    signed kernel); with one: that UKI; =signed without one: one line."""
    from tests.boot.test_steps import KVER, TOKEN

    context = signed_boot(tmp_path / "auto", "")
    assert (context.root / "boot/loader/entries" / f"{TOKEN}-{KVER}.conf").exists()
    assert context.state.ukis == []
    with pytest.raises(KosiError, match=f"no signed UKI for kernel {KVER}"):
        signed_boot(tmp_path / "signed", "UnifiedKernelImages=signed\n")
    context = signed_boot(tmp_path / "prebuilt", "UnifiedKernelImages=signed\n", prebuilt=True)
    ukis = list((context.root / "boot/EFI/Linux").glob("*.efi"))
    assert [u.read_bytes() for u in ukis] == [b"MZuki"]


# ---- real images ----------------------------------------------------------------------------


def tool(tools: Path, directories, *cmd, check=True) -> subprocess.CompletedProcess:
    from kosi.tools.command import tools_command

    return subprocess.run(
        [*tools_command(tools, directories), *map(str, cmd)], capture_output=True, text=True, check=check
    )


def genkey(directory: Path) -> None:
    subprocess.run([str(REPO / "bin/kosi"), "-C", str(directory), "genkey"], check=True, capture_output=True)


def build(tmp_path_factory, name: str, extra_conf: str) -> Path:
    directory = tmp_path_factory.mktemp(name)
    (directory / "mkosi.conf").write_text(BOOTABLE_CONF + extra_conf)
    (directory / "mkosi.output").mkdir()
    genkey(directory)
    result = build_project(directory)
    (directory / "build.log").write_text(result.stdout)
    if result.returncode != 0:
        pytest.fail(f"building {name} failed:\n{result.stdout[-4000:]}")
    return directory


def extract_esp(project: Path, tools: Path) -> Path:
    """Every file of the ESP partition, copied out with mcopy."""
    esp = project / "mkosi.output/image.esp.raw"
    target = project / "esp"
    target.mkdir(exist_ok=True)
    tool(tools, [project], "mcopy", "-s", "-n", "-i", esp, "::/*", target)
    return target


@pytest.fixture(scope="session")
def secure_boot_esp(tmp_path_factory, default_tools_tree) -> Path:
    project = build(
        tmp_path_factory,
        "secure-boot",
        "\n[Content]\nShimBootloader=unsigned\n\n[Validation]\nSecureBoot=yes\nSecureBootAutoEnroll=yes\n",
    )
    return extract_esp(project, default_tools_tree)


@pytest.fixture(scope="session")
def shim_esp(tmp_path_factory, default_tools_tree) -> Path:
    project = build(
        tmp_path_factory,
        "shim",
        # The pre-signed systemd-boot is not listed (mkosi 27.1 stops without it, as BOOTABLE_CONF's
        # systemd-boot-efi satisfies systemd-boot): kosi installs it with the packages, in the one
        # transaction where systemd-boot's dpkg trigger does not fail for want of a mounted ESP.
        "\n[Content]\nBootloader=systemd-boot-signed\nShimBootloader=signed\nUnifiedKernelImages=none\n"
        "\n[Validation]\nSecureBoot=yes\nSecureBootAutoEnroll=no\nSecureBootSignTool=sbsign\n",
    )
    return extract_esp(project, default_tools_tree)


def verifies(tools: Path, binary: Path, certificate: Path) -> bool:
    result = tool(tools, [binary.parent, certificate.parent], "sbverify", "--cert", certificate, binary, check=False)
    return result.returncode == 0


@pytest.mark.image
def test_boot_loader_and_uki_are_signed_with_the_key(secure_boot_esp, default_tools_tree):
    project = secure_boot_esp.parent
    certificate = project / "mkosi.crt"
    ukis = sorted((secure_boot_esp / "EFI/Linux").glob("*.efi"))
    assert ukis, "no UKI in the ESP"
    boot = secure_boot_esp / "EFI/BOOT"
    systemd_boot_binary = secure_boot_esp / "EFI/systemd/systemd-bootx64.efi"
    # ShimBootloader=unsigned: shim in front, systemd-boot behind it as grubx64.efi, all signed by us.
    assert b"UEFI shim" in (boot / "BOOTX64.EFI").read_bytes()
    assert (boot / "grubx64.efi").read_bytes() == systemd_boot_binary.read_bytes()
    binaries = [
        boot / "BOOTX64.EFI",
        boot / "mmx64.efi",
        boot / "grubx64.efi",
        systemd_boot_binary,
        *ukis,
        project / "mkosi.output/image.efi",
    ]
    for binary in binaries:
        assert verifies(default_tools_tree, binary, certificate), binary
    # The check can fail: the same files against another certificate, and an unsigned systemd-boot.
    other = project / "other"
    other.mkdir()
    genkey(other)
    assert not any(verifies(default_tools_tree, b, other / "mkosi.crt") for b in binaries)
    unsigned = default_tools_tree / systemd_boot.BINARY
    assert not verifies(default_tools_tree, unsigned, certificate)


def signature_list_certificate(auth: bytes) -> bytes:
    """The X.509 certificate of an authenticated variable: EFI_TIME (16 bytes), then a
    WIN_CERTIFICATE_UEFI_GUID of dwLength bytes, then one EFI_SIGNATURE_LIST."""
    (cert_length,) = struct.unpack_from("<I", auth, 16)
    esl = auth[16 + cert_length :]
    signature_type = uuid.UUID(bytes_le=esl[:16])
    list_size, header_size, signature_size = struct.unpack_from("<III", esl, 16)
    assert signature_type == EFI_CERT_X509 and list_size == len(esl) and header_size == 0
    return esl[28 + 16 : 28 + signature_size]  # after the list header and the owner GUID


@pytest.mark.image
def test_auto_enroll_keys_hold_the_certificate(secure_boot_esp, default_tools_tree):
    project = secure_boot_esp.parent
    der = tool(
        default_tools_tree,
        [project],
        "openssl",
        "x509",
        "-in",
        project / "mkosi.crt",
        "-outform",
        "DER",
        "-out",
        project / "mkosi.der",
    )
    assert der.returncode == 0
    for variable in ("PK", "KEK", "db"):
        auth = (secure_boot_esp / "loader/keys/auto" / f"{variable}.auth").read_bytes()
        assert signature_list_certificate(auth) == (project / "mkosi.der").read_bytes(), variable


@pytest.mark.image
def test_shim_chains_to_the_presigned_systemd_boot(shim_esp, default_tools_tree):
    boot = shim_esp / "EFI/BOOT"
    assert sorted(p.name for p in boot.iterdir()) == ["BOOTX64.EFI", "grubx64.efi", "mmx64.efi"]
    certificate = shim_esp.parent / "mkosi.crt"
    # shim and systemd-boot keep the distribution's signatures (SecureBoot=yes does not re-sign them).
    listing = tool(default_tools_tree, [boot], "sbverify", "--list", boot / "BOOTX64.EFI").stdout
    assert "Microsoft" in listing
    loader = tool(default_tools_tree, [boot], "sbverify", "--list", boot / "grubx64.efi").stdout
    assert "Debian" in loader
    assert (boot / "grubx64.efi").read_bytes() == (shim_esp / "EFI/systemd/systemd-bootx64.efi").read_bytes()
    assert not verifies(default_tools_tree, boot / "grubx64.efi", certificate)
    # SecureBootAutoEnroll=no: loader/keys is there, as mkosi 27.1 makes it, but empty
    assert list((shim_esp / "loader/keys").iterdir()) == []
    log = (shim_esp.parent / "build.log").read_text()
    assert "Bootloader=systemd-boot-signed: installing systemd-boot-efi-amd64-signed with the packages" in log


@pytest.mark.image
def test_type1_kernels_carry_our_signature_and_debians(shim_esp, default_tools_tree):
    """UnifiedKernelImages=none: the kernels of the Type 1 entries are signed (sbsign here)."""
    kernels = signing.type1_kernels(shim_esp)
    assert kernels and not list((shim_esp / "EFI/Linux").glob("*.efi"))
    certificate = shim_esp.parent / "mkosi.crt"
    for kernel in kernels:
        assert verifies(default_tools_tree, kernel, certificate), kernel
        listing = tool(default_tools_tree, [kernel.parent], "sbverify", "--list", kernel).stdout
        assert "Debian" in listing and "mkosi of" in listing
    assert "signing 1 EFI binaries with sbsign" in (shim_esp.parent / "build.log").read_text()
