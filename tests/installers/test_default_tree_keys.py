"""The keys kosi hands rpm and pacman-key by default are usable in the default tools tree.

For each rpm and pacman distribution (and its releases) the test asks kosi which tools tree it
would use (ToolsTree=default on this Debian host), builds it when it is not cached, and then,
in kosi's own package manager sandbox over that tree (with the rpm-sequoia policy kosi writes),
imports every certificate of every key file kosi would give rpm into a scratch database, or
populates a private pacman keyring from archlinux-keyring. A key that is missing, refused
(SHA-1 bindings under Sequoia's policy) or expired fails the test, naming it. Trixie's
distribution-gpg-keys (1.119) has openSUSE's Tumbleweed key expired: with a trixie tree the
test fails for openSUSE.
"""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from kosi import distributions
from kosi.config.model import Config, Project
from kosi.installers import apt_keys, rpm
from kosi.sandbox import Mount, run, sandbox_command
from kosi.tools.tree import choose_tools_tree

#: (distribution, release, Repositories=) as users build them; centos with EPEL enabled too
CASES = [
    *(("fedora", release, "") for release in ("rawhide", "44", "43", "42")),
    ("centos", "9", ""),
    ("centos", "10", ""),
    ("centos", "9", "epel"),
    ("centos", "10", "epel"),
    ("rhel-ubi", "9", ""),
    ("rhel-ubi", "10", ""),
    ("rocky", "9", ""),
    ("rocky", "10", ""),
    ("alma", "9", ""),
    ("alma", "10", ""),
    ("azure", "3.0", ""),
    ("mageia", "9", ""),
    ("mageia", "cauldron", ""),
    ("openmandriva", "cooker", ""),
    ("opensuse", "tumbleweed", ""),
    ("opensuse", "16.0", ""),
    ("opensuse", "leap", ""),
]

ARMOR = re.compile(r"-----BEGIN PGP PUBLIC KEY BLOCK-----.*?-----END PGP PUBLIC KEY BLOCK-----", re.S)


def config_of(distribution: str, release: str, repositories: str = "") -> Config:
    values = {"Distribution": distribution, "Release": release, "ToolsTree": "default", "Format": "directory"}
    return Config({**values, "Repositories": [repositories] if repositories else []}, directory=Path("/nonexistent"))


def default_tree(config: Config) -> Path:
    """The tools tree kosi chooses for this image, built (under the caller's image lock) when
    it is not cached yet, as `kosi build` does."""
    from kosi.config.cli_args import Args
    from kosi.verbs.build import ensure_tools_tree

    project = Project(images=[config])
    choice = choose_tools_tree(project, "build")
    assert choice.tree is not None
    if choice.why_build is not None:
        ensure_tools_tree(project, Args(verb="build"))
    return choice.tree


def context_of(config: Config, tree: Path, workspace: Path) -> SimpleNamespace:
    """What kosi's key lookup and package manager sandbox read from a build's context."""
    for name in ("pkgmngr", "cache"):
        (workspace / name).mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(
        config=config,
        tools=tree,
        workspace=workspace,
        package_cache=workspace / "cache",
        pkgmngr=workspace / "pkgmngr",
    )


def rpm_key_files(context: SimpleNamespace) -> dict[str, Path | None]:
    """Every key file kosi gives rpm for the image (None: missing), as it finds them: the dnf
    backend's gpgkey= of the enabled repositories, the zypper backend's key set."""
    config = context.config
    dist = distributions.get(str(config.distribution))
    if dist.package_manager == "zypper":
        return {key: apt_keys.local_keyring(context, key) for key in dist.keys(config)}
    found: dict[str, Path | None] = {}
    for repo in dist.repositories(config):
        if repo.enabled or dist.wanted(config, repo.id):
            for key in repo.keys:
                url = key.locate(context)
                found[key.name] = context.tools / url.removeprefix("file:///") if url else None
    return found


def certificate_version(armored: str) -> int:
    """The version of a certificate's primary key packet (4, or 6 for post-quantum keys)."""
    body = [line for line in armored.splitlines()[1:-1] if line and ":" not in line and not line.startswith("=")]
    data = base64.b64decode("".join(body))
    if data[0] & 0x40:  # new packet format: one, two or five length octets
        first = data[1]
        offset = 2 if first < 192 else 3 if first < 224 else 6
    else:
        offset = 1 + (1, 2, 4)[data[0] & 0x03]
    return data[offset]


def import_problems(context: SimpleNamespace, files: dict[str, Path | None]) -> list[str]:
    """Each certificate imported on its own into a scratch rpm database in kosi's sandbox."""
    rpm.write_crypto_policy(context.pkgmngr)
    (context.pkgmngr / "etc/rpm").mkdir(parents=True, exist_ok=True)
    scratch = context.workspace / "scratch"
    problems = []
    for name, path in files.items():
        if path is None:
            problems.append(f"{name}: missing in {context.tools}")
            continue
        certificates = ARMOR.findall(path.read_text())
        usable = 0
        for index, certificate in enumerate(certificates, 1):
            key = context.workspace / "key.asc"
            key.write_text(certificate + "\n")
            db = scratch / f"{path.name}-{index}"
            db.mkdir(parents=True)
            result = run(
                ["rpmkeys", f"--dbpath={db}", "--import", str(key)],
                sandbox=rpm.sandbox(context, context.workspace, apivfs=False, network=False),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                check=False,
                input="",
            )
            output = " ".join(result.stdout.split())
            if result.returncode == 0 and "expired" not in output and "Policy" not in output:
                usable += 1
            elif certificate_version(certificate) == 6 and index > 1:
                # a post-quantum (v6) certificate next to the file's classic key: dnf imports
                # only the key a package names, and Debian's rpm-sequoia has no ML-DSA
                continue
            else:
                problems.append(f"{path} (certificate {index}): {output[:300]}")
        if not certificates:
            problems.append(f"{path}: no armored certificate")
        elif not usable:
            problems.append(f"{path}: no usable certificate")
    return problems


