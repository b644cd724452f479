"""Image setup after the packages: systemd's offline tools and small configuration files.

Each tool runs with --root= on the image, in the sandbox with /usr from the tools tree (or the
host's), and is skipped with the reason when it is nowhere to be found or the image does not
ship what it works on.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Sequence

from kosi import log
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.pipeline.step import ImageDependent, Skipped, Step
from kosi.pipeline.tools import find_tool, missing_reason, run_on_root
from kosi.sandbox import Mount


def in_image(context: Context, *candidates: str) -> Path | None:
    for candidate in candidates:
        path = context.root / candidate.lstrip("/")
        if os.path.lexists(path):
            return path
    return None


def tool_environment(context: Context) -> dict[str, str]:
    from kosi.scripts.environment import source_date_epoch

    env = dict(os.environ)
    epoch = source_date_epoch(context.config)
    if epoch:
        env["SOURCE_DATE_EPOCH"] = epoch  # shadow and systemd tools stamp dates with it
    return env


class ImageTool(Step):
    """A step that runs `program` on the image root; skipped when the image needs nothing from
    it, or (a missing tool is not a failure) when neither the tools tree nor the host has it."""

    program: str = ""

    def skip(self, context):
        return self.nothing_to_do(context) or missing_reason(self.program, context.tools)

    def nothing_to_do(self, context) -> str | None:
        return None

    def run_tool(self, context: Context, arguments: list[str], *, mounts: Sequence[Mount] = (), check: bool = True):
        tool = find_tool(self.program, context.tools)
        if tool is None:  # the runner asked skip() first; only a tree changing under us gets here
            raise KosiError(missing_reason(self.program, context.tools) or f"{self.program} is not installed")
        return run_on_root(tool, context.root, arguments, mounts=mounts, env=tool_environment(context), check=check)


class ConfigFiles(Step):
    """Configuration for Autologin=, MakeInitrd= and Ssh=."""

    name = "write autologin/initrd/ssh configuration"

    def skip(self, context):
        if context.config.autologin or context.config.make_initrd or self.ssh_wanted(context):
            return None
        if context.config.ssh == "auto":  # sshd may come with the packages
            return ImageDependent("Autologin= and MakeInitrd= not enabled, and the image has no sshd (Ssh=auto)")
        return "Autologin=, MakeInitrd= and Ssh= not enabled"

    def ssh_wanted(self, context) -> bool:
        mode = context.config.ssh
        if mode in ("always", "runtime"):
            return True
        return mode == "auto" and in_image(context, "usr/sbin/sshd") is not None

    def run(self, context):
        root = context.root
        if context.config.autologin:
            agetty = "-agetty -o '-f -p -- \\\\u' --noclear --keep-baud --autologin root - 115200,38400,9600 $TERM"
            for unit in ("console-getty.service", "getty@tty1.service", "serial-getty@hvc0.service"):
                dropin = root / "etc/systemd/system" / f"{unit}.d" / "autologin.conf"
                dropin.parent.mkdir(parents=True, exist_ok=True)
                dropin.write_text(f"[Service]\nExecStart=\nExecStart={agetty}\n")
        if context.config.make_initrd:
            (root / "etc").mkdir(exist_ok=True)
            for link, target in (("etc/initrd-release", "/etc/os-release"), ("init", "/usr/lib/systemd/systemd")):
                path = root / link
                if not os.path.lexists(path):
                    path.symlink_to(target)
        if self.ssh_wanted(context):
            units = root / "usr/lib/systemd/system"
            units.mkdir(parents=True, exist_ok=True)
            (units / "ssh.socket").write_text(
                "[Unit]\nDescription=SSH over vsock\n\n[Socket]\nListenStream=vsock::22\nAccept=yes\n\n"
                "[Install]\nWantedBy=sockets.target\n")
            (units / "ssh@.service").write_text(
                "[Unit]\nDescription=SSH per-connection server\n\n[Service]\n"
                "ExecStart=-/usr/sbin/sshd -i\nStandardInput=socket\nRuntimeDirectory=sshd\n")
            wants = root / "etc/systemd/system/sockets.target.wants"
            wants.mkdir(parents=True, exist_ok=True)
            if not os.path.lexists(wants / "ssh.socket"):
                (wants / "ssh.socket").symlink_to("/usr/lib/systemd/system/ssh.socket")


class Sysusers(ImageTool):
    name = program = "systemd-sysusers"

    def nothing_to_do(self, context):
        if not in_image(context, "usr/lib/sysusers.d"):
            return ImageDependent("image has no /usr/lib/sysusers.d")
        return None

    def run(self, context):
        self.run_tool(context, [f"--root={context.root}"])


class Tmpfiles(ImageTool):
    name = program = "systemd-tmpfiles"

    def nothing_to_do(self, context):
        if not in_image(context, "usr/lib/tmpfiles.d"):
            return ImageDependent("image has no /usr/lib/tmpfiles.d")
        return None

    def run(self, context):
        arguments = [f"--root={context.root}", "--boot", "--create", "--remove"]
        arguments += [f"--exclude-prefix={p}" for p in ("/dev", "/proc", "/sys", "/run", "/tmp", "/var/tmp", "/home", "/srv")]
        # 65 (bad lines) and 73 (cannot create some paths offline) are expected in an image.
        result = self.run_tool(context, arguments, check=False)
        if result.returncode not in (0, 65, 73):
            raise KosiError(f"systemd-tmpfiles failed with exit status {result.returncode}")


class Presets(ImageTool):
    name = "systemctl preset-all"
    program = "systemctl"

    def nothing_to_do(self, context):
        if not in_image(context, "usr/bin/systemctl", "bin/systemctl"):
            return ImageDependent("image has no systemctl")
        return None

    def run(self, context):
        self.run_tool(context, [f"--root={context.root}", "preset-all"])


#: what depmod reads besides the module files: its configuration (lowest precedence first; a
#: file name in a later directory overrides the same name in an earlier one) and the kernel's lists
DEPMOD_CONFIG_DIRECTORIES = ("usr/lib/depmod.d", "usr/local/lib/depmod.d", "etc/depmod.d")
DEPMOD_LISTS = ("modules.order", "modules.builtin", "modules.builtin.modinfo")
DEPMOD_INDEXES = ("modules.dep", "modules.dep.bin", "modules.alias.bin", "modules.symbols.bin")
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


def depmod_configuration(root: Path) -> dict[str, Path]:
    """The image's depmod.d files by name, the overriding one for each name."""
    files: dict[str, Path] = {}
    for directory in DEPMOD_CONFIG_DIRECTORIES:
        base = root / directory
        if base.is_dir():
            for path in sorted(base.iterdir()):
                if path.name.endswith(".conf"):
                    files[path.name] = path
    return {name: path for name, path in files.items() if path.is_file()}  # /dev/null symlinks mask


