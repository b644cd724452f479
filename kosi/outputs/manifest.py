"""ManifestFormat=: the installed packages as JSON (<name>.manifest) and as a changelog (<name>.changelog)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kosi.config.model import Config
from kosi.outputs.naming import base_name
from kosi.pipeline.context import Context

FIELDS = ("Package", "Version", "Architecture", "Installed-Size", "Source")


def debian_packages(root: Path) -> list[dict]:
    """Installed packages according to the image's dpkg database (empty when there is none)."""
    admindir = root / "var/lib/dpkg"
    if not (admindir / "status").exists():
        return []
    fmt = "\\t".join("${" + f + "}" for f in FIELDS) + "\\t${db:Status-Abbrev}\\n"
    result = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "--show", f"--showformat={fmt}"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    packages = []
    for line in sorted(result.stdout.splitlines()):
        name, version, arch, size, source, status = (line.split("\t") + [""] * 6)[:6]
        if not status.startswith("ii"):
            continue
        packages.append(
            {
                "type": "deb",
                "name": name,
                "version": version,
                "architecture": arch,
                "size": int(size or 0) * 1024,
                "source": (source.split(" ")[0] or name),
            }
        )
    return packages


def installed_packages(context: Context) -> list[dict]:
    """The image's packages: from its dpkg, pacman or rpm database, or as a backend recorded them
    before CleanPackageMetadata= removed the database."""
    from kosi.installers.dnf import installed_packages as rpm_packages
    from kosi.installers.pacman import installed_packages as pacman_packages

    recorded = context.state.installer.manifest
    if recorded is not None:
        return recorded
    return debian_packages(context.root) or pacman_packages(context.root) or rpm_packages(context)


def manifest_formats(config: Config) -> list[str]:
    return config.manifest_format


def write_manifests(context: Context, packages: list[dict]) -> list[Path]:
    config = context.config
    written = []
    name = base_name(config)
    formats = manifest_formats(config)
    if "json" in formats:
        document = {
            "manifest_version": 1,
            "config": {
                "name": config.image_id or "image",
                "version": config.image_version,
                "architecture": config.architecture,
                "distribution": config.distribution,
                "release": config.release,
            },
            "packages": packages,
        }
        path = context.staging / f"{name}.manifest"
        path.write_text(json.dumps(document, indent=2) + "\n")
        written.append(path)
    if "changelog" in formats:
        path = context.staging / f"{name}.changelog"
        lines = [f"{p['name']} {p['version']} ({p['architecture']})" for p in packages]
        path.write_text("\n".join(lines) + ("\n" if lines else ""))
        written.append(path)
    return written
