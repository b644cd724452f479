"""The sandbox entry point: build a fresh root in a private mount namespace, then exec a command.

Run as `python3 -S -E -s enter.py [options] -- command...` by the prefix that
`kosi.sandbox.sandbox_command()` returns. It runs before every tool kosi starts, so it imports
only a few standard modules (no kosi modules, no site) and does everything with a few dozen
system calls.

Every sandbox is its own PID namespace, so that stopping it stops everything the command
started, even daemons that left their session or double-forked. Three processes:
- the supervisor (this process, the one kosi started and waits for) unshares the PID namespace,
  forks, and waits. SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on; a second one, or the
  first after GRACE seconds, kills the namespace with SIGKILL. It dies with its parent (kosi
  killed with SIGKILL takes its sandboxes along). It exits the way the command did (same exit
  status, or killed by the same signal), and only once the last process of the sandbox is gone.
- init, PID 1 of the namespace, dies with the supervisor; it builds the root, forks the
  command, passes signals on to it, and reaps orphans. When the command ends, init exits and
  the kernel kills whatever the command left running.
- the command itself.

Options (all paths on the host unless said otherwise; targets are paths inside the sandbox):
  --usr DIR            /usr of the sandbox (read-only); with --etc-from also the source of /etc files
  --etc-from DIR       tree whose etc/ provides passwd, group, ssl certificates, alternatives, ...
  --certificates-from DIR  tree whose etc/ provides the certificates instead (ToolsTreeCertificates=no)
  --root DIR           chroot mode: DIR becomes / with /proc, /dev, /sys (ro), /run and /tmp mounted
  --network            keep the host network (otherwise a new network namespace with only lo)
  --bind SRC DST       read-write bind mount (recursive)
  --ro-bind SRC DST    read-only bind mount (recursive)
  --tmpfs DST | --proc DST | --dev DST | --sysfs DST
  --overlay-lower SRC  (repeatable) then --overlay UPPER WORK DST; UPPER and WORK "-" for read-only
  --dev-fuse, --dev-loop   add /dev/fuse, /dev/loop-control and /dev/loop* to /dev
  --chdir DIR          working directory inside the sandbox (default: the caller's, if visible)
  --keep-host          no new root, mounts or network: only the PID namespace (for VMs and their
                       daemons, which need the host's devices, paths and network)
  --search-path DIR    (repeatable) DIR read-only at its own path and searched for the command
                       before $PATH (ExtraSearchPaths=); $PATH keeps it where it already names it

Exit status 125 means the sandbox itself could not be set up, 127 that the command was not found.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import struct
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1

# glibc has no wrapper for these two; numbers per architecture.
PIVOT_ROOT = {
    "x86_64": 155,
    "aarch64": 41,
    "riscv64": 41,
    "loongarch64": 41,
    "ppc64le": 203,
    "ppc64": 203,
    "s390x": 217,
    "i686": 217,
    "i386": 217,
    "armv7l": 218,
}
MOUNT_SETATTR = 442  # the same on every architecture (added after the syscall tables were unified)

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
libc.unshare.argtypes = (ctypes.c_int,)
libc.syscall.restype = ctypes.c_long
libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)

#: signals the supervisor and init pass on to the command
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
#: seconds the command has after the first of them before the whole sandbox is killed
GRACE = 5


class SandboxError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def unshare(flags: int) -> None:
    _check(libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    if libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mounting {fstype or source} on {target}: {os.strerror(code)}")


def umount2(target: str, flags: int) -> None:
    _check(libc.umount2(_b(target), flags), f"unmounting {target}")


def pivot_root(new: str, old: str) -> None:
    number = PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(errno.ENOSYS, "pivot_root: unknown architecture")
    _check(libc.syscall(ctypes.c_long(number), _b(new), _b(old)), "pivot_root")


class MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def make_readonly(target: str) -> None:
    """Read-only including submounts; mount_setattr leaves the other (possibly locked) flags alone."""
    attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    if (
        libc.syscall(
            ctypes.c_long(MOUNT_SETATTR),
            ctypes.c_int(AT_FDCWD),
            _b(target),
            ctypes.c_uint(AT_RECURSIVE),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        )
        == 0
    ):
        return
    # Older kernels: a bind remount must repeat the flags the mount already has, or a user
    # namespace refuses to drop the locked ones.
    keep = os.statvfs(target).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | 4096)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)


def loopback_up() -> None:
    # Through libc rather than the socket module, whose import alone costs more than this whole setup.
    AF_INET, SOCK_DGRAM, SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 2, 2, 0x8913, 0x8914, 0x1
    sock = libc.socket(AF_INET, SOCK_DGRAM, 0)
    _check(sock, "socket")
    try:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
    finally:
        os.close(sock)


def resolve_in(root: str, path: str, *, follow_last: bool = True) -> str:
    """`path` inside `root`, following symlinks as if `root` were / (an image's absolute
    symlinks must not lead out to the host)."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if os.path.islink(candidate) and (parts or follow_last):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, f"too many symlinks in {path}")
            link = os.readlink(candidate)
            if link.startswith("/"):
                done = []
            parts = [p for p in link.split("/") if p and p != "."] + parts
            continue
        done.append(part)
    return os.path.join(root, *done)