def module_files(moddir: Path) -> dict[str, int]:
    """Module files below `moddir` (relative paths, as modules.dep names them) and their mtimes."""
    found: dict[str, int] = {}
    for directory, _, names in os.walk(moddir):
        for name in names:
            if name.endswith(MODULE_SUFFIXES):
                path = os.path.join(directory, name)
                found[os.path.relpath(path, moddir)] = os.lstat(path).st_mtime_ns
    return found


def module_name(relative: str) -> str:
    name = os.path.basename(relative)
    return name[:name.index(".ko")].replace("-", "_")


def stale_index(root: Path, kver: str) -> str | None:
    """Why depmod's indexes of `kver` no longer describe its modules, or None when they do.

    Decompressing every module is what makes depmod slow (over 500 MB of xz for a Debian
    kernel: about 10 s of one core), and the kernel package's postinst has already run it in
    the image. A rerun is needed only when modules came or went (modules.dep lists every one)
    or a module, list or depmod.d file changed after the index was written.
    """
    moddir = root / "usr/lib/modules" / kver
    missing = [index for index in DEPMOD_INDEXES if not (moddir / index).is_file()]
    if missing:
        return f"no {missing[0]}"
    written = (moddir / "modules.dep").stat().st_mtime_ns
    listed = {line.split(":", 1)[0] for line in (moddir / "modules.dep").read_text().splitlines() if ":" in line}
    found = module_files(moddir)
    removed = listed - set(found)
    # A module left out because another file of the same name won (depmod.d search order) is
    # not listed either; only a name modules.dep does not know at all is a new module.
    known = {module_name(m) for m in listed}
    added = {m for m in set(found) - listed if module_name(m) not in known}
    if removed or added:
        example = sorted(removed | added)[0]
        return f"{len(removed)} modules removed and {len(added)} added since modules.dep was written (e.g. {example})"
    newer = [name for name, mtime in found.items() if mtime > written]
    newer += [p.name for p in [*(moddir / n for n in DEPMOD_LISTS), *depmod_configuration(root).values()]
              if p.exists() and p.stat().st_mtime_ns > written]
    if newer:
        return f"{sorted(newer)[0]} is newer than modules.dep"
    return None


def system_map(root: Path, kver: str) -> Path | None:
    for candidate in (root / "boot" / f"System.map-{kver}", root / "usr/lib/modules" / kver / "System.map"):
        if candidate.is_file():
            return candidate
    return None


class Depmod(ImageTool):
    """depmod for each kernel in usr/lib/modules whose indexes are out of date, with the image's
    depmod.d configuration (not the host's or the tools tree's) and the kernel's System.map."""

    name = program = "depmod"

    def kernels(self, context) -> list[str]:
        modules = context.root / "usr/lib/modules"
        if not modules.is_dir():
            return []
        return sorted(p.name for p in modules.iterdir() if (p / "kernel").is_dir())

    def stale(self, context) -> dict[str, str]:
        reasons = {kver: stale_index(context.root, kver) for kver in self.kernels(context)}
        return {kver: reason for kver, reason in reasons.items() if reason}

    def nothing_to_do(self, context):
        kernels = self.kernels(context)
        if not kernels:
            return ImageDependent("image has no kernel modules")
        if not self.stale(context):
            return ImageDependent(f"module indexes of {', '.join(kernels)} are up to date")
        return None

    def run(self, context):
        config = context.workspace / "depmod.d"
        shutil.rmtree(config, ignore_errors=True)
        config.mkdir(parents=True)
        for name, path in depmod_configuration(context.root).items():
            shutil.copyfile(path, config / name)
        for kver, reason in self.stale(context).items():
            log.debug(f"depmod {kver}: {reason}")
            arguments = ["--all", f"--basedir={context.root}", f"--config={config}"]
            symbols = system_map(context.root, kver)
            if symbols:
                arguments.append(f"--filesyms={symbols}")
            self.run_tool(context, [*arguments, kver], mounts=[Mount(config, str(config), "ro-bind")])
        shutil.rmtree(config)


