"""Format=disk: a GPT disk image made by systemd-repart, offline, from the image root.

Partitions come from RepartDirectories= / mkosi.repart/, or the manual's defaults (ESP
when bootable, BIOS boot partition with BiosBootloader=grub, root with the
distribution's file system). repart runs from the tools tree when the host's is too old,
never needs loop devices (--offline=yes) and reports the partition table as JSON, which
later steps (grub, split artifacts) and `kosi --json` read back.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kosi import log
from kosi.boot.policy import installs_bios_grub, is_bootable
from kosi.config.model import Config
from kosi.distributions import get as get_distribution
from kosi.errors import KosiError
from kosi.outputs.base import OutputFormat
from kosi.outputs.compression import compress_level
from kosi.outputs.naming import output_compression
from kosi.outputs.repart_secrets import check_signature_partition, definition_values, repart_secrets
from kosi.pipeline.context import Context
from kosi.sandbox import run

ESP_DEFINITION = """[Partition]
Type=esp
Format=vfat
CopyFiles=/boot:/
CopyFiles=/efi:/
SizeMinBytes=512M
SizeMaxBytes=512M
"""
BIOS_DEFINITION = """[Partition]
# grub embeds its core image in this partition on GPT disks
Type=21686148-6449-6e6f-744e-656564454649
SizeMinBytes=1M
SizeMaxBytes=1M
"""
ROOT_DEFINITION = """[Partition]
Type=root
Format={filesystem}
CopyFiles=/
Minimize=guess
"""


def default_or_configured_definitions(context: Context) -> list[Path]:
    """The repart.d directories to use (RepartDirectories=, which the loader fills with
    mkosi.repart/ when it exists), writing the default definitions when none are configured."""
    configured = context.config.repart_directories
    if configured:
        for directory in configured:
            if not directory.is_dir():
                raise KosiError(f"RepartDirectories={directory}: no such directory")
        return configured
    directory = context.workspace / "repart-definitions"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    if is_bootable(context):
        (directory / "00-esp.conf").write_text(ESP_DEFINITION)
        if installs_bios_grub(context):
            (directory / "05-bios.conf").write_text(BIOS_DEFINITION)
    distribution = get_distribution(context.config.distribution)
    (directory / "10-root.conf").write_text(ROOT_DEFINITION.format(filesystem=distribution.filesystem))
    return [directory]


def repart_command(
    context: Context,
    image: Path,
    directories: list[Path],
    *,
    split: bool,
    extra: list[str] | None = None,
    existing: bool = False,
) -> list[str]:
    """`existing`: add the partitions an earlier run deferred to the image it wrote."""
    offline = "yes" if context.config.repart_offline else "no"  # RepartOffline=no: loop devices, as the user asked
    cmd = [
        "systemd-repart",
        *(["--empty=refuse"] if existing else ["--empty=create", "--size=auto"]),
        "--dry-run=no",
        f"--offline={offline}",
        "--no-pager",
        f"--root={context.root}",
        f"--seed={context.config.seed or 'random'}",
        "--json=pretty",
    ]
    cmd += [f"--definitions={d}" for d in directories]
    cmd += extra or []
    if context.config.sector_size is not None:
        cmd.append(f"--sector-size={context.config.sector_size}")
    if split:
        cmd.append("--split=yes")
    return [*cmd, str(image)]


def failing_definition(lines: list[str], files: list[Path]) -> Path | None:
    """The definition repart was working on when it failed: the last "future partition N"
    (partitions are numbered in the order of the sorted definition files), else the last
    definition file named in the log."""
    for line in reversed(lines):
        match = re.search(r"future partition (\d+)", line)
        if match and int(match.group(1)) < len(files):
            return files[int(match.group(1))]
    for line in reversed(lines):
        for f in files:
            if f.name in line:
                return f
    return None


def explain_failure(stderr: str, directories: list[Path]) -> str:
    """repart's error as one line naming the partition and the size setting to change."""
    lines = [l.strip() for l in stderr.replace("\r", "\n").splitlines() if l.strip()]
    files = sorted((f for d in directories for f in d.glob("*.conf")), key=lambda f: f.name)
    culprit = failing_definition(lines, files)
    last = next(
        (l for l in reversed(lines) if "rror" in l or "ailed" in l or "full" in l.lower()), lines[-1] if lines else ""
    )
    full = any(
        k in stderr
        for k in (
            "No space left",
            "Disk full",
            "too large",
            "larger than",
            "exceeds",
            "Can't fit",
            "cannot fit",
            "does not fit",
        )
    )
    if culprit and full:
        return (
            f"partition {culprit.name} is too small for its content ({last}); raise SizeMaxBytes=/SizeMinBytes= "
            f"in {culprit} (or provide your own definitions with RepartDirectories=)"
        )
    if full:
        return f"a partition is too small for its content ({last}); raise SizeMaxBytes= in the definitions"
    return f"systemd-repart failed: {last}"


