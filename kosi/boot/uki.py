"""Unified kernel images with ukify: kernel + initrds + command line + os-release in one PE.

The stub comes from the image when it ships systemd-boot-efi (so the UKI matches the
image's systemd), else from the tools tree. UnifiedKernelImageProfiles= files
([UKIProfile] Profile=/Cmdline=) become extra profiles: each is built as a profile-only
PE and joined into the UKI, the profile's command line extending the base one.
"""

from __future__ import annotations

import configparser
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from kosi.errors import KosiError
from kosi.sandbox import run
from kosi.tools_tree import tools_command

STUB = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"


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


def find_stub(root: Path, tools: Path | None) -> Path | None:
    for base in (root, tools or Path("/")):
        if (base / STUB).exists():
            return base / STUB
    return None


def read_profile(path: Path) -> tuple[str, str]:
    """A UKI profile file -> (the .profile section text, its extra command line)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    try:
        parser.read_string(path.read_text())
    except configparser.Error as e:
        raise KosiError(f"cannot parse UKI profile: {e}", file=str(path)) from None
    if not parser.has_section("UKIProfile"):
        raise KosiError("a UKI profile needs a [UKIProfile] section", file=str(path))
    section = parser["UKIProfile"]
    pairs = section.get("Profile", "").split()
    if not any(p.startswith("ID=") for p in pairs):
        raise KosiError("UnifiedKernelImageProfiles=: Profile= must contain ID=", file=str(path))
    return "\n".join(pairs), section.get("Cmdline", "").strip()


def build_uki(request: UKIRequest, root: Path, tools: Path | None, workspace: Path) -> Path:
    stub = find_stub(root, tools)
    if stub is None:
        raise KosiError("no EFI stub (linuxx64.efi.stub) in the image or the tools tree",
                        hint="install systemd-boot-efi, or use ToolsTree=default")
    sandbox = tools_command(tools, [root, workspace, request.output.parent, stub, request.kernel, request.os_release,
                                    *request.initrds, *request.profiles, *([request.splash] if request.splash else [])])
    common = ["--stub", str(stub), "--uname", request.kver]
    joins: list[str] = []
    for index, profile_file in enumerate(request.profiles):
        profile, extra_cmdline = read_profile(profile_file)
        out = workspace / f"uki-profile-{index}.efi"
        cmd = ["ukify", "build", *common, f"--profile={profile}", f"--output={out}"]
        if extra_cmdline:
            cmd.append(f"--cmdline={request.cmdline} {extra_cmdline}")
        ukify(cmd, sandbox)
        joins.append(f"--join-profile={out}")
    cmd = ["ukify", "build", *common, f"--linux={request.kernel}", f"--cmdline={request.cmdline}",
           f"--os-release=@{request.os_release}", f"--output={request.output}"]
    cmd += [f"--initrd={initrd}" for initrd in request.initrds]
    if request.splash:
        cmd.append(f"--splash={request.splash}")
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
