"""Passphrase=: LUKS2 partitions (Encrypt=key-file in mkosi.repart/) open with that passphrase,
and only with it; the passphrase is never written into the image or the build log."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.outputs.repart_secrets import repart_secrets

PASSPHRASE = b"kosi-correct-horse-battery"


def definitions(directory: Path, encrypt: str = "key-file") -> Path:
    repart = directory / "mkosi.repart"
    repart.mkdir(parents=True)
    (repart / "10-root.conf").write_text(
        f"[Partition]\nType=root\nFormat=ext4\nCopyFiles=/\nEncrypt={encrypt}\nSizeMinBytes=64M\n"
    )
    return repart


def test_key_file_partition_without_passphrase_is_refused(tmp_path):
    repart = definitions(tmp_path)
    with pytest.raises(KosiError) as failure:
        repart_secrets(Config({"Format": "disk"}), [repart])
    message = str(failure.value)
    assert "10-root.conf" in message and "Encrypt=key-file" in message and "Passphrase=" in message
    assert "\n" not in message


def test_passphrase_becomes_repart_key_file(tmp_path):
    repart = definitions(tmp_path)
    secret = tmp_path / "mkosi.passphrase"
    secret.write_bytes(PASSPHRASE)
    secret.chmod(0o600)
    secrets = repart_secrets(Config({"Format": "disk", "Passphrase": secret}), [repart])
    assert secrets.arguments == [f"--key-file={secret}"] and secrets.files == [secret]


def cryptsetup_test(partition: Path, passphrase: bytes) -> int:
    """cryptsetup reading the passphrase as typed (one line on stdin, so b"" is an empty one)."""
    return subprocess.run(
        ["cryptsetup", "open", "--disable-locks", "--test-passphrase", str(partition)],
        input=passphrase + b"\n",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ).returncode


@pytest.mark.image
def test_encrypted_disk_opens_with_the_passphrase_only(tmp_path, kosi_build, default_tools_tree):
    project = tmp_path / "project"
    (project / "mkosi.extra/usr/lib").mkdir(parents=True)
    (project / "mkosi.extra/usr/lib/os-release").write_text("ID=kosi-test\n")
    (project / "mkosi.output").mkdir()
    definitions(project)
    secret = project / "mkosi.passphrase"
    secret.write_bytes(PASSPHRASE)
    secret.chmod(0o600)
    (project / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=disk\nSplitArtifacts=partitions\n\n"
        "[Content]\nBootable=no\n\n[Build]\nToolsTree=default\n"
    )
    result = kosi_build(project, "--debug")
    assert result.returncode == 0, result.stdout[-3000:]
    assert PASSPHRASE.decode() not in result.stdout
    image = project / "mkosi.output/image.raw"
    assert PASSPHRASE not in image.read_bytes()
    partition = project / "mkosi.output/image.root-x86-64.raw"
    assert partition.read_bytes()[:6] == b"LUKS\xba\xbe"
    assert cryptsetup_test(partition, PASSPHRASE) == 0
    assert cryptsetup_test(partition, b"") == 2  # 2: no key slot opens with this passphrase
    assert cryptsetup_test(partition, b"wrong") == 2
