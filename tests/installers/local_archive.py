"""A local apt archive, laid out like the real services kosi knows but cannot reach from here.

One pool of real Debian trixie packages (the essential set, priority required and apt, with
their dependencies, resolved from the trixie metadata in the test package cache) is published
under several layouts, each with Release files clear-signed by a throwaway gpg key:

    archive/debian/<ID>/dists/trixie{,-updates}/     snapshot.debian.org: one tree per snapshot
    archive/debian-security/<ID>/dists/trixie-security/
    debian/, debian-security/                        an ordinary mirror (the oldest snapshot)
    ubuntu/dists/noble{,-updates,-security}/         Ubuntu's archive (main, universe, multiverse)
    kali/dists/kali-rolling/                         Kali's archive

Small marker packages built here tell the test which suite or snapshot a package came from.
`serve()` answers like the snapshot service: a timestamp that is no snapshot is redirected to
the newest snapshot taken before it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: package caches the image tests fill: their trixie metadata and .debs are reused
PACKAGE_CACHES = (
    Path("/var/tmp/kosi-test-pkgcache-pipeline/debian~trixie~amd64"),
    Path("/var/tmp/kosi-test-pkgcache/debian~trixie~amd64"),
)
DEBIAN = "http://deb.debian.org"
#: what the bootstrap needs beyond ?essential and ?priority(required)
EXTRA_PACKAGES = ("apt",)
#: the Debian snapshots published, oldest first
SNAPSHOTS = ("20240102T030405Z", "20250607T080910Z")


@dataclass
class Package:
    name: str
    version: str
    stanza: str  # the Packages stanza, as the archive publishes it
    fields: dict[str, str]
    origin: str  # base URL the Filename is relative to


@dataclass
class Marker:
    """A package made here, published in one suite and component only."""

    name: str
    version: str
    stanza: str = ""


@dataclass
class Archive:
    root: Path
    keyring: Path  # binary keyring of the signing key (what a distribution keyring package ships)
    fingerprint: str
    snapshots: tuple[str, ...]  # oldest first
    base_packages: list[str] = field(default_factory=list)
    url: str = ""  # http://127.0.0.1:<port>, once served


# ---- which Debian packages ---------------------------------------------------------------


def parse_packages(text: str, origin: str) -> dict[str, Package]:
    packages: dict[str, Package] = {}
    for stanza in text.split("\n\n"):
        stanza = stanza.strip("\n")
        if not stanza:
            continue
        fields: dict[str, str] = {}
        name = None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and name:
                fields[name] += "\n" + line
            else:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
        packages[fields["Package"]] = Package(fields["Package"], fields["Version"], stanza, fields, origin)
    return packages


def newest(candidates: list[Package]) -> Package:
    """The version apt would pick among a package's versions in several suites."""
    best = candidates[0]
    for package in candidates[1:]:
        if (
            package.version != best.version
            and subprocess.run(["dpkg", "--compare-versions", package.version, "gt", best.version]).returncode == 0
        ):
            best = package
    return best


def trixie_index() -> dict[str, list[Package]]:
    """trixie as apt sees it: every package's versions in trixie, -updates and -security."""
    lists = next(
        (c / "lists" for c in PACKAGE_CACHES if (c / "lists").is_dir() and any((c / "lists").glob("*_Packages"))), None
    )
    suites = [("debian", "trixie"), ("debian", "trixie-updates"), ("debian-security", "trixie-security")]
    index: dict[str, list[Package]] = {}
    for archive, suite in suites:
        name = f"deb.debian.org_{archive}_dists_{suite}_main_binary-amd64_Packages"
        if lists and (lists / name).exists():
            text = (lists / name).read_text()
        else:  # no image test has run here yet: the metadata from the archive itself
            with urllib.request.urlopen(f"{DEBIAN}/{archive}/dists/{suite}/main/binary-amd64/Packages.gz") as r:
                text = gzip.decompress(r.read()).decode()
        for package in parse_packages(text, f"{DEBIAN}/{archive}").values():
            index.setdefault(package.name, []).append(package)
    return index


def dependency_names(value: str) -> list[list[str]]:
    """ "a (>= 1) | b:any, c" -> [["a", "b"], ["c"]]"""
    clauses = []
    for clause in value.split(","):
        names = [re.sub(r"[\s(\[<].*", "", alt.strip()).split(":")[0] for alt in clause.split("|")]
        clauses.append([n for n in names if n])
    return [c for c in clauses if c]


