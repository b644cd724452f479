"""Unified kernel images with ukify: kernel + initrds + command line + os-release in one PE.

The stub comes from the image when it ships systemd-boot-efi (so the UKI matches the
image's systemd), else from the tools tree. UnifiedKernelImageProfiles= files
([UKIProfile] Profile=/Cmdline=) become extra profiles: each is built as a profile-only
PE (.profile and .cmdline only) and joined into the UKI, the profile's command line
extending the base one; the base profile is the one ukify names ID=main. Early microcode
goes into .ucode, Devicetrees= into .dtb / .dtbauto.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kosi.boot.devicetree import ukify_arguments as devicetree_arguments
from kosi.boot.pcrs import pcr_key_files, ukify_pcr_arguments
from kosi.errors import KosiError
from kosi.sandbox import run
from kosi.tools.command import tools_command

STUB = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"
#: profile PEs are built on the addon stub: the UKI stub's own sections (.sbat) would come
#: before .profile, and ukify wants .profile first in a profile PE
ADDON_STUB = "usr/lib/systemd/boot/efi/addonx64.efi.stub"


@dataclass
class UKIRequest:
    kernel: Path
    kver: str
    initrds: list[Path]
    cmdline: str
    os_release: Path
    output: Path
    splash: Path | None = None
    profiles: list[Path] = field(default_factory=list)
    microcode: Path | None = None  # the early microcode cpio, into the .ucode section
    devicetrees: list[Path] = field(default_factory=list)
    #: SignExpectedPcr=: the configuration whose SignExpectedPcrKey= signs the PCR predictions
    pcr_config: Any = None


def find_stub(root: Path, tools: Path | None, name: str = STUB) -> Path | None:
    for base in (root, tools or Path("/")):
        if (base / name).exists():
            return base / name
    return None


@dataclass(frozen=True)
class Profile:
    """One UnifiedKernelImageProfiles= file: its .profile section and extra command line."""

    text: str  # KEY=VALUE lines, ID= first
    cmdline: str
    sign_expected_pcr: bool = True


def read_profile(path: Path) -> Profile:
    """Parse a profile file ([UKIProfile] Profile=, Cmdline=, SignExpectedPcr=) with the
    types of UKI_PROFILE_SETTINGS, so quoting and errors work as in mkosi.conf."""
    from kosi.config.parser import parse_ini
    from kosi.config.settings import UKI_PROFILE_SETTINGS_BY_NAME
    from kosi.config.values import Origin

    values: dict[str, Any] = {}
    for section in parse_ini(path):
        if section.name != "UKIProfile":
            raise KosiError(
                f"unknown section [{section.name}] in a UKI profile (allowed: [UKIProfile])",
                file=str(path),
                line=section.line,
            )
        for entry in section.entries:
            setting = UKI_PROFILE_SETTINGS_BY_NAME.get(entry.key)
            if setting is None:
                known = ", ".join(UKI_PROFILE_SETTINGS_BY_NAME)
                raise KosiError(
                    f"unknown setting {entry.key}= in [UKIProfile] (known: {known})", file=str(path), line=entry.line
                )
            origin = Origin(str(path), entry.line, path.parent)
            parsed = setting.type.parse(entry.key, entry.value, origin)
            # keyed by dest: these are profile values, not the image's settings of the same name
            if setting.type.is_list:
                values[setting.dest] = [*values.get(setting.dest, []), *parsed] if entry.value else []
            else:
                values[setting.dest] = parsed
    pairs: dict[str, str] = {}
    for assignment in values.get("profile", []):
        pairs.update(assignment)
    if "ID" not in pairs:
        raise KosiError("UnifiedKernelImageProfiles=: [UKIProfile] Profile= must contain ID=", file=str(path))
    ordered = {"ID": pairs.pop("ID"), **pairs}
    text = "\n".join(f"{key}={value}" for key, value in ordered.items())
    sign = values.get("sign_expected_pcr")
    return Profile(text, " ".join(values.get("cmdline", [])), True if sign is None else bool(sign))


def profile_files(paths: list[Path]) -> list[Path]:
    """UnifiedKernelImageProfiles= entries: files, or directories (mkosi.uki-profiles/) of
    *.conf files taken in name order."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.conf")) if path.is_dir() else [path]
    return files


