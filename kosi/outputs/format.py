"""The registry of output formats (Format=): one class per format carries its facts.

To add a format, write one module in kosi/outputs/ holding one class:

    class Sysext(OutputFormat):          # kosi.outputs.base.OutputFormat: the writer base
        name = "sysext"                  # the Format= word
        extension = "raw"                # OutputExtension='s default; None: no extension
        needs_repart = True              # ...the other facts below, where they differ
        def write(self) -> None: ...     # turns self.context.root into self.target

Defining the class registers it (`__init_subclass__`); every module of kosi/outputs/ is
imported on the first look-up, so no list names the formats. A format kosi knows but
cannot write yet subclasses `Format` directly (planned.py) and has no `write`; a class
with a writer replaces such a planned one of the same name, so the new module is the only
file to touch (delete the planned entry when convenient).

A format without a writer is accepted when the configuration is loaded, because `summary`
(and `--json summary`) must show such a configuration as mkosi does; `require_writer()`
refuses it, in one line, when `build` or `plan` start, before any step runs.

This module imports nothing of kosi's but errors at run time, so the settings table can derive its
choice list from it; the writers (which need the whole pipeline) are loaded lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from kosi.discovery import import_modules
from kosi.errors import KosiError

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

_FORMATS: dict[str, type[Format]] = {}


class Format:
    """The facts of one output format. Subclasses set `name`; the rest have defaults."""

    #: the Format= word
    name: ClassVar[str]
    #: OutputExtension='s default (without dot); None: the output is a directory or nothing
    extension: ClassVar[str | None] = None
    #: CompressOutput= defaults to on (tar, cpio, uki, ...)
    compressed: ClassVar[bool] = False
    #: CompressOutput= compresses the whole output file (as mkosi 27.1: tar, cpio, disk and the
    #: extension images). A UKI or ESP image stays bootable as written (a .efi is never
    #: compressed), and OCI compresses its layers, not the layout directory.
    compresses_output: ClassVar[bool] = False
    #: the compressor the format always uses by default, whatever the distribution (oci: gzip)
    compressor: ClassVar[str | None] = None
    #: Bootable=yes can make it bootable (extension images and `none` never are)
    can_boot: ClassVar[bool] = True
    #: Bootable=auto installs a boot loader and UKIs when the image has a kernel
    boots_by_default: ClassVar[bool] = False
    #: the output is always meant to boot (the tools tree then needs ukify and the EFI stub)
    needs_boot_tools: ClassVar[bool] = False
    #: the output is a GPT disk image written by systemd-repart
    needs_repart: ClassVar[bool] = False
    #: a system or configuration extension / portable service (sysext, confext, portable)
    extension_image: ClassVar[bool] = False
    #: the content is a layer on the running system (sysext, confext): the steps that finish a
    #: whole OS skip it, and Packages= needs BaseTrees=
    layered_on_system: ClassVar[bool] = False
    #: extension-release: (the fields' prefix, the directory its extension-release.d/ is in)
    extension_release: ClassVar[tuple[str, str] | None] = None
    #: a portable service image: portablectl's mount points must exist in /etc
    portable_service: ClassVar[bool] = False
    #: the image itself is the initrd of the UKI the output holds (uki, esp)
    image_is_initrd: ClassVar[bool] = False
    #: the output is a UKI, which is then the boot loader whatever Bootloader= says (uki)
    output_is_uki: ClassVar[bool] = False
    #: `kosi vm` boots the output only as the initrd of a direct kernel boot, never as a disk (cpio)
    vm_initrd: ClassVar[bool] = False
    #: `kosi vm` with a direct kernel boot runs the output itself as the kernel, attaching no disk (uki)
    vm_kernel: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:  # an abstract base such as the writer base
            return
        known = _FORMATS.get(cls.name)
        if known is not None and known.has_writer() and cls.has_writer() and known is not cls:
            raise TypeError(f"Format={cls.name} is written by both {known.__qualname__} and {cls.__qualname__}")
        if known is None or cls.has_writer() or not known.has_writer():
            _FORMATS[cls.name] = cls

    def __init__(self, context: Context) -> None:
        self.context = context
        self.config = context.config

    @classmethod
    def has_writer(cls) -> bool:
        return cls.write is not Format.write

    @classmethod
    def check(cls, config: Any) -> None:
        """Refuse, in one line before any step runs, a configuration this format cannot write."""

    def write(self) -> None:
        """Turn the finished image root into the output in the staging directory."""
        raise NotImplementedError


def discover() -> dict[str, type[Format]]:
    """Every format: importing each module of kosi/outputs/ registers the classes in it."""
    import_modules("kosi.outputs")
    return _FORMATS


def names() -> tuple[str, ...]:
    return tuple(sorted(discover()))


def get(name: str) -> type[Format]:
    """The format called `name` (KeyError for an unknown one)."""
    return discover()[name]


def require_writer(name: str) -> type[Format]:
    """The format, refusing in one line one that kosi cannot write yet (build and plan)."""
    cls = discover().get(name)
    if cls is None or not cls.has_writer():
        writable = ", ".join(n for n, c in sorted(discover().items()) if c.has_writer())
        raise KosiError(f"Format={name}: kosi cannot write this format yet (it can write: {writable})")
    return cls