def closure(index: dict[str, list[Package]], wanted: list[str]) -> list[Package]:
    """`wanted` and everything they depend on, each at its newest version (first satisfiable
    alternative, virtual names by Provides)."""
    providers: dict[str, list[str]] = {}
    for candidates in index.values():
        for clause in dependency_names(candidates[0].fields.get("Provides", "")):
            providers.setdefault(clause[0], []).append(candidates[0].name)
    chosen: dict[str, Package] = {}
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in chosen:
            continue
        package = chosen[name] = newest(index[name])
        for field_name in ("Pre-Depends", "Depends"):
            for clause in dependency_names(package.fields.get(field_name, "")):
                if any(alt in chosen or any(p in chosen for p in providers.get(alt, ())) for alt in clause):
                    continue
                real = [alt for alt in clause if alt in index] + [p for alt in clause for p in providers.get(alt, ())]
                if not real:
                    raise RuntimeError(f"{name}: cannot satisfy {clause}")
                todo.append(real[0])
    return sorted(chosen.values(), key=lambda p: p.name)


def base_packages() -> list[Package]:
    index = trixie_index()
    wanted = [
        name
        for name, candidates in index.items()
        if candidates[0].fields.get("Essential") == "yes" or candidates[0].fields.get("Priority") == "required"
    ]
    return closure(index, [*wanted, *EXTRA_PACKAGES])


def fetch(package: Package, pool_root: Path) -> None:
    """The .deb at its Filename below pool_root: hard-linked from a test cache or downloaded."""
    target = pool_root / package.fields["Filename"]
    target.parent.mkdir(parents=True, exist_ok=True)
    cached_name = f"{package.name}_{package.version.replace(':', '%3a')}_{package.fields['Architecture']}.deb"
    for cache in PACKAGE_CACHES:
        cached = cache / "archives" / cached_name
        if cached.exists() and cached.stat().st_size == int(package.fields["Size"]):
            try:
                target.hardlink_to(cached)
            except OSError:
                shutil.copyfile(cached, target)
            return
    with (
        urllib.request.urlopen(f"{package.origin}/{package.fields['Filename']}") as response,
        open(target, "wb") as out,
    ):
        shutil.copyfileobj(response, out)


# ---- marker packages ----------------------------------------------------------------------


def make_marker(pool_root: Path, component: str, marker: Marker, work: Path) -> Marker:
    tree = work / f"{marker.name}_{marker.version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {marker.name}\nVersion: {marker.version}\nArchitecture: all\n"
        "Maintainer: kosi tests <kosi@kosi.invalid>\nDescription: marks where a package came from\n"
    )
    (tree / f"usr/share/{marker.name}").mkdir(parents=True)
    (tree / f"usr/share/{marker.name}/version").write_text(f"{marker.version}\n")
    filename = f"pool/{component}/k/{marker.name}/{marker.name}_{marker.version}_all.deb"
    deb = pool_root / filename
    deb.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)], check=True, capture_output=True
    )
    data = deb.read_bytes()
    marker.stanza = (
        f"Package: {marker.name}\nVersion: {marker.version}\nArchitecture: all\n"
        f"Maintainer: kosi tests <kosi@kosi.invalid>\nPriority: optional\nSection: misc\n"
        f"Filename: {filename}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        "Description: marks where a package came from"
    )
    return marker


# ---- signed suites ------------------------------------------------------------------------


def gpg(home: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
        input=input,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=True,
    ).stdout


def release_date(timestamp: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime(timestamp))


def write_suite(
    dists: Path,
    suite: str,
    components: dict[str, list[str]],
    gnupg: Path,
    *,
    origin: str,
    date: float,
    valid_until: float | None = None,
) -> None:
    """dists/<suite>/: Packages per component (stanzas given), Release with their sums, InRelease."""
    top = dists / suite
    sums = []
    for component, stanzas in components.items():
        directory = top / component / "binary-amd64"
        directory.mkdir(parents=True, exist_ok=True)
        text = "".join(s.strip("\n") + "\n\n" for s in stanzas).encode()
        (directory / "Packages").write_bytes(text)
        (directory / "Packages.gz").write_bytes(gzip.compress(text, mtime=0))
        for name in ("Packages", "Packages.gz"):
            data = (directory / name).read_bytes()
            sums.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {component}/binary-amd64/{name}")
    lines = [
        f"Origin: {origin}",
        f"Label: {origin}",
        f"Suite: {suite}",
        f"Codename: {suite}",
        f"Date: {release_date(date)}",
    ]
    if valid_until is not None:
        lines.append(f"Valid-Until: {release_date(valid_until)}")
    lines += ["Architectures: amd64 all", f"Components: {' '.join(components)}", "SHA256:", *sums]
    release = "\n".join(lines) + "\n"
    (top / "Release").write_text(release)
    (top / "InRelease").write_bytes(
        gpg(gnupg, "--clearsign", "--digest-algo", "SHA256", "--output", "-", input=release.encode())
    )


