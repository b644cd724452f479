"""Image setup after the packages: systemd's offline tools (sysusers, tmpfiles, presets,
firstboot, hwdb) and small configuration files (autologin, initrd, ssh, machine-id, os-release).
The tools run through kosi/pipeline/image_tool.py; depmod has its own module.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.pipeline.image_tool import ImageTool, in_image
from kosi.pipeline.layers import environment_value, layered_skip
from kosi.pipeline.step import ImageDependent, Skipped, Step


class ConfigFiles(Step):
    """Configuration for Autologin=, MakeInitrd= and Ssh=, and /init in an image with systemd."""

    name = "write autologin/initrd/ssh configuration"

    def skip(self, context):
        if context.config.autologin or context.config.make_initrd or self.ssh_wanted(context):
            return None
        if in_image(context, "usr/lib/systemd/systemd"):
            return None
        # sshd and systemd may come with the packages
        return ImageDependent(
            "Autologin= and MakeInitrd= not enabled, and the image has neither sshd (Ssh=auto) nor systemd (/init)"
            if context.config.ssh == "auto"
            else "Autologin=, MakeInitrd= and Ssh= not enabled, and the image has no systemd (/init)"
        )

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
        if (root / "usr/lib/systemd/systemd").exists() and not os.path.lexists(root / "init"):
            # as mkosi 27.1 in every image with systemd: the tree can be an initrd (Format=uki, cpio)
            (root / "init").symlink_to("/usr/lib/systemd/systemd")
        if self.ssh_wanted(context):
            units = root / "usr/lib/systemd/system"
            units.mkdir(parents=True, exist_ok=True)
            (units / "ssh.socket").write_text(
                "[Unit]\nDescription=SSH over vsock\n\n[Socket]\nListenStream=vsock::22\nAccept=yes\n\n"
                "[Install]\nWantedBy=sockets.target\n"
            )
            (units / "ssh@.service").write_text(
                "[Unit]\nDescription=SSH per-connection server\n\n[Service]\n"
                "ExecStart=-/usr/sbin/sshd -i\nStandardInput=socket\nRuntimeDirectory=sshd\n"
            )
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
        arguments += [
            f"--exclude-prefix={p}" for p in ("/dev", "/proc", "/sys", "/run", "/tmp", "/var/tmp", "/home", "/srv")
        ]
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
        # the user units' presets too (etc/systemd/user/*.wants), as mkosi 27.1
        self.run_tool(context, [f"--root={context.root}", "--global", "preset-all"])


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
        return [
            (option, context.config[name], credential) for name, option, credential in FIRSTBOOT if context.config[name]
        ]

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

    def skip(self, context):
        return layered_skip(context.config)

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


def portable_prefixes(config) -> str | None:
    """PORTABLE_PREFIXES from Environment=: written to os-release, where portablectl looks."""
    return environment_value(config, "PORTABLE_PREFIXES")


class OsRelease(Step):
    name = "write IMAGE_ID/IMAGE_VERSION to os-release"

    def skip(self, context):
        if layered_skip(context.config):
            return layered_skip(context.config)
        if not (context.config.image_id or context.config.image_version or portable_prefixes(context.config)):
            return "no ImageId=, ImageVersion= or PORTABLE_PREFIXES in Environment="
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
        fields = {
            "IMAGE_ID": context.config.image_id,
            "IMAGE_VERSION": context.config.image_version,
            "PORTABLE_PREFIXES": portable_prefixes(context.config),
        }
        lines = [
            l for l in path.read_text().splitlines() if l.split("=", 1)[0] not in {k for k, v in fields.items() if v}
        ]
        lines += [f'{k}="{v}"' for k, v in fields.items() if v]
        path.write_text("\n".join(lines) + "\n")
