"""A local Arch Linux mirror: real pacman packages, laid out and signed as the public mirrors are.

    <root>/core/os/x86_64/core.db -> core.db.tar.gz, core.files, *.pkg.tar.zst, *.pkg.tar.zst.sig
    <root>/extra/os/x86_64/...
    <root>/repos/2025/01/31/core/os/x86_64/...   the same, as archive.archlinux.org keeps a day
    <root>/repos/last/lastsync                     the newest day's time (`latest-snapshot`)

Packages are made by hand (a .PKGINFO and the files, in a zstd tarball, as makepkg writes
them), signed by a throwaway gpg key (detached .sig files, and the signatures in the
databases as repo-add puts them there), indexed by repo-add. `keyrings` holds what Debian's
archlinux-keyring installs (archlinux.gpg, archlinux-trusted, archlinux-revoked) but with the
throwaway key, for a project's mkosi.sandbox/usr/share/keyrings/; core also has an
archlinux-keyring package with those files where Arch's has them (usr/share/pacman/keyrings),
and kosi-rogue, signed by another key the keyring does not know.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from image_build import kill_gpg_agent

ARCH = "x86_64"
#: the day the mirror's copy of the snapshot archive (repos/YYYY/MM/DD/) has
SNAPSHOT = "2025/01/31"


@dataclass
class Mirror:
    root: Path
    keyrings: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None
    signer: Path | None = None  # the gpg home of the key that signed it

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.signer:
            kill_gpg_agent(self.signer)


def write_pkginfo(
    tree: Path, name: str, version: str, arch: str, size: int, description: str, *, depends=(), provides=()
) -> None:
    """The .PKGINFO makepkg would write for a package of `tree`'s files."""
    info = [
        f"pkgname = {name}",
        f"pkgbase = {name}",
        f"pkgver = {version}",
        f"pkgdesc = {description}",
        "url = https://example.invalid",
        "builddate = 1700000000",
        "packager = kosi tests",
        f"size = {size}",
        f"arch = {arch}",
        "license = MIT",
        *(f"provides = {p}" for p in provides),
        *(f"depend = {d}" for d in depends),
    ]
    (tree / ".PKGINFO").write_text("\n".join(info) + "\n")


def make_package(
    out: Path, name: str, version: str, files: dict[str, str | bytes], *, depends=(), arch: str = ARCH
) -> Path:
    """A .pkg.tar.zst with .PKGINFO and `files` (path -> content)."""
    tree = out / f"tree-{name}"
    tree.mkdir(parents=True)
    for path, content in files.items():
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    size = sum(len(c) for c in files.values())
    write_pkginfo(tree, name, version, arch, size, f"kosi test package {name}", depends=depends)
    package = out / f"{name}-{version}-{arch}.pkg.tar.zst"
    top = sorted({p.split("/")[0] for p in files})
    subprocess.run(["bsdtar", "--zstd", "-cf", str(package), ".PKGINFO", *top], cwd=tree, check=True)
    return package


def gpg(home: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--quiet", *args], check=True, **kwargs)


def new_key(home: Path, uid: str) -> str:
    home.mkdir(mode=0o700, parents=True)
    gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
    out = gpg(home, "--with-colons", "--list-keys", stdout=subprocess.PIPE, text=True).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


def sign(home: Path, package: Path) -> None:
    gpg(home, "--detach-sign", "--no-armor", "--output", f"{package}.sig", str(package))


#: name -> (version, files, depends) of the packages the mirror publishes in core
CORE = {
    "filesystem": (
        "2025.01-1",
        {"usr/lib/os-release": 'NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n', "etc/hostname": ""},
        (),
    ),
    "kosi-hello": ("1.0-1", {"usr/share/kosi-hello/hello": "hello from arch\n"}, ("kosi-libhello",)),
    "kosi-libhello": ("2.0-1", {"usr/lib/kosi-libhello.so": "libhello\n"}, ()),
    "kosi-tampered": ("1.0-1", {"usr/share/kosi-tampered/file": "original\n"}, ()),
    "kosi-rogue": ("1.0-1", {"usr/share/kosi-rogue/file": "rogue\n"}, ()),
}
EXTRA = {
    "kosi-extra": ("3.0-1", {"usr/share/kosi-extra/file": "from extra\n"}, ()),
}


def build(base: Path) -> Mirror:
    """Make the packages, sign them, lay out and index the mirror; returns it (not yet served)."""
    work, root, keyrings = base / "work", base / "mirror", base / "keyrings"
    work.mkdir(parents=True)
    keyrings.mkdir()
    home = base / "signer"
    fingerprint = new_key(home, "kosi Arch test key <arch@kosi.invalid>")
    gpg(home, "--export", "--output", str(keyrings / "archlinux.gpg"), fingerprint)
    (keyrings / "archlinux-trusted").write_text(f"{fingerprint}:4:\n")
    (keyrings / "archlinux-revoked").write_text("")
    keyring = {f"usr/share/pacman/keyrings/{p.name}": p.read_bytes() for p in keyrings.iterdir()}
    core = {**CORE, "archlinux-keyring": ("20250101-1", keyring, ())}
    rogue = base / "rogue-signer"
    new_key(rogue, "someone else <rogue@kosi.invalid>")
    for repo, packages in (("core", core), ("extra", EXTRA)):
        directory = root / repo / "os" / ARCH
        directory.mkdir(parents=True)
        made = []
        for name, (version, files, depends) in packages.items():
            package = make_package(work, name, version, files, depends=depends)
            target = directory / package.name
            os.rename(package, target)
            sign(rogue if name == "kosi-rogue" else home, target)
            made.append(target)
        subprocess.run(
            ["repo-add", "--quiet", str(directory / f"{repo}.db.tar.gz"), *map(str, made)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    # A package changed after it was signed: its signature no longer matches (the database has the
    # old one too, as a compromised mirror would serve it).
    tampered = root / "core/os" / ARCH / f"kosi-tampered-1.0-1-{ARCH}.pkg.tar.zst"
    data = bytearray(tampered.read_bytes())
    data[-8] ^= 0xFF
    tampered.write_bytes(bytes(data))
    kill_gpg_agent(rogue)
    for repo in ("core", "extra"):
        shutil.copytree(root / repo, root / "repos" / SNAPSHOT / repo)
    (root / "repos/last").mkdir()
    (root / "repos/last/lastsync").write_text("1738281600\n")  # 2025-01-31 00:00 UTC
    return Mirror(root, keyrings, signer=home)


def local_package(directory: Path) -> Path:
    """A package only in a package directory, not on the mirror."""
    directory.mkdir(parents=True, exist_ok=True)
    return make_package(
        directory, "kosi-local", "1.0-1", {"usr/share/kosi-local/file": "local package\n"}, depends=("kosi-libhello",)
    )


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, mirror: Mirror, **kwargs):
        self.mirror = mirror
        super().__init__(*args, directory=str(mirror.root), **kwargs)

    def do_GET(self):
        self.mirror.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


def serve(mirror: Mirror) -> Mirror:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, mirror=mirror))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mirror.server = server
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    return mirror
