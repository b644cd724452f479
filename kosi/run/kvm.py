"""Whether KVM can really run a guest here, and whether it offers System Management Mode.

/dev/kvm existing is not enough: some hypervisors expose a KVM device that cannot run
ordinary firmware (instruction emulation failures, missing MSRs, no SMM). KVM=auto has to
mean "works here", so we start qemu with a 64 KiB firmware image of our own whose reset
vector executes an x87 instruction from the firmware's ROM (what OVMF trips over first on
such hypervisors) and then reports success through the isa-debug-exit device. This takes a
fraction of a second; the verdict is cached per boot, kernel and qemu binary.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kosi import log

# Real-mode code placed at the reset vector (0xFFFFFFF0):
#   finit; mov al, 0x31; out 0xf4, al; hlt; jmp $
# isa-debug-exit turns the byte written to port 0xf4 into qemu's exit status (0x31 << 1 | 1).
RESET_CODE = bytes([0x9B, 0xDB, 0xE3, 0xB0, 0x31, 0xE6, 0xF4, 0xF4, 0xEB, 0xFE])
PROBE_SUCCESS_STATUS = (0x31 << 1) | 1
PROBE_TIMEOUT = 5.0

# qemu prints these when the accelerator cannot run the guest; it then pauses instead of exiting.
FAILURE_MARKERS = (
    "KVM internal error",
    "emulation failure",
    "failed to set MSR",
    "not supported by this hypervisor",
    "Could not access KVM kernel module",
    "failed to initialize kvm",
)


@dataclass(frozen=True)
class KvmVerdict:
    usable: bool
    smm: bool
    reason: str  # one line: why KVM (or its SMM) is not used; empty when both work

    def to_json(self) -> dict:
        return asdict(self)


def probe_firmware_image() -> bytes:
    image = bytearray(b"\xf4" * 65536)  # hlt everywhere else
    image[-16 : -16 + len(RESET_CODE)] = RESET_CODE
    return bytes(image)


def run_probe(qemu: str, machine: str, *, accel: str = "kvm", timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """Boot the probe firmware; (True, "") when it ran to its end, else (False, qemu's first error line)."""
    with tempfile.NamedTemporaryFile(prefix="kosi-kvm-probe-", suffix=".bin") as firmware:
        firmware.write(probe_firmware_image())
        firmware.flush()
        cmd = [
            qemu,
            "-accel",
            accel,
            "-machine",
            machine,
            "-cpu",
            "host" if accel == "kvm" else "max",
            "-m",
            "16",
            "-bios",
            firmware.name,
            "-display",
            "none",
            "-nodefaults",
            "-serial",
            "none",
            "-monitor",
            "none",
            "-no-user-config",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as e:
            return False, f"cannot start {qemu}: {e.strerror}"
        errors = b""
        stderr = proc.stderr
        assert stderr is not None  # stderr=PIPE
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                ready, _, _ = select.select([stderr], [], [], 0.05)
                if ready:
                    chunk = os.read(stderr.fileno(), 4096)
                    errors += chunk
                    if any(m.encode() in errors for m in FAILURE_MARKERS):
                        break  # qemu pauses the guest after such an error rather than exiting
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            errors += stderr.read() or b""
        finally:
            stderr.close()
        if proc.returncode == PROBE_SUCCESS_STATUS:
            return True, ""
        lines = [line.strip() for line in errors.decode(errors="replace").splitlines() if line.strip()]
        interesting = list(
            dict.fromkeys(
                line.removeprefix(f"{qemu}: ").removeprefix("qemu-system-x86_64: ")
                for line in lines
                if any(m in line for m in FAILURE_MARKERS)
            )
        )
        if interesting:
            return False, "; ".join(interesting[:2])
        others = [line for line in lines if "warning" not in line]
        return False, (others[0] if others else "the test guest did not finish")


def cache_key(qemu: str) -> str:
    boot_id = (
        Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        if Path("/proc/sys/kernel/random/boot_id").exists()
        else ""
    )
    try:
        stat = os.stat(qemu)
        binary = f"{qemu}:{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        binary = qemu
    return hashlib.sha256(f"{boot_id}\0{os.uname().release}\0{binary}".encode()).hexdigest()[:32]


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kosi" / "kvm-probe.json"


def probe_kvm(qemu: str = "qemu-system-x86_64", *, use_cache: bool = True) -> KvmVerdict:
    """Decide whether KVM (and KVM with SMM) can run guests on this machine."""
    if not os.path.exists("/dev/kvm"):
        return KvmVerdict(False, False, "/dev/kvm does not exist")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return KvmVerdict(False, False, "/dev/kvm is not accessible to this user")
    key = cache_key(qemu)
    path = cache_file()
    if use_cache:
        try:
            cached = json.loads(path.read_text())
            if cached.get("key") == key:
                return KvmVerdict(**cached["verdict"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    ok, reason = run_probe(qemu, "q35,smm=on")
    if ok:
        verdict = KvmVerdict(True, True, "")
    else:
        plain_ok, plain_reason = run_probe(qemu, "q35,smm=off")
        if plain_ok:
            verdict = KvmVerdict(True, False, f"KVM has no System Management Mode here ({reason})")
        else:
            verdict = KvmVerdict(False, False, f"KVM cannot run guests here ({plain_reason})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "verdict": verdict.to_json()}))
    except OSError as e:
        log.debug(f"not caching the KVM probe: {e}")
    return verdict
