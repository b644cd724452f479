"""The VM image every VM test boots (built once per session)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tests.run.vm_support import VM_CONF, build


@pytest.fixture(scope="session")
def vm_project(tmp_path_factory) -> Path:
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed")
    directory = tmp_path_factory.mktemp("vm")
    (directory / "mkosi.conf").write_text(VM_CONF)
    (directory / "mkosi.output").mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(directory / "mkosi.key"),
            "-out",
            str(directory / "mkosi.crt"),
            "-days",
            "2",
            "-subj",
            "/CN=kosi-test",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    build(directory)
    return directory
