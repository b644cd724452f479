"""Settings that were parsed and ignored, now read: RepartOffline=, InitrdVolatilePackages=,
build -w, proxy settings, ToolsTreeCertificates= (History= and -R: tests/config/test_history.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kosi.boot.initrd import initrd_config
from kosi.config.cli_args import parse_command_line
from kosi.config.loader import load_project
from kosi.outputs import disk
from kosi.pipeline.context import Context

REPO = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, text: str):
    (tmp_path / "mkosi.conf").write_text(text)
    return load_project(parse_command_line(["summary"]), cwd=tmp_path)


def test_repart_offline_reaches_systemd_repart(tmp_path):
    commands = {}
    for value in ("yes", "no"):
        config = _project(tmp_path, f"[Output]\nFormat=disk\n[Build]\nRepartOffline={value}\n").images[-1]
        context = Context(config=config, workspace=tmp_path, package_cache=tmp_path)
        commands[value] = disk.repart_command(context, tmp_path / "image.raw", [tmp_path], split=False)
    assert "--offline=yes" in commands["yes"] and "--offline=no" not in commands["yes"]
    assert "--offline=no" in commands["no"] and "--offline=yes" not in commands["no"]


def test_initrd_volatile_packages_reach_the_default_initrd(tmp_path):
    main = _project(tmp_path, "[Distribution]\nDistribution=debian\nRelease=trixie\n"
                              "[Content]\nInitrdVolatilePackages=strace\n").images[-1]  # fmt: skip
    initrd = initrd_config(main)
    assert initrd["VolatilePackages"] == ["strace"] and "strace" not in initrd["Packages"]
    plain = initrd_config(_project(tmp_path, "[Distribution]\nDistribution=debian\nRelease=trixie\n").images[-1])
    assert not plain["VolatilePackages"]


def _kosi(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bin/kosi"), *args], cwd=directory, capture_output=True,
                          text=True)  # fmt: skip


def test_build_w_wipes_the_build_directory(tmp_path):
    (tmp_path / "mkosi.conf").write_text("[Distribution]\nDistribution=custom\n[Output]\nFormat=directory\n")
    (tmp_path / "mkosi.builddir").mkdir()
    script = tmp_path / "mkosi.build"
    script.write_text('#!/bin/sh\necho run >> "$BUILDDIR/runs"\n')
    script.chmod(0o755)

    def runs() -> int:
        return sum(len(path.read_text().splitlines()) for path in (tmp_path / "mkosi.builddir").rglob("runs"))

    first = _kosi(tmp_path, "build")
    assert first.returncode == 0, first.stderr
    assert runs() == 1
    kept = _kosi(tmp_path, "-f", "build")
    assert kept.returncode == 0, kept.stderr
    assert runs() == 2, "without -w the build directory is kept"
    wiped = _kosi(tmp_path, "-f", "-w", "build")
    assert wiped.returncode == 0, wiped.stderr
    assert runs() == 1, "-w started from an empty build directory"


def test_proxy_reaches_scripts_and_package_managers(tmp_path):
    proxy = "[Build]\nProxyUrl=http://proxy.example:3128\nProxyExclude=example.org internal.lan\n"
    (tmp_path / "mkosi.conf").write_text("[Distribution]\nDistribution=custom\n[Output]\nFormat=directory\n" + proxy)
    (tmp_path / "mkosi.builddir").mkdir()
    script = tmp_path / "mkosi.build"
    script.write_text('#!/bin/sh\nenv | grep -i proxy | sort > "$BUILDDIR/proxy.env"\n')
    script.chmod(0o755)
    build = _kosi(tmp_path, "build")
    assert build.returncode == 0, build.stderr
    (seen,) = (tmp_path / "mkosi.builddir").rglob("proxy.env")
    lines = set(seen.read_text().splitlines())
    assert {"http_proxy=http://proxy.example:3128", "HTTPS_PROXY=http://proxy.example:3128",
            "no_proxy=example.org,internal.lan", "NO_PROXY=example.org,internal.lan"} <= lines  # fmt: skip

    from kosi.installers.base import environment

    debian = _project(tmp_path, "[Distribution]\nDistribution=debian\nRelease=trixie\n" + proxy).images[-1]
    env = environment(Context(config=debian, workspace=tmp_path, package_cache=tmp_path))
    assert env["https_proxy"] == "http://proxy.example:3128" and env["no_proxy"] == "example.org,internal.lan"


def test_tools_tree_certificates_choose_where_etc_ssl_comes_from(tmp_path):
    import kosi.sandbox as sandbox

    tools = tmp_path / "tools"
    (tools / "etc/ssl").mkdir(parents=True)
    (tools / "etc/ssl/from-the-tools-tree").write_text("")
    (tools / "usr").symlink_to("/usr")  # the host's programs, the tree's /etc
    for name in ("bin", "sbin", "lib", "lib64"):
        if Path("/", name).is_symlink():
            (tools / name).symlink_to(f"usr/{name}")

    def listing() -> list[str]:
        command = [*sandbox.sandbox_command(tools=tools), "ls", "-A", "/etc/ssl"]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()

    try:
        assert listing() == ["from-the-tools-tree"]  # ToolsTreeCertificates=yes, the default
        sandbox.use_host_certificates(True)
        host = listing()
        assert "from-the-tools-tree" not in host
        assert sorted(host) == sorted(p.name for p in Path("/etc/ssl").iterdir())
    finally:
        sandbox.use_host_certificates(False)

    config = _project(tmp_path, "[Build]\nToolsTreeCertificates=no\n").images[-1]
    assert config.tools_tree_certificates is False


def test_extra_search_paths_come_before_path_for_tools_and_scripts(tmp_path):
    import kosi.sandbox as sandbox
    from kosi.pipeline.tools import find_tool

    bin_dir = tmp_path / "xbin"
    bin_dir.mkdir()
    fake = bin_dir / "systemd-hwdb"  # shadows the host's (or the tools tree's) copy
    fake.write_text('#!/bin/sh\necho "fake hwdb $*"\n')
    fake.chmod(0o755)
    try:
        sandbox.use_extra_search_paths([bin_dir, tmp_path / "missing"])
        tool = find_tool("systemd-hwdb", None)
        assert tool is not None and tool.path == str(fake)
        result = sandbox.run([tool.path, "update"], sandbox=tool.sandbox([]), stdout=subprocess.PIPE)
        assert result.stdout.decode() == "fake hwdb update\n"
    finally:
        sandbox.use_extra_search_paths([])
    after = find_tool("systemd-hwdb", None)
    assert after is None or after.path != str(fake)

    # a whole build: the setting reaches the scripts' $PATH, after the helpers
    (tmp_path / "p").mkdir()
    project = tmp_path / "p"
    (project / "mkosi.conf").write_text(f"[Distribution]\nDistribution=custom\n[Output]\nFormat=directory\n"
                                        f"[Build]\nExtraSearchPaths={bin_dir}\n")  # fmt: skip
    script = project / "mkosi.postinst"
    script.write_text('#!/bin/sh\nset -e\nsystemd-hwdb hello > "$BUILDROOT/ran"\necho "$PATH" > "$BUILDROOT/path"\n')
    script.chmod(0o755)
    build = _kosi(project, "build")
    assert build.returncode == 0, build.stderr
    assert (project / "image/ran").read_text() == "fake hwdb hello\n"
    path = (project / "image/path").read_text().strip().split(":")
    assert path[1] == str(bin_dir) and path[0].endswith("/helpers/postinst")


def test_proxy_reaches_kosis_own_requests(tmp_path):
    """latest-snapshot asks the snapshot service itself: through ProxyUrl=, unless ProxyExclude=."""
    import http.server
    import threading

    from kosi.errors import KosiError
    from kosi.installers.base import package_manager_for

    seen: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # a proxy gets the whole URL in the request line
            seen.append(self.path)
            if "/20240102T030405Z/" in self.path:
                self.send_response(200)
            else:
                self.send_response(302)
                self.send_header("Location", "http://snapshot.invalid/archive/debian/20240102T030405Z/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conf = (f"[Distribution]\nDistribution=debian\nRelease=trixie\nMirror=http://snapshot.invalid\n"
                f"[Build]\nProxyUrl=http://127.0.0.1:{server.server_address[1]}\n")  # fmt: skip
        config = _project(tmp_path, conf).images[-1]
        assert package_manager_for(config).latest_snapshot(config) == "20240102T030405Z"
        assert seen and seen[0].startswith("http://snapshot.invalid/archive/debian/")
        config = _project(tmp_path, conf + "ProxyExclude=invalid\n").images[-1]
        seen.clear()
        try:
            package_manager_for(config).latest_snapshot(config)
        except KosiError as e:
            assert "snapshot.invalid" in str(e)
        assert not seen, "an excluded host is asked directly, not through the proxy"
    finally:
        server.shutdown()
