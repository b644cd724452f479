"""Format=sysext/confext/portable with Overlay= and Verity=, built for real.

The first project is the re-introduction post's example as written, with Debian's package
name: a base directory image and a btrfs-progs system extension on top of it
(BaseTrees=%O/base, Overlay=yes), signed with `kosi genkey`'s key. The tools tree's
systemd-dissect recognises the result; its verity data, hash tree and signature are checked
with veritysetup and openssl against the certificate (this machine has no device-mapper, so
nothing is activated here; tests/run/test_extension_boot.py merges the images in a VM).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KOSI = [sys.executable, str(REPO / "bin/kosi")]

ROOT_X86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
ROOT_X86_64_VERITY = "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5"
ROOT_X86_64_VERITY_SIG = "41092B05-9FC8-4523-994F-2DEF0408B176"

POST_MAIN = "[Output]\nOutputDirectory=mkosi.output\nCacheDirectory=mkosi.cache\n"
POST_BASE = "[Output]\nFormat=directory\n\n[Content]\nCleanPackageMetadata=no\nPackages=systemd\n         udev\n"
POST_BTRFS = (
    "[Config]\nDependencies=base\n\n[Output]\nFormat=sysext\nOverlay=yes\n\n"
    "[Content]\nBaseTrees=%O/base\nPackages=btrfs-progs\n"
)


def kosi(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*KOSI, "-C", str(directory), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def partitions(image: Path) -> list[dict]:
    out = subprocess.run(["sfdisk", "--json", str(image)], stdout=subprocess.PIPE, check=True, text=True).stdout
    return json.loads(out)["partitiontable"]["partitions"]


def partition_bytes(image: Path, partition: dict, target: Path) -> Path:
    with open(image, "rb") as source, open(target, "wb") as out:
        source.seek(partition["start"] * 512)
        out.write(source.read(partition["size"] * 512))
    return target


def extract_root(image: Path, directory: Path) -> Path:
    """The erofs root partition's files, unpacked by fsck.erofs."""
    root = next(p for p in partitions(image) if p["type"] == ROOT_X86_64)
    fs = partition_bytes(image, root, directory / "root.erofs")
    subprocess.run(
        ["fsck.erofs", f"--extract={directory / 'tree'}", str(fs)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return directory / "tree"


def dissect(project: Path, image: Path, *options: str) -> subprocess.CompletedProcess:
    """The tools tree's systemd-dissect (run through `kosi box`)."""
    return kosi(project, "box", "--", "systemd-dissect", "--no-pager", *options, str(image))


def verify_signed_verity(image: Path, work: Path, certificate: Path) -> tuple[bool, bool]:
    """(the hash tree matches the data and its root hash, the signature verifies with `certificate`)."""
    table = {p["type"]: p for p in partitions(image)}
    data = partition_bytes(image, table[ROOT_X86_64], work / "data")
    hashes = partition_bytes(image, table[ROOT_X86_64_VERITY], work / "hash")
    signature = json.loads(
        partition_bytes(image, table[ROOT_X86_64_VERITY_SIG], work / "sig").read_bytes().rstrip(b"\0")
    )
    (work / "roothash").write_text(signature["rootHash"])
    (work / "sig.der").write_bytes(base64.b64decode(signature["signature"]))
    verity = subprocess.run(
        ["veritysetup", "verify", str(data), str(hashes), signature["rootHash"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    smime = subprocess.run(
        [
            "openssl",
            "smime",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(work / "sig.der"),
            "-content",
            str(work / "roothash"),
            "-CAfile",
            str(certificate),
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return verity.returncode == 0, smime.returncode == 0


@pytest.fixture(scope="module")
def post_project(tmp_path_factory, default_tools_tree) -> Path:
    project = tmp_path_factory.mktemp("post")
    write(project / "mkosi.conf", POST_MAIN)
    write(project / "mkosi.images/base/mkosi.conf", POST_BASE)
    write(project / "mkosi.images/btrfs/mkosi.conf", POST_BTRFS)
    (project / "mkosi.output").mkdir()
    (project / "mkosi.cache").mkdir()
    genkey = kosi(project, "genkey")
    assert genkey.returncode == 0, genkey.stdout
    result = kosi(project, "-f", "build")
    (project / "build.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    return project


@pytest.mark.image
def test_post_sysext_is_a_signed_discoverable_image(post_project, tmp_path):
    image = post_project / "mkosi.output/btrfs.raw"
    assert [p["type"] for p in partitions(image)] == [ROOT_X86_64, ROOT_X86_64_VERITY, ROOT_X86_64_VERITY_SIG]
    shown = dissect(post_project, image)
    assert shown.returncode == 0, shown.stdout
    assert "✓ sysext for system" in shown.stdout and "✗ confext for system" in shown.stdout
    assert "ID=debian" in shown.stdout and "SYSEXT_SCOPE=initrd system portable" in shown.stdout
    assert "ARCHITECTURE=x86-64" in shown.stdout
    assert any(line.split()[1:2] == ["root"] and " signed " in line for line in shown.stdout.splitlines()), shown.stdout
    validated = dissect(post_project, image, "--validate")
    assert validated.returncode == 0 and "OK" in validated.stdout, validated.stdout
    # the hash tree and the signature, against the certificate genkey made and against another one
    assert verify_signed_verity(image, tmp_path, post_project / "mkosi.crt") == (True, True)
    other = tmp_path / "other.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-noenc",
            "-keyout",
            str(tmp_path / "o.key"),
            "-out",
            str(other),
            "-subj",
            "/CN=other",
            "-days",
            "1",
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    assert verify_signed_verity(image, tmp_path, other) == (True, False)


@pytest.mark.image
def test_post_sysext_holds_only_what_the_package_added(post_project, tmp_path):
    tree = extract_root(post_project / "mkosi.output/btrfs.raw", tmp_path)
    base = post_project / "mkosi.output/base"
    files = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if not p.is_dir())
    assert "usr/bin/btrfs" in files and "usr/sbin/mkfs.btrfs" in files
    assert all(name.startswith("usr/") for name in files), files
    release = (tree / "usr/lib/extension-release.d/extension-release.btrfs").read_text().splitlines()
    # the post leaves Release= unset: the release is the default one (the host's, as in mkosi)
    os_release = dict(
        line.split("=", 1) for line in (base / "usr/lib/os-release").read_text().splitlines() if "=" in line
    )
    version = os_release["VERSION_ID"].strip('"')
    assert release == [
        "ID=debian",
        f"VERSION_ID={version}",
        "SYSEXT_SCOPE=initrd system portable",
        "ARCHITECTURE=x86-64",
    ]
    # nothing of the base image: every file is new or differs from the base's
    for name in files:
        ours, theirs = tree / name, base / name
        assert not theirs.exists() or theirs.is_symlink() or ours.read_bytes() != theirs.read_bytes(), name
    assert not (tree / "usr/bin/systemctl").exists()
    assert sum((tree / f).lstat().st_size for f in files) < 20 * 1024 * 1024


CONF_CONF = (
    "[Output]\nFormat=confext\nSplitArtifacts=roothash\nImageVersion=2\n\n[Validation]\nVerity=hash\n\n"
    "[Build]\nEnvironment=CONFEXT_SCOPE=system\n"
)
SVC_CONF = (
    "[Config]\nDependencies=base\n\n[Output]\nFormat=portable\n\n[Validation]\nVerity=no\n\n"
    "[Content]\nBaseTrees=%O/base\n\n[Build]\nEnvironment=PORTABLE_PREFIXES=svc\n"
)
SVC_UNIT = "[Unit]\nDescription=kosi portable test\n\n[Service]\nExecStart=/usr/bin/sleep infinity\n"


@pytest.fixture(scope="module")
def layers_project(tmp_path_factory, default_tools_tree) -> Path:
    project = tmp_path_factory.mktemp("layers")
    write(
        project / "mkosi.conf",
        "[Distribution]\nDistribution=debian\nRelease=trixie\n\n[Output]\nOutputDirectory=mkosi.output\n",
    )
    write(project / "mkosi.images/base/mkosi.conf", POST_BASE)
    write(project / "mkosi.images/conf/mkosi.conf", CONF_CONF)
    write(project / "mkosi.images/conf/mkosi.extra/etc/kosi/confext.conf", "from-the-confext\n")
    write(project / "mkosi.images/svc/mkosi.conf", SVC_CONF)
    write(project / "mkosi.images/svc/mkosi.extra/usr/lib/systemd/system/svc.service", SVC_UNIT)
    (project / "mkosi.output").mkdir()
    result = kosi(project, "-f", "build")
    (project / "build.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    return project


@pytest.mark.image
def test_confext_with_verity_hash_and_roothash(layers_project, tmp_path):
    out = layers_project / "mkosi.output"
    image = out / "conf_2.raw"
    table = partitions(image)
    assert [p["type"] for p in table] == [ROOT_X86_64, ROOT_X86_64_VERITY]  # Verity=hash: no signature
    roothash = (out / "conf_2.roothash").read_text().strip()
    assert len(roothash) == 64
    data = partition_bytes(image, table[0], tmp_path / "data")
    hashes = partition_bytes(image, table[1], tmp_path / "hash")
    subprocess.run(["veritysetup", "verify", str(data), str(hashes), roothash], check=True)
    shown = dissect(layers_project, image)
    assert "✓ confext for system" in shown.stdout and "✗ sysext for system" in shown.stdout, shown.stdout
    tree = extract_root(image, tmp_path)
    assert (tree / "etc/kosi/confext.conf").read_text() == "from-the-confext\n"
    release = (tree / "etc/extension-release.d/extension-release.conf_2").read_text()
    # no base tree, so no os-release to take ID= from: "_any", as mkosi writes it
    assert release.splitlines() == ["ID=_any", "CONFEXT_VERSION_ID=2", "CONFEXT_SCOPE=system", "ARCHITECTURE=x86-64"]
    assert sorted(p.name for p in tree.iterdir()) == ["etc"]


@pytest.mark.image
def test_portable_image_is_the_whole_tree(layers_project, tmp_path):
    image = layers_project / "mkosi.output/svc.raw"
    assert [p["type"] for p in partitions(image)] == [ROOT_X86_64]  # Verity=no
    shown = dissect(layers_project, image)
    assert "✓ portable service" in shown.stdout, shown.stdout
    tree = extract_root(image, tmp_path)
    assert (tree / "usr/lib/systemd/system/svc.service").exists()
    assert 'PORTABLE_PREFIXES="svc"' in (tree / "usr/lib/os-release").read_text()
    for name in ("passwd", "group", "resolv.conf", "machine-id"):  # portablectl mounts over these
        assert (tree / "etc" / name).exists() or (tree / "etc" / name).is_symlink(), name


@pytest.mark.image
def test_file_outside_a_sysext_fails_the_build(tmp_path, default_tools_tree):
    project = tmp_path / "stray"
    write(
        project / "mkosi.conf",
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=sysext\n\n[Build]\nToolsTree=default\n",
    )
    write(project / "mkosi.extra/usr/lib/os-release", "ID=kosi-test\n")
    write(project / "mkosi.extra/etc/stray.conf", "x\n")
    result = kosi(project, "-f", "build")
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if "/etc/stray.conf" in line]
    assert errors and "Format=sysext" in errors[0] and "Traceback" not in result.stdout