def build_uki(request: UKIRequest, root: Path, tools: Path | None, workspace: Path) -> Path:
    stub = find_stub(root, tools)
    if stub is None:
        raise KosiError(
            "no EFI stub (linuxx64.efi.stub) in the image or the tools tree",
            hint="install systemd-boot-efi, or use ToolsTree=default",
        )
    profiles = profile_files(request.profiles)
    addon_stub = find_stub(root, tools, ADDON_STUB) if profiles else None
    if profiles and addon_stub is None:
        raise KosiError(
            "UnifiedKernelImageProfiles=: no addonx64.efi.stub in the image or the tools tree",
            hint="install systemd-boot-efi, or use ToolsTree=default",
        )
    extras = [p for p in (request.splash, request.microcode, addon_stub) if p]
    if request.pcr_config is not None:
        extras += pcr_key_files(request.pcr_config)
    sandbox = tools_command(
        tools,
        [
            root,
            workspace,
            request.output.parent,
            stub,
            request.kernel,
            request.os_release,
            *request.initrds,
            *profiles,
            *request.devicetrees,
            *extras,
        ],
    )
    joins: list[str] = []
    signed: list[tuple[str, bool]] = []  # (profile ID, SignExpectedPcr=)
    for index, profile_file in enumerate(profiles):
        # A profile PE holds only what differs from the base: its .profile and .cmdline.
        profile = read_profile(profile_file)
        signed.append((profile.text.split("\n", 1)[0].split("=", 1)[1], profile.sign_expected_pcr))
        out = workspace / f"uki-profile-{index}.efi"
        cmd = ["ukify", "build", "--stub", str(addon_stub), f"--profile={profile.text}", f"--output={out}"]
        if profile.cmdline:
            cmd.append(f"--cmdline={request.cmdline} {profile.cmdline}")
        ukify(cmd, sandbox)
        joins.append(f"--join-profile={out}")
    cmd = [
        "ukify",
        "build",
        "--stub",
        str(stub),
        "--uname",
        request.kver,
        f"--linux={request.kernel}",
        f"--cmdline={request.cmdline}",
        f"--os-release=@{request.os_release}",
        f"--output={request.output}",
    ]
    cmd += [f"--initrd={initrd}" for initrd in request.initrds]
    if request.microcode:
        cmd.append(f"--microcode={request.microcode}")
    cmd += devicetree_arguments(request.devicetrees)
    if request.splash:
        cmd.append(f"--splash={request.splash}")
    if request.pcr_config is not None:
        cmd += ukify_pcr_arguments(request.pcr_config, sandbox, signed)
    ukify([*cmd, *joins], sandbox)
    return request.output


def ukify(cmd: Sequence[str], sandbox: list[str]) -> None:
    result = run(cmd, sandbox=sandbox, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        lines = [l for l in (result.stderr or b"").decode(errors="replace").splitlines() if l.strip()]
        raise KosiError(f"ukify failed: {lines[-1] if lines else f'exit status {result.returncode}'}")


def entry_name(pattern: str, entry_token: str, kver: str, cmdline: str) -> str:
    """UnifiedKernelImageFormat= with its delayed specifiers (&e &k &h &&)."""
    roothash = next((arg.split("=", 1)[1] for arg in cmdline.split() if arg.startswith(("roothash=", "usrhash="))), "")
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "&" and i + 1 < len(pattern):
            code = pattern[i + 1]
            replacement = {"&": "&", "e": entry_token, "k": kver, "h": roothash}.get(code)
            if replacement is None:
                raise KosiError(f"UnifiedKernelImageFormat={pattern}: unknown specifier &{code} (known: &e &k &h &&)")
            out.append(replacement)
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def default_format(cmdline: str, root: Path) -> str:
    pattern = "&e-&k"
    if any(arg.startswith(("roothash=", "usrhash=")) for arg in cmdline.split()):
        pattern += "-&h"
    if (root / "etc/kernel/tries").exists():
        pattern += "+" + (root / "etc/kernel/tries").read_text().strip()
    return pattern
