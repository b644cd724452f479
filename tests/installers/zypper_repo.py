"""A local openSUSE mirror: real rpm packages (rpmbuild), laid out as download.opensuse.org is.

    <root>/tumbleweed/repo/oss/{noarch,repodata}     Tumbleweed (createrepo_c metadata)
    <root>/distribution/leap/15.6/repo/oss/...      Leap 15.6
    (the other repositories of each release exist, empty)

Packages and repomd.xml are signed by a throwaway key (rpmsign; gpg --detach-sign for
repomd.xml.asc, the key itself as repomd.xml.key, as openSUSE publishes them). `key` is the
key file a project puts in mkosi.sandbox/ under distribution-gpg-keys' name.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# The server is the pacman helper's: a static file server that records requests.
from pacman_repo import Mirror, new_key, serve  # noqa: F401  (re-exported for the tests)

SPEC = """Name: {name}
Version: {version}
Release: 1
Summary: kosi test package {name}
License: MIT
BuildArch: noarch
{requires}
%description
kosi test package
%install
mkdir -p %{{buildroot}}/usr/share/{name} %{{buildroot}}/usr/share/doc/{name}
echo '{content}' > %{{buildroot}}/usr/share/{name}/file
echo doc > %{{buildroot}}/usr/share/doc/{name}/README
%files
/usr/share/{name}/file
%doc /usr/share/doc/{name}/README
"""

#: name -> (version, requires)
PACKAGES = {
    "filesystem": ("84.87", ()),
    "openSUSE-release": ("20250101", ()),  # installed with filesystem, as mkosi 27.1
    "kosi-hello": ("1.0", ("kosi-libhello",)),
    "kosi-libhello": ("2.0", ()),
    "kosi-tampered": ("1.0", ()),
}
#: where each release's repositories live below the mirror
LAYOUTS = {
    "tumbleweed": ("tumbleweed/repo/oss", ("tumbleweed/repo/non-oss", "update/tumbleweed")),
    "15.6": (
        "distribution/leap/15.6/repo/oss",
        ("distribution/leap/15.6/repo/non-oss", "update/leap/15.6/oss", "update/leap/15.6/non-oss"),
    ),
}


@dataclass
class RpmMirror(Mirror):
    key: Path | None = None


def build_rpm(work: Path, name: str, version: str, requires=(), content: str | None = None) -> Path:
    top = work / "rpmbuild"
    (top / "SPECS").mkdir(parents=True, exist_ok=True)
    spec = top / "SPECS" / f"{name}.spec"
    spec.write_text(
        SPEC.format(
            name=name,
            version=version,
            content=content or f"{name} {version}",
            requires="\n".join(f"Requires: {r}" for r in requires),
        )
    )
    subprocess.run(
        ["rpmbuild", "--quiet", "--define", f"_topdir {top}", "-bb", str(spec)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return top / "RPMS/noarch" / f"{name}-{version}-1.noarch.rpm"


def rpmsign(home: Path, fingerprint: str, rpms: list[Path]) -> None:
    subprocess.run(
        [
            "rpmsign",
            "--define",
            f"_gpg_name {fingerprint}",
            "--define",
            f"_gpg_path {home}",
            "--define",
            "__gpg /usr/bin/gpg",
            "--addsign",
            *map(str, rpms),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def index(home: Path, directory: Path, key: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["createrepo_c", "--quiet", str(directory)], check=True)
    repomd = directory / "repodata/repomd.xml"
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--armor", "--detach-sign", str(repomd)],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    (directory / "repodata/repomd.xml.key").write_bytes(key.read_bytes())


def build(base: Path) -> RpmMirror:
    work, root = base / "work", base / "mirror"
    work.mkdir(parents=True)
    home = base / "signer"
    fingerprint = new_key(home, "kosi openSUSE test key <suse@kosi.invalid>")
    key = base / "RPM-GPG-KEY-kosi"
    key.write_bytes(
        subprocess.run(
            ["gpg", "--homedir", str(home), "--armor", "--export", fingerprint], check=True, stdout=subprocess.PIPE
        ).stdout
    )
    rpms = [build_rpm(work, name, version, requires) for name, (version, requires) in PACKAGES.items()]
    rpmsign(home, fingerprint, rpms)
    for oss, others in LAYOUTS.values():
        (root / oss / "noarch").mkdir(parents=True)
        for rpm in rpms:
            (root / oss / "noarch" / rpm.name).write_bytes(rpm.read_bytes())
        # changed after signing: its header signature no longer matches
        tampered = root / oss / "noarch/kosi-tampered-1.0-1.noarch.rpm"
        data = bytearray(tampered.read_bytes())
        data[-20] ^= 0xFF
        tampered.write_bytes(bytes(data))
        index(home, root / oss, key)
        for other in others:
            index(home, root / other, key)
    mirror = RpmMirror(root, base, signer=home)
    mirror.key = key
    return mirror


def local_rpm(directory: Path) -> Path:
    """An (unsigned) package only in a package directory, requiring one from the mirror."""
    directory.mkdir(parents=True, exist_ok=True)
    rpm = build_rpm(directory / "work", "kosi-local", "1.0", ("kosi-libhello",), content="local package")
    target = directory / rpm.name
    rpm.rename(target)
    return target
