"""Build-level differential tests, part 3: a bootable Debian trixie disk (systemd-boot, a UKI
with the default initrd, split kernel, initrds and partitions) built by mkosi 27.1 and by kosi,
compared by output names, partition table, ESP files, UKI sections, installed packages, the
root partition's entries (type, mode, owner) and the initrds' entries. Every difference is
fixed or listed in a KNOWN table below (and docs/compatibility.md).

kosi's side is the shared bootable image of tests/conftest.py; mkosi builds the same
configuration with kosi's trixie tools tree. Its side takes 5-25 minutes (the default initrd),
so only its facts are kept, in a cache (KOSI_COMPAT_CACHE, default /var/cache/kosi-compat)
keyed by what decides them: mkosi's version, the configuration, the versions of the tools
that shape the image (TOOLS) and the code reading the facts; and used only while the archive
(trixie, -updates, -security) still has the version of every package mkosi installed into the
image and its initrd. A warm run builds kosi's side only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.compat import disk_facts as facts_module
from tests.compat.builds import BUILD_TRACES, differences, installed, mkosi_command, mkosi_project, run_build
from tests.compat.disk_facts import disk_facts

pytestmark = pytest.mark.image

CACHE = Path(os.environ.get("KOSI_COMPAT_CACHE", "/var/cache/kosi-compat"))
APT_SOURCES = "".join(
    f"deb http://deb.debian.org/{path} {suite} main\n"
    for path, suite in (("debian", "trixie"), ("debian", "trixie-updates"), ("debian-security", "trixie-security"))
)

#: the tools tree's packages whose version can change what mkosi makes of the configuration
TOOLS = {"apt", "dpkg", "systemd", "systemd-repart", "systemd-ukify", "systemd-boot-efi", "python3-pefile",
         "dosfstools", "mtools", "e2fsprogs", "kmod", "cpio", "zstd", "xz-utils", "util-linux"}  # fmt: skip

#: differences in the output directory (docs/compatibility.md)
KNOWN_OUTPUTS = {
    # "The default initrd is not an image of the summary": mkosi publishes it
    "initrd": "mkosi only",
    "initrd.cpio.zst": "mkosi only",
}
#: differences in the root partition (docs/compatibility.md)
KNOWN_ROOT = {
    **BUILD_TRACES,
    # "Build-time traces are removed": more of them in a bootable image
    **{
        path: "kosi removes"
        for path in (
            "etc/group-", "etc/gshadow-", "etc/passwd-", "etc/shadow-", "var/lib/systemd/catalog/database",
            "var/log/README",
        )
    },
}  # fmt: skip
#: differences in the initrd (base and kernel modules) (docs/compatibility.md)
KNOWN_INITRD = {
    **{path: reason for path, reason in KNOWN_ROOT.items() if not path.startswith("var/log/")},
    # "The default initrd's Locale= credential": mkosi's default initrd has none
    "usr/lib/credstore": "kosi only",
    "usr/lib/credstore/firstboot.locale": "kosi only",
}
#: UKI sections only one tool writes (docs/compatibility.md)
KNOWN_UKI = {
    # "A UKI's command line": kosi's has console=ttyS0 console=tty0 rw, mkosi's none
    ".cmdline": "kosi only",
}
#: how far the sizes that depend on the content may differ (file system overhead, compression)
SIZE_TOLERANCE = 0.10


def cache_key(conf: str, tools: Path) -> str:
    """What decides mkosi's side apart from the archive (whose state is checked separately)."""
    command, env = mkosi_command()
    version = subprocess.run([*command, "--version"], env=dict(os.environ, **env), capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
    inputs = {
        "mkosi": version,
        "conf": conf,
        "tools": {name: version for name, version in installed(tools / "var/lib/dpkg/status").items() if name in TOOLS},
        "facts code": hashlib.sha256(Path(facts_module.__file__).read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def archive_versions(names: list[str]) -> dict[str, str]:
    """The version trixie (with -updates and -security) has now of each package: what a build
    would install today. apt's state is private (under the cache), the host's is not touched."""
    import oracle  # tests/compat/oracle.py: apt with a private state

    options = oracle.apt_options(CACHE / "apt", APT_SOURCES)
    subprocess.run(["apt-get", *options, "update"], check=True, stdout=subprocess.DEVNULL)
    shown = subprocess.run(["apt-cache", *options, "show", "--no-all-versions", *names], capture_output=True,
                           text=True, check=False).stdout  # fmt: skip
    versions = {}
    for stanza in shown.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if "Package" in fields:
            versions[fields["Package"]] = fields["Version"]
    return versions


def built_packages(facts: dict) -> list[str]:
    """The packages of the image (its dpkg status) and of its initrd (which keeps no dpkg
    status, but each package's /usr/share/doc/<name>)."""
    initrd = {
        path.split("/")[3] for path in facts["initrd"] if path.startswith("usr/share/doc/") and path.count("/") == 3
    }
    return sorted(set(facts["packages"]) | initrd)


def build_mkosi_side(request, tmp_path_factory, conf: str) -> dict:
    tools = request.getfixturevalue("tools_for_mkosi")
    command, env = mkosi_command()
    directory = tmp_path_factory.mktemp("mkosi-bootable")
    mkosi_project(directory, conf + f"\n[Build]\nToolsTree={tools}\n")
    (directory / "mkosi.output").mkdir()
    started = time.monotonic()
    run_build(command, env, directory)
    theirs = disk_facts(directory / "mkosi.output")
    theirs["build seconds"] = round(time.monotonic() - started)
    theirs["archive"] = archive_versions(built_packages(theirs))
    shutil.rmtree(directory, ignore_errors=True)
    return theirs


@pytest.fixture(scope="module")
def built(request, tmp_path_factory, bootable_disk_project, bootable_config, default_tools_tree):
    """(mkosi's facts, kosi's facts) of the same bootable disk. mkosi's come from the cache when
    its key matches and the archive still has the versions of every package they were built from."""
    ours = disk_facts(bootable_disk_project / "mkosi.output")
    conf = bootable_config
    cached = CACHE / "bootable" / f"{cache_key(conf, Path(default_tools_tree))}.json"
    if cached.exists():
        theirs = json.loads(cached.read_text())
        if archive_versions(sorted(theirs["archive"])) == theirs["archive"]:
            return theirs, ours
    theirs = build_mkosi_side(request, tmp_path_factory, conf)
    cached.parent.mkdir(parents=True, exist_ok=True)
    for old in cached.parent.glob("*.json"):
        old.unlink()  # facts of an older archive, mkosi or configuration: never valid again
    partial = cached.with_suffix(".partial")
    partial.write_text(json.dumps(theirs, indent=1, sort_keys=True))
    partial.rename(cached)
    return theirs, ours


def entries(listing: dict[str, list]) -> dict[str, list]:
    """type, mode, uid, gid of each entry (sizes left out)."""
    return {path: value[:4] for path, value in listing.items()}


def close(a: int, b: int) -> bool:
    return abs(a - b) <= SIZE_TOLERANCE * max(a, b, 1)


def test_same_output_names(built):
    theirs, ours = built
    report = differences(theirs["outputs"], ours["outputs"], KNOWN_OUTPUTS)
    assert not report, "\n".join(report)


def test_same_partition_table(built):
    """Types, labels, attributes, alignment, UUIDs; the root's size only roughly (its content)."""
    theirs, ours = built
    a, b = dict(theirs["partitions"]), dict(ours["partitions"])
    report = []
    for number in set(a) & set(b):
        x, y = a[number], b[number]
        if isinstance(x, dict) and isinstance(y, dict) and x["name"] == y["name"] and x["name"].startswith("root"):
            if not close(x["MiB"], y["MiB"]):
                report.append(f"{x['name']}: mkosi {x['MiB']} MiB, kosi {y['MiB']} MiB")
            a[number], b[number] = {**x, "MiB": None}, {**y, "MiB": None}
    report += differences(a, b)
    assert not report, "\n".join(report)


def test_same_files_on_the_esp(built):
    """The ESP's files, systemd-boot's loader.conf and the UKI's name."""
    theirs, ours = built
    report = differences(theirs["esp"], ours["esp"])
    report += differences({"loader.conf": theirs["loader.conf"], "UKIs": theirs["uki names"]},
                          {"loader.conf": ours["loader.conf"], "UKIs": ours["uki names"]})  # fmt: skip
    assert not report, "\n".join(report)


def test_same_uki_sections(built):
    """Section order, the kernel (.linux digest), .osrel, .uname, .sbat, .cmdline; the initrd's size."""
    theirs, ours = built
    a, b = dict(theirs["uki"]), dict(ours["uki"])
    for uki in (a, b):
        uki["sections"] = [name for name in uki["sections"] if name not in KNOWN_UKI]
    sizes = {k for k in set(a) | set(b) if k.endswith(" KiB")}
    report = differences({k: v for k, v in a.items() if k not in sizes}, {k: v for k, v in b.items() if k not in sizes},
                         KNOWN_UKI)  # fmt: skip
    report += [f"{k}: mkosi {a.get(k)}, kosi {b.get(k)}" for k in sorted(sizes) if not close(a.get(k, 0), b.get(k, 0))]
    assert not report, "\n".join(report)


def test_same_packages(built):
    theirs, ours = built
    report = differences(theirs["packages"], ours["packages"])
    assert not report, "\n".join(report)


def test_same_root_files_owners_and_modes(built):
    theirs, ours = built
    report = differences(theirs["root"], ours["root"], KNOWN_ROOT)
    assert not report, "\n".join(report[:80])


def test_same_initrd(built):
    """The whole initrd (image.initrd: the default initrd and the kernel modules initrd):
    every entry's type, mode and owner."""
    theirs, ours = built
    report = differences(entries(theirs["initrd"]), entries(ours["initrd"]), KNOWN_INITRD)
    assert not report, "\n".join(report[:80])


def test_same_kernel_modules_initrd(built):
    theirs, ours = built
    report = differences(entries(theirs["kernel modules initrd"]), entries(ours["kernel modules initrd"]))
    assert not report, "\n".join(report[:80])
