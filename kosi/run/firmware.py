"""Choosing the VM firmware (Firmware=) and finding its files.

UEFI firmware is found through qemu's firmware interop descriptors
(/usr/share/qemu/firmware/*.json, in the tools tree when one is used, else on the host),
which say which code/variables files implement which features.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

from kosi.errors import KosiError
from kosi.run.kvm import KvmVerdict

DESCRIPTOR_DIRS = ("usr/share/qemu/firmware", "etc/qemu/firmware")


@dataclass(frozen=True)
class UefiFirmware:
    code: Path
    variables: Path | None  # template of the variable store, copied per VM
    secure_boot: bool
    requires_smm: bool
    description: str


@dataclass(frozen=True)
class FirmwareChoice:
    kind: str  # uefi, uefi-secure-boot, bios, linux, linux-noinitrd
    reason: str = ""  # why auto chose this, or why a request was downgraded; empty if nothing to say

    @property
    def is_uefi(self) -> bool:
        return self.kind in ("uefi", "uefi-secure-boot")

    @property
    def direct_kernel(self) -> bool:
        return self.kind in ("linux", "linux-noinitrd")


def choose_firmware(requested: str, verdict: KvmVerdict, *, accel: str, has_esp: bool) -> FirmwareChoice:
    """Resolve Firmware=auto: secure boot when the accelerator offers SMM, plain UEFI otherwise;
    direct kernel boot when the image has no ESP to boot from."""
    if requested != "auto":
        return FirmwareChoice(requested)
    if not has_esp:
        return FirmwareChoice("linux", "the image has no ESP, booting its kernel directly")
    if accel == "kvm" and verdict.smm:
        return FirmwareChoice("uefi-secure-boot")
    if accel == "kvm":
        return FirmwareChoice("uefi", verdict.reason or "KVM has no System Management Mode")
    # Secure boot OVMF needs SMM, which TCG emulates only very slowly.
    return FirmwareChoice("uefi", "secure boot firmware needs System Management Mode, which is too slow without KVM")


def descriptors(root: Path = Path("/")) -> list[dict]:
    found: dict[str, Path] = {}
    for directory in DESCRIPTOR_DIRS:
        base = root / directory
        if base.is_dir():
            for path in sorted(base.glob("*.json")):
                found.setdefault(path.name, path)  # /etc overrides /usr only by name; keep first seen
    result = []
    for name in sorted(found):
        try:
            data = json.loads(found[name].read_text())
        except (OSError, ValueError):
            continue
        data["_path"] = str(found[name])
        result.append(data)
    return result


def matches_machine(descriptor: dict, arch: str, machine: str) -> bool:
    for target in descriptor.get("targets", []):
        if target.get("architecture") == arch and any(
            fnmatch.fnmatch(machine, m) or m.startswith(machine) for m in target.get("machines", [])
        ):
            return True
    return False


def find_uefi_firmware(
    *, secure_boot: bool, root: Path = Path("/"), arch: str = "x86_64", machine: str = "pc-q35-"
) -> UefiFirmware:
    candidates = []
    for d in descriptors(root):
        mapping = d.get("mapping", {})
        if "uefi" not in d.get("interface-types", []) or mapping.get("device") != "flash":
            continue
        if not matches_machine(d, arch, machine):
            continue
        features = set(d.get("features", []))
        if ("secure-boot" in features) != secure_boot:
            continue
        code = mapping.get("executable", {}).get("filename")
        if not code or mapping.get("executable", {}).get("format", "raw") != "raw":
            continue
        variables = mapping.get("nvram-template", {}).get("filename")
        # Prefer firmware without pre-enrolled vendor keys, so images signed with our own key
        # can enroll it (systemd-boot's auto-enrollment) instead of failing verification.
        rank = 1 if "enrolled-keys" in features else 0
        candidates.append(
            (
                rank,
                UefiFirmware(
                    code=rebase(root, code),
                    variables=rebase(root, variables) if variables else None,
                    secure_boot=secure_boot,
                    requires_smm="requires-smm" in features,
                    description=d.get("description", d["_path"]),
                ),
            )
        )
    candidates = [c for c in candidates if c[1].code.exists()]
    if not candidates:
        kind = "secure boot " if secure_boot else ""
        raise KosiError(
            f"no {kind}UEFI firmware for {arch} found in {root / DESCRIPTOR_DIRS[0]}",
            hint="install ovmf, or choose another Firmware=",
        )
    candidates.sort(key=lambda c: c[0])
    return candidates[0][1]


def rebase(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


# The owner GUID recorded with the certificates kosi enrolls (any stable GUID will do; it
# only tells who added an entry).
KOSI_OWNER_GUID = "7b9e5f3a-1c4d-4b8e-9f2a-6d0c3e8a5b41"
MICROSOFT_VARIABLES = "usr/share/OVMF/OVMF_VARS_4M.ms.fd"


def variables_plan(
    setting, firmware: UefiFirmware, tools_root: Path, certificate: Path | None
) -> tuple[Path | None, list[str]]:
    """FirmwareVariables=: the template to copy, and the virt-fw-vars options that enroll our
    certificate into the copy (none to run). A path is used as it is; microsoft has the
    Microsoft keys; microsoft-mok adds SecureBootCertificate= as a shim MOK on top; custom
    enrolls SecureBootCertificate= as PK, KEK and db of the default variables, without the
    Microsoft keys; unset means the default variables."""
    if isinstance(setting, Path):
        if not setting.is_file():  # mkosi 27.1 reads the setting without looking
            raise KosiError(f"FirmwareVariables={setting}: no such file")
        return setting, []
    if setting in ("microsoft", "microsoft-mok"):
        template = tools_root / MICROSOFT_VARIABLES
        if setting == "microsoft":
            return template, []
        return template, ["--add-mok", KOSI_OWNER_GUID, str(needs_certificate(setting, certificate))]
    if setting == "custom":
        cert = str(needs_certificate(setting, certificate))
        return firmware.variables, [
            "--enroll-cert",
            cert,
            "--add-db",
            KOSI_OWNER_GUID,
            cert,
            "--no-microsoft",
            "--secure-boot",
        ]
    return firmware.variables, []


def needs_certificate(setting: str, certificate: Path | None) -> Path:
    if certificate is None or not Path(certificate).exists():
        raise KosiError(
            f"FirmwareVariables={setting} enrolls SecureBootCertificate=, which is not set (or there is no mkosi.crt)",
            hint="run `kosi genkey` or set SecureBootCertificate=",
        )
    return Path(certificate)


def enroll_command(template: Path, output: Path, options: list[str]) -> list[str]:
    return ["virt-fw-vars", "--input", str(template), "--output", str(output), "--loglevel", "WARNING", *options]
