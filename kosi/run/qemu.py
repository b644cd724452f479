"""`vm`: booting the image with qemu.

qemu_command() turns a Config and a few facts about the host (the KVM verdict, whether
vsock works) into a qemu command line and is pure enough to unit-test; start_vm() does
the work around it: building, the ephemeral copy, swtpm, drives, the runtime file for
`kosi ssh`, and running qemu in the foreground.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from kosi import log
from kosi.config.model import Config
from kosi.config.specifiers import build_subdirectory
from kosi.config.values import Feature
from kosi.errors import KosiError
from kosi.outputs import format as formats
from kosi.outputs.naming import output_format
from kosi.run import journal_forward, notify, virtiofs
from kosi.run.credentials import (
    qemu_credential_args,
    qemu_escape,
    runtime_credentials,
    smbios_kernel_cmdline_extra,
)
from kosi.run.firmware import (
    FirmwareChoice,
    choose_firmware,
    enroll_command,
    find_uefi_firmware,
    variables_plan,
)
from kosi.run.kernel import DirectBoot, find_direct_boot, has_esp, root_argument
from kosi.run.kvm import KvmVerdict, probe_kvm
from kosi.tools.packages import missing_program
from kosi.run.virtiofs import BoundUser, Share

QEMU_BINARIES = {"x86-64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}
MACHINES = {"x86-64": "q35", "arm64": "virt"}
MiB = 1024**2


@dataclass
class HostFacts:
    """What the host can do, decided once per invocation (tests make these by hand)."""

    verdict: KvmVerdict
    vsock_cid: int | None = None  # a CID to give the guest, None when vsock is not used
    ssh_port: int | None = None  # localhost port forwarded to the guest's 22 (no vsock)
    tools_root: Path = Path("/")
    tpm_args: list[str] = field(default_factory=list)
    drive_args: list[str] = field(default_factory=list)
    shares: list[tuple[Share, Path]] = field(default_factory=list)  # served by virtiofsd on these sockets
    bound_user: BoundUser | None = None  # BindUser=: created in the guest with the host's IDs
    journal_address: str | None = None  # ForwardJournal=: where the guest's journald sends entries
    notify_address: str | None = None  # where the guest's systemd sends EXIT_STATUS= (vsock only)


@dataclass
class VmPlan:
    cmd: list[str]
    accel: str
    firmware: FirmwareChoice
    notes: list[str]  # reasons for automatic choices, printed as one line


def choose_accel(config: Config, verdict: KvmVerdict, notes: list[str]) -> str:
    if config.kvm == Feature.disabled:
        return "tcg"
    if config.kvm == Feature.enabled:
        return "kvm"
    if verdict.usable:
        return "kvm"
    notes.append(f"{verdict.reason}: using TCG (slow)")
    return "tcg"


def kernel_extra_words(config: Config, console: str, *, user_networking: bool = False) -> list[str]:
    """Words appended to the kernel command line: the serial console for non-GUI consoles, no
    interactive first-boot wizard (its answers come as credentials), networkd for the forwarded
    SSH port, then KernelCommandLineExtra=."""
    words = [] if console == "gui" else ["console=ttyS0"]
    words.append("systemd.firstboot=no")
    if user_networking:
        words += USER_NET_KERNEL_WORDS
    words += config.kernel_command_line_extra
    return words


# qemu's user networking (slirp) puts the guest at 10.0.2.15 behind 10.0.2.2. Without vsock the
# forwarded SSH port only works if the guest configures its NIC, which a minimal image does not:
# give systemd-networkd a static configuration (named to sort after the image's own) and start it.
USER_NET_NETWORK = """[Match]
Type=ether

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
"""
USER_NET_CREDENTIAL = "network.network.99-kosi-user-networking"
USER_NET_KERNEL_WORDS = ["systemd.wants=systemd-network-generator.service", "systemd.wants=systemd-networkd.service"]


def console_args(console: str) -> list[str]:
    if console == "gui":
        return ["-vga", "virtio"]
    args = ["-display", "none", "-vga", "none"]
    if console == "native":
        return args + ["-serial", "mon:stdio"]
    # signal=off: Ctrl-C reaches the guest instead of killing qemu.
    return args + ["-monitor", "none", "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]


def firmware_args(choice: FirmwareChoice, config: Config, facts: HostFacts, scratch: Path) -> list[str]:
    if not choice.is_uefi:
        return []
    secure = choice.kind == "uefi-secure-boot"
    firmware = find_uefi_firmware(secure_boot=secure, root=facts.tools_root)
    template, enroll = variables_plan(
        config.firmware_variables, firmware, facts.tools_root, config.secure_boot_certificate
    )
    if template is None or not template.exists():
        raise KosiError(f"FirmwareVariables=: {template} does not exist")
    variables = scratch / "ovmf_vars.fd"
    if enroll:
        run_enrollment(enroll_command(template, variables, enroll), facts.tools_root)
    else:
        shutil.copyfile(template, variables)  # the VM writes to its variables; never to the template
    # qemu runs with the tools tree's /usr as /usr, where the tree's own path is not mounted.
    code = firmware.code
    if facts.tools_root != Path("/") and code.is_relative_to(facts.tools_root):
        code = Path("/") / code.relative_to(facts.tools_root)
    args = [
        "-drive",
        f"if=pflash,format=raw,readonly=on,file={qemu_escape(str(code))}",
        "-drive",
        f"if=pflash,format=raw,file={qemu_escape(str(variables))}",
    ]
    if firmware.requires_smm:
        args += ["-global", "driver=cfi.pflash01,property=secure,value=on", "-global", "ICH9-LPC.disable_s3=1"]
    return args


def run_enrollment(cmd: list[str], tools_root: Path) -> None:
    from kosi.run.toolsenv import runtime_prefix

    prefix = runtime_prefix(tools_root if tools_root != Path("/") else None)
    try:
        result = subprocess.run([*prefix, *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        result = None
    if result is None or result.returncode == 127:
        raise KosiError(
            "FirmwareVariables=: enrolling the certificate needs virt-fw-vars, which is not installed",
            hint="install python3-virt-firmware (in the host or the tools tree)",
        )
    if result.returncode != 0:
        raise KosiError(f"FirmwareVariables=: virt-fw-vars failed: {(result.stdout.strip().splitlines() or ['?'])[-1]}")


def image_args(config: Config, image: Path) -> list[str]:
    drive = f"if=none,id=root,format=raw,file={qemu_escape(str(image))},discard=unmap,cache=unsafe"
    if config.removable:
        return ["-drive", drive, "-device", "qemu-xhci", "-device", "usb-storage,drive=root,removable=on,bootindex=1"]
    return ["-drive", drive, "-device", "virtio-blk-pci,drive=root,bootindex=1"]


def network_args(config: Config, facts: HostFacts) -> list[str]:
    if config.runtime_network == "none":
        return ["-nic", "none"]
    if config.runtime_network == "interface":
        return ["-nic", "tap,script=no,downscript=no,model=virtio-net-pci"]
    nic = "user,model=virtio-net-pci"
    if facts.ssh_port:
        nic += f",hostfwd=tcp:127.0.0.1:{facts.ssh_port}-:22"
    return ["-nic", nic]


def split_artifacts(config: Config) -> dict[str, Path]:
    """The kernel pieces a build wrote next to the image (SplitArtifacts=)."""
    from kosi.run.image import artifact

    return {suffix: artifact(config, suffix) for suffix in ("efi", "vmlinuz", "initrd", "kernel-modules-initrd")}


def direct_boot_args(boot: DirectBoot, extra: list[str], *, with_initrd: bool) -> list[str]:
    args = ["-kernel", str(boot.kernel)]
    if with_initrd and boot.initrd:
        args += ["-initrd", str(boot.initrd)]
    args += ["-append", " ".join([*boot.cmdline, *extra])]
    return args


def linux_kernel(config: Config) -> Path | None:
    """Linux=, with its delayed &b (the final build directory: BuildDirectory=/BuildKey=) and &&
    expanded now that the build has happened."""
    linux = config.linux
    if not isinstance(linux, str):
        return linux

    def expand(match: re.Match) -> str:
        if match[1] == "&":
            return "&"
        if match[1] != "b":
            raise KosiError(f"Linux=: unknown specifier &{match[1]} in {linux!r}, expected &b or &&")
        if config.build_directory is None:
            raise KosiError(f"Linux={linux}: &b needs BuildDirectory= (or a mkosi.builddir/ directory)")
        return str(build_subdirectory(config))

    return Path(re.sub(r"&(.?)", expand, linux))


def add_runtime_credentials(creds: dict[str, bytes], facts: HostFacts) -> None:
    """What the guest needs to know about the host's services: our lines go before the user's
    own fstab.extra/sysusers.extra; the user's own addresses win."""

    def prepend(name: str, value: bytes) -> None:
        creds[name] = value + creds.get(name, b"")

    if facts.shares:
        prepend("fstab.extra", virtiofs.fstab_extra([share for share, _ in facts.shares]))
    if facts.bound_user is not None:
        prepend("sysusers.extra", virtiofs.sysusers_extra(facts.bound_user))
    if facts.journal_address:
        creds.setdefault(journal_forward.CREDENTIAL, facts.journal_address.encode())
    if facts.notify_address:
        creds.setdefault(notify.CREDENTIAL, facts.notify_address.encode())


