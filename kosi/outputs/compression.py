"""CompressOutput=/CompressLevel=: which compressor, its command line and file extension."""

from __future__ import annotations

from dataclasses import dataclass

from kosi.config.model import Config


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


def compression_for(config: Config) -> Compression | None:
    """The compressor of CompressOutput= ("none", "zstd", "xz" or "gzip"; booleans and the
    zst/gz spellings are mapped by the settings table, whose default follows Format=)."""
    return ALGORITHMS.get(config.compress_output)


def compress_level(config: Config) -> int | None:
    return config.compress_level
