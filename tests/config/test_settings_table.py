"""The settings table against the manual: every setting, its flags, section, scope, matcher and
specifier as the manual states them; defaults that derive from other settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kosi import architecture
from kosi.config import defaults
from kosi.config.jsonio import config_from_json, config_to_json
from kosi.config.model import Config
from kosi.config.setting import MatchKind, Scope
from kosi.config.settings import SETTINGS, SETTINGS_BY_DEST, SETTINGS_BY_NAME, UKI_PROFILE_SETTINGS
from kosi.config.values import Feature, Origin
from kosi.distributions.host import read_os_release

#: the manual the table must match, kept in the repository so these tests always run
MANUAL = Path(__file__).resolve().parents[2] / "docs/spec/mkosi-manual.txt"

SECTION_HEADER = re.compile(r"^\[(\w+)\](?: Section)?.*¶$")


def manual_lines() -> list[str]:
    return MANUAL.read_text().splitlines()


def manual_settings() -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(section, name) -> (long, short) from the "- Name=, --long=, -s" lines of each section."""
    found: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    section = None
    for line in manual_lines():
        header = SECTION_HEADER.match(line)
        if header:
            section = header.group(1)
            continue
        if line.endswith("¶"):  # a chapter after the settings (Specifiers, FILES, ...)
            section = None
            continue
        if section in (None, "Match") or not re.match(r"^- [A-Z][A-Za-z]+=", line):
            continue
        current = None
        for token in (t.strip() for t in line[2:].split(",")):
            if re.fullmatch(r"[A-Z][A-Za-z]+=", token):
                current = (section, token[:-1])
                found[current] = (None, None)
            elif token.startswith("--") and current:
                found[current] = (token.rstrip("="), found[current][1])
            elif re.fullmatch(r"-[A-Za-z]", token) and current:
                found[current] = (found[current][0], token)
    return found


def manual_list(after: str) -> list[str]:
    """The "- Name=" items of the list that follows the paragraph starting with `after`."""
    lines = manual_lines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    items = []
    for line in lines[start + 1 :]:
        if not line.startswith("- "):
            break
        items.append(line[2:].strip().rstrip("="))
    return items


#: Short options mkosi 27.1 has (its --help shows them) that the manual does not document.
SHORT_BEYOND_MANUAL = {"Environment": "-E"}


def test_every_manual_setting_is_in_the_table_with_its_section_and_flags():
    documented = manual_settings()
    assert len(documented) > 160
    for (section, name), (long, short) in documented.items():
        table = UKI_PROFILE_SETTINGS if section == "UKIProfile" else SETTINGS
        setting = next((s for s in table if s.name == name), None)
        assert setting is not None, f"{name}= of [{section}] is missing"
        assert setting.section == section, name
        assert (setting.long, setting.short) == (long, SHORT_BEYOND_MANUAL.get(name, short)), name


#: Settings mkosi 27.1 has (its --help and --json summary show them) that the manual does not
#: document; tests/compat compares them with mkosi.
BEYOND_MANUAL = {
    "DelegateRanges", "DiskType", "ElTorito", "ElToritoPublisher", "ElToritoSystem", "ElToritoVolume",
    "FirmwareExclude", "ForeignUIDRange", "KernelModulesExclude", "KernelModulesIncludeHost",
    "KernelModulesInitrdExclude", "KernelModulesInitrdIncludeHost", "MakeScriptsExecutable", "OciAnnotations",
    "OciLabels", "OutputSize", "SignInitrdPCRs", "ToolsTreeSnapshot",
}  # fmt: skip


def test_table_has_nothing_the_manual_does_not_document():
    documented = {name for section, name in manual_settings() if section != "UKIProfile"}
    assert sorted(s.name for s in SETTINGS if s.name not in documented | BEYOND_MANUAL) == []
    assert len(documented) + len(BEYOND_MANUAL) == len(SETTINGS)


def test_names_flags_and_dests_are_unique():
    for attribute in ("name", "dest", "long", "short"):
        values = [getattr(s, attribute) for s in SETTINGS if getattr(s, attribute)]
        assert len(values) == len(set(values)), attribute
    compat = [c for s in SETTINGS for c in s.compat_names]
    assert len(compat) == len(set(compat)) and not set(compat) & set(SETTINGS_BY_NAME)
    assert len(SETTINGS_BY_NAME) == len(SETTINGS_BY_DEST) == len(SETTINGS)


MKOSI_SCOPES = {
    "CacheOnly": Scope.passed_down, "Snapshot": Scope.multiversal, "InitrdPackages": Scope.main_only,
    "InitrdProfiles": Scope.main_only, "InitrdVolatilePackages": Scope.main_only,
    # the default tools tree has its own (case loader-tools/key-fetch-not-passed-to-tools-tree)
    "RepositoryKeyFetch": Scope.universal,
}  # fmt: skip


