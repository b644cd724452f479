"""ManifestFormat=: the installed packages as JSON (<name>.manifest) and as a changelog (<name>.changelog)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kosi.config.model import Config
from kosi.outputs.naming import base_name
from kosi.pipeline.context import Context
from kosi.pipeline.settings_access import setting, word

FIELDS = ("Package", "Version", "Architecture", "Installed-Size", "Source")


def debian_packages(root: Path) -> list[dict]:
    """Installed packages according to the image's dpkg database (empty when there is none)."""
    admindir = root / "var/lib/dpkg"
    if not (admindir / "status").exists():
        return []
    fmt = "\\t".join("${" + f + "}" for f in FIELDS) + "\\t${db:Status-Abbrev}\\n"
    result = subprocess.run(["dpkg-query", f"--admindir={admindir}", "--show", f"--showformat={fmt}"],
                            stdout=subprocess.PIPE, text=True, check=True)
    packages = []
    for line in sorted(result.stdout.splitlines()):
        name, version, arch, size, source, status = (line.split("\t") + [""] * 6)[:6]
        if not status.startswith("ii"):
            continue
        packages.append({
            "type": "deb", "name": name, "version": version, "architecture": arch,
            "size": int(size or 0) * 1024, "source": (source.split(" ")[0] or name),
        })
    return packages


def manifest_formats(config: Config) -> list[str]:
    value = setting(config, "ManifestFormat", [])
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    return [getattr(v, "value", v) for v in value]


def write_manifests(context: Context, packages: list[dict]) -> list[Path]:
    config = context.config
    written = []
    name = base_name(config)
    formats = manifest_formats(config)
    if "json" in formats:
        document = {
            "manifest_version": 1,
            "config": {
                "name": setting(config, "ImageId") or "image",
                "version": setting(config, "ImageVersion"),
                "architecture": setting(config, "Architecture"),
                "distribution": word(config, "Distribution", "custom"),
                "release": setting(config, "Release"),
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
