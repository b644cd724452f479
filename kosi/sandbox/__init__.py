"""Running tools and scripts in their own mount namespace.

Interface used by the rest of kosi:

- `Mount(source, target, kind)`: one mount inside the sandbox (`Mount.overlay(...)` for overlays).
- `sandbox_command(mounts=, tools=, network=, root=, workdir=) -> list[str]`: a command prefix
  that builds a fresh root (read-only /usr from the tools tree or the host, a minimal /etc,
  private /tmp, /proc, a minimal /dev, then `mounts`) and execs the command given after it.
  Nothing of the host is visible or writable unless mounted. With `root=` the command runs
  chrooted into an image root with the API file systems instead.
- `process_tree_command()`: no new root, only the PID namespace (VMs and their daemons).
- `chroot_command(root, ...)`: the `root=` form, for mkosi-chroot, `.chroot` scripts and
  maintainer scripts; `apivfs_mounts(root)`: /proc, /dev, /sys, /run, /tmp on an image root
  for package managers that install into it from outside (dpkg --root).
- `run(cmd, sandbox=prefix, ...)`: run a command, log it with --debug, and turn a failure into
  a one-line KosiError naming the tool and its own last error line (see kosi.sandbox.process).
- `become_root()`: step 4 of the execution flow for unprivileged users (kosi.sandbox.userns).
- `trace_sandboxes()`: --debug-sandbox; every sandbox started afterwards is set up under strace.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from kosi import log
from kosi.sandbox.process import last_error_line, run
from kosi.sandbox.userns import become_root

MountKind = Literal["bind", "ro-bind", "tmpfs", "proc", "dev", "sysfs", "overlay"]

ENTRY_POINT = str(Path(__file__).with_name("enter.py"))

__all__ = [
    "Mount",
    "sandbox_command",
    "chroot_command",
    "process_tree_command",
    "apivfs_mounts",
    "script_network",
    "run",
    "last_error_line",
    "become_root",
    "trace_sandboxes",
]

#: the system calls that build a sandbox; the entry's own interpreter start-up is left out
TRACED_CALLS = "unshare,mount,mount_setattr,umount2,pivot_root,chdir,mkdir,symlink,execve"
#: the strace command line sandboxes start under (--debug-sandbox), or None
_tracer: list[str] | None = None


#: ToolsTreeCertificates=no: the host's certificates replace the tools tree's in every sandbox
_host_certificates = False


def use_host_certificates(enabled: bool) -> None:
    """ToolsTreeCertificates=: with a tools tree, whether /etc/ssl, /etc/pki, /etc/ca-certificates
    in the sandbox come from the host (no) or from the tools tree (yes, the default)."""
    global _host_certificates
    _host_certificates = enabled


#: ExtraSearchPaths=: directories searched for programs before $PATH in every sandbox
_extra_search_paths: tuple[str, ...] = ()


def use_extra_search_paths(paths: Sequence[Path | str]) -> None:
    """ExtraSearchPaths=: these host directories are visible (read-only, at their own paths) in
    every sandbox that is not a chroot, and searched for programs before $PATH."""
    global _extra_search_paths
    _extra_search_paths = tuple(str(p) for p in paths if Path(p).is_dir())  # as $PATH: missing ones are skipped


def extra_search_paths() -> tuple[str, ...]:
    return _extra_search_paths


def trace_sandboxes() -> None:
    """--debug-sandbox: run the sandbox entry of every later command under strace (on stderr).

    strace shows how the sandbox is built (unshare, the mounts, pivot_root) and where it fails,
    and lets go when the entry execs the command, so the tool itself runs untraced and at full
    speed. strace has to run outside the sandbox, on the host: a tools tree's strace would need
    a sandbox of its own to find its libraries.
    """
    global _tracer
    strace = shutil.which("strace")
    if strace is None:
        log.warn("--debug-sandbox: strace is not installed on the host; sandboxes run untraced")
        return
    # -f: the sandbox is built by a child (the PID namespace's init), see kosi.sandbox.enter
    _tracer = [strace, "-f", "--detach-on=execve", "-e", f"trace={TRACED_CALLS}", "-s", "256"]


@dataclass(frozen=True)
class Mount:
    """`source` is a host path (None for tmpfs, proc, dev, sysfs); `target` a path inside the sandbox
    (inside the image when the sandbox has a root). Overlays take `lowerdirs` (lowest last, as
    in overlayfs) and optionally `upperdir` + `workdir` (without them the overlay is read-only)."""

    source: Path | str | None
    target: str
    kind: MountKind = "bind"
    lowerdirs: tuple[Path | str, ...] = ()
    upperdir: Path | str | None = None
    workdir: Path | str | None = None

    @classmethod
    def overlay(
        cls,
        lowerdirs: Sequence[Path | str],
        target: str,
        *,
        upperdir: Path | str | None = None,
        workdir: Path | str | None = None,
    ) -> "Mount":
        return cls(None, target, "overlay", tuple(lowerdirs), upperdir, workdir)

    def options(self) -> list[str]:
        if self.kind in ("bind", "ro-bind"):
            return [f"--{self.kind}", str(self.source), str(self.target)]
        if self.kind == "overlay":
            if not self.lowerdirs:
                raise ValueError(f"overlay on {self.target} needs at least one lower directory")
            if (self.upperdir is None) != (self.workdir is None):
                raise ValueError(f"overlay on {self.target} needs both upperdir and workdir, or neither")
            lowers = [item for lower in self.lowerdirs for item in ("--overlay-lower", str(lower))]
            return [*lowers, "--overlay", str(self.upperdir or "-"), str(self.workdir or "-"), str(self.target)]
        return [f"--{self.kind}", str(self.target)]


def sandbox_command(
    *,
    mounts: Sequence[Mount] = (),
    tools: Path | None = None,
    network: bool = False,
    root: Path | None = None,
    workdir: str | None = None,
    devices: Sequence[Literal["fuse", "loop"]] = (),
) -> list[str]:
    """The prefix to put before a command (pass it as `run(..., sandbox=...)`).

    `tools`: a tools tree whose /usr and /etc basics replace the host's. `network=False`
    leaves only a loopback interface. `workdir`: where the command starts (default: the
    caller's working directory if it is mounted, else /). `devices` adds /dev/fuse or the
    loop devices.
    """
    # -S -E -s: no site, no PYTHON* variables, no user site; the entry needs only the stdlib and
    # runs before every tool, so each millisecond of interpreter start-up counts.
    prefix = [*(_tracer or ()), sys.executable, "-S", "-E", "-s", ENTRY_POINT]
    if root is not None:
        prefix += ["--root", str(root)]
    elif tools is not None:
        prefix += ["--usr", str(Path(tools) / "usr"), "--etc-from", str(tools)]
        if _host_certificates:
            prefix += ["--certificates-from", "/"]
    if root is None:
        for directory in _extra_search_paths:
            prefix += ["--search-path", directory]
    if network:
        prefix.append("--network")
    for device in devices:
        prefix.append(f"--dev-{device}")
    for mount in mounts:
        prefix += mount.options()
    if workdir is not None:
        prefix += ["--chdir", str(workdir)]
    return [*prefix, "--"]


def process_tree_command() -> list[str]:
    """A prefix that runs a command as it is on the host (mounts, devices, network) but in a
    PID namespace of its own: stopping it stops everything it started, and it dies with kosi.
    For qemu and the daemons of a VM (virtiofsd, swtpm, systemd-journal-remote)."""
    return [sys.executable, "-S", "-E", "-s", ENTRY_POINT, "--keep-host", "--"]


def chroot_command(
    root: Path,
    *,
    mounts: Sequence[Mount] = (),
    network: bool = False,
    workdir: str | None = None,
    devices: Sequence[Literal["fuse", "loop"]] = (),
) -> list[str]:
    """Run a command chrooted into an image root with /proc, /dev, /sys (read-only), /run and
    /tmp mounted and, with `network`, the host's resolv.conf; `mounts` targets are inside the image."""
    return sandbox_command(root=root, mounts=mounts, network=network, workdir=workdir or "/", devices=devices)


def apivfs_mounts(root: Path | str) -> list[Mount]:
    """Mounts that give an image root (itself bound into the sandbox) its API file systems, for
    package managers and maintainer scripts that chroot into it (dpkg --root, apt -o DPkg::Chroot-Directory)."""
    root = str(root).rstrip("/")
    return [
        Mount(root, root, "bind"),
        Mount(None, f"{root}/proc", "proc"),
        Mount(None, f"{root}/dev", "dev"),
        Mount(None, f"{root}/sys", "sysfs"),
        Mount(None, f"{root}/run", "tmpfs"),
        Mount(None, f"{root}/tmp", "tmpfs"),
    ]


def script_network(kind: str, with_network: bool) -> bool:
    """Build scripts run offline unless WithNetwork=yes; every other script kind has the network."""
    return with_network if kind == "build" else True
