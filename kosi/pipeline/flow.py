"""The build of one image as one ordered list (manual: EXECUTION FLOW, "for each image").

Numbers refer to the manual's steps. ReuseCache and SaveCache are handled by the runner:
with a valid Incremental= cache everything between them comes from the cache.
"""

from __future__ import annotations

from kosi.boot import pcrs
from kosi.boot import steps as boot
from kosi.pipeline import depmod, finalize, layers, packages, scripts, system_config, trees
from kosi.pipeline.runner import ReuseCache, SaveCache
from kosi.pipeline.step import Step


def build_steps() -> list[Step]:
    return [
        trees.SandboxTrees(),             # 1  copy sandbox trees into the workspace
        packages.SyncMetadata(),          # 2  sync the package manager's repository metadata
        scripts.SyncScripts(),            # 3  mkosi.sync
        trees.BaseTrees(),                # 4  BaseTrees=
        ReuseCache(),                     # 5  reuse a cached image (runner)
        packages.MetadataSnapshot(),      # 6  repository metadata snapshot into the image
        trees.SkeletonTrees(),            # 7  mkosi.skeleton
        packages.InstallPackages(),       # 8  distribution and Packages=
        boot.BootDirectories(),           #    /efi, /boot/loader/entries.srel (as mkosi)
        scripts.PrepareFinal(),           # 9  mkosi.prepare final
        packages.InstallBuildPackages(),  # 10 BuildPackages= in a throwaway copy of the root
        scripts.PrepareBuild(),           # 11 mkosi.prepare build
        SaveCache(),                      # 12 Incremental= cache (runner)
        scripts.BuildScripts(),           # 13 mkosi.build
        scripts.FinalizeNoneFormat(),     # 14 Format=none ends here
        scripts.CopyBuildOutputs(),       # 15 $DESTDIR into the image
        packages.InstallVolatilePackages(),  #    VolatilePackages=, after the build scripts
        trees.ExtraTrees(),               # 16 mkosi.extra
        scripts.PostinstScripts(),        # 17 mkosi.postinst
        system_config.ConfigFiles(),              # 18 Ssh=, Autologin=, MakeInitrd=
        boot.InstallBootloader(),         # 19 systemd-boot, grub's files
        system_config.Sysusers(),                 # 20
        system_config.Tmpfiles(),                 # 21
        system_config.Presets(),                  # 22
        boot.KernelModules(),             #    KernelModules= (runs depmod itself)
        depmod.Depmod(),                   # 23
        system_config.Firstboot(),                # 24
        system_config.Hwdb(),                     # 25
        system_config.MachineId(),                #    MachineId= / mkosi.machine-id
        system_config.OsRelease(),                #    IMAGE_ID= / IMAGE_VERSION=
        layers.LayerFiles(),              #    extension-release, portable mount points
        packages.RemovePackages(),        # 26 RemovePackages=
        finalize.RemoveFiles(),           # 26 RemoveFiles=
        packages.CleanPackageMetadata(),  #    CleanPackageMetadata=
        finalize.SELinuxRelabel(),        # 27
        scripts.FinalizeScripts(),        # 28 mkosi.finalize
        boot.GenerateUKIs(),              # 29 UKIs or Type 1 entries
        finalize.Normalise(),             #    no wall-clock traces (SourceDateEpoch=)
        layers.OverlayDiff(),             #    Overlay=: only the changes to BaseTrees=
        finalize.WriteOutput(),           # 30 the output format, manifest, nspawn settings
        pcrs.PcrDigests(),                #    SplitArtifacts=pcrs
        scripts.PostoutputScripts(),      # 31 mkosi.postoutput
        finalize.Checksums(),             #    Checksum= over everything produced
        finalize.SignChecksums(),         #    Sign= (OpenPGPTool=)
    ]  # fmt: skip
