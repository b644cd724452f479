"""The repositories each rpm distribution defines, as mkosi 27.1 writes them into its .repo file
(the expectations were read from the oracle's generated mkosi.repo for the same settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kosi import distributions
from kosi.config.model import Config
from kosi.installers.dnf import Dnf, expand


def repos(**values) -> dict[str, tuple[str, bool]]:
    config = Config(values)
    dist = distributions.get(values["Distribution"])
    return {r.id: (r.url, r.enabled or dist.wanted(config, r.id)) for r in dist.repositories(config)}


def test_fedora_release_from_a_mirror():
    r = repos(Distribution="fedora", Release="42", Mirror="http://m/fedora")
    assert r["fedora"] == ("baseurl=http://m/fedora/linux/releases/$releasever/Everything/$basearch/os", True)
    assert r["updates"] == ("baseurl=http://m/fedora/linux/updates/$releasever/Everything/$basearch", True)
    assert r["updates-testing"][1] is False and r["fedora-debuginfo"][1] is False


def test_fedora_default_is_rawhide_from_the_metalink():
    r = repos(Distribution="fedora")
    assert r["fedora"] == (
        "metalink=https://mirrors.fedoraproject.org/metalink?arch=$basearch&repo=fedora-$releasever",
        True,
    )
    assert "updates" not in r
    assert Config({"Distribution": "fedora"})["Release"] == "rawhide"


#: What mkosi 27.1 wrote into its mkosi.repo for these settings (plus Packages=bash and
#: Format=directory): captured by running the oracle's `build` with ProxyUrl= pointing at a
#: refusing proxy and copying the .repo file out of its workspace before dnf failed; the
#: variables filled in with the --releasever= it passed and the architecture's $basearch.
#: "-localkeys" cases had the keys in mkosi.sandbox/, the others RepositoryKeyFetch=yes (the
#: keys are then the URLs' last component). One line per repository, sorted.
ORACLE = json.loads((Path(__file__).parent / "data/mkosi-27.1-rpm-repositories.json").read_text())


def repository_lines(settings: dict) -> list[str]:
    config = Config(dict(settings))
    dist = distributions.get(config.distribution)
    lines = []
    for r in dist.repositories(config):
        keys = " ".join(
            ((k.fetch or k.name) if config["RepositoryKeyFetch"] else k.name).rsplit("/", 1)[-1] for k in r.keys
        )
        kind, _, location = r.url.partition("=")
        lines.append(
            f"{r.id} enabled={int(r.enabled)} {kind}={expand(config, location)} keys={keys} "
            f"prio={r.priority} expire={r.metadata_expire}"
        )
    return sorted(lines)


@pytest.mark.parametrize("case", sorted(ORACLE))
def test_repositories_equal_mkosi_27_1s(case):
    """Ids, enablement, URL layouts (Mirror=, Snapshot=, metalinks), keys and options."""
    assert repository_lines(ORACLE[case]["settings"]) == ORACLE[case]["repositories"]


@pytest.mark.parametrize("name", ["alma", "rocky", "rhel-ubi", "azure", "mageia", "openmandriva"])
def test_snapshot_is_refused_where_there_are_none(name):
    from kosi.errors import KosiError

    with pytest.raises(KosiError, match="Snapshot=20250101: .* has no snapshots"):
        Dnf.check_available(Config({"Distribution": name, "Snapshot": "20250101"}))
    Dnf.check_available(Config({"Distribution": "fedora", "Snapshot": "20250101.0"}))


def test_centos_stream_layout_and_disabled_extras():
    r = repos(Distribution="centos", Mirror="http://m/centos-stream")
    assert r["baseos"] == ("baseurl=http://m/centos-stream/$stream/BaseOS/$basearch/os", True)
    assert r["crb"][1] and r["appstream"][1]
    assert r["extras"] == ("baseurl=http://m/centos-stream/SIGs/$stream/extras/$basearch/extras-common", True)
    assert r["epel"] == ("baseurl=http://m/fedora/epel/10/Everything/$basearch", False)
    assert not r["hyperscale-packages-main"][1]
    r = repos(Distribution="centos", Release="9", Repositories=["epel", "hyperscale-*"])
    assert r["epel"] == ("metalink=https://mirrors.fedoraproject.org/metalink?arch=$basearch&repo=epel-9", True)
    assert r["epel-testing"][0].endswith("repo=testing-epel9") and not r["epel-testing"][1]
    assert r["hyperscale-packages-main"][1] and r["hyperscale-packages-kernel"][1]
    assert (
        r["baseos-source"][0]
        == "metalink=https://mirrors.centos.org/metalink?arch=source&repo=centos-baseos-source-$stream"
    )


def test_epel_mirror_from_the_environment(monkeypatch):
    monkeypatch.setenv("EPEL_MIRROR", "http://epel.example/pub/")
    r = repos(Distribution="alma", Mirror="http://m/almalinux")
    assert r["epel"][0] == "baseurl=http://epel.example/pub/epel/10/Everything/$basearch"
    assert r["BaseOS"] == ("baseurl=http://m/almalinux/$releasever/BaseOS/$basearch/os", True)


@pytest.mark.parametrize("name, repo_id, url", [
    ("rocky", "BaseOS", "mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever"),
    ("alma", "CRB", "mirrorlist=https://mirrors.almalinux.org/mirrorlist/$releasever/crb"),
    ("rhel-ubi", "ubi-10-appstream-rpms", "baseurl=https://cdn-ubi.redhat.com/content/public/ubi/dist/ubi10/10/$basearch/appstream/os"),
    ("azure", "base", "baseurl=https://packages.microsoft.com/azurelinux/3.0/prod/base/$basearch"),
    ("mageia", "core-release", "mirrorlist=https://www.mageia.org/mirrorlist/?release=$releasever&arch=$basearch&section=core&repo=release"),
    ("openmandriva", "main-updates", "baseurl=http://mirror.openmandriva.org/$releasever/repository/$basearch/main/updates"),
])  # fmt: skip
def test_default_repositories(name, repo_id, url):
    assert repos(Distribution=name)[repo_id] == (url, True)


def test_local_mirror_is_one_repository():
    r = repos(Distribution="centos", LocalMirror="file:///srv/mirror", Mirror="http://m/centos-stream")
    assert r == {"centos": ("baseurl=file:///srv/mirror", True)}


def test_plan_lists_the_enabled_repositories_with_variables_filled_in():
    config = Config({"Distribution": "centos", "Release": "9", "Mirror": "http://m/centos-stream"})
    sources = Dnf().sources(config)
    assert "[baseos] http://m/centos-stream/9-stream/BaseOS/x86_64/os" in sources
    assert not any("epel" in line or "debuginfo" in line for line in sources)
    assert expand(config, "$basearch/$releasever/$stream") == "x86_64/9/9-stream"


def test_rhel_needs_a_mirror():
    from kosi.errors import KosiError

    with pytest.raises(KosiError, match="subscription"):
        repos(Distribution="rhel")


def test_debian_tools_tree_carries_dnf_for_rpm_distributions(monkeypatch):
    from kosi.config import defaults
    from kosi.config.model import Project
    from kosi.tools import tree as tools_tree

    monkeypatch.setattr(defaults, "host_distribution", lambda: ("debian", "12"))
    config = tools_tree.tools_config(Project(images=[Config({"Distribution": "centos"})]), "build")
    assert config.values["Distribution"] == "debian" and config.values["Release"] == "sid"
    packages = config.values["Packages"]
    for name in ("dnf5", "rpm", "createrepo-c", "distribution-gpg-keys"):
        assert name in packages
    assert "dnf" not in packages  # sid has dnf5 (tests/boot/test_tools_tree.py: trixie's has dnf 4)