def in_user_namespace() -> bool:
    with open("/proc/self/uid_map") as f:
        return f.read().split() != ["0", "0", "4294967295"]


def make_mountpoint(target: str, directory: bool) -> None:
    if os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if directory:
        os.mkdir(target)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def bind(source: str, target: str, *, readonly: bool, recursive: bool = True) -> None:
    make_mountpoint(target, os.path.isdir(source))
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if readonly:
        make_readonly(target)


def mount_proc(target: str) -> None:
    make_mountpoint(target, True)
    try:
        mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except PermissionError:
        # A fresh procfs needs our own PID namespace; in a user namespace we lack one, so reuse the host's.
        mount("/proc", target, None, MS_BIND | MS_REC)


def mount_sysfs(target: str) -> None:
    make_mountpoint(target, True)
    try:
        mount("sysfs", target, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
    except PermissionError:
        mount("/sys", target, None, MS_BIND | MS_REC)
        make_readonly(target)


def mount_tmpfs(target: str, mode: str = "0755") -> None:
    make_mountpoint(target, True)
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode}")


def mount_dev(target: str, *, fuse: bool = False, loop: bool = False) -> None:
    """A minimal /dev: the harmless character devices bound from the host (a user namespace
    may not mknod), fresh pts and shm, and the usual symlinks."""
    mount_tmpfs(target)
    nodes = list(DEVICES)
    if fuse:
        nodes.append("fuse")
    if loop:
        nodes += ["loop-control"] + sorted(n for n in os.listdir("/dev") if n.startswith("loop") and n[4:].isdigit())
    for node in nodes:
        if os.path.exists(f"/dev/{node}"):
            bind(f"/dev/{node}", f"{target}/{node}", readonly=False, recursive=False)
    os.mkdir(f"{target}/pts", 0o755)
    try:
        mount("devpts", f"{target}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
        os.symlink("pts/ptmx", f"{target}/ptmx")
    except OSError:
        pass  # no pseudo terminals then; only interactive tools need them
    mount_tmpfs(f"{target}/shm", "1777")
    for name, link in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ):
        os.symlink(link, f"{target}/{name}")


# Files and directories of /etc that programs need even in an otherwise empty root: user and
# group names, the dynamic linker's cache, certificates, Debian's alternatives symlinks.
ETC_ENTRIES = (
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "services",
    "protocols",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "crypto-policies",
    "os-release",
    "localtime",
    "mke2fs.conf",
)


#: the ETC_ENTRIES that hold certificates and trust stores (ToolsTreeCertificates=)
CERTIFICATE_ENTRIES = ("ssl", "ca-certificates", "ca-certificates.conf", "pki")


