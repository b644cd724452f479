"""A bootable Fedora mirror made of Debian trixie's binaries (debian_payload.py), as rpms:

    fedora-userland   the userland, Provides: every package name a bootable Fedora image and
                      kosi's default Fedora initrd ask for (mkosi 27.1's lists, by hand: a
                      name kosi asks for that Fedora lacks makes the build fail)
    kernel            Requires: kernel-core (as Fedora's meta package)
    kernel-core       /usr/lib/modules/<kver>/{vmlinuz,System.map,config,kernel/...}
    systemd-boot-unsigned   /usr/lib/systemd/boot/efi (Provides: systemd-boot)
    shadow-utils      pulled in by the userland's Requires(pre):, as Fedora's packages do;
                      the default initrd removes it again

Payloads are uncompressed (w.ufdio) and made from hard links of the cached tree, so the
repository costs little time beyond rpmbuild's own pass over the files. The mirror (signed
by its own throwaway key, kept with it) is cached as the payload is.

    mirror = fedora_mirror()      # .root (serve it), .key (the public key), .kver
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import debian_payload
import rpm_repo

RELEASE = "42"

#: mkosi 27.1's: the packages of a bootable Fedora image (mkosi-vm's, those of our tests) and
#: its default initrd's for Fedora, plus what dnf and rpm's scriptlets assume exists
FEDORA_PROVIDES = (
    "basesystem", "filesystem", "setup", "fedora-release", "glibc", "coreutils", "bash", "systemd",
    "systemd-udev", "udev", "systemd-networkd", "systemd-resolved", "util-linux", "util-linux-core",
    "kmod", "btrfs-progs", "cryptsetup-libs", "dosfstools", "e2fsprogs", "gzip", "less", "libfdisk",
    "libfido2", "libseccomp", "procps-ng", "tpm2-tss", "xfsprogs", "iproute", "iputils", "polkit",
)  # fmt: skip

#: the file of the shadow-utils package
SHADOW_MARKER = "usr/share/shadow-utils/kosi-test-marker"

SPEC = """\
Name: {name}
Version: {version}
Release: {release}
Summary: {name} (kosi test package: Debian trixie repackaged)
License: various
BuildArch: x86_64
AutoReqProv: no
{deps}
%description
{name}, made by kosi's tests from Debian trixie's binaries.

%install
mkdir -p %{{buildroot}}
{install}

