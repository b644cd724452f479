"""No setting silently ignored: every entry of the settings table is read by build or run code,
or marked unsupported in the table (so the user is told).

"Read" means an attribute access `<config>.<dest>` on an object named like a configuration, or
the setting's name as a string (`config["Name"]`, `is_set("Name")`, tables of names that steps
look up: `setting_name = "SkeletonTrees"`), found with `ast` in kosi/ outside
kosi/config/ and the verbs that only report the configuration (summary, documentation,
completion, help)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from kosi.config.settings import SETTINGS, SETTINGS_BY_NAME

KOSI = Path(__file__).resolve().parents[2] / "kosi"
REPORTING = {"config", "verbs/summary.py", "verbs/documentation.py", "verbs/completion.py", "verbs/help.py"}
#: objects that hold a Config: `config`, `context.config`, `main`, `image`, `tools_config`, ...
CONFIG_NAMES = re.compile(r"(^|_)(config|cfg|main|image)$")
#: settings the loader itself consumes while reading the configuration (kosi/config/), or
#: that a helper there derives for the build code (BuildKey=: specifiers.build_subdirectory)
LOADER = {"Include": "loader.py", "MinimumVersion": "loader.py", "PassEnvironment": "loader.py",
          "Dependencies": "images.py", "BuildKey": "specifiers.py"}  # fmt: skip


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _reads(files: list[Path]) -> set[str]:
    """Names of settings (dests and names) read in these files."""
    found: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and CONFIG_NAMES.search(_base_name(node.value)):
                found.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in SETTINGS_BY_NAME:
                found.add(node.value)
    return found


def _build_files() -> list[Path]:
    return [p for p in sorted(KOSI.rglob("*.py"))
            if not any(str(p.relative_to(KOSI)).startswith(r) for r in REPORTING)]  # fmt: skip


def unread_settings() -> list[str]:
    reads = _reads(_build_files())
    loader_reads = {name for name, module in LOADER.items() if name in _reads([KOSI / "config" / module])}

    def read(name: str) -> bool:
        setting = SETTINGS_BY_NAME[name]
        if name in reads or setting.dest in reads or name in loader_reads:
            return True
        # ToolsTree<X>= becomes <X>= of the default tools tree's configuration (the loader maps it)
        target = name.removeprefix("ToolsTree")
        return target != name and target in SETTINGS_BY_NAME and read(target)

    return [s.name for s in SETTINGS if s.unsupported is None and not read(s.name)]


def test_every_setting_is_read_or_marked_unsupported():
    assert unread_settings() == [], (
        "settings parsed but never read by build/run code: implement them, or mark them "
        "unsupported=... in kosi/config/settings.py so the user is told"
    )


def test_no_setting_is_both_read_and_marked_unsupported():
    # a helper that implements a marked setting must drop its mark, or kosi refuses or warns
    # about a setting that works
    reads = _reads(_build_files())
    stale = [s.name for s in SETTINGS if s.unsupported is not None and (s.name in reads or s.dest in reads)]
    assert stale == [], "read by build/run code but marked unsupported in kosi/config/settings.py: drop the mark"


def test_the_scan_finds_reads():
    # the scan itself must see real reads, or the test above could never fail
    reads = _reads(_build_files())
    assert {"packages", "distribution", "output"} <= reads
    assert "overlay" not in reads or SETTINGS_BY_NAME["Overlay"].unsupported is None


def test_scan_recognises_config_objects(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f(context, main, mount):\n    context.config.repart_offline\n    main['History']\n"
                      "    mount.overlay\n    print('Overlay= is not a name')\n")  # fmt: skip
    assert _reads([source]) == {"repart_offline", "History"}


def _kosi(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(KOSI.parent / "bin/kosi"), *args], cwd=tmp_path, capture_output=True,
                          text=True)  # fmt: skip


def test_unsupported_setting_refused_before_any_step_summary_still_works(tmp_path):
    (tmp_path / "mkosi.conf").write_text("[Distribution]\nDistribution=custom\n[Output]\nFormat=directory\n"
                                         "[Build]\nProxyPeerCertificate=/etc/passwd\n")  # fmt: skip
    build = _kosi(tmp_path, "build")
    lines = [line for line in build.stderr.splitlines() if line.strip()]
    assert build.returncode == 1 and len(lines) == 1, build.stderr
    assert "mkosi.conf:6" in lines[0] and "ProxyPeerCertificate=" in lines[0] and "not supported by kosi" in lines[0]
    assert not any(tmp_path.glob("image*")), "nothing was built"
    summary = _kosi(tmp_path, "--json", "summary")
    assert summary.returncode == 0 and '"ProxyPeerCertificate": "/etc/passwd"' in summary.stdout


def test_unsupported_harmless_setting_warns_once(tmp_path):
    (tmp_path / "mkosi.conf").write_text("[Distribution]\nDistribution=custom\n[Output]\nFormat=directory\n"
                                         "[Runtime]\nCXL=yes\n")  # fmt: skip
    build = _kosi(tmp_path, "build")
    assert build.returncode == 0, build.stderr
    assert build.stderr.count("CXL= is not supported by kosi") == 1


def test_unsupported_signing_refused_but_turning_it_off_is_honoured(tmp_path):
    # SignInitrdPCRs=yes asks for an initrd PCR policy kosi cannot make: refused before any
    # step; =no asks for what kosi does anyway and builds without a word about it
    conf = "[Distribution]\nDistribution=custom\n[Output]\nFormat=directory\n[Validation]\nSignInitrdPCRs={}\n"
    (tmp_path / "mkosi.conf").write_text(conf.format("yes"))
    build = _kosi(tmp_path, "build")
    lines = [line for line in build.stderr.splitlines() if line.strip()]
    assert build.returncode == 1 and len(lines) == 1, build.stderr
    assert "mkosi.conf:6" in lines[0] and "SignInitrdPCRs=" in lines[0]
    (tmp_path / "mkosi.conf").write_text(conf.format("no"))
    build = _kosi(tmp_path, "build")
    assert build.returncode == 0, build.stderr
    assert "SignInitrdPCRs" not in build.stderr


def test_sign_expected_pcr_yes_without_a_key_is_one_line(tmp_path):
    conf = "[Distribution]\nDistribution=custom\n[Output]\nFormat=directory\n[Validation]\nSignExpectedPcr=yes\n"
    (tmp_path / "mkosi.conf").write_text(conf)
    build = _kosi(tmp_path, "build")
    lines = [line for line in build.stderr.splitlines() if line.strip()]
    assert build.returncode == 1 and len(lines) <= 2 and "Traceback" not in build.stderr, build.stderr
    assert "SignExpectedPcr= is enabled but SignExpectedPcrKey= is not set" in lines[0]


def test_docs_and_help_say_unsupported():
    from kosi.verbs.documentation import setting_entry
    from kosi.verbs.help import render_help

    assert "Not supported by kosi yet" in setting_entry(SETTINGS_BY_NAME["CXL"])
    assert "refused" in setting_entry(SETTINGS_BY_NAME["ProxyPeerCertificate"])
    text = " ".join(render_help(None).split())  # unwrapped
    assert "(CXL=) [not supported by kosi yet]" in text
    assert "(Packages=) [not" not in text
