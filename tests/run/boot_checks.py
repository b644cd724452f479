"""What the extension and verity boot tests share: a check unit the image starts at boot, and
`kosi genkey` followed by the build."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.run.vm_support import KOSI, build


def enable_unit(project: Path, name: str, text: str) -> None:
    """mkosi.extra/etc/systemd/system/<name>, pulled in by multi-user.target."""
    units = project / "mkosi.extra/etc/systemd/system"
    (units / "multi-user.target.wants").mkdir(parents=True, exist_ok=True)
    (units / name).write_text(text)
    (units / "multi-user.target.wants" / name).symlink_to(f"../{name}")


def genkey_and_build(project: Path) -> None:
    (project / "mkosi.output").mkdir(exist_ok=True)
    genkey = subprocess.run([*KOSI, "-C", str(project), "genkey"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert genkey.returncode == 0, genkey.stdout
    build(project)
