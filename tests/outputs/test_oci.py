"""Format=oci, SplitArtifacts=tar and Sign= with a Stateless OpenPGP tool, built for real.

The layout is unpacked by umoci (Debian's, on the host), which checks every digest and size on
the way; the labels and annotations are read from what umoci reports and from the blobs. The
Debian image is built twice with SourceDateEpoch=: the two layouts are byte for byte the same.
The quick tests use Distribution=custom (a tree from ExtraTrees=), the others the archive.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KOSI = [sys.executable, str(REPO / "bin/kosi")]

CUSTOM = """\
[Distribution]
Distribution=custom

[Output]
Format=oci
ImageId=kosi-oci
ImageVersion=1.2
OciLabels=org.opencontainers.image.title=kosi-test "org.example.words=two words"
OciAnnotations=org.opencontainers.image.vendor=kosi
{extra}
[Content]
SourceDateEpoch=1700000000
KernelCommandLine=quiet
"""


def kosi(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*KOSI, "-C", str(directory), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def custom_project(directory: Path, extra: str = "") -> Path:
    (directory / "mkosi.extra/etc").mkdir(parents=True)
    (directory / "mkosi.extra/usr/bin").mkdir(parents=True)
    (directory / "mkosi.extra/etc/hello.conf").write_text("from the tree\n")
    (directory / "mkosi.extra/usr/bin/tool").write_text("#!/bin/sh\necho tool\n")
    (directory / "mkosi.extra/usr/bin/tool").chmod(0o755)
    (directory / "mkosi.conf").write_text(CUSTOM.format(extra=extra))
    return directory


def blob(layout: Path, digest: str) -> bytes:
    algorithm, hexdigest = digest.split(":")
    data = (layout / "blobs" / algorithm / hexdigest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hexdigest
    return data


def manifest_and_config(layout: Path) -> tuple[dict, dict, dict]:
    index = json.loads((layout / "index.json").read_text())
    [descriptor] = index["manifests"]
    manifest = json.loads(blob(layout, descriptor["digest"]))
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    return descriptor, manifest, config


def unpack(layout: Path, tag: str, bundle: Path) -> Path:
    result = subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", str(bundle)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert result.returncode == 0, result.stdout
    return bundle / "rootfs"


def test_custom_oci_layout_unpacks_with_labels_and_annotations(tmp_path):
    project = custom_project(tmp_path / "project")
    result = kosi(project, "-f", "build")
    assert result.returncode == 0, result.stdout
    layout = project / "kosi-oci_1.2"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    descriptor, manifest, config = manifest_and_config(layout)
    assert descriptor["annotations"] == {"org.opencontainers.image.ref.name": "kosi-oci"}
    assert manifest["annotations"] == {
        "org.opencontainers.image.version": "1.2",
        "org.opencontainers.image.vendor": "kosi",
    }
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"  # OCI's default: gzip
    assert blob(layout, layer["digest"])[:2] == b"\x1f\x8b"
    assert config["config"] == {
        "Cmd": ["/sbin/init", "quiet"],
        "Labels": {"org.opencontainers.image.title": "kosi-test", "org.example.words": "two words"},
    }
    assert config["created"] == "2023-11-14T22:13:20Z" and config["architecture"] == "amd64"
    rootfs = unpack(layout, "kosi-oci", tmp_path / "bundle")
    assert (rootfs / "etc/hello.conf").read_text() == "from the tree\n"
    assert os.access(rootfs / "usr/bin/tool", os.X_OK)
    runtime = json.loads((tmp_path / "bundle/config.json").read_text())
    assert runtime["annotations"]["org.opencontainers.image.title"] == "kosi-test"  # umoci reads the labels
    assert runtime["process"]["args"] == ["/sbin/init", "quiet"]


def test_custom_oci_zstd_layer_and_xz_refused(tmp_path):
    project = custom_project(tmp_path / "zstd", "CompressOutput=zstd\n")
    assert kosi(project, "-f", "build").returncode == 0
    _, manifest, config = manifest_and_config(project / "kosi-oci_1.2")
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    # the diff ID is the digest of the uncompressed tar
    raw = subprocess.run(
        ["zstd", "-dc", str(project / "kosi-oci_1.2/blobs" / layer["digest"].replace(":", "/"))],
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(raw).hexdigest()}"]
    project = custom_project(tmp_path / "xz", "CompressOutput=xz\n")
    result = kosi(project, "-f", "build")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stdout
    assert "CompressOutput=xz" in lines[0] and "Format=oci" in lines[0]


def test_custom_split_tar_is_the_tree(tmp_path):
    project = custom_project(tmp_path / "project", "SplitArtifacts=tar\n")
    assert kosi(project, "-f", "build").returncode == 0
    with tarfile.open(project / "kosi-oci_1.2.tar.gz") as archive:  # CompressOutput= of the image: gzip
        names = archive.getnames()
    assert "./etc/hello.conf" in names and "./usr/bin/tool" in names


SOP_CONF = """\
[Validation]
Checksum=yes
Sign=yes
OpenPGPTool=sqop
Key={key}
"""


def test_custom_sign_with_sqop_verifies(tmp_path):
    key, certificate = tmp_path / "signing.key", tmp_path / "signing.cert"
    with open(key, "wb") as out:
        subprocess.run(["sqop", "generate-key", "kosi test <kosi@example.org>"], stdout=out, check=True)
    key.chmod(0o600)
    with open(key, "rb") as source, open(certificate, "wb") as out:
        subprocess.run(["sqop", "extract-cert"], stdin=source, stdout=out, check=True)
    project = custom_project(tmp_path / "project")
    with open(project / "mkosi.conf", "a") as conf:
        conf.write(SOP_CONF.format(key=key))
    result = kosi(project, "-f", "build")
    assert result.returncode == 0, result.stdout
    sums = project / "kosi-oci_1.2.SHA256SUMS"
    signature = project / "kosi-oci_1.2.SHA256SUMS.gpg"
    assert signature.read_bytes().startswith(b"-----BEGIN PGP SIGNATURE-----")
    with open(sums, "rb") as data:
        verified = subprocess.run(["sqop", "verify", str(signature), str(certificate)], stdin=data)
    assert verified.returncode == 0
    sums.write_text(sums.read_text() + "0" * 64 + " *forged\n")
    with open(sums, "rb") as data:
        forged = subprocess.run(
            ["sqop", "verify", str(signature), str(certificate)], stdin=data, stderr=subprocess.DEVNULL
        )
    assert forged.returncode != 0


def test_sop_signing_without_key_is_one_line(tmp_path):
    project = custom_project(tmp_path / "project")
    with open(project / "mkosi.conf", "a") as conf:
        conf.write("[Validation]\nSign=yes\nOpenPGPTool=sqop\n")
    result = kosi(project, "-f", "build")
    errors = [line for line in result.stdout.splitlines() if line.startswith("error")]
    assert result.returncode == 1 and len(errors) == 1, result.stdout
    assert "Key=" in errors[0] and "sqop" in errors[0] and "Traceback" not in result.stdout


DEBIAN = """\
[Distribution]
Distribution=debian
Release=trixie