@pytest.mark.parametrize(
    "paragraph, scope",
    [("Several “multiversal” settings", Scope.multiversal), ("Several “universal” settings", Scope.universal),
     ("There are also settings which are passed down", Scope.passed_down),
     ("Additionally, there are various settings that can only be configured in the main", Scope.main_only)],
)  # fmt: skip
def test_scopes_match_the_manual_lists(paragraph, scope):
    listed = set(manual_list(paragraph))
    if scope == Scope.main_only:
        listed.discard("Every setting in the [Runtime] section")
        listed |= {s.name for s in SETTINGS if s.section == "Runtime" and s.name not in BEYOND_MANUAL}
    assert len(listed) > 8
    # Where mkosi 27.1 (the oracle: a subimage refuses or inherits the setting, the tools tree
    # shares it or not) disagrees with the manual's lists, mkosi wins.
    for name, mkosi_scope in MKOSI_SCOPES.items():
        listed.discard(name)
        if mkosi_scope == scope:
            listed.add(name)
    assert {s.name for s in SETTINGS if s.scope == scope and s.name not in BEYOND_MANUAL} == listed


def test_matcher_table():
    rows = [line.split("|")[1:4] for line in manual_lines() if re.match(r"^\| [A-Za-z]+= \| (yes|no) \|", line)]
    assert len(rows) == 16
    for name, globs, rich in ((n.strip().rstrip("="), g.strip(), r.strip()) for n, g, r in rows):
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:  # PathExists=, SystemdVersion=, HostArchitecture=, Image= are not settings
            continue
        if globs == "yes" or rich == "yes":
            assert setting.match == (MatchKind.glob if globs == "yes" else MatchKind.version), name
        else:  # compared for equality, or in a way of its own (Environment=, BuildSources=)
            assert setting.match in (MatchKind.plain, MatchKind.environment, MatchKind.target), name
    with_matcher = {s.name for s in SETTINGS if s.match}
    # mkosi 27.1 also matches on Bootloader=, which the manual does not list
    assert with_matcher == {name for name in conditions_in_match_section() if name in SETTINGS_BY_NAME} | {"Bootloader"}


def conditions_in_match_section() -> list[str]:
    lines = manual_lines()
    start = lines.index("[Match] Section¶")
    names = []
    for line in lines[start + 1 :]:
        if SECTION_HEADER.match(line) or line.startswith("This table shows"):
            break
        if m := re.match(r"^- ([A-Z][A-Za-z]+)=$", line):
            names.append(m.group(1))
    return names


def test_specifier_table():
    pairs = re.findall(r"^\| ([A-Za-z]+)= \| %([a-zA-Z]) \|$", MANUAL.read_text(), re.MULTILINE)
    assert len(pairs) == 8
    assert {s.name: s.specifier for s in SETTINGS if s.specifier} == dict(pairs)


def test_checked_before_build_and_delayed_specifiers():
    assert {s.name for s in SETTINGS if s.checked_before_build} == set(
        manual_list("Images can refer to outputs of images they depend on")
    )
    assert {s.name for s in SETTINGS if s.delayed_specifiers == "parse"} == {"CacheKey", "BuildKey"}
    assert {s.name for s in SETTINGS if s.delayed_specifiers == "build"} == {"UnifiedKernelImageFormat", "Linux"}
    for name in ("BaseTrees", "ExtraTrees", "Initrds"):  # a dependency's output may not exist yet
        SETTINGS_BY_NAME[name].type.parse(name, "../missing", Origin(file="f", line=1, directory=Path("/nonexistent")))