def run_repart(
    context: Context,
    image: Path,
    *,
    split: bool = False,
    definitions: list[Path] | None = None,
    defer: tuple[str, ...] = (),
    existing: bool = False,
) -> list[dict[str, Any]]:
    """Write `image` (or, `existing`, add what an earlier run left out with `defer`, a list of
    partition types) and return repart's partition table."""
    directories = definitions or default_or_configured_definitions(context)
    context.state.repart_definitions = directories
    if not existing:
        image.unlink(missing_ok=True)
    secrets = repart_secrets(context.config, directories)
    sandbox = repart_sandbox(context, [context.root, context.workspace, image.parent, *directories], secrets.files)
    extra = [*secrets.arguments, *([f"--defer-partitions={','.join(defer)}"] if defer else [])]
    command = repart_command(context, image, directories, split=split, extra=extra, existing=existing)
    result = run(
        command, sandbox=sandbox, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False, cwd=image.parent
    )
    stderr = (result.stderr or b"").decode(errors="replace")
    if result.returncode != 0:
        log.debug(stderr)
        raise KosiError(explain_failure(stderr, directories))
    try:
        table = json.loads(result.stdout or b"[]")
    except ValueError:
        raise KosiError("systemd-repart printed no partition table (is it older than v254?)") from None
    check_signature_partition(context.config, table)
    context.state.partitions = table
    context.state.repart_image = image
    return table


def repart_sandbox(context: Context, directories: list[Path], files: list[Path]) -> list[str]:
    """repart's sandbox: the tools tree with `directories` writable and each of `files` (keys,
    the passphrase) bound read-only on its own, so nothing else next to them becomes visible."""
    if context.tools is None:
        return []
    from kosi.sandbox import Mount, sandbox_command

    directories = sorted(set(directories))
    outermost = [d for d in directories if not any(o != d and o in d.parents for o in directories)]
    mounts = [Mount(d, str(d)) for d in outermost]
    mounts += [Mount(f, str(f), "ro-bind") for f in files if not any(d in f.parents for d in outermost)]
    return sandbox_command(tools=context.tools, mounts=mounts)


def verity_hash_argument(config: Config, table: list[dict[str, Any]]) -> str | None:
    """roothash=/usrhash= for the root or /usr partition with verity (roothash= wins, as the
    root's verity covers /usr too); None when neither has verity."""
    found = {}
    for partition in table:
        kind = str(partition.get("type", ""))
        if partition.get("roothash") and kind in (f"root-{config.architecture}", f"usr-{config.architecture}"):
            found[kind.split("-")[0]] = partition["roothash"]
    if "root" in found:
        return f"roothash={found['root']}"
    return f"usrhash={found['usr']}" if "usr" in found else None


def write_disk(context: Context, image: Path, *, split: bool) -> list[dict[str, Any]]:
    """The disk; when its root or /usr partition has verity and the image boots, in two runs of
    repart (as mkosi does): the first writes everything but the ESP/XBOOTLDR, whose space it
    reserves, and reports the root hash; the boot entries are made again with roothash= (or
    usrhash=) on their command line, then the second run adds the ESP/XBOOTLDR with them."""
    directories = default_or_configured_definitions(context)
    verity = any(value == "data" for _, value in definition_values(directories, "Verity"))
    if not (verity and context.state.kernels):
        return run_repart(context, image, split=split, definitions=directories)
    deferred = ("esp", "xbootldr")
    # Split files only from the second run: it writes them for every partition, old and new.
    first = run_repart(context, image, definitions=directories, defer=deferred)
    argument = verity_hash_argument(context.config, first)
    if argument is not None:
        from kosi.boot.steps import regenerate_boot_entries

        log.info(f"verity: {argument.split('=')[0]}= on the kernel command line")
        regenerate_boot_entries(context, argument)
    table = run_repart(context, image, split=split, definitions=directories, existing=True)
    # The second run reports the partitions it left alone with roothash "TBD": the first one's.
    hashes = {p.get("uuid"): p["roothash"] for p in first if p.get("roothash")}
    for partition in table:
        if partition.get("uuid") in hashes:
            partition["roothash"] = hashes[partition["uuid"]]
    context.state.partitions = table
    return table


class DiskOutput(OutputFormat):
    name = "disk"
    extension = "raw"
    compresses_output = True
    boots_by_default = True
    needs_boot_tools = True
    needs_repart = True

    def write(self) -> None:
        compression = output_compression(self.config)
        raw = self.target if compression is None else self.target.with_suffix("")
        if compression is not None:
            raw = self.context.staging / (self.target.name[: -len(compression.extension)])
        wanted = set(self.config.split_artifacts)
        table = write_disk(self.context, raw, split="partitions" in wanted)
        if installs_bios_grub(self.context):
            from kosi.boot import grub

            esp_index = next((i for i, p in enumerate(table, 1) if p.get("type") == "esp"), 1)
            grub.install_bios(raw, self.context.root, self.context.tools, self.context.workspace, esp_index)
        if compression is not None:
            with open(self.target, "wb") as out:
                run(compression.command(compress_level(self.config)) + [str(raw)], stdout=out)
            raw.unlink()