[Output]
Format=oci
ImageId=debian-oci
OciLabels=org.opencontainers.image.title=kosi-debian
OciAnnotations=org.opencontainers.image.description=hello
SplitArtifacts=tar

[Content]
SourceDateEpoch=1700000000
Packages=hello
"""


@pytest.fixture(scope="module")
def debian_oci(tmp_path_factory, kosi_build) -> tuple[Path, Path]:
    """The same Debian project built twice (two output directories)."""
    builds = []
    for name in ("first", "second"):
        project = tmp_path_factory.mktemp(f"oci-{name}")
        (project / "mkosi.conf").write_text(DEBIAN)
        (project / "mkosi.output").mkdir()
        result = kosi_build(project)
        (project / "build.log").write_text(result.stdout)
        assert result.returncode == 0, result.stdout[-4000:]
        builds.append(project / "mkosi.output")
    return builds[0], builds[1]


@pytest.mark.image
def test_debian_oci_unpacks_with_umoci_and_holds_the_tree(debian_oci, tmp_path):
    output, _ = debian_oci
    layout = output / "debian-oci"
    _, manifest, config = manifest_and_config(layout)
    assert config["config"]["Labels"] == {"org.opencontainers.image.title": "kosi-debian"}
    assert manifest["annotations"] == {"org.opencontainers.image.description": "hello"}
    rootfs = unpack(layout, "debian-oci", tmp_path / "bundle")
    assert os.access(rootfs / "usr/bin/hello", os.X_OK)
    assert "ID=debian" in (rootfs / "usr/lib/os-release").read_text()
    assert (rootfs / "var/lib/dpkg/status").exists()
    # SplitArtifacts=tar: the same tree, next to the layout
    with tarfile.open(output / "debian-oci.tar.gz") as archive:
        assert "./usr/bin/hello" in archive.getnames()


@pytest.mark.image
def test_debian_oci_is_reproducible_with_source_date_epoch(debian_oci):
    first, second = debian_oci
    comparison = filecmp.dircmp(first / "debian-oci", second / "debian-oci")
    assert sorted(comparison.common_files) == ["index.json", "oci-layout"]
    for name in ("index.json", "oci-layout"):
        assert (first / "debian-oci" / name).read_bytes() == (second / "debian-oci" / name).read_bytes()
    blobs = sorted(p.name for p in (first / "debian-oci/blobs/sha256").iterdir())
    assert blobs == sorted(p.name for p in (second / "debian-oci/blobs/sha256").iterdir()) and len(blobs) == 3
    assert (first / "debian-oci.tar.gz").read_bytes() == (second / "debian-oci.tar.gz").read_bytes()


def test_custom_oci_build_runs_what_plan_lists(tmp_path):
    """plan == build for the new steps: the OCI writer, SplitArtifacts=tar, checksums and a
    SOP signature (tests/pipeline/test_plan_matches_build.py does every format dry)."""
    from kosi.config.cli_args import Args, parse_command_line
    from kosi.config.loader import load_project
    from kosi.verbs.plan import image_plan
    from tests.pipeline.test_plan_matches_build import compare_plan_with_events

    key = tmp_path / "signing.key"
    with open(key, "wb") as out:
        subprocess.run(["sqop", "generate-key", "kosi test"], stdout=out, check=True)
    key.chmod(0o600)
    project = custom_project(tmp_path / "project", "SplitArtifacts=tar\n")
    with open(project / "mkosi.conf", "a") as conf:
        conf.write(SOP_CONF.format(key=key))
    config = load_project(parse_command_line(["-C", str(project)])).main
    planned = image_plan(config, Args(), None)["steps"]
    verdicts = {s["step"]: s["skip"] for s in planned}
    assert verdicts["write output"] is None and verdicts["sign SHA256SUMS"] is None
    assert verdicts["pre-calculate PCR digests"] == "SplitArtifacts= does not ask for pcrs"
    events = tmp_path / "events.jsonl"
    result = kosi(project, "--log-json", str(events), "-f", "build")
    assert result.returncode == 0, result.stdout
    compare_plan_with_events(planned, [json.loads(line) for line in events.read_text().splitlines()])
    assert (project / "kosi-oci_1.2.SHA256SUMS.gpg").exists() and (project / "kosi-oci_1.2.tar.gz").exists()