@pytest.mark.image
@pytest.mark.parametrize("case", CASES, ids=["-".join(filter(None, case)) for case in CASES])
def test_default_rpm_keys_import_into_the_default_tools_tree(case, tmp_path):
    config = config_of(*case)
    tree = default_tree(config)
    context = context_of(config, tree, tmp_path)
    files = rpm_key_files(context)
    assert files, "no key files"
    assert import_problems(context, files) == [], f"{case} in {tree}"


@pytest.mark.image
def test_disabled_repositories_keys_are_not_required(tmp_path):
    """CentOS Stream's EPEL and HyperScale repositories are defined but disabled: their keys are
    not handed to rpm, and a tree without them still yields the repository file; enabling EPEL
    makes its key required, in one line naming it."""
    from kosi.errors import KosiError
    from kosi.installers.dnf import Dnf

    config = config_of("centos", "10")
    tree = default_tree(config)
    names = {Path(name).name for name in rpm_key_files(context_of(config, tree, tmp_path / "a"))}
    assert names == {"RPM-GPG-KEY-CentOS-Official-SHA256", "RPM-GPG-KEY-CentOS-SIG-Extras"}, names
    dist = distributions.get("centos")
    disabled = {key.name for repo in dist.repositories(config) if not repo.enabled for key in repo.keys}
    assert {"RPM-GPG-KEY-EPEL-10", "RPM-GPG-KEY-CentOS-SIG-HyperScale"} <= disabled
    # a tools tree holding only CentOS's own keys (copied from the real one)
    partial = tmp_path / "partial"
    (partial / "usr/share/distribution-gpg-keys/centos").mkdir(parents=True)
    for name in names:
        source = tree / "usr/share/distribution-gpg-keys/centos" / name
        (partial / "usr/share/distribution-gpg-keys/centos" / name).write_bytes(source.read_bytes())
    text = Dnf()._repo_file(context_of(config, partial, tmp_path / "b"))
    assert "[epel]\n" in text and "[hyperscale-packages-main]\n" in text  # defined, disabled
    with pytest.raises(KosiError, match=r"GPG key RPM-GPG-KEY-EPEL-10 for repository 'epel'"):
        Dnf()._repo_file(context_of(config_of("centos", "10", "epel"), partial, tmp_path / "c"))


@pytest.mark.image
def test_arch_keyring_populates_with_live_master_keys(tmp_path):
    """pacman-key --init and --populate archlinux from the tree's archlinux-keyring, as kosi runs
    them (a /usr/share/keyrings holding only its three files): every trusted master key is live
    (not expired, not revoked) and packager keys are valid through them."""
    config = config_of("arch", "rolling")
    tree = default_tree(config)
    keyrings = tmp_path / "keyrings"
    keyrings.mkdir()
    for name in ("archlinux.gpg", "archlinux-trusted", "archlinux-revoked"):
        (keyrings / name).write_bytes((tree / "usr/share/keyrings" / name).read_bytes())
    gnupg = tmp_path / "gnupg"
    conf = tmp_path / "pacman.conf"
    conf.write_text(f"[options]\nGPGDir = {gnupg}\n")
    mounts = [Mount(tmp_path, str(tmp_path)), Mount(keyrings, "/usr/share/keyrings", "ro-bind")]
    sandbox = sandbox_command(mounts=mounts, tools=tree)
    for args in (["--init"], ["--populate", "archlinux"]):
        command = ["pacman-key", "--config", str(conf), "--gpgdir", str(gnupg), *args]
        result = run(command, sandbox=sandbox, stdout=-1, stderr=-1, check=False, input="")
        assert result.returncode == 0, result.stderr[-2000:]
    listing = run(
        ["gpg", "--homedir", str(gnupg), "--with-colons", "--list-keys"],
        sandbox=sandbox,
        stdout=-1,
        stderr=-1,
        input="",
    ).stdout
    validity: dict[str, str] = {}
    current: list[str] | None = None
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            current = fields
        elif fields[0] == "fpr" and current:
            validity[fields[9]] = current[1]
            current = None
    trusted = [line.split(":")[0] for line in (keyrings / "archlinux-trusted").read_text().split() if line]
    assert trusted
    dead = {fpr: validity.get(fpr) for fpr in trusted if validity.get(fpr) not in ("u", "f")}
    assert not dead, f"master keys not live in {tree}: {dead}"
    valid = [fpr for fpr, v in validity.items() if v == "f" and fpr not in trusted]
    assert len(valid) > 10, f"only {len(valid)} packager keys are valid in {tree}"
