"""burn's GPT fitting, journalctl/coredumpctl command lines (real tools where cheap)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kosi.run import journal
from kosi.verbs import burn


def test_burn_copies_the_image_and_moves_the_backup_gpt_to_the_end_of_the_medium(tmp_path):
    image = tmp_path / "image.raw"
    with image.open("wb") as f:
        f.truncate(8 * 1024**2)
    subprocess.run(
        ["sfdisk", "-q", str(image)], input="label: gpt\nstart=2048, size=4096, name=data\n", text=True, check=True
    )
    medium = tmp_path / "medium"
    with medium.open("wb") as f:
        f.truncate(32 * 1024**2)  # a bigger "device": the backup header must move to its end
    for cmd in burn.burn_commands(image, str(medium), copy_from=False):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(medium)], stdout=subprocess.PIPE, text=True, check=True).stdout
    )["partitiontable"]
    assert table["partitions"][0]["name"] == "data"
    assert table["lastlba"] > 60000  # usable up to the end of the 32 MiB medium, not the 8 MiB image
    verify = subprocess.run(
        ["sfdisk", "--verify", str(medium)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert verify.returncode == 0, verify.stdout


def test_burn_prefers_repart_copy_from():
    cmds = burn.burn_commands(Path("/o/image.raw"), "/dev/sdz", copy_from=True)
    assert cmds == [
        [
            "systemd-repart",
            "--no-pager",
            "--dry-run=no",
            "--offline=no",
            "--empty=force",
            "--copy-from=/o/image.raw",
            "/dev/sdz",
        ]
    ]


def test_journal_commands_address_trees_and_disk_images(tmp_path):
    tree = tmp_path / "tree"
    (tree / "var/log/journal").mkdir(parents=True)
    assert journal.journalctl_command(tree, ["-b"]) == [
        "journalctl",
        f"--directory={tree}/var/log/journal",
        "--no-hostname",
        "-b",
    ]
    disk = tmp_path / "image.raw"
    disk.write_bytes(b"")
    assert journal.coredumpctl_command(disk, ["list"]) == ["coredumpctl", f"--image={disk}", "list"]


def test_runtime_size_grows_a_throwaway_copy_and_keeps_the_output(tmp_path):
    from kosi.config.model import Config
    from kosi.run.image import runtime_image

    image = tmp_path / "image.raw"
    with image.open("wb") as f:
        f.truncate(8 * 1024**2)
    subprocess.run(["sfdisk", "-q", str(image)], input="label: gpt\nstart=2048, size=4096\n", text=True, check=True)
    config = Config({"Format": "disk", "RuntimeSize": 64 * 1024**2}, directory=tmp_path)
    with runtime_image(config, image) as copy:
        assert copy != image and copy.stat().st_size == 64 * 1024**2
        verify = subprocess.run(
            ["sfdisk", "--verify", str(copy)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert verify.returncode == 0, verify.stdout  # backup GPT moved to the new end
    assert not copy.exists() and image.stat().st_size == 8 * 1024**2
    with runtime_image(Config({"Format": "disk"}, directory=tmp_path), image) as same:
        assert same == image  # neither Ephemeral= nor RuntimeSize=: the output itself


def test_serve_publishes_the_output_directory_on_8081(tmp_path):
    import socket
    import sys
    import time
    import urllib.request

    import pytest

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8081)) == 0:
            pytest.skip("port 8081 is in use")
    (tmp_path / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n[Output]\nFormat=directory\nOutput=image\n"
    )
    (tmp_path / "image").mkdir()  # already built: serve must not build
    (tmp_path / "marker.txt").write_text("served by kosi\n")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, str(repo / "bin/kosi"), "-C", str(tmp_path), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        body = None
        for _ in range(100):
            try:
                body = urllib.request.urlopen("http://127.0.0.1:8081/marker.txt", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(proc.stderr.read().decode())
                time.sleep(0.1)
        assert body == b"served by kosi\n"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()