def populate_etc(newroot: str, source_root: str, network: bool, certificates_root: str | None = None) -> None:
    etc = f"{newroot}/etc"
    os.mkdir(etc, 0o755)
    for name in ETC_ENTRIES:
        root = certificates_root if certificates_root and name in CERTIFICATE_ENTRIES else source_root
        source = f"{root}/etc/{name}"
        if os.path.islink(source):
            os.symlink(os.readlink(source), f"{etc}/{name}")
        elif os.path.isdir(source):
            bind(source, f"{etc}/{name}", readonly=True)
        elif os.path.isfile(source):
            with open(source, "rb") as f, open(f"{etc}/{name}", "wb") as out:
                out.write(f.read())
    os.symlink("../proc/self/mounts", f"{etc}/mtab")
    if network:
        try:
            with open("/etc/resolv.conf", "rb") as f, open(f"{etc}/resolv.conf", "wb") as out:
                out.write(f.read())
        except FileNotFoundError:
            pass


def propagate_resolv_conf(root: str) -> None:
    """Make the host's DNS configuration visible in an image root without leaving it behind:
    bind over the image's file, or fill in the /run file its symlink points to."""
    target = resolve_in(root, "/etc/resolv.conf")
    if not os.path.exists("/etc/resolv.conf"):
        return
    if target.startswith(f"{root}/run/"):  # a fresh tmpfs: writing there leaves nothing behind
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open("/etc/resolv.conf", "rb") as f, open(target, "wb") as out:
            out.write(f.read())
    elif os.path.isdir(os.path.dirname(target)):
        bind("/etc/resolv.conf", target, readonly=True, recursive=False)


def parse(argv: list[str]) -> tuple[dict, list[tuple], list[str]]:
    options: dict = {
        "usr": None,
        "etc": None,
        "root": None,
        "network": False,
        "chdir": None,
        "fuse": False,
        "loop": False,
        "certificates": None,
        "host": False,
    }
    mounts: list[tuple] = []
    lowers: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return options, mounts, argv[i + 1 :]
        if arg in ("--usr", "--etc-from", "--root", "--chdir", "--certificates-from"):
            options[arg[2:].split("-")[0]] = argv[i + 1]
            i += 2
        elif arg in ("--network", "--dev-fuse", "--dev-loop", "--keep-host"):
            options[arg.split("-")[-1]] = True
            i += 1
        elif arg in ("--bind", "--ro-bind"):
            mounts.append((arg[2:], argv[i + 1], argv[i + 2]))
            i += 3
        elif arg in ("--tmpfs", "--proc", "--dev", "--sysfs"):
            mounts.append((arg[2:], None, argv[i + 1]))
            i += 2
        elif arg == "--search-path":
            mounts.append(("ro-bind", argv[i + 1], argv[i + 1]))
            options["search"] = options.get("search", []) + [argv[i + 1]]
            i += 2
        elif arg == "--overlay-lower":
            lowers.append(argv[i + 1])
            i += 2
        elif arg == "--overlay":
            mounts.append(("overlay", (tuple(lowers), argv[i + 1], argv[i + 2]), argv[i + 3]))
            lowers = []
            i += 4
        else:
            raise SandboxError(f"unknown option {arg}")
    raise SandboxError("missing '--' before the command")


