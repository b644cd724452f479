"""The VM image every VM test boots (built once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kosi.verbs import genkey
from tests.run.vm_support import VM_CONF, build


@pytest.fixture(scope="session")
def vm_project(tmp_path_factory) -> Path:
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed")
    directory = tmp_path_factory.mktemp("vm")
    (directory / "mkosi.conf").write_text(VM_CONF)
    (directory / "mkosi.output").mkdir()
    genkey.generate(directory, "kosi-test", 2, force=False)  # mkosi.key and mkosi.crt, as `kosi genkey`
    build(directory)
    return directory
