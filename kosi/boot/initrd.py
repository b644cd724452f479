"""The default initrd: a small image built from distribution packages (no dracut or
initramfs-tools), with systemd as /init. It does not depend on the kernel (modules go
into a separate per-kernel cpio appended in the UKI), so it is cached by a hash of its
inputs and reused across builds instead of being rebuilt on every -f.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from kosi import __version__, distributions, log
from kosi.config.model import Config
from kosi.config.values import Feature
from kosi.errors import KosiError
from kosi.pipeline import atomic
from kosi.pipeline.context import Context
from kosi.sandbox import run
from kosi.tools.command import tools_command
from kosi.tools.tree import cache_root

#: the kernel's own files: they come with the kernel modules initrd of each UKI
PRUNE = ("usr/lib/modules", "usr/lib/firmware")

#: what the default initrd leaves out, as mkosi 27.1's (its --json summary shows the same list)
REMOVE_FILES = ("/usr/lib/systemd/catalog", "/etc/udev/hwdb.d", "/usr/lib/udev/hwdb.d", "/etc/services",
                "/usr/lib/modules/*/vmlinuz*", "/usr/lib/modules/*/vmlinux*", "/usr/lib/modules/*/System.map",
                "/var/cache", "/var/log", "/usr/share/locale/*")  # fmt: skip

#: files the default initrd gets on top of its packages (the names mkosi 27.1's default initrd has)
EXTRA_FILES = {
    # device-mapper devices (LUKS, verity) keep their udev database entries across switch-root
    "usr/lib/udev/rules.d/10-mkosi-initrd-dm.rules": (
        'SUBSYSTEM=="block", KERNEL=="dm-[0-9]*", ACTION=="add|change", OPTIONS+="db_persist"\n'
    ),
    # nothing enabled by the packages' postinst or presets starts in the initrd (Debian enables
    # services on installation); the initrd's targets pull in what it needs
    "usr/lib/systemd/system-preset/99-mkosi.preset": "disable *\n",
    # cryptsetup passphrases and PINs may come as credentials (e.g. from the VM manager)
    "usr/lib/systemd/system/systemd-cryptsetup@.service.d/credential.conf": (
        "[Service]\nImportCredential=cryptsetup.*\nLoadCredential=cryptsetup.passphrase\n"
        "LoadCredential=cryptsetup.fido2-pin\nLoadCredential=cryptsetup.tpm2-pin\n"
        "LoadCredential=cryptsetup.luks2-pin\nLoadCredential=cryptsetup.pkcs11-pin\n"
    ),
}


def extra_tree() -> Path:
    """EXTRA_FILES as a tree for ExtraTrees=, named by its content (so the cache key follows it)."""
    digest = hashlib.sha256(json.dumps(EXTRA_FILES, sort_keys=True).encode()).hexdigest()[:12]
    tree = cache_root() / "initrd-extra" / digest
    tree.parent.mkdir(parents=True, exist_ok=True)
    if not tree.exists():
        partial = Path(tempfile.mkdtemp(dir=tree.parent))
        for relative, text in EXTRA_FILES.items():
            (partial / relative).parent.mkdir(parents=True, exist_ok=True)
            (partial / relative).write_text(text)
        partial.chmod(0o755)
        try:
            partial.rename(tree)
        except OSError:  # another kosi made it first: the same content
            shutil.rmtree(partial)
    return tree


#: the main image's settings the default initrd shares, as mkosi 27.1 hands its universal and
#: multiversal ones to it: where packages come from and how they are checked (a project's own
#: repository keys in mkosi.sandbox/ serve the initrd too), the package cache and workspace,
#: the proxy, the network, the timestamps
SHARED = (
    "SandboxTrees", "PackageDirectories", "VolatilePackageDirectories", "LocalMirror", "RepositoryKeyCheck",
    "RepositoryKeyFetch", "PackageCacheDirectory", "WorkspaceDirectory", "CacheOnly", "WithNetwork",
    "ProxyUrl", "ProxyExclude", "SourceDateEpoch", "ExtraSearchPaths",
)  # fmt: skip
#: of those, what does not change the initrd made (not in its cache key): where the build
#: keeps its files and how it reaches the mirror
UNKEYED = ("PackageCacheDirectory", "WorkspaceDirectory", "CacheOnly", "WithNetwork", "ProxyUrl", "ProxyExclude",
           "ExtraSearchPaths")  # fmt: skip


def initrd_config(main: Config) -> Config:
    directory = cache_root() / "initrd"
    directory.mkdir(parents=True, exist_ok=True)
    distribution = distributions.get(main.distribution)
    defaults, remove = distribution.default_initrd(main.release)
    packages = list(defaults)
    for profile in main.initrd_profiles:
        packages += distribution.initrd_profile_packages.get(profile, ())
    packages += main.initrd_packages
    values = {
        **{name: main.values.get(name) for name in SHARED},
        "Distribution": main.distribution,
        "Release": main.release,
        "Mirror": main.mirror,
        "Snapshot": main.snapshot,  # with Snapshot=, Mirror= is the snapshot service: they go together
        "Repositories": main.repositories,
        "Architecture": main.architecture,
        "Format": "cpio",
        "Packages": list(dict.fromkeys(packages)),
        "VolatilePackages": list(main.initrd_volatile_packages or []),
        "RemovePackages": list(remove),
        "RemoveFiles": list(REMOVE_FILES),
        "CleanPackageMetadata": Feature.enabled,
        "ExtraTrees": [str(extra_tree())],
        "Locale": "C.UTF-8",
        "MakeInitrd": True,
        "Bootable": Feature.disabled,
        "WithDocs": False,
    }
    # Not the project's directory: the pipeline looks there for mkosi.postinst, mkosi.env, ...,
    # which belong to the user's image, not to the initrd.
    return Config({k: v for k, v in values.items() if v not in (None, [])}, image="default-initrd", directory=directory)


def inputs_of(config: Config) -> dict[str, Any]:
    return {"kosi": __version__, **{k: v for k, v in config.values.items() if k not in UNKEYED}}


def cache_path(config: Config) -> Path:
    key = hashlib.sha256(json.dumps(inputs_of(config), sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_root() / "initrd" / f"initrd-{key}.cpio"


def make_initrd_tree(root: Path) -> None:
    """The finishing touches: MakeInitrd= made /etc/initrd-release (systemd's sign that it runs
    in an initrd) and /init; the kernel's files go."""
    for relative in PRUNE:
        shutil.rmtree(root / relative, ignore_errors=True)


