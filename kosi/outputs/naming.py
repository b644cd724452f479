"""Output file names and the output directory (Output=, OutputExtension=, ImageVersion=, OutputDirectory=)."""

from __future__ import annotations

from pathlib import Path

from kosi.config.model import Config
from kosi.outputs import format as formats
from kosi.outputs.compression import compression_for


def output_format(config: Config) -> str:
    return config.format


def base_name(config: Config) -> str:
    """Output=; its default is the image's name suffixed with _ImageVersion (settings table)."""
    return config.output


def output_name(config: Config) -> str:
    """The name of the main output in the output directory, with extension and compression suffix."""
    fmt = output_format(config)
    name = base_name(config)
    extension = config.output_extension
    if formats.get(fmt).extension is None:  # a directory, or nothing
        return name
    name = f"{name}.{extension}" if extension else name
    compression = compression_for(config)
    return name + (compression.extension if compression else "")


def output_directory(config: Config) -> Path:
    """OutputDirectory=; the loader sets it to mkosi.output/ when that exists. Otherwise the
    outputs land in the directory kosi was invoked on (-C), as with mkosi."""
    return config.output_directory or Path(config.directory)


def artifact_names(config: Config) -> list[str]:
    """Every file the build may put into the output directory, for -f and `clean`."""
    base = base_name(config)
    main = output_name(config)
    names = [main, f"{base}.manifest", f"{base}.changelog", f"{base}.SHA256SUMS", f"{base}.SHA256SUMS.gpg",
             f"{base}.nspawn"]
    return names
