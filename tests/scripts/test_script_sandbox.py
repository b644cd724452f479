"""Scripts run in the sandbox: offline build scripts, read-only host, mkosi-chroot into the image.

The image root is a busybox tree (static, so it runs chrooted without a libc in the root).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.scripts.execute import run_scripts

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(os.getuid() != 0 or BUSYBOX is None, reason="needs root and busybox")


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\nset -e\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def context(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "source-file").write_text("source\n")
    workspace = tmp_path / "ws"
    root = workspace / "root"
    (root / "bin").mkdir(parents=True)
    for sub in ("etc", "proc", "dev", "sys", "tmp", "run"):
        (root / sub).mkdir()
    shutil.copy(BUSYBOX, root / "bin/busybox")
    for tool in ("sh", "cat", "ls", "echo", "touch", "mkdir", "test", "pwd"):
        (root / "bin" / tool).symlink_to("busybox")
    (workspace / "destdir").mkdir()
    config = Config({"Distribution": "custom", "Release": "x"}, directory=project)
    ctx = Context(config=config, workspace=workspace, package_cache=tmp_path / "cache")
    for directory in (ctx.staging, ctx.pkgmngr, ctx.repository, ctx.artifacts):
        directory.mkdir(parents=True, exist_ok=True)
    return ctx


def test_build_script_is_offline_and_host_is_read_only(context):
    project = context.config.directory
    script(
        project / "mkosi.build",
        """
cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > "$DESTDIR/interfaces"
touch /usr/kosi-probe 2>/dev/null && echo usr-writable >> "$DESTDIR/problems"
test -e /home && echo home-visible >> "$DESTDIR/problems"
test -e /root/.bashrc && echo root-visible >> "$DESTDIR/problems"
touch /etc/kosi-probe 2>/dev/null && echo etc-writable >> "$DESTDIR/problems"
echo built > "$SRCDIR/built-file"
pwd > "$DESTDIR/cwd"
touch "$BUILDROOT/from-build-script"
""",
    )
    context.state.build_phase = False
    assert run_scripts(context, "build") == 1
    destdir = context.workspace / "destdir"
    assert (destdir / "interfaces").read_text().split() == ["lo"]
    assert not (destdir / "problems").exists(), (destdir / "problems").read_text()
    assert (project / "built-file").read_text() == "built\n"
    assert (destdir / "cwd").read_text().strip() == str(project)
    assert (context.root / "from-build-script").exists()


def test_with_network_keeps_the_network(context):
    context.config.values["WithNetwork"] = True
    script(
        context.config.directory / "mkosi.build",
        """
cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > "$DESTDIR/interfaces"
""",
    )
    run_scripts(context, "build")
    assert (context.workspace / "destdir/interfaces").read_text().split() != ["lo"]


def test_chroot_script_sees_the_chroot_paths(context):
    script(
        context.config.directory / "mkosi.postinst.chroot",
        """
echo "$CHROOT_SCRIPT $BUILDROOT $SRCDIR $OUTPUTDIR $(pwd)" > /result
cat "$SRCDIR/source-file" >> /result
test -e /proc/self/status && echo proc >> /result
echo out > "$OUTPUTDIR/from-chroot"
""",
    )
    run_scripts(context, "postinst")
    lines = (context.root / "result").read_text().splitlines()
    assert lines == ["/work/mkosi.postinst.chroot / /work/src /work/out /work/src", "source", "proc"]
    assert (context.staging / "from-chroot").read_text() == "out\n"
    assert not (context.root / "work").exists(), "mount points created for mkosi-chroot stay behind"


def test_failing_script_names_itself(context):
    script(context.config.directory / "mkosi.prepare", "exit 3\n")
    with pytest.raises(KosiError, match=r"prepare script .*mkosi.prepare failed with exit status 3"):
        run_scripts(context, "prepare")


def test_configure_script_runs_sandboxed_and_changes_the_config(context):
    from kosi.scripts.execute import run_configure_scripts

    project = context.config.directory
    script(
        project / "mkosi.configure",
        """
test -e /home && exit 7
touch /usr/kosi-probe 2>/dev/null && exit 8
python3 -c 'import json, sys; c = json.load(sys.stdin); c["ImageId"] = "configured"; print(json.dumps(c))'
""",
    )
    config = run_configure_scripts(context.config)
    assert config["ImageId"] == "configured"
