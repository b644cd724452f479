"""The default initrd's packages per distribution equal mkosi 27.1's: the Packages= of the
`default-initrd` image its `--json summary` shows for Bootable=yes (read from the oracle for
each distribution; they do not depend on Release= or Architecture=)."""

from __future__ import annotations

import pytest

from kosi import distributions

RHEL = ("bash cryptsetup-libs dosfstools e2fsprogs gzip less libfdisk libfido2 libseccomp procps-ng systemd "
        "tpm2-tss udev util-linux xfsprogs")  # fmt: skip
MINIMAL = "bash gzip less systemd udev"
MKOSI_27_1 = {
    "arch": "bash btrfs-progs dosfstools e2fsprogs gzip less libfido2 libseccomp procps-ng systemd tpm2-tss udev "
    "util-linux util-linux-libs xfsprogs",
    "fedora": "bash btrfs-progs cryptsetup-libs dosfstools e2fsprogs gzip less libfdisk libfido2 libseccomp "
    "procps-ng systemd tpm2-tss udev util-linux-core xfsprogs",
    "centos": RHEL,
    "alma": RHEL,
    "rocky": RHEL,
    "rhel": RHEL,
    "rhel-ubi": MINIMAL,
    "azure": "bash btrfs-progs cryptsetup-libs dosfstools e2fsprogs gzip less libfdisk libseccomp procps-ng systemd "
    "tpm2-tss udev util-linux xfsprogs",
    "mageia": MINIMAL,
    "openmandriva": MINIMAL,
    "opensuse": "bash btrfsprogs diffutils dosfstools e2fsprogs grep gzip less libcryptsetup12 libfdisk1 libfido2-1 "
    "libseccomp2 libtss2-esys0 libtss2-mu0 libtss2-rc0 libtss2-tcti-device0 patterns-base-minimal_base procps "
    "systemd udev util-linux xfsprogs xz",
    "postmarketos": "bash cryptsetup-libs device-mapper gzip kbd less libfdisk libseccomp systemd udev util-linux "
    "util-linux-login",
}


@pytest.mark.parametrize("name", sorted(MKOSI_27_1))
def test_default_initrd_packages_equal_mkosi_27_1s(name):
    assert sorted(distributions.get(name).initrd_packages) == MKOSI_27_1[name].split()


#: Debian and Ubuntu: the list depends on the release (mkosi-initrd's release matches), and
#: from trixie on dpkg is removed again (RemovePackages=)
DEBIAN_OLDER = (
    "^libtss2-esys-[0-9.]+-0(t64)?$ ^libtss2-mu[0-9.-]+(t64)?$ ^libtss2-rc0(t64)?$ ^libtss2-tcti-device0(t64)?$ "
    "bash btrfs-progs dmsetup dosfstools e2fsprogs gzip kmod less libcryptsetup12 libfdisk1 libfido2-1 libseccomp2 "
    "mount procps systemd udev util-linux"
)
DEBIAN_NEWEST = (
    "bash btrfs-progs dmsetup dosfstools e2fsprogs gzip kmod less libcryptsetup12 libfdisk1 libfido2-1 libseccomp2 "
    "mount procps systemd systemd-cryptsetup systemd-repart systemd-tpm udev util-linux"
)
MKOSI_27_1_BY_RELEASE = {
    ("debian", "bookworm"): (DEBIAN_OLDER, ""),
    ("debian", "trixie"): (DEBIAN_OLDER + " systemd-cryptsetup systemd-repart", "dpkg"),
    ("debian", "forky"): (DEBIAN_NEWEST, "dpkg"),
    ("debian", "testing"): (DEBIAN_NEWEST, "dpkg"),
    ("debian", "sid"): (DEBIAN_NEWEST, "dpkg"),
    ("ubuntu", "jammy"): (DEBIAN_OLDER + " systemd-repart", ""),
    ("ubuntu", "noble"): (DEBIAN_OLDER + " systemd-repart", ""),
    ("ubuntu", "devel"): (DEBIAN_NEWEST, "dpkg"),
}


@pytest.mark.parametrize("name, release", sorted(MKOSI_27_1_BY_RELEASE))
def test_debian_default_initrd_per_release_equals_mkosi_27_1s(name, release):
    packages, remove = distributions.get(name).default_initrd(release)
    expected_packages, expected_remove = MKOSI_27_1_BY_RELEASE[name, release]
    assert sorted(packages) == sorted(expected_packages.split()) and list(remove) == expected_remove.split()


#: what the default initrd removes again after installing (its RemovePackages= in mkosi 27.1's
#: `--json summary`): packages pull in the user tools, and the initrd makes no users
MKOSI_27_1_REMOVED = {
    ("fedora", "42"): "shadow-utils",
    ("fedora", "43"): "",
    ("fedora", "rawhide"): "",
    ("centos", "9"): "shadow-utils",
    ("centos", "10"): "shadow-utils",
    ("alma", "9"): "shadow-utils",
    ("rocky", "9"): "shadow-utils",
    ("rhel", "9"): "shadow-utils",
    ("rhel-ubi", "9"): "",
    ("azure", "3.0"): "",
    ("opensuse", "tumbleweed"): "shadow sysuser-shadow",
    ("opensuse", "15.6"): "shadow sysuser-shadow",
    ("arch", "rolling"): "",
    ("mageia", "9"): "",
}


@pytest.mark.parametrize("name, release", sorted(MKOSI_27_1_REMOVED))
def test_default_initrd_removes_what_mkosi_27_1s_removes(name, release):
    packages, remove = distributions.get(name).default_initrd(release)
    assert sorted(packages) == sorted(distributions.get(name).initrd_packages)
    assert list(remove) == MKOSI_27_1_REMOVED[name, release].split()