def pinned(path: str, fds: list[int]) -> str:
    """A /proc/self/fd path for `path`, opened now: the new root is mounted over /tmp, which
    would hide sources that live there; the magic link still reaches the original."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    fds.append(fd)
    return f"/proc/self/fd/{fd}"


def setup(options: dict, mounts: list[tuple]) -> str:
    """Build the new root at /tmp of our private mount namespace and return the old cwd."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "/"
    unshare(CLONE_NEWNS | (0 if options["network"] else CLONE_NEWNET))
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    if not options["network"]:
        loopback_up()
    fds: list[int] = []
    # Pin every host path before anything gets mounted over it (and only now: a bind mount's
    # source must belong to our new mount namespace).
    resolved = []
    for kind, source, target in mounts:
        if kind in ("bind", "ro-bind"):
            source = pinned(source, fds)
        elif kind == "overlay":
            lowers, upper, work = source
            source = (
                [pinned(p, fds) for p in lowers],
                None if upper == "-" else pinned(upper, fds),
                None if work == "-" else pinned(work, fds),
            )
        resolved.append((kind, source, target))
    root = options["root"]
    usr = options["usr"] or "/usr"
    etc_from = options["etc"] or os.path.dirname(os.path.abspath(usr))
    root_fd = pinned(root, fds) if root else None
    usr_fd = None if root else pinned(usr, fds)
    etc_fd = None if root else pinned(etc_from, fds)

    newroot = "/tmp"
    if root:
        mount(root_fd, newroot, None, MS_BIND | MS_REC)
        mount_proc(resolve_in(newroot, "/proc"))
        mount_dev(resolve_in(newroot, "/dev"), fuse=options["fuse"], loop=options["loop"])
        mount_sysfs(resolve_in(newroot, "/sys"))
        mount_tmpfs(resolve_in(newroot, "/run"))
        mount_tmpfs(resolve_in(newroot, "/tmp"), "1777")
        if options["network"]:
            propagate_resolv_conf(newroot)
    else:
        assert usr_fd is not None and etc_fd is not None  # pinned above when there is no root
        mount("tmpfs", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        bind(usr_fd, f"{newroot}/usr", readonly=True, recursive=False)
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = f"{etc_fd}/{name}"
            if os.path.islink(host):
                os.symlink(os.readlink(host), f"{newroot}/{name}")
            elif os.path.isdir(host):
                bind(host, f"{newroot}/{name}", readonly=True, recursive=False)
        populate_etc(newroot, etc_fd, options["network"], options["certificates"])
        mount_proc(f"{newroot}/proc")
        mount_dev(f"{newroot}/dev", fuse=options["fuse"], loop=options["loop"])
        mount_tmpfs(f"{newroot}/tmp", "1777")
        mount_tmpfs(f"{newroot}/var/tmp", "1777")
        mount_tmpfs(f"{newroot}/run")
    for kind, source, target in resolved:
        where = resolve_in(newroot, target)
        if kind in ("bind", "ro-bind"):
            bind(source, where, readonly=kind == "ro-bind")
        elif kind == "tmpfs":
            # A tmp directory must be world-writable with the sticky bit, anything else root's.
            mount_tmpfs(where, "1777" if os.path.basename(target.rstrip("/")) == "tmp" else "0755")
        elif kind == "proc":
            mount_proc(where)
        elif kind == "sysfs":
            mount_sysfs(where)
        elif kind == "dev":
            mount_dev(where, fuse=options["fuse"], loop=options["loop"])
        elif kind == "overlay":
            lowers, upper, work = source
            data = "lowerdir=" + ":".join(lowers)
            if upper:
                data += f",upperdir={upper},workdir={work}"
            make_mountpoint(where, True)
            if in_user_namespace():
                data += ",userxattr"  # trusted.* xattrs are off limits in a user namespace
            mount("overlay", where, "overlay", 0 if upper else MS_RDONLY, data)
    if not root:
        # Everything not explicitly mounted (/, /etc, /var) stays read-only.
        mount(None, newroot, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755")
    os.chdir(newroot)
    pivot_root(".", ".")
    umount2(".", MNT_DETACH)
    for fd in fds:
        os.close(fd)
    return cwd


def find_program(name: str, path: str) -> str | None:
    if "/" in name:
        return name if os.path.exists(name) else None
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def die_with_parent() -> None:
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")


def run_command(options: dict, mounts: list[tuple], command: list[str]) -> int:
    """In init: build the root, then start the command; returns its pid, or an exit status
    (as a negative number) when it could not be started."""
    try:
        cwd = os.getcwd() if options["host"] else setup(options, mounts)
    except (OSError, SandboxError) as e:
        print(f"kosi-sandbox: {e}", file=sys.stderr)
        return -125
    workdir = options["chdir"] or cwd
    try:
        os.chdir(workdir)
    except OSError:
        if options["chdir"]:
            print(f"kosi-sandbox: working directory {workdir} does not exist in the sandbox", file=sys.stderr)
            return -125
        os.chdir("/")
    path = os.environ.get("PATH", "/usr/bin:/usr/sbin")
    extra = [d for d in options.get("search", []) if d not in path.split(":")]
    # the sandbox's /usr (a tools tree's) is searched even when the caller's $PATH leaves it out
    usr = [d for d in ("/usr/bin", "/usr/sbin") if d not in path.split(":")]
    if extra or usr:
        path = os.environ["PATH"] = ":".join([*extra, path, *usr])
    program = find_program(command[0], path)
    if program is None:
        print(f"kosi-sandbox: {command[0]}: command not found", file=sys.stderr)
        return -127
    pid = os.fork()
    if pid == 0:
        try:
            # What Python set up for itself is not the command's: SIGPIPE and SIGXFSZ ignored,
            # our handlers (exec resets those anyway) and the signal mask.
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            for number in FORWARDED:  # ignored stays ignored (a background job's SIGINT)
                if signal.getsignal(number) != signal.SIG_IGN:
                    signal.signal(number, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.execv(program, command)
        except OSError as e:
            print(f"kosi-sandbox: {command[0]}: {e.strerror}", file=sys.stderr)
        os._exit(126)
    return pid


def init(alive: int, report: int, options: dict, mounts: list[tuple], command: list[str]) -> int:
    """PID 1 of the sandbox's namespace; writes the command's wait status to `report`."""
    die_with_parent()
    os.set_blocking(alive, False)
    try:
        if os.read(alive, 1) == b"":
            return 137  # the supervisor died before we could follow it
    except BlockingIOError:
        pass  # still there
    child = run_command(options, mounts, command)
    if child < 0:
        return -child

    def forward(signum, frame) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for number in FORWARDED:
        if signal.getsignal(number) != signal.SIG_IGN:
            signal.signal(number, forward)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if not options["host"]:
        try:
            # Out of the way, so that tools see the chroot they saw before (systemd's
            # running_in_chroot() and Debian's ischroot compare / with /proc/1/root).
            os.chroot("/proc")
        except OSError:
            pass
    while True:
        pid, status = os.wait()
        if pid == child:
            os.write(report, struct.pack("i", status))
            return 0


def supervise(child: int, report: int) -> int:
    """Wait for init (and so for the whole namespace); exit as the command did."""
    signalled = False

    def on_signal(signum, frame) -> None:
        nonlocal signalled
        if signalled or signum == signal.SIGALRM:
            os.kill(child, signal.SIGKILL)
            return
        signalled = True
        os.kill(child, signum)
        signal.alarm(GRACE)

    for number in FORWARDED:
        if signal.getsignal(number) != signal.SIG_IGN:
            signal.signal(number, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    _, status = os.waitpid(child, 0)
    signal.alarm(0)
    data = os.read(report, 4)
    if len(data) == 4:
        status = struct.unpack("i", data)[0]
    if os.WIFSIGNALED(status):
        killed_by = os.WTERMSIG(status)
        if killed_by not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(killed_by, signal.SIG_DFL)
        os.kill(os.getpid(), killed_by)
        return 128 + killed_by
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    # Until each process has its own handlers: a signal now waits rather than kills half-way.
    signal.pthread_sigmask(signal.SIG_BLOCK, [*FORWARDED, signal.SIGALRM])
    try:
        die_with_parent()
        options, mounts, command = parse(argv)
        if not command:
            raise SandboxError("no command given")
        unshare(CLONE_NEWPID)
    except (OSError, SandboxError) as e:
        print(f"kosi-sandbox: {e}", file=sys.stderr)
        return 125
    alive_r, alive_w = os.pipe()
    report_r, report_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        status = 125
        try:
            os.close(alive_w)
            os.close(report_r)
            status = init(alive_r, report_w, options, mounts, command)
        except BaseException as e:  # never let a traceback or a second copy of the supervisor out
            print(f"kosi-sandbox: {e}", file=sys.stderr)
        finally:
            sys.stderr.flush()
            os._exit(status)
    os.close(alive_r)
    os.close(report_w)
    return supervise(child, report_r)


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except KeyboardInterrupt:  # Ctrl-C before main() could block it
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the interpreter's clean-up would cost more than everything else here