def write_cpio(
    tree: Path, output: Path, tools: Path | None, *, compress: bool = True, below: tuple[str, ...] = ()
) -> None:
    """A zstd-compressed newc archive of `tree` (sorted, reproducible); the kernel unpacks
    concatenated compressed archives, and the UKI itself is not compressed. Early microcode
    must stay uncompressed (compress=False): the kernel reads it before any decompressor.
    With `below`, only those directories of the tree and what they hold (not their parents)."""
    starts = [f"./{d}" for d in below if (tree / d).exists()] if below else ["."]
    names = subprocess.run(
        ["find", *starts, "-mindepth", "0" if below else "1", "-print0"], cwd=tree, stdout=subprocess.PIPE, check=True
    ).stdout
    listing = b"\0".join(sorted(n for n in names.split(b"\0") if n)) + b"\0"
    output.parent.mkdir(parents=True, exist_ok=True)
    script = "cpio --create --reproducible --null --format=newc --quiet"
    if compress:
        script += " | zstd -q -T0 -12 -c"
    with open(output, "wb") as out:
        run(["sh", "-c", script], sandbox=tools_command(tools, [tree]), input=listing, stdout=out, cwd=tree)


def default_initrd(context: Context) -> Path:
    """The cached default initrd for this image's distribution, built when missing."""
    config = initrd_config(context.config)
    cached = cache_path(config)
    if cached.exists() and context.args.force < 3:
        log.debug(f"default initrd: reusing {cached}")
        return cached
    if context.build_tree is None:
        raise KosiError("the default initrd can only be built by the build verb")
    # One build of it at a time; whoever waited finds it built. Never poisoned: the archive is
    # written under a partial name and committed by rename to the name that is its key.
    with atomic.locked(
        cached.with_suffix(".lock"), "waiting for another kosi that builds the default initrd"
    ) as waited:
        if waited and cached.exists() and context.args.force < 3:
            return cached
        log.step("building the default initrd")
        tree = context.workspace / "default-initrd"
        shutil.rmtree(tree, ignore_errors=True)
        context.build_tree(_as_directory(config), tree, context.args, tools=context.tools)
        make_initrd_tree(tree)
        with atomic.partial_file(cached) as partial:
            write_cpio(tree, partial, context.tools)
            atomic.commit(partial, cached)
        shutil.rmtree(tree, ignore_errors=True)
    return cached


