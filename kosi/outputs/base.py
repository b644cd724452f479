"""The base of the output writers; the output step picks the class by Format= (format.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kosi.errors import KosiError
from kosi.tools.packages import missing_program
from kosi.outputs import format as formats
from kosi.outputs.compression import Compression, compress_level
from kosi.outputs.naming import output_compression, output_format, output_name
from kosi.pipeline.context import Context


class OutputFormat(formats.Format):
    """The base of the formats kosi can write: the output's path and archive helpers."""

    @property
    def target(self) -> Path:
        return self.context.staging / output_name(self.config)

    def pipe_compressed(self, producer: list[str], cwd: Path | None = None) -> None:
        """Run `producer` writing an archive to stdout, compressed per CompressOutput= into target."""
        pipe_compressed(self.context, producer, self.target, output_compression(self.config), cwd=cwd)


def pipe_compressed(
    context: Context, producer: list[str], target: Path, compression: Compression | None, cwd: Path | None = None
) -> None:
    """Run `producer` writing an archive to stdout, compressed with `compression` into `target`;
    a program missing on the host is one line naming its package."""
    try:
        _pipe_compressed(context, producer, target, compression, cwd)
    except FileNotFoundError as e:
        if e.filename is None or "/" in str(e.filename):  # a path, not a program
            raise
        raise KosiError(missing_program(str(e.filename))) from None


def _pipe_compressed(
    context: Context, producer: list[str], target: Path, compression: Compression | None, cwd: Path | None
) -> None:
    from kosi import log

    log.debug("+ " + " ".join(producer) + (f" | {compression.name}" if compression else ""))
    with open(target, "wb") as out:
        if compression is None:
            result = subprocess.run(producer, stdout=out, cwd=cwd, env=archive_environment(context))
            if result.returncode != 0:
                raise KosiError(f"{producer[0]} failed with exit status {result.returncode} writing {target.name}")
            return
        producer_proc = subprocess.Popen(producer, stdout=subprocess.PIPE, cwd=cwd, env=archive_environment(context))
        compressor = subprocess.run(
            compression.command(compress_level(context.config)), stdin=producer_proc.stdout, stdout=out
        )
        if producer_proc.stdout is not None:
            producer_proc.stdout.close()
        if producer_proc.wait() != 0:
            raise KosiError(f"{producer[0]} failed with exit status {producer_proc.returncode} writing {target.name}")
        if compressor.returncode != 0:
            raise KosiError(f"{compression.name} failed with exit status {compressor.returncode}")


def archive_environment(context: Context) -> dict[str, str]:
    env = dict(os.environ, LC_ALL="C.UTF-8")
    epoch = source_date_epoch(context)
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    return env


def source_date_epoch(context: Context) -> int | None:
    """SourceDateEpoch=, else SOURCE_DATE_EPOCH from Environment=, else from the host (manual order)."""
    value = context.config.source_date_epoch
    if value is not None:
        return value
    environment: dict[str, str] = {}
    for assignment in context.config.environment:  # later assignments win
        environment.update(assignment)
    text = environment.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")
    return int(text) if text else None


def for_context(context: Context) -> formats.Format:
    return formats.require_writer(output_format(context.config))(context)