FIRSTBOOT = (
    # (setting, systemd-firstboot option, credential name)
    ("Locale", "--locale", "firstboot.locale"),
    ("LocaleMessages", "--locale-messages", "firstboot.locale-messages"),
    ("Keymap", "--keymap", "firstboot.keymap"),
    ("Timezone", "--timezone", "firstboot.timezone"),
    ("Hostname", "--hostname", "system.hostname"),
    ("RootShell", "--root-shell", "passwd.shell.root"),
)


def root_password(context: Context) -> tuple[str, bool] | None:
    """(password, is_hashed) from RootPassword= (the loader reads mkosi.rootpw into it)."""
    value = context.config.root_password
    if value is None:
        return None
    if value.startswith("hashed:"):
        return value.removeprefix("hashed:"), True
    return value, False


class Firstboot(ImageTool):
    """Locale=, Keymap=, Timezone=, Hostname=, RootShell=, RootPassword= via systemd-firstboot,
    and the same values as credentials in /usr/lib/credstore for /usr-only images."""

    name = program = "systemd-firstboot"

    def options(self, context) -> list[tuple[str, str, str]]:
        return [(option, context.config[name], credential)
                for name, option, credential in FIRSTBOOT if context.config[name]]

    def nothing_to_do(self, context):
        if not self.options(context) and root_password(context) is None:
            return "no Locale=, Keymap=, Timezone=, Hostname=, RootShell= or RootPassword="
        return None

    def run(self, context):
        arguments = [f"--root={context.root}", "--force"]
        credentials: dict[str, str] = {}
        for option, value, credential in self.options(context):
            arguments.append(f"{option}={value}")
            credentials[credential] = value
        password = root_password(context)
        if password is not None:
            secret, hashed = password
            arguments.append(f"--root-password-hashed={secret}" if hashed else f"--root-password={secret}")
            credentials["passwd.hashed-password.root" if hashed else "passwd.plaintext-password.root"] = secret
        self.run_tool(context, arguments)
        credstore = context.root / "usr/lib/credstore"
        credstore.mkdir(parents=True, exist_ok=True)
        for name, value in credentials.items():
            (credstore / name).write_text(value)
            (credstore / name).chmod(0o600 if name.startswith("passwd.") else 0o644)


class Hwdb(ImageTool):
    name = program = "systemd-hwdb"

    def nothing_to_do(self, context):
        if not in_image(context, "usr/lib/udev/hwdb.d"):
            return ImageDependent("image has no /usr/lib/udev/hwdb.d")
        return None

    def run(self, context):
        self.run_tool(context, [f"--root={context.root}", "--usr", "--strict", "update"])


class MachineId(Step):
    """MachineId= or mkosi.machine-id; otherwise "uninitialized", so every boot (and every
    build) starts without a fixed id. Always written, read-only (0444), as mkosi 27.1 does."""

    name = "write machine id"

    def run(self, context):
        value = context.config.machine_id  # a UUID, "random" or None; mkosi.machine-id is read by the loader
        target = context.root / "etc/machine-id"
        if value == "random":
            value = uuid.uuid4().hex
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_text((uuid.UUID(str(value)).hex if value else "uninitialized") + "\n")
        target.chmod(0o444)
        (context.root / "var/lib/dbus/machine-id").unlink(missing_ok=True)


class OsRelease(Step):
    name = "write IMAGE_ID/IMAGE_VERSION to os-release"

    def skip(self, context):
        if not (context.config.image_id or context.config.image_version):
            return "no ImageId= or ImageVersion="
        if not self.path(context):
            return ImageDependent("image has no os-release")
        return None

    def path(self, context) -> Path | None:
        return in_image(context, "usr/lib/os-release", "etc/os-release")

    def run(self, context):
        path = self.path(context)
        if path is None:  # skip() saw it; only a tree changing under us gets here
            raise Skipped("image has no os-release")
        if path.is_symlink():  # /etc/os-release -> ../usr/lib/os-release
            path = context.root / "usr/lib/os-release"
        fields = {"IMAGE_ID": context.config.image_id, "IMAGE_VERSION": context.config.image_version}
        lines = [l for l in path.read_text().splitlines() if l.split("=", 1)[0] not in {k for k, v in fields.items() if v}]
        lines += [f'{k}="{v}"' for k, v in fields.items() if v]
        path.write_text("\n".join(lines) + "\n")
