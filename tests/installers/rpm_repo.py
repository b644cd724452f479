"""Real rpm-md repositories for tests: packages built with rpmbuild, signed with a throwaway
gpg key, indexed by createrepo_c, laid out as a distribution's public mirror and served over
HTTP on 127.0.0.1.

    keys = SigningKey.create(tmp / "gnupg", "kosi test")
    pkgs = build_packages(tmp / "build", [Spec("hello", requires=("libhello",), files={...}), ...])
    sign(pkgs, keys)
    publish(tmp / "mirror/fedora/linux/releases/42/Everything/x86_64/os", pkgs, keys)
    with Server(tmp / "mirror") as server: ... server.url, server.requests

`publish` also signs repodata/repomd.xml (repomd.xml.asc, armored and detached, as
openSUSE and others publish it). Any rpm distribution's layout is just a path under the
mirror root (see FEDORA_*, CENTOS_* below and the openSUSE one of whoever needs it).
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


def fedora_release_path(release: str) -> str:
    if release == "rawhide":
        return f"fedora/linux/development/rawhide/Everything/{ARCH}/os"
    return f"fedora/linux/releases/{release}/Everything/{ARCH}/os"


def fedora_updates_path(release: str) -> str:
    return f"fedora/linux/updates/{release}/Everything/{ARCH}"


def centos_path(release: str, component: str) -> str:
    """BaseOS, AppStream, CRB below Mirror=<server>/centos-stream."""
    return f"centos-stream/{release}-stream/{component}/{ARCH}/os"


def centos_extras_path(release: str) -> str:
    return f"centos-stream/SIGs/{release}-stream/extras/{ARCH}/extras-common"


def epel_path(release: str) -> str:
    return f"fedora/epel/{release}/Everything/{ARCH}"


@dataclass
class SigningKey:
    home: Path
    uid: str
    public: Path  # the armored public key, as distributions ship it

    @classmethod
    def create(cls, home: Path, name: str) -> SigningKey:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        uid = f"{name} <{name.replace(' ', '-')}@kosi.invalid>"
        env = {**os.environ, "GNUPGHOME": str(home)}
        subprocess.run(
            ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "rsa2048", "sign", "never"],
            env=env,
            check=True,
            capture_output=True,
        )
        public = home / "public.asc"
        public.write_bytes(
            subprocess.run(["gpg", "--armor", "--export", uid], env=env, check=True, capture_output=True).stdout
        )
        return cls(home, uid, public)

    def env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": str(self.home)}

    def close(self) -> None:
        kill_gpg_agent(self.home)


@dataclass
class Spec:
    name: str
    version: str = "1.0"
    release: str = "1"
    arch: str = ARCH
    requires: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # path -> content
    docs: dict[str, str] = field(default_factory=dict)  # %doc files (WithDocs=)
    directories: tuple[str, ...] = ()
    symlinks: dict[str, str] = field(default_factory=dict)  # path -> target
    changelog: str = ""  # the %changelog section's text

    def text(self) -> str:
        lines = [
            f"Name: {self.name}",
            f"Version: {self.version}",
            f"Release: {self.release}",
            f"Summary: {self.name} (kosi test package)",
            "License: MIT",
            f"BuildArch: {self.arch}",
            "AutoReqProv: no",
        ]
        lines += [f"Requires: {r}" for r in self.requires]
        lines += [f"Provides: {p}" for p in self.provides]
        lines += ["", "%description", f"{self.name}, built by kosi's tests.", "", "%install"]
        for path in self.directories:
            lines.append(f"mkdir -p %{{buildroot}}{path}")
        for path, content in {**self.files, **self.docs}.items():
            lines.append(f"mkdir -p %{{buildroot}}{os.path.dirname(path)}")
            lines.append(f"printf '%s\\n' {shell_quote(content)} > %{{buildroot}}{path}")
            if "/bin/" in path:
                lines.append(f"chmod 0755 %{{buildroot}}{path}")
        for path, target in self.symlinks.items():
            lines.append(f"mkdir -p %{{buildroot}}{os.path.dirname(path)}")
            lines.append(f"ln -s {target} %{{buildroot}}{path}")
        lines += ["", "%files"]
        lines += [f"%dir {p}" for p in self.directories]
        lines += list(self.files) + list(self.symlinks)
        lines += [f"%doc {p}" for p in self.docs]
        if self.changelog:
            lines += ["", "%changelog", self.changelog]
        return "\n".join(lines) + "\n"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}.rpm"


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def build_packages(workdir: Path, specs: list[Spec]) -> dict[str, Path]:
    """Build each spec with rpmbuild; returns name -> .rpm path."""
    built = {}
    for spec in specs:
        top = workdir / spec.name
        (top / "SPECS").mkdir(parents=True, exist_ok=True)
        path = top / "SPECS" / f"{spec.name}.spec"
        path.write_text(spec.text())
        subprocess.run(
            [
                "rpmbuild",
                "-bb",
                "--quiet",
                "--define",
                f"_topdir {top}",
                "--define",
                "debug_package %{nil}",
                "--define",
                "__os_install_post %{nil}",
                "--define",
                "_build_id_links none",
                "--define",
                "_source_date_epoch_from_changelog 0",
                str(path),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "HOME": str(top)},
        )
        built[spec.name] = top / "RPMS" / spec.arch / spec.filename
        assert built[spec.name].exists(), built[spec.name]
    return built


def sign(packages: list[Path], key: SigningKey) -> None:
    subprocess.run(
        [
            "rpmsign",
            "--addsign",
            "--define",
            f"_gpg_name {key.uid}",
            "--define",
            f"_gpg_path {key.home}",
            "--define",
            f"__gpg {shutil.which('gpg')}",
            *map(str, packages),
        ],
        check=True,
        capture_output=True,
        env=key.env(),
    )


def publish(directory: Path, packages: list[Path], key: SigningKey | None) -> Path:
    """A repository at `directory`: Packages/<initial>/<rpm> and signed repodata."""
    for package in packages:
        target = directory / "Packages" / package.name[0].lower() / package.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(package, target)
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["createrepo_c", "--quiet", "--no-database", str(directory)], check=True, capture_output=True)
    if key is not None:
        subprocess.run(
            [
                "gpg",
                "--batch",
                "--yes",
                "--armor",
                "--detach-sign",
                "-u",
                key.uid,
                str(directory / "repodata/repomd.xml"),
            ],
            check=True,
            capture_output=True,
            env=key.env(),
        )
    return directory


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, requests: list[str], **kwargs):
        self._requests = requests
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self._requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


class Server:
    """The mirror root over HTTP on 127.0.0.1; `requests` lists every path asked for."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        handler = functools.partial(_Handler, directory=str(root), requests=self.requests)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread: threading.Thread | None = None

    def start(self) -> Server:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread is not None:
            self.httpd.shutdown()
            self.thread.join()
            self.thread = None

    def close(self) -> None:
        self.stop()
        self.httpd.server_close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def base_specs() -> list[Spec]:
    """A tiny distribution: a filesystem package (merged /usr), hello and the library it needs."""
    return [
        Spec(
            "filesystem",
            version="3.18",
            directories=("/etc", "/usr", "/usr/bin", "/usr/lib", "/usr/lib64", "/var"),
            symlinks={"/bin": "usr/bin", "/lib": "usr/lib", "/lib64": "usr/lib64"},
            files={
                "/etc/kosi-test-release": "kosi test distribution",
                "/usr/lib/os-release": "NAME=Fedora Linux\nID=fedora\nVERSION_ID=42",
            },
        ),
        Spec("basesystem", version="11", requires=("filesystem",)),
        Spec(
            "libhello",
            version="2.1",
            files={"/usr/lib64/libhello.so.2": "libhello 2.1"},
            provides=("libhello.so.2()(64bit)",),
        ),
        Spec(
            "hello",
            version="1.4",
            requires=("libhello >= 2", "filesystem"),
            files={"/usr/bin/hello": "#!/bin/sh\necho hello"},
            docs={"/usr/share/doc/hello/README": "read me"},
            changelog="* Mon Jan 06 2025 kosi tests <tests@kosi.invalid> - 1.4-1\n- Say hello\n- Need libhello 2",
        ),
    ]
