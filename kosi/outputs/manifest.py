"""ManifestFormat=: the installed packages as JSON (<name>.manifest) and as a report by source
package (<name>.changelog), in mkosi 27.1's shapes.

A package is a dict with the JSON's keys (type, name, version, architecture, size) plus, for
the report only, "source" (its source package) and "changelog" (the source package's changelog,
rpm only). Neither file is written when there is nothing to describe (no packages, no
extension-release), as with mkosi.
"""

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


#: the package keys the JSON manifest has (systemd's coredump package metadata keys)
JSON_KEYS = ("type", "name", "version", "architecture", "size")


def extension_release(context: Context) -> dict[str, str]:
    """The extension-release fields of a sysext or confext image (the manifest's "extension")."""
    from kosi.pipeline.layers import read_env_file

    config = context.config
    fmt = str(config["Format"])
    if fmt not in ("sysext", "confext"):
        return {}
    directory = "usr/lib" if fmt == "sysext" else "etc"
    return read_env_file(context.root / directory / f"extension-release.d/extension-release.{base_name(config)}")


def report(packages: list[dict]) -> str:
    """The changelog report: totals, then each source package (in the order its first package
    comes) with its packages' names and size, and its changelog when there is one."""
    sources: dict[str, list[dict]] = {}
    for package in packages:
        sources.setdefault(package.get("source", package["name"]), []).append(package)
    text = f"Packages: {len(packages)}\nSize:     {sum(p['size'] for p in packages)}"
    for source, members in sources.items():
        text += f"\n{'-' * 80}\n"
        text += f"SourcePackage: {source}\nPackages:      {' '.join(p['name'] for p in members)}\n"
        text += f"Size:          {sum(p['size'] for p in members)}\n"
        changelog = members[0].get("changelog")
        if changelog:
            text += f"\nChangelog:\n{changelog}\n"
    return text


def write_manifests(context: Context, packages: list[dict]) -> list[Path]:
    config = context.config
    written: list[Path] = []
    name = base_name(config)
    formats = manifest_formats(config)
    extension = extension_release(context)
    if not packages and not extension:
        return written
    if "json" in formats:
        described = {
            "name": config.image_id or "image",
            "distribution": str(config.distribution),
            "architecture": str(config.architecture),
            "output_format": str(config["Format"]),
        }
        if config.image_version is not None:
            described["version"] = config.image_version
        if config.release is not None:
            described["release"] = config.release
        document = {
            "manifest_version": 1,
            "config": described,
            "packages": [{key: p[key] for key in JSON_KEYS} for p in packages],
            "extension": extension,
        }
        path = context.staging / f"{name}.manifest"
        path.write_text(json.dumps(document, indent=2))
        written.append(path)
    if "changelog" in formats:
        path = context.staging / f"{name}.changelog"
        path.write_text(report(packages))
        written.append(path)
    return written
