"""Format=uki: the unified kernel image of the newest kernel, with the image itself as its
initrd (the boot steps build it), as the output."""

from __future__ import annotations

import shutil
from pathlib import Path

from kosi import distributions
from kosi.errors import KosiError
from kosi.outputs.base import OutputFormat


class UKIOutput(OutputFormat):
    name = "uki"
    extension = "efi"
    vm_kernel = True
    image_is_initrd = True
    output_is_uki = True
    compressed = True
    boots_by_default = True
    needs_boot_tools = True

    def write(self) -> None:
        ukis = self.context.state.ukis
        if not ukis:
            raise KosiError(
                "Format=uki: no unified kernel image was built (is a kernel installed in the image?)",
                hint=f"add a kernel package, e.g. {distributions.get(self.config.distribution).kernel_hint()}, to Packages=",
            )
        write_plain(self, Path(ukis[0]))


def write_plain(output: OutputFormat, source: Path) -> None:
    """A UKI or an ESP image is written as it is, whatever CompressOutput= says (as mkosi 27.1:
    firmware boots the file itself)."""
    shutil.copy2(source, output.target)