@pytest.mark.parametrize(
    "name, paths",
    [("ExtraTrees", {"mkosi.extra", "mkosi.extra.tar"}), ("SkeletonTrees", {"mkosi.skeleton", "mkosi.skeleton.tar"}),
     ("SandboxTrees", {"mkosi.sandbox", "mkosi.sandbox.tar"}), ("CacheDirectory", {"mkosi.cache"}),
     ("PackageCacheDirectory", {"mkosi.pkgcache"}), ("OutputDirectory", {"mkosi.output"}),
     ("BuildDirectory", {"mkosi.builddir"}), ("RepartDirectories", {"mkosi.repart"}),
     ("NSpawnSettings", {"mkosi.nspawn"}), ("SecureBootKey", {"mkosi.key"}), ("SecureBootCertificate", {"mkosi.crt"}),
     ("VerityKey", {"mkosi.key"}), ("SshKey", {"mkosi.key"}), ("SshCertificate", {"mkosi.crt"}),
     ("RootPassword", {"mkosi.rootpw"}), ("Passphrase", {"mkosi.passphrase"}), ("Seed", {"mkosi.seed"}),
     ("MachineId", {"mkosi.machine-id"}), ("ImageVersion", {"mkosi.version"}), ("EnvironmentFiles", {"mkosi.env"}),
     ("UnifiedKernelImageProfiles", {"mkosi.uki-profiles"}), ("PackageDirectories", {"mkosi.packages"}),
     ("ToolsTree", {"mkosi.tools"}), ("SysupdateDirectory", {"mkosi.sysupdate"}),
     ("ConfigureScripts", {"mkosi.configure"}),
     ("BuildScripts", {"mkosi.build", "mkosi.build.chroot", "mkosi.build.d"}),
     ("PostInstallationScripts", {"mkosi.postinst", "mkosi.postinst.chroot", "mkosi.postinst.d"}),
     ("CleanScripts", {"mkosi.clean", "mkosi.clean.d"})],  # no .chroot for clean, sync, postoutput (mkosi 27.1)
)  # fmt: skip
def test_default_paths(name, paths):
    assert set(SETTINGS_BY_NAME[name].paths) == paths


def test_read_paths_and_secrets():
    assert {s.name for s in SETTINGS if s.path_read} == {"ImageVersion", "RootPassword", "Seed", "MachineId"}
    secret = {s.name for s in SETTINGS if s.secret}
    assert {"RootPassword", "Passphrase", "SecureBootKey", "VerityKey", "SignExpectedPcrKey", "SshKey"} <= secret
    assert not {s.name for s in SETTINGS if s.secret and "Certificate" in s.name}


def test_every_setting_serialises_its_default_and_round_trips():
    config = Config(image="main", directory=Path("/srv/project"))
    document = json.loads(json.dumps(config_to_json(config)))
    assert list(document) == sorted({"Image", "Files"} | {s.name for s in SETTINGS if s.json})
    back = config_from_json(document)
    assert config_to_json(back) == document


def test_every_setting_has_help_and_a_describable_type():
    for setting in SETTINGS + UKI_PROFILE_SETTINGS:
        assert setting.help and "\n" not in setting.help, setting.name
        assert setting.type.describe(), setting.name
        assert setting.metavar, setting.name


# ---- defaults that derive from other settings --------------------------------------------------


def test_distribution_and_architecture_follow_the_host_release_is_recent():
    from kosi import distributions

    host, _ = defaults.host_distribution()
    config = Config()
    assert config["Distribution"] == host
    assert config["Architecture"] == architecture.host()
    # As mkosi 27.1: the host's release when the host runs the distribution, else a recent one.
    host_release = defaults.host_distribution()[1]
    for other in ("debian", "fedora", "ubuntu", "arch"):
        known = distributions.get(other)
        expected = host_release if other == host else known.image_default_release or known.default_release
        assert Config({"Distribution": other})["Release"] == expected


def test_release_and_key_fetch_on_other_hosts(monkeypatch):
    """Seen with mkosi 27.1 under a bind-mounted os-release: Debian's default release away from
    Debian is testing (its tools tree's stays trixie), Ubuntu's and Kali's are their rolling
    ones; keys are fetched where the tools come from Ubuntu, for images outside the apt family."""
    monkeypatch.setattr(defaults, "host_distribution", lambda: ("fedora", "42"))
    releases = {d: Config({"Distribution": d})["Release"] for d in ("debian", "ubuntu", "kali", "fedora")}
    assert releases == {"debian": "testing", "ubuntu": "devel", "kali": "kali-rolling", "fedora": "42"}
    assert Config({"ToolsTreeDistribution": "debian"})["ToolsTreeRelease"] == "trixie"
    assert not any(Config({"Distribution": d})["RepositoryKeyFetch"] for d in ("debian", "fedora", "arch"))
    monkeypatch.setattr(defaults, "host_distribution", lambda: ("ubuntu", "24.04"))
    fetch = {d: Config({"Distribution": d})["RepositoryKeyFetch"] for d in ("debian", "kali", "custom", "arch")}
    assert fetch == {"debian": False, "kali": False, "custom": False, "arch": True}
    tools = {"Distribution": "fedora", "ToolsTree": "default"}
    assert not Config(tools)["RepositoryKeyFetch"]  # the tools tree is Debian's


@pytest.mark.parametrize(
    "values, image, output",
    [({}, "main", "image"), ({"ImageId": "os"}, "main", "os"), ({"ImageId": "os", "ImageVersion": "1.2"}, "main", "os_1.2"),
     ({"ImageVersion": "0.1"}, "main", "image_0.1"), ({"ImageId": "os"}, "initrd", "initrd"),
     ({"Output": "explicit", "ImageId": "os"}, "main", "explicit")],
)  # fmt: skip
def test_output_name(values, image, output):
    assert Config(values, image=image).output == output


