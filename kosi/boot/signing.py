"""UEFI Secure Boot (SecureBoot=): signing the EFI binaries kosi puts into the ESP, and the
key files systemd-boot enrolls by itself (SecureBootAutoEnroll=).

Signing is done by sbsign or systemd-sbsign (SecureBootSignTool=), from the tools tree when
it has them. UKIs are built unsigned and signed afterwards, like every other binary, so
that one code path (and one choice of tool) signs all of them. Binaries that came signed
by the distribution (Bootloader=*-signed, ShimBootloader=signed) are left as they are:
re-signing them with a local key would only add a signature nobody asked for.

The auto-enroll files are EFI signature lists of the certificate wrapped in an
authenticated-variable header (efitools: cert-to-efi-sig-list, sign-efi-sig-list), one
per variable: PK, KEK and db, the same certificate in each, each signed by the key.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from kosi import log
from kosi.config.values import KeySource
from kosi.errors import KosiError
from kosi.pipeline.tools import Tool, find_tool
from kosi.sandbox import Mount, run

#: what SecureBootSignTool=auto tries, best first (systemd-sbsign knows OpenSSL providers)
AUTO_TOOLS = ("systemd-sbsign", "sbsign")
#: the variables systemd-boot enrolls from loader/keys/<name>/ (in the order it writes them)
ENROLL_VARIABLES = ("PK", "KEK", "db")
ENROLL_DIRECTORY = "loader/keys/auto"
#: namespace of the signature owner GUID, which is derived from the certificate so that
#: the same key gives the same files (reproducible builds)
OWNER_NAMESPACE = uuid.UUID("6f3c1a8e-5b0d-4c47-9a3e-2d1f0b7c8e94")


@dataclass(frozen=True)
class SigningKey:
    key: str  # a PEM file, or a URI an engine/provider understands
    key_source: KeySource
    certificate: str
    certificate_source: KeySource

    def files(self) -> list[Path]:
        """The key and certificate files the signing tool has to see."""
        pairs = ((self.key, self.key_source), (self.certificate, self.certificate_source))
        return [Path(value) for value, source in pairs if source.type == "file"]


#: how to get a key and certificate that are missing
GENKEY_HINT = "run `kosi genkey` to create mkosi.key and mkosi.crt"


def require_key_settings(values: dict[str, object], unset: str) -> None:
    """The key and certificate settings in `values` (setting -> value) are set, or one line:
    `unset` with {setting} and {default} (its default file) filled in."""
    for setting, value in values.items():
        if not value:
            default = "mkosi.key" if setting.endswith("Key") else "mkosi.crt"
            raise KosiError(unset.format(setting=setting, default=default), hint=GENKEY_HINT)


def existing_files(prefix: str, signing: SigningKey) -> SigningKey:
    """`signing` (from {prefix}Key= and {prefix}Certificate=), or one line naming the one that
    is a file that does not exist."""
    # files() leaves out a key or certificate that comes from an engine or provider: pair by source
    for setting, value, source in (
        (f"{prefix}Key", signing.key, signing.key_source),
        (f"{prefix}Certificate", signing.certificate, signing.certificate_source),
    ):
        if source.type == "file" and not Path(value).is_file():
            raise KosiError(f"{setting}={value}: no such file", hint=GENKEY_HINT)
    return signing


def signing_key(config) -> SigningKey:
    """SecureBootKey=/SecureBootCertificate= (and their sources), or one line saying how to get them."""
    key, certificate = config.secure_boot_key, config.secure_boot_certificate
    require_key_settings(
        {"SecureBootKey": key, "SecureBootCertificate": certificate},
        "SecureBoot=yes needs {setting}= (default: {default} in the configuration directory), which is not set",
    )
    return existing_files(
        "SecureBoot",
        SigningKey(str(key), config.secure_boot_key_source, str(certificate), config.secure_boot_certificate_source),
    )


def check_keys(config) -> None:
    """Before the build: SecureBoot=yes on an image that may boot needs its key and certificate,
    rather than failing once packages are installed."""
    from kosi.config.values import Feature

    if config.secure_boot and config.bootable != Feature.disabled:
        signing_key(config)


def choose_tool(setting: str, key: SigningKey, available: Callable[[str], bool]) -> str:
    """SecureBootSignTool= resolved to a program name; `available` says whether one can be found."""
    providers = "provider" in (key.key_source.type, key.certificate_source.type)
    if setting == "auto":
        candidates = [t for t in AUTO_TOOLS if available(t)]
        if providers:
            candidates = [t for t in candidates if t == "systemd-sbsign"]
        if not candidates:
            wanted = "systemd-sbsign" if providers else "systemd-sbsign or sbsign"
            raise KosiError(
                f"SecureBoot=yes needs {wanted}, found neither on the host nor in the tools tree",
                hint="use ToolsTree=default (it has both), or install sbsigntool",
            )
        return candidates[0]
    if setting == "sbsign" and providers:
        raise KosiError(
            "SecureBootSignTool=sbsign cannot load keys or certificates from OpenSSL providers",
            hint="use SecureBootSignTool=systemd-sbsign (or auto)",
        )
    if not available(setting):
        raise KosiError(
            f"SecureBootSignTool={setting}: {setting} is neither on the host nor in the tools tree",
            hint="use ToolsTree=default, or SecureBootSignTool=auto",
        )
    return setting


def sign_command(tool: str, program: str, key: SigningKey, unsigned: Path, signed: Path) -> list[str]:
    """The command that writes `signed`, a signed copy of the PE binary `unsigned`."""
    if tool == "sbsign":
        engine = ["--engine", key.key_source.source] if key.key_source.type == "engine" else []
        return [program, "--key", key.key, "--cert", key.certificate, *engine, "--output", str(signed), str(unsigned)]
    sources = []
    if key.key_source.type != "file":
        sources.append(f"--private-key-source={key.key_source.type}:{key.key_source.source}")
    if key.certificate_source.type != "file":
        sources.append(f"--certificate-source={key.certificate_source.type}:{key.certificate_source.source}")
    return [
        program,
        "sign",
        f"--private-key={key.key}",
        f"--certificate={key.certificate}",
        *sources,
        f"--output={signed}",
        str(unsigned),
    ]


class Signer:
    """Signs PE binaries in place with the configured key and tool."""

    def __init__(self, config, tools: Path | None):
        self.key = signing_key(config)
        name = choose_tool(config.secure_boot_sign_tool, self.key, lambda t: find_tool(t, tools) is not None)
        self.tool: Tool = find_tool(name, tools)  # type: ignore[assignment]

    def sign(self, path: Path) -> None:
        partial = path.with_name(f".{path.name}.signing")
        mounts = [Mount(d, str(d)) for d in sorted({path.parent, *(f.parent for f in self.key.files())})]
        cmd = sign_command(self.tool.name, self.tool.path, self.key, path, partial)
        result = run(
            cmd, sandbox=self.tool.sandbox(mounts), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise KosiError(
                f"{self.tool.name} could not sign {path.name}: {last_line(result.stderr, result.returncode)}"
            )
        os.replace(partial, path)
        log.debug(f"signed {path} with {self.tool.name}")


def last_line(output: bytes | None, status: int) -> str:
    lines = [l for l in (output or b"").decode(errors="replace").splitlines() if l.strip()]
    return lines[-1].strip() if lines else f"exit status {status}"


def type1_kernels(esp: Path) -> list[Path]:
    """The kernels the Type 1 entries in the ESP boot (their `linux` lines)."""
    kernels = []
    for entry in sorted((esp / "loader/entries").glob("*.conf")):
        for line in entry.read_text().splitlines():
            match = re.match(r"\s*linux\s+/?(\S+)", line)
            if match and (esp / match.group(1)).is_file():
                kernels.append(esp / match.group(1))
    return kernels


def binaries_to_sign(context, esp: Path, ukis: Sequence[Path]) -> list[Path]:
    """What SecureBoot=yes signs: the boot loader unless it came signed, every UKI kosi built
    (in the ESP and the copies kept for Format=uki / SplitArtifacts=uki) and Type 1 kernels
    (distribution kernels are signed for the distribution's key, not for ours)."""
    from kosi.boot.policy import bootloader

    loader = bootloader(context)
    paths: list[Path] = []
    if loader in ("systemd-boot", "grub"):
        paths += [esp / "EFI/BOOT/BOOTX64.EFI", esp / "EFI/systemd/systemd-bootx64.efi"]
    if not wants_prebuilt_uki(loader, context.config.unified_kernel_images):
        paths += sorted((esp / "EFI/Linux").glob("*.efi")) if (esp / "EFI/Linux").is_dir() else []
        paths += list(ukis)
        if loader in ("uki", "uki-signed"):
            paths.append(esp / "EFI/BOOT/BOOTX64.EFI")
    paths += type1_kernels(esp)
    unique: dict[Path, None] = {}
    for path in paths:
        if path.is_file() and not path.is_symlink():
            unique.setdefault(path, None)
    return list(unique)


def wants_prebuilt_uki(loader: str, unified_kernel_images: str) -> bool:
    """A signed Bootloader= variant takes the distribution's signed UKIs, unless
    UnifiedKernelImages=unsigned asks for local ones (to be signed with SecureBootKey=)."""
    return loader.endswith("-signed") and unified_kernel_images in ("auto", "signed")


def find_prebuilt_uki(root: Path, kver: str) -> Path | None:
    """A UKI the distribution ships with the kernel, e.g. Fedora's kernel-uki-virt
    (/usr/lib/modules/<kver>/vmlinuz-virt.efi)."""
    return next(iter(sorted((root / "usr/lib/modules" / kver).glob("vmlinuz*.efi"))), None)


def copy_prebuilt_uki(context, kver: str, output: Path) -> bool:
    """Put the pre-built UKI at `output` when Bootloader= wants one; False when kosi builds it."""
    from kosi.boot.policy import bootloader

    loader, setting = bootloader(context), context.config.unified_kernel_images
    if not wants_prebuilt_uki(loader, setting):
        return False
    prebuilt = find_prebuilt_uki(context.root, kver)
    if prebuilt is None:
        raise KosiError(
            f"Bootloader={loader} with UnifiedKernelImages={setting}: the image has no signed UKI for "
            f"kernel {kver} (/usr/lib/modules/{kver}/vmlinuz*.efi)",
            hint="set UnifiedKernelImages=unsigned to build one (signed with SecureBootKey= when "
            "SecureBoot=yes), or UnifiedKernelImages=none for Type 1 entries",
        )
    shutil.copyfile(prebuilt, output)
    return True


def owner_guid(certificate: Path) -> str:
    return str(uuid.uuid5(OWNER_NAMESPACE, hashlib.sha256(certificate.read_bytes()).hexdigest()))


def enroll_timestamp(source_date_epoch: int | None) -> str:
    """sign-efi-sig-list's -t: the time of the variable update, SourceDateEpoch= when set."""
    seconds = source_date_epoch if source_date_epoch is not None else int(time.time())
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def enroll_commands(
    key: SigningKey, esl: Path, directory: Path, timestamp: str, guid: str, programs: tuple[str, str]
) -> list[list[str]]:
    """efitools commands writing the certificate's signature list and PK/KEK/db.auth in `directory`."""
    to_esl, sign_esl = programs
    engine = ["-e", key.key_source.source] if key.key_source.type == "engine" else []
    commands = [[to_esl, "-g", guid, key.certificate, str(esl)]]
    for variable in ENROLL_VARIABLES:
        commands.append(
            [
                sign_esl,
                "-g",
                guid,
                "-t",
                timestamp,
                "-c",
                key.certificate,
                "-k",
                key.key,
                *engine,
                variable,
                str(esl),
                str(directory / f"{variable}.auth"),
            ]
        )
    return commands


def write_auto_enroll_keys(config, esp: Path, tools: Path | None, workspace: Path) -> Path:
    """loader/keys/auto/{PK,KEK,db}.auth in the ESP, which systemd-boot enrolls in VMs."""
    key = signing_key(config)
    if "provider" in (key.key_source.type, key.certificate_source.type):
        raise KosiError(
            "SecureBootAutoEnroll=yes: efitools cannot use keys from OpenSSL providers",
            hint="set SecureBootAutoEnroll=no, or use a key file or engine",
        )
    found = [find_tool(name, tools) for name in ("cert-to-efi-sig-list", "sign-efi-sig-list")]
    tools_found = [t for t in found if t is not None]
    if len(tools_found) != len(found):
        raise KosiError(
            "SecureBootAutoEnroll=yes needs efitools (cert-to-efi-sig-list, sign-efi-sig-list), "
            "found neither on the host nor in the tools tree",
            hint="use ToolsTree=default, or set SecureBootAutoEnroll=no",
        )
    directory = esp / ENROLL_DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    esl = workspace / "secure-boot-db.esl"
    tool = tools_found[0]
    mounts = [Mount(d, str(d)) for d in sorted({directory, workspace, *(f.parent for f in key.files())})]
    commands = enroll_commands(
        key,
        esl,
        directory,
        enroll_timestamp(config.source_date_epoch),
        owner_guid(Path(key.certificate)),
        (tools_found[0].path, tools_found[1].path),
    )
    for cmd in commands:
        result = run(cmd, sandbox=tool.sandbox(mounts), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            raise KosiError(
                f"SecureBootAutoEnroll=yes: {Path(cmd[0]).name} failed: {last_line(result.stdout, result.returncode)}"
            )
    return directory


def sign_once_per_content(signer: Signer, binaries: Sequence[Path]) -> None:
    """Sign each distinct binary once and copy the result to its other places (the two
    systemd-boot copies, a UKI in the ESP and its Format=uki copy): a signature carries its
    signing time, so signing copies one by one could leave them differing by a second."""
    signed: dict[bytes, Path] = {}
    for path in binaries:
        digest = hashlib.sha256(path.read_bytes()).digest()
        first = signed.get(digest)
        if first is None:
            signer.sign(path)
            signed[digest] = path
        else:
            partial = path.with_name(f".{path.name}.signing")
            shutil.copyfile(first, partial)
            os.replace(partial, path)


def secure_esp(context, esp: Path) -> None:
    """The last touch to the ESP tree: SecureBoot= signing, shim (ShimBootloader=) and the
    auto-enroll keys. Called once the boot loader, UKIs and Type 1 entries are in place."""
    from kosi import distributions
    from kosi.boot import shim

    config = context.config
    signer = Signer(config, context.tools) if config.secure_boot else None
    if signer is not None:
        binaries = binaries_to_sign(context, esp, list(context.state.ukis))
        log.info(
            f"SecureBoot=yes: signing {len(binaries)} EFI binaries with {signer.tool.name} ({signer.tool.where()})"
        )
        sign_once_per_content(signer, binaries)
    if config.shim_bootloader != "none":
        packages = distributions.get(config.distribution).bootloader_packages
        shim.install(esp, [context.root, context.workspace / shim.FETCHED], config.shim_bootloader, signer, packages)
    if config.secure_boot and config.secure_boot_auto_enroll:
        write_auto_enroll_keys(config, esp, context.tools, context.workspace)