%files
%defattr(-,root,root,-)
{files}
"""


def tree_rpm(
    work: Path,
    name: str,
    version: str,
    tree: Path | None,
    paths: list[str],
    *,
    release: str = "1",
    provides: tuple[str, ...] = (),
    requires: tuple[str, ...] = (),
    prerequires: tuple[str, ...] = (),
) -> Path:
    """An rpm of `paths` (absolute, below `tree`; directories with everything in them)."""
    top = work / name
    (top / "SPECS").mkdir(parents=True)
    deps = [f"Provides: {p}" for p in provides] + [f"Requires: {r}" for r in requires]
    deps += [f"Requires(pre): {r}" for r in prerequires]
    install = f"cp -al {tree}/. %{{buildroot}}/" if tree else ""
    spec = top / "SPECS" / f"{name}.spec"
    files = "\n".join(f'"{p}"' for p in paths)
    spec.write_text(
        SPEC.format(name=name, version=version, release=release, deps="\n".join(deps), install=install, files=files)
    )
    defines = {
        "_topdir": str(top),
        "_binary_payload": "w.ufdio",
        "debug_package": "%{nil}",
        "__os_install_post": "%{nil}",
        "__spec_install_post": "%{nil}",
        "_build_id_links": "none",
        "_source_date_epoch_from_changelog": "0",
        "_build_name_fmt": "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
    }
    options = [arg for key, value in defines.items() for arg in ("--define", f"{key} {value}")]
    result = subprocess.run(
        ["rpmbuild", "-bb", "--quiet", *options, str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HOME": str(top)},
    )
    assert result.returncode == 0, result.stdout[-3000:]
    (rpm,) = (top / "RPMS").glob(f"{name}-*.rpm")
    return rpm


def top_level(tree: Path) -> list[str]:
    return sorted(f"/{entry.name}" for entry in tree.iterdir())


@dataclass(frozen=True)
class RpmMirror:
    root: Path  # serve this: fedora/linux/releases/42/Everything/x86_64/os/...
    key: Path  # the armored public key (RPM-GPG-KEY-fedora-42-primary in the tests)
    kver: str
    packages: tuple[str, ...]  # the rpm names published

    @property
    def os_release(self) -> str:
        return debian_payload.os_release("Fedora Linux", "fedora", RELEASE)


def build_fedora_rpms(work: Path, payload: debian_payload.Payload) -> list[Path]:
    userland = debian_payload.overlay(
        work / "userland-overlay",
        payload.userland,
        {"usr/lib/os-release": debian_payload.os_release("Fedora Linux", "fedora", RELEASE)},
    )
    version = payload.kver.split("+")[0].split("-")[0]
    shadow = work / "shadow-utils-tree"
    (shadow / "usr/share/shadow-utils").mkdir(parents=True)
    (shadow / SHADOW_MARKER).write_text("shadow-utils, which the default initrd removes again\n")
    modules = f"/usr/lib/modules/{payload.kver}"
    return [
        tree_rpm(
            work,
            "fedora-userland",
            RELEASE,
            userland,
            top_level(userland),
            provides=FEDORA_PROVIDES,
            prerequires=("shadow-utils",),
        ),
        tree_rpm(work, "shadow-utils", "4.17.4", shadow, ["/usr/share/shadow-utils"]),
        tree_rpm(work, "kernel", version, None, [], requires=(f"kernel-core = {version}-1",)),
        tree_rpm(work, "kernel-core", version, payload.kernel, [modules]),
        tree_rpm(
            work,
            "systemd-boot-unsigned",
            "257.13",
            payload.boot_efi,
            ["/usr/lib/systemd/boot"],
            provides=("systemd-boot",),
        ),
    ]


def signed_mirror(name: str, build, publish, names: tuple[str, ...]) -> RpmMirror:
    """The mirror `name`, cached: `build(work, payload)` makes its rpms, which are signed by a
    throwaway key and laid out by `publish(mirror, rpms, key)`."""
    payload = debian_payload.payload()

    def make(directory: Path) -> None:
        key = rpm_repo.SigningKey.create(directory / "gnupg", f"kosi {name} boot")
        try:
            rpms = build(directory / "work", payload)
            rpm_repo.sign(rpms, key)
            publish(directory / "mirror", rpms, key)
        finally:
            key.close()
        shutil.copy2(key.public, directory / "public.asc")
        shutil.rmtree(directory / "work")

    key = debian_payload.digest(
        payload.kver, str(payload.userland), Path(__file__).read_text(), Path(rpm_repo.__file__).read_text()
    )
    base = debian_payload.cached(f"{name}-mirror", key, make)
    return RpmMirror(base / "mirror", base / "public.asc", payload.kver, names)


def fedora_mirror() -> RpmMirror:
    """The signed Fedora 42 mirror (release and an empty updates repository), cached."""

    def publish(root: Path, rpms: list[Path], key) -> None:
        rpm_repo.publish(root / rpm_repo.fedora_release_path(RELEASE), rpms, key)
        rpm_repo.publish(root / rpm_repo.fedora_updates_path(RELEASE), [], key)

    names = ("fedora-userland", "shadow-utils", "kernel", "kernel-core", "systemd-boot-unsigned")
    return signed_mirror("fedora", build_fedora_rpms, publish, names)


# ---- openSUSE Tumbleweed -----------------------------------------------------------------------

#: mkosi 27.1's: the packages of a bootable openSUSE image and of its default initrd, plus the
#: first packages of a new image (filesystem, openSUSE-release)
OPENSUSE_PROVIDES = (
    "filesystem", "openSUSE-release", "glibc", "coreutils", "bash", "systemd", "udev", "kmod", "util-linux",
    "btrfsprogs", "diffutils", "dosfstools", "e2fsprogs", "grep", "gzip", "less", "libcryptsetup12", "libfdisk1",
    "libfido2-1", "libseccomp2", "libtss2-esys0", "libtss2-mu0", "libtss2-rc0", "libtss2-tcti-device0",
    "patterns-base-minimal_base", "procps", "xfsprogs", "xz", "iproute2", "iputils", "polkit",
)  # fmt: skip
#: the openSUSE packages the default initrd removes again (each carries a marker file)
OPENSUSE_REMOVED = ("shadow", "sysuser-shadow")
#: Tumbleweed's repositories below the mirror: oss holds the packages, the others are empty
OPENSUSE_REPOSITORIES = ("tumbleweed/repo/oss", "tumbleweed/repo/non-oss", "update/tumbleweed")


def marker_rpm(work: Path, name: str, version: str) -> Path:
    """A package of one file, /usr/share/<name>/kosi-test-marker."""
    tree = work / f"{name}-tree"
    (tree / "usr/share" / name).mkdir(parents=True)
    (tree / "usr/share" / name / "kosi-test-marker").write_text(f"{name}, which the default initrd removes again\n")
    return tree_rpm(work, name, version, tree, [f"/usr/share/{name}"])


def build_opensuse_rpms(work: Path, payload: debian_payload.Payload) -> list[Path]:
    userland = debian_payload.overlay(
        work / "userland-overlay",
        payload.userland,
        {"usr/lib/os-release": debian_payload.os_release("openSUSE Tumbleweed", "opensuse-tumbleweed", "20250101")},
    )
    version = payload.kver.split("+")[0].split("-")[0]
    return [
        tree_rpm(
            work,
            "opensuse-userland",
            "20250101",
            userland,
            top_level(userland),
            provides=OPENSUSE_PROVIDES,
            prerequires=OPENSUSE_REMOVED,
        ),
        *(marker_rpm(work, name, "4.17") for name in OPENSUSE_REMOVED),
        tree_rpm(work, "kernel-default", version, payload.kernel, [f"/usr/lib/modules/{payload.kver}"]),
        tree_rpm(work, "systemd-boot", "257.13", payload.boot_efi, ["/usr/lib/systemd/boot"]),
    ]


def opensuse_mirror() -> RpmMirror:
    """The signed Tumbleweed mirror (oss with the packages, the other repositories empty), cached."""

    def publish(root: Path, rpms: list[Path], key) -> None:
        for index, repository in enumerate(OPENSUSE_REPOSITORIES):
            rpm_repo.publish(root / repository, rpms if index == 0 else [], key)

    names = ("opensuse-userland", *OPENSUSE_REMOVED, "kernel-default", "systemd-boot")
    return signed_mirror("opensuse", build_opensuse_rpms, publish, names)