@pytest.mark.parametrize(
    "fmt, extension, compression",
    [("disk", "raw", "none"), ("tar", "tar", "zstd"), ("cpio", "cpio", "zstd"), ("uki", "efi", "zstd"),
     ("esp", "raw", "zstd"), ("oci", "", "gzip"), ("directory", "", "none"), ("sysext", "raw", "none"),
     ("addon", "efi", "zstd"), ("none", "", "none")],
)  # fmt: skip
def test_extension_and_compression_follow_the_format(fmt, extension, compression):
    config = Config({"Format": fmt, "Distribution": "debian"})
    assert (config.output_extension, config.compress_output) == (extension, compression)


def test_old_centos_compresses_with_zstd_as_mkosi():
    assert (
        Config({"Format": "tar", "Distribution": "centos", "Release": "8"}).compress_output == "zstd"
    )  # mkosi 27.1, although the manual says xz
    assert Config({"Format": "tar", "Distribution": "centos", "Release": "10"}).compress_output == "zstd"


def test_tools_tree_defaults(monkeypatch):
    # The host's distribution, not the image's (manual; mkosi 27.1 on a Debian host says debian
    # for a Fedora image), mapped where another distribution builds the tools better.
    from kosi.config import defaults

    for host, expected in (("ubuntu", "debian"), ("rocky", "fedora"), ("arch", "arch"), ("debian", "debian")):
        monkeypatch.setattr(defaults, "host_distribution", lambda host=host: (host, ""))
        for image in ("fedora", "debian", "arch"):
            assert Config({"Distribution": image})["ToolsTreeDistribution"] == expected
    monkeypatch.undo()
    assert Config({"ToolsTreeDistribution": "fedora"})["ToolsTreeRelease"] == "rawhide"  # as mkosi 27.1
    assert Config()["ToolsTreeProfiles"] == ["misc", "package-manager", "runtime"]


def test_constant_defaults():
    config = Config()
    assert config.cache_key == "&d~&r~&a~&I" and config.build_key == "&d~&r~&a"
    assert config.bootable is Feature.auto and config.format == "disk"
    assert config.cpus == 1 and config.ram == 2 * 1024**3 and config.max_mem is None  # qemu: RAM=
    assert config.with_docs is True and config.with_tests is True and config.vsock_cid == "auto"
    assert config.mirror is None  # the distribution's own; defaults.mirror() names it
    assert defaults.mirror(Config({"Distribution": "ubuntu", "Architecture": "arm64"})) == "http://ports.ubuntu.com"
    assert defaults.mirror(Config({"Distribution": "debian"})) == "http://deb.debian.org"


def test_host_distribution_reads_os_release(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text('ID=almalinux\nVERSION_ID="9.4"\n# comment\n')
    assert read_os_release(tmp_path) == {"ID": "almalinux", "VERSION_ID": "9.4"}
    assert read_os_release(tmp_path / "nothing") == {}


@pytest.mark.parametrize(
    "os_release, expected",
    [('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\nVERSION_ID="20250101"\n', ("opensuse", "tumbleweed")),
     ('ID="opensuse-leap"\nVERSION_ID="15.6"\n', ("opensuse", "15.6")),
     ("ID=debian\nVERSION_CODENAME=forky\n", ("debian", "forky")),
     ('ID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_CODENAME=wilma\n', ("custom", ""))],
)  # fmt: skip
def test_host_release_as_mkosi(monkeypatch, os_release, expected):
    """mkosi 27.1 under a bind-mounted os-release: Tumbleweed is `tumbleweed`, not its date. A
    derivative (ID_LIKE only) is custom in kosi (docs/compatibility.md)."""
    from kosi.distributions import host

    fields = dict(line.split("=", 1) for line in os_release.splitlines())
    monkeypatch.setattr(host, "read_os_release", lambda: {k: v.strip('"') for k, v in fields.items()})
    assert host.host_distribution.__wrapped__() == expected


def test_architectures():
    assert set(architecture.names()) >= {"x86-64", "x86", "arm64", "arm", "riscv64", "ppc64-le", "s390x", "loongarch64"}
    x86_64 = architecture.get("x86-64")
    assert (x86_64.debian, x86_64.qemu, x86_64.efi) == ("amd64", "x86_64", "x64")
    assert architecture.get("arm64").efi == "aa64" and architecture.get("ppc64-le").debian == "ppc64el"
    assert "s390x" not in architecture.uefi_names() and "riscv64" in architecture.uefi_names()
    assert architecture.from_kernel("aarch64") == "arm64" and architecture.from_kernel("i586") == "x86"
    assert architecture.host() in architecture.names()
