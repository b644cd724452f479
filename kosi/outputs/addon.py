"""Format=addon: a UKI PE addon (systemd-stub loads it from <UKI>.extra.d/ or the ESP's
loader/addons/), written by ukify from the tools tree on the addon stub.

Its sections: .cmdline from KernelCommandLine=, .initrd holding the image tree as a cpio
archive (compressed per CompressOutput=) when the tree has any file, as mkosi 27.1 builds it;
besides, .ucode with the early microcode the tree ships (intel-microcode, amd64-microcode;
MicrocodeHost= selects the host's only) and .dtb / .dtbauto with Devicetrees= (matched in the
dtb directories of the tree's newest kernel). With SecureBoot= the addon is signed like a UKI.
The stub comes from the image when it ships systemd-boot-efi, else from the tools tree.
"""

from __future__ import annotations

import os
from pathlib import Path

from kosi.architecture import get as get_architecture
from kosi.boot.devicetree import find_devicetrees, ukify_arguments
from kosi.boot.kernels import find_kernels
from kosi.boot.microcode import microcode_cpio
from kosi.boot.uki import find_stub, ukify
from kosi.errors import KosiError
from kosi.outputs.base import OutputFormat
from kosi.outputs.compression import compression_for
from kosi.outputs.cpio import write_archive
from kosi.tools.command import tools_command


def has_files(root: Path) -> bool:
    return any(files for _, _, files in os.walk(root))


class AddonOutput(OutputFormat):
    name = "addon"
    extension = "efi"
    compressed = True
    can_boot = False
    needs_boot_tools = True

    def stub(self) -> Path:
        efi = get_architecture(self.config.architecture).efi
        if efi is None:
            raise KosiError(f"Format=addon: Architecture={self.config.architecture} has no UEFI")
        name = f"usr/lib/systemd/boot/efi/addon{efi}.efi.stub"
        stub = find_stub(self.context.root, self.context.tools, name)
        if stub is None:
            raise KosiError(
                f"Format=addon: no /{name} in the image or the tools tree",
                hint="install systemd-boot-efi, or use ToolsTree=default",
            )
        return stub

    def devicetrees(self) -> list[Path]:
        patterns = list(self.config.devicetrees)
        if not patterns:
            return []
        kernels = find_kernels(self.context.root)
        if not kernels:
            raise KosiError(
                "Format=addon: Devicetrees= is matched in a kernel's dtb directories, and the image has no kernel",
                hint="install the kernel package that ships the devicetrees",
            )
        return find_devicetrees(self.context.root, kernels[-1].version, patterns)

    def write(self) -> None:
        context, config = self.context, self.config
        stub = self.stub()
        work = context.workspace / "addon"
        work.mkdir(parents=True, exist_ok=True)
        devicetrees = self.devicetrees()
        microcode = microcode_cpio(context.root, config.microcode_host, work, context.tools)
        initrd = None
        if has_files(context.root):
            initrd = work / "tree.cpio"
            write_archive(context, initrd, compression_for(config))
        output = work / "addon.efi"
        cmd = ["ukify", "build", f"--stub={stub}", f"--output={output}"]
        cmdline = " ".join(config.kernel_command_line)
        if cmdline:
            cmd.append(f"--cmdline={cmdline}")
        if initrd:
            cmd.append(f"--initrd={initrd}")
        if microcode:
            cmd.append(f"--microcode={microcode}")
        cmd += ukify_arguments(devicetrees) if devicetrees else []
        ukify(cmd, tools_command(context.tools, [context.root, work, stub, *devicetrees]))
        if config.secure_boot:
            from kosi.boot.signing import Signer

            Signer(config, context.tools).sign(output)
        os.replace(output, self.target)
