"""Output file names and the output directory (Output=, OutputExtension=, ImageVersion=, OutputDirectory=)."""

from __future__ import annotations

from pathlib import Path

from kosi.config.model import Config
from kosi.outputs.compression import compression_for
from kosi.pipeline.settings_access import local_file, setting, word

DEFAULT_EXTENSIONS = {
    "tar": "tar", "cpio": "cpio", "disk": "raw", "uki": "efi", "esp": "raw", "sysext": "raw",
    "confext": "raw", "portable": "raw", "addon": "efi",
}  # fmt: skip


def output_format(config: Config) -> str:
    return word(config, "Format", "disk")


def base_name(config: Config) -> str:
    """Output= or the image's name, suffixed with _ImageVersion when the name is derived."""
    explicit = setting(config, "Output")
    if explicit:
        return str(explicit)
    name = config.image if config.image not in ("main", "tools") else (setting(config, "ImageId") or "image")
    version = setting(config, "ImageVersion")
    return f"{name}_{version}" if version else str(name)


def output_name(config: Config) -> str:
    """The name of the main output in the output directory, with extension and compression suffix."""
    fmt = output_format(config)
    name = base_name(config)
    extension = setting(config, "OutputExtension") or DEFAULT_EXTENSIONS.get(fmt)
    if fmt in ("directory", "none"):
        return name
    name = f"{name}.{extension}" if extension else name
    compression = compression_for(config, fmt)
    return name + (compression.extension if compression else "")


def output_directory(config: Config) -> Path:
    configured = setting(config, "OutputDirectory")
    if configured:
        return Path(configured)
    local = local_file(config, "mkosi.output")
    if local and local.is_dir():
        return local
    return Path(config.directory)


def artifact_names(config: Config) -> list[str]:
    """Every file the build may put into the output directory, for -f and `clean`."""
    base = base_name(config)
    main = output_name(config)
    names = [main, f"{base}.manifest", f"{base}.changelog", f"{base}.SHA256SUMS", f"{base}.SHA256SUMS.gpg",
             f"{base}.nspawn"]
    return names