def snapshot_time(snapshot: str) -> float:
    return time.mktime(time.strptime(snapshot, "%Y%m%dT%H%M%SZ")) - time.timezone


def build(root: Path, work: Path) -> Archive:
    """Build the whole archive under root (served as is) with scratch files in work."""
    gnupg = work / "gnupg"
    gnupg.mkdir(mode=0o700, parents=True)
    gpg(gnupg, "--quick-gen-key", "kosi test archive <archive@kosi.invalid>", "ed25519", "sign", "never")
    listing = gpg(gnupg, "--with-colons", "--list-secret-keys").decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    keyring = work / "archive-keyring.gpg"
    keyring.write_bytes(gpg(gnupg, "--export", fingerprint))

    pool = root / "pool"
    packages = base_packages()
    for package in packages:
        fetch(package, root)
    base = [p.stanza for p in packages]

    def marker(component: str, name: str, version: str) -> str:
        return make_marker(root, component, Marker(name, version), work / "markers").stanza

    # Two Debian snapshots, both expired long ago, as every snapshot's Release files are.
    snapshots = SNAPSHOTS
    for number, snapshot in enumerate(snapshots, start=1):
        taken = snapshot_time(snapshot)
        valid = dict(date=taken, valid_until=taken + 7 * 86400, origin="Debian")
        main = root / "archive/debian" / snapshot
        security = root / "archive/debian-security" / snapshot
        write_suite(
            main / "dists", "trixie", {"main": [*base, marker("main", "kosi-snapshot", f"{number}.0")]}, gnupg, **valid
        )
        write_suite(main / "dists", "trixie-updates", {"main": []}, gnupg, **valid)
        write_suite(
            security / "dists",
            "trixie-security",
            {"main": [marker("main", "kosi-snapshot-security", f"{number}.0")]},
            gnupg,
            **valid,
        )
        for tree in (main, security):
            (tree / "pool").symlink_to(pool)
    # The oldest snapshot doubles as an ordinary (expired) mirror.
    (root / "debian").symlink_to(root / "archive/debian" / snapshots[0])
    (root / "debian-security").symlink_to(root / "archive/debian-security" / snapshots[0])

    now = time.time() - 3600
    ubuntu = root / "ubuntu/dists"
    write_suite(
        ubuntu,
        "noble",
        {
            "main": base,
            "universe": [marker("universe", "kosi-universe", "1.0")],
            "multiverse": [marker("multiverse", "kosi-multiverse", "1.0")],
        },
        gnupg,
        origin="Ubuntu",
        date=now,
        valid_until=now + 7 * 86400,
    )
    write_suite(
        ubuntu,
        "noble-updates",
        {"main": [marker("main", "kosi-updates", "1.0")], "universe": [], "multiverse": []},
        gnupg,
        origin="Ubuntu",
        date=now,
    )
    write_suite(
        ubuntu,
        "noble-security",
        {"main": [marker("main", "kosi-security", "1.0")], "universe": [], "multiverse": []},
        gnupg,
        origin="Ubuntu",
        date=now,
    )
    (root / "ubuntu/pool").symlink_to(pool)

    write_suite(
        root / "kali/dists",
        "kali-rolling",
        {"main": [*base, marker("main", "kosi-kali", "1.0")]},
        gnupg,
        origin="Kali",
        date=now,
    )
    (root / "kali/pool").symlink_to(pool)
    return Archive(root, keyring, fingerprint, snapshots, [p.name for p in packages])


# ---- serving ------------------------------------------------------------------------------


class ArchiveHandler(http.server.SimpleHTTPRequestHandler):
    snapshots: tuple[str, ...] = ()

    def log_message(self, *args):  # apt's requests are not the test's output
        pass

    def redirect_to_snapshot(self) -> bool:
        """snapshot.debian.org's answer to a time that is no snapshot: the newest one before it."""
        m = re.match(r"^/archive/([^/]+)/(\d{8}T\d{6}Z)(/.*)?$", self.path)
        if not m or m.group(2) in self.snapshots:
            return False
        earlier = [s for s in self.snapshots if s < m.group(2)]
        if not earlier:
            self.send_error(404, "no snapshot before this time")
            return True
        self.send_response(301)
        self.send_header("Location", f"/archive/{m.group(1)}/{earlier[-1]}{m.group(3) or '/'}")
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_GET(self):
        if not self.redirect_to_snapshot():
            super().do_GET()

    def do_HEAD(self):
        if not self.redirect_to_snapshot():
            super().do_HEAD()


def serve(root: Path, snapshots: tuple[str, ...]) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve root on 127.0.0.1 (a free port) in a thread; returns the server and its URL."""
    handler = type("Handler", (ArchiveHandler,), {"snapshots": snapshots})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
