"""CompressOutput=/CompressLevel=: which compressor, its command line and file extension."""

from __future__ import annotations

from dataclasses import dataclass

from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.pipeline.settings_access import setting


@dataclass(frozen=True)
class Compression:
    name: str  # "zstd", "xz", "gzip"
    extension: str  # ".zst", ".xz", ".gz"
    default_level: int

    def command(self, level: int | None) -> list[str]:
        level = self.default_level if level is None else level
        # Threaded where the tool can be; gzip -n keeps name and timestamp out of the header
        # so compressed archives stay reproducible.
        return {
            "zstd": ["zstd", "-q", "-T0", f"-{level}", "-c"],
            "xz": ["xz", "-T0", "--check=crc32", f"-{level}", "-c"],
            "gzip": ["gzip", "-n", f"-{level}", "-c"],
        }[self.name]


ALGORITHMS = {
    "zstd": Compression("zstd", ".zst", 3),
    "xz": Compression("xz", ".xz", 6),
    "gzip": Compression("gzip", ".gz", 6),
}
ALIASES = {"zst": "zstd", "gz": "gzip"}
#: formats that are compressed unless CompressOutput=no says otherwise (the manual: "Implied for ...")
COMPRESSED_BY_DEFAULT = {"tar", "cpio", "uki", "esp", "oci", "addon"}


def compression_for(config: Config, output_format: str) -> Compression | None:
    value = setting(config, "CompressOutput")
    if hasattr(value, "value") and isinstance(value.value, str):
        value = value.value
    if value is None or value == "":
        if output_format not in COMPRESSED_BY_DEFAULT:
            return None
        return ALGORITHMS["gzip" if output_format == "oci" else "zstd"]
    if value is False or str(value).lower() in ("no", "none", "false", "0", "off", "disabled"):
        return None
    if value is True or str(value).lower() in ("yes", "true", "1", "on", "enabled"):
        return ALGORITHMS["gzip" if output_format == "oci" else "zstd"]
    name = ALIASES.get(str(value), str(value))
    if name not in ALGORITHMS:
        raise KosiError(f"CompressOutput=: unknown compression {value!r}, expected zstd, xz, gzip or a boolean")
    return ALGORITHMS[name]


def compress_level(config: Config) -> int | None:
    level = setting(config, "CompressLevel")
    return None if level in (None, "") else int(level)