def qemu_command(
    config: Config,
    image: Path,
    facts: HostFacts,
    scratch: Path,
    *,
    arguments: Sequence[str] = (),
    direct_boot: DirectBoot | None = None,
) -> VmPlan:
    notes: list[str] = []
    arch = config.architecture
    if arch not in QEMU_BINARIES:
        raise KosiError(f"Architecture={arch}: kosi vm supports {', '.join(QEMU_BINARIES)}")
    accel = choose_accel(config, facts.verdict, notes)
    requested = config.firmware
    esp = has_esp(image)
    choice = choose_firmware(requested, facts.verdict, accel=accel, has_esp=esp)
    if choice.reason:
        notes.append(choice.reason)
    if choice.kind == "uefi-secure-boot" and accel == "kvm" and not facts.verdict.smm and requested != "auto":
        raise KosiError(
            f"Firmware=uefi-secure-boot needs System Management Mode: {facts.verdict.reason}",
            hint="use Firmware=uefi or KVM=no",
        )
    console = config.console

    smm = "on" if choice.kind == "uefi-secure-boot" else "off"
    machine = MACHINES[arch] + (f",smm={smm}" if arch == "x86-64" else "")
    ram = max(1, config.ram // MiB)
    maxmem = max(1, (config.max_mem or config.ram) // MiB)
    memory = f"{ram}M" + (f",slots=2,maxmem={maxmem}M" if maxmem > ram else "")
    cmd = [
        QEMU_BINARIES[arch],
        "-machine",
        machine,
        "-accel",
        accel,
        "-cpu",
        "host" if accel == "kvm" else "max",
        "-smp",
        str(config.cpus),
        "-m",
        memory,
        "-nodefaults",
        "-no-user-config",
        "-device",
        "virtio-rng-pci",
    ]
    cmd += console_args(console)
    cmd += firmware_args(choice, config, facts, scratch)

    extra = kernel_extra_words(config, console, user_networking=bool(facts.ssh_port))
    if facts.journal_address and not facts.journal_address.startswith("vsock"):
        extra += journal_forward.NO_INITRD_NETWORK_WORDS
    creds = runtime_credentials(config)
    if facts.ssh_port:
        creds.setdefault(USER_NET_CREDENTIAL, USER_NET_NETWORK.encode())
    add_runtime_credentials(creds, facts)
    linux = linux_kernel(config)
    if choice.direct_kernel:
        boot = direct_boot or find_direct_boot(linux, split_artifacts(config), image, scratch / "kernel")
        if not any(word.startswith(("root=", "mount.usr=")) for word in [*boot.cmdline, *extra]):
            extra = [*root_argument(image), *extra]
        cmd += direct_boot_args(boot, extra, with_initrd=choice.kind == "linux")
    elif linux:  # UEFI firmware runs the given kernel/UKI itself
        cmd += ["-kernel", str(linux), "-append", " ".join(extra)]
    else:
        cmd += smbios_kernel_cmdline_extra(extra)

    fmt = formats.get(output_format(config))
    if fmt.vm_initrd:
        if not choice.direct_kernel:
            raise KosiError(f"Format={fmt.name} boots only with Firmware=linux (and Linux= naming the kernel)")
    elif not (fmt.vm_kernel and choice.direct_kernel):
        cmd += image_args(config, image)

    cmd += virtiofs.qemu_args(facts.shares, ram)
    cmd += network_args(config, facts)
    if facts.vsock_cid is not None:
        cmd += ["-device", f"vhost-vsock-pci,guest-cid={facts.vsock_cid}"]
    cmd += facts.tpm_args
    cmd += facts.drive_args
    cmd += qemu_credential_args(creds, scratch / "credentials")
    cmd += config.qemu_args
    cmd += list(arguments)
    return VmPlan(cmd, accel, choice, notes)


def start_host_services(
    config: Config, facts: HostFacts, scratch: Path, prefix: list[str], stack: contextlib.ExitStack
) -> notify.NotifyListener | None:
    """virtiofsd for the shared directories, systemd-journal-remote for ForwardJournal=, the
    vsock listener for the guest's exit status: all started before qemu, stopped after it
    (the ExitStack unwinds after qemu has exited)."""
    from kosi.run.vsock import free_tcp_port

    if config.bind_user:
        facts.bound_user = virtiofs.invoking_user()
        if facts.bound_user is None:
            log.warn("BindUser=yes: not binding root's home directory into the VM; run kosi via sudo as a user")
    shares = virtiofs.runtime_shares(config, facts.bound_user)
    if shares:
        facts.shares = stack.enter_context(virtiofs.virtiofsd_running(shares, scratch, prefix))
    if config.forward_journal is not None:
        plan = journal_forward.plan_forwarding(
            vsock=facts.vsock_cid is not None, port=free_tcp_port(), user_networking=config.runtime_network == "user"
        )
        stack.enter_context(journal_forward.journal_remote_running(plan, Path(config.forward_journal), scratch, prefix))
        facts.journal_address = plan.guest_address
    if facts.vsock_cid is None:
        log.debug(
            "the guest's exit status cannot reach kosi without vsock (sd_notify speaks only AF_UNIX and "
            "AF_VSOCK); reporting qemu's"
        )
        return None
    listener = stack.enter_context(notify.vsock_notify_listener())
    facts.notify_address = listener.guest_address
    return listener


def start_vm(project, args) -> int:
    """The vm verb: build if needed, then boot the image (or its ephemeral copy) in qemu."""
    from kosi.run.drives import drive_args
    from kosi.run.image import ensure_built, machine_name, runtime_image, verb_arguments
    from kosi.run.toolsenv import runtime_prefix
    from kosi.run.tpm import swtpm, want_tpm
    from kosi.sandbox import process_tree_command
    from kosi.run.vsock import (
        RuntimeInfo,
        choose_cid,
        free_tcp_port,
        runtime_file,
        vsock_available,
        write_runtime,
    )
    from kosi.verbs.build import ensure_tools_tree

    config = project.main
    output = ensure_built(project, args)
    if output.is_dir():
        raise KosiError("kosi vm cannot boot a directory image yet; use Format=disk (or `kosi boot` for a container)")
    tools = ensure_tools_tree(project, args)
    # qemu and its daemons in a PID namespace: stopping one stops all it started, and they
    # die with kosi even when it is killed with SIGKILL
    prefix = [*process_tree_command(), *runtime_prefix(tools)]
    verdict = (
        probe_kvm(QEMU_BINARIES.get(config.architecture, "qemu-system-x86_64"))
        if config.kvm == Feature.auto
        else KvmVerdict(True, True, "")
    )
    machine = machine_name(config)

    missing = vsock_available()
    if config.vsock == Feature.enabled and missing:
        raise KosiError(f"VSock=yes: {missing}")
    use_vsock = missing is None and config.vsock != Feature.disabled

    with tempfile.TemporaryDirectory(prefix="kosi-vm-", dir="/var/tmp") as tmp, runtime_image(config, output) as image:
        scratch = Path(tmp)
        facts = HostFacts(verdict, tools_root=tools or Path("/"))
        if use_vsock:
            facts.vsock_cid = choose_cid(config.vsock_cid, image)
        elif config.runtime_network == "user":
            facts.ssh_port = free_tcp_port()
            log.debug(f"no vsock ({missing}); forwarding 127.0.0.1:{facts.ssh_port} to the guest's SSH port")
        with contextlib.ExitStack() as stack:
            if want_tpm(config.tpm, tools):
                facts.tpm_args = stack.enter_context(swtpm(scratch, prefix))
            facts.drive_args = stack.enter_context(drive_args(config.drives, machine))
            notifications = start_host_services(config, facts, scratch, prefix, stack)
            plan = qemu_command(config, image, facts, scratch, arguments=verb_arguments(config, args))
            if plan.notes:
                log.info("‣ " + "; ".join(plan.notes))
            log.debug("+ " + shlex.join(plan.cmd))
            stdin = subprocess.DEVNULL if config.console == "read-only" else None
            if tools is None and shutil.which(plan.cmd[0]) is None:
                raise KosiError(missing_program(plan.cmd[0]))
            proc = subprocess.Popen([*prefix, *plan.cmd], stdin=stdin)
            write_runtime(
                output, RuntimeInfo(machine=machine, pid=proc.pid, cid=facts.vsock_cid, ssh_port=facts.ssh_port)
            )
            try:
                status = proc.wait()
                guest_status = notify.exit_status(notifications.messages) if notifications else None
                return status if guest_status is None else guest_status
            except KeyboardInterrupt:
                proc.terminate()
                proc.wait()
                raise
            finally:
                runtime_file(output).unlink(missing_ok=True)