def _as_directory(config: Config) -> Config:
    values = dict(config.values, Format="directory")
    return Config(values, image=config.image, directory=config.directory)


def modules_initrd(context: Context, kver: str, output: Path) -> Path:
    """The per-kernel cpio with KernelInitrdModules= (every module when none is asked for) and their firmware."""
    from kosi.boot.modules import stage_modules

    patterns = list(context.config.kernel_initrd_modules or [])
    if context.config.kernel_modules_initrd_include_host:  # the older spelling of "host"
        patterns.append("host")
    # None asked for: every module of the kernel, as mkosi 27.1 does (an initrd that boots
    # wherever the image's kernel does); "default" names the smaller set of kosi.boot.modules.
    patterns = patterns or ["*"]
    firmware = context.config.firmware_files
    tree = context.workspace / f"modules-initrd-{kver}"
    shutil.rmtree(tree, ignore_errors=True)
    excludes = context.config.kernel_modules_initrd_exclude
    count = stage_modules(
        context.root, kver, patterns, firmware, tree, context.tools, excludes, context.config.firmware_exclude
    )
    log.debug(f"kernel modules initrd for {kver}: {count} modules")
    # only the modules and firmware directories: their parents (usr, usr/lib) are the base initrd's
    write_cpio(tree, output, context.tools, below=("usr/lib/modules", "usr/lib/firmware"))
    shutil.rmtree(tree, ignore_errors=True)
    return output


def combined_initrd(parts: list[Path], output: Path) -> Path:
    """The initrds a UKI carries, concatenated (each padded to 4 bytes), as the split `initrd`
    artifact: mkosi 27.1's image.initrd is the whole initrd, kernel modules included."""
    if len(parts) == 1:
        return parts[0]
    with open(output, "wb") as out:
        for index, part in enumerate(parts):
            with open(part, "rb") as source:
                shutil.copyfileobj(source, out)
            if index < len(parts) - 1:
                out.write(b"\0" * (-out.tell() % 4))
    return output


def image_initrds(context: Context) -> list[Path]:
    """Format=uki / esp: the image itself is the initrd (manual: "a unified kernel image with the
    OS image in the .initrd PE section"), packed from the finished root. The kernel starts /init
    from an initramfs and panics without it (there is no root= to fall back to), so when the
    image has none, a second tiny archive adds /init pointing at systemd; systemd runs the whole
    system from memory then, as /etc/initrd-release is absent."""
    image = context.workspace / "image-initrd.cpio"
    log.step("packing the image as the initrd of its UKI")
    write_cpio(context.root, image, context.tools)
    initrds = [image]
    init = context.root / "init"
    if not init.exists() and not init.is_symlink() and (context.root / "usr/lib/systemd/systemd").exists():
        tree = context.workspace / "image-init-tree"
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir()
        (tree / "init").symlink_to("usr/lib/systemd/systemd")
        initrds.append(context.workspace / "image-init.cpio")
        write_cpio(tree, initrds[-1], context.tools, compress=False)
        shutil.rmtree(tree)
    return initrds
