"""Format=oci: an OCI image layout directory (image-spec 1.0) holding the tree as one layer.

<Output>/ holds `oci-layout`, `index.json` (one manifest, tagged with ImageId= when set) and
content-addressed blobs in blobs/sha256/: the manifest (OciAnnotations=, the image version as
org.opencontainers.image.version), the configuration (OciLabels= as its Labels, the command
/sbin/init with KernelCommandLine=) and the layer, the tree as the same tar Format=tar
writes, compressed per CompressOutput= (gzip by default, zstd, or none; OCI has no xz
layers). The layout is written here rather than by umoci: GNU tar is already what makes the
reproducible archive (sorted, numeric owners, clamped mtimes), the JSON is a few objects, and
umoci stamps its own times into the configuration's history. With SourceDateEpoch= the
`created` times are that moment, so two builds of the same tree give identical bytes.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kosi.errors import KosiError
from kosi.outputs.base import OutputFormat, archive_environment, source_date_epoch
from kosi.outputs.compression import compress_level, compression_for
from kosi.outputs.tar import tar_command

#: Architecture= -> the GOARCH name the OCI configuration uses
OCI_ARCHITECTURES = {
    "x86-64": "amd64",
    "x86": "386",
    "arm64": "arm64",
    "arm": "arm",
    "loongarch64": "loong64",
    "mips-le": "mipsle",
    "mips64-le": "mips64le",
    "ppc": "ppc",
    "ppc64": "ppc64",
    "ppc64-le": "ppc64le",
    "riscv32": "riscv",
    "riscv64": "riscv64",
    "s390x": "s390x",
}
#: CompressOutput= -> the layer media type's suffix
LAYER_SUFFIX = {"none": "", "gzip": "+gzip", "zstd": "+zstd"}
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def merged(assignments: list[dict[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in assignments:
        out.update(item)
    return out


def check_oci(config) -> None:
    """Before any step: what an OCI layout cannot express is refused in one line."""
    if config.compress_output not in LAYER_SUFFIX:
        raise KosiError(
            f"Format=oci: CompressOutput={config.compress_output} is not an OCI layer compression "
            "(allowed: gzip, zstd, no)"
        )
    if config.architecture not in OCI_ARCHITECTURES:
        raise KosiError(f"Format=oci: Architecture={config.architecture} has no OCI name")


def created(context) -> str:
    epoch = source_date_epoch(context)
    moment = (
        datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
        if epoch is not None
        else datetime.datetime.now(tz=datetime.timezone.utc).replace(microsecond=0)
    )
    return moment.isoformat().replace("+00:00", "Z")


class OciOutput(OutputFormat):
    name = "oci"
    compressed = True
    compressor = "gzip"

    @classmethod
    def check(cls, config) -> None:
        check_oci(config)

    def write(self) -> None:
        check_oci(self.config)
        layout = self.target
        shutil.rmtree(layout, ignore_errors=True)
        blobs = layout / "blobs/sha256"
        blobs.mkdir(parents=True)
        diff_id, layer = self.write_layer(blobs)
        config = self.image_config(diff_id)
        config_ref = self.blob(blobs, "application/vnd.oci.image.config.v1+json", config)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": config_ref,
            "layers": [layer],
        }
        annotations = {}
        if self.config.image_version:
            annotations["org.opencontainers.image.version"] = self.config.image_version
        annotations.update(merged(self.config.oci_annotations))
        if annotations:
            manifest["annotations"] = annotations
        manifest_ref = self.blob(blobs, MANIFEST_TYPE, manifest)
        if self.config.image_id:
            manifest_ref["annotations"] = {"org.opencontainers.image.ref.name": self.config.image_id}
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [manifest_ref],
        }
        (layout / "index.json").write_text(json.dumps(index))
        (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        for path in [layout, *layout.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)

    def image_config(self, diff_id: str) -> dict[str, Any]:
        when = created(self.context)
        settings: dict[str, Any] = {"Cmd": ["/sbin/init", *self.config.kernel_command_line]}
        labels = merged(self.config.oci_labels)
        if labels:
            settings["Labels"] = labels
        return {
            "created": when,
            "architecture": OCI_ARCHITECTURES[self.config.architecture],
            "os": "linux",
            "config": settings,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created": when, "created_by": "kosi", "comment": "the image tree, built by kosi"}],
        }

    @staticmethod
    def blob(blobs: Path, media_type: str, document: dict[str, Any]) -> dict[str, Any]:
        """Store `document` as a blob; returns its descriptor."""
        data = json.dumps(document).encode()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def write_layer(self, blobs: Path) -> tuple[str, dict[str, Any]]:
        """The tree as a tar layer: (sha256 of the uncompressed tar, the layer's descriptor)."""
        compression = compression_for(self.config)
        partial = blobs / "layer.partial"
        uncompressed = hashlib.sha256()
        env = archive_environment(self.context)
        with open(partial, "wb") as out:
            tar = subprocess.Popen(tar_command(self.context, self.context.root), stdout=subprocess.PIPE, env=env)
            compressor = (
                subprocess.Popen(compression.command(compress_level(self.config)), stdin=subprocess.PIPE, stdout=out)
                if compression
                else None
            )
            assert tar.stdout is not None
            sink = compressor.stdin if compressor else out
            assert sink is not None
            try:
                for block in iter(lambda: tar.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
                    uncompressed.update(block)
                    sink.write(block)
            finally:
                if compressor and compressor.stdin:
                    compressor.stdin.close()
            if tar.wait() != 0:
                raise KosiError(f"tar failed with exit status {tar.returncode} writing the OCI layer")
            if compression and compressor and compressor.wait() != 0:
                raise KosiError(f"{compression.name} failed with exit status {compressor.returncode}")
        compressed = hashlib.sha256()
        with open(partial, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                compressed.update(block)
        digest = compressed.hexdigest()
        os.replace(partial, blobs / digest)
        media_type = "application/vnd.oci.image.layer.v1.tar" + LAYER_SUFFIX[self.config.compress_output]
        return uncompressed.hexdigest(), {
            "mediaType": media_type,
            "digest": f"sha256:{digest}",
            "size": (blobs / digest).stat().st_size,
        }
