"""Output file names and the output directory (Output=, OutputExtension=, ImageVersion=, OutputDirectory=)."""

from __future__ import annotations

from pathlib import Path

from kosi.config.model import Config
from kosi.outputs import format as formats
from kosi.outputs.compression import Compression, compression_for


def output_format(config: Config) -> str:
    return config.format


def base_name(config: Config) -> str:
    """Output=; its default is the image's name suffixed with _ImageVersion (settings table)."""
    return config.output


def output_compression(config: Config) -> Compression | None:
    """The compressor applied to the main output file, if any (the format's compresses_output)."""
    return compression_for(config) if formats.get(output_format(config)).compresses_output else None


def output_name(config: Config) -> str:
    """The name of the main output in the output directory, with extension and compression suffix."""
    fmt = output_format(config)
    name = base_name(config)
    extension = config.output_extension
    if formats.get(fmt).extension is None:  # a directory, or nothing
        return name
    name = f"{name}.{extension}" if extension else name
    compression = output_compression(config)
    return name + (compression.extension if compression else "")


def output_link(config: Config) -> str | None:
    """mkosi 27.1 points a symlink named Output= at the main output when the two names differ
    (image -> image.raw, image_1.2 -> image_1.2.tar.zst); None when there is no such link."""
    name, main = base_name(config), output_name(config)
    return name if output_format(config) != "none" and name != main else None


def split_tar_name(config: Config) -> str:
    """SplitArtifacts=tar: <Output>.tar, with CompressOutput='s suffix (as mkosi 27.1)."""
    compression = compression_for(config)
    return f"{base_name(config)}.tar" + (compression.extension if compression else "")


def output_directory(config: Config) -> Path:
    """OutputDirectory=; the loader sets it to mkosi.output/ when that exists. Otherwise the
    outputs land in the directory kosi was invoked on (-C), as with mkosi."""
    return config.output_directory or Path(config.directory)


def artifact_names(config: Config) -> list[str]:
    """Every file the build may put into the output directory, for -f and `clean`."""
    base = base_name(config)
    main = output_name(config)
    names = [
        main,
        base,
        f"{base}.manifest",
        f"{base}.changelog",
        f"{base}.SHA256SUMS",
        f"{base}.SHA256SUMS.gpg",
        f"{base}.nspawn",
        f"{base}.osrelease",
        f"{base}.efi",
        f"{base}.vmlinuz",
        f"{base}.initrd",
        f"{base}.kernel-modules-initrd",
        f"{base}.roothash",
        f"{base}.pcrs",
        f"{base}.repart.d",
        split_tar_name(config),
    ]
    return list(dict.fromkeys(names))
