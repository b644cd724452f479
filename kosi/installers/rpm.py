"""rpm around dnf: its macros, the image's rpm database, and the local rpm-md repository.

rpm reads /etc/rpm/macros.* in the package manager sandbox, which is kosi's own
<pkgmngr>/etc/rpm (a sandbox tree's etc/rpm is copied in first, so the user's macros stay):
it says where the image keeps its database (%_dbpath: the distribution's, not the host
rpm's), and in which format (sqlite, which every rpm since 4.16 reads and writes).
Next to it, <pkgmngr>/etc/crypto-policies holds rpm-sequoia's policy (write_crypto_policy).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kosi.errors import KosiError
from kosi.installers.apivfs import in_root
from kosi.sandbox import Mount, last_error_line, run, sandbox_command

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

#: the query behind the manifest: one package per record (the changelog as `rpm -q --changelog` prints it)
QUERY_FIELDS = "%{NEVRA}\x1f%{NAME}\x1f%{EVR}\x1f%{ARCH}\x1f%{LONGSIZE}\x1f%{SOURCERPM}\x1f"
#: where rpm-sequoia reads its policy (before the generic sequoia.config)
SEQUOIA_POLICY = "/etc/crypto-policies/back-ends/rpm-sequoia.config"
SHA1_BINDINGS = 'sha1.second_preimage_resistance = "always"'
CHANGELOG = "[* %{CHANGELOGTIME:day} %{CHANGELOGNAME}\n%{CHANGELOGTEXT}\n\n]"


def write_macros(context: Context, dbpath: str, backend: str = "sqlite") -> Path:
    macros = context.pkgmngr / "etc/rpm"
    macros.mkdir(parents=True, exist_ok=True)
    (macros / "macros.kosi-dbpath").write_text(f"%_dbpath {dbpath}\n%_db_backend {backend}\n")
    write_crypto_policy(context.pkgmngr)
    return macros


def write_crypto_policy(pkgmngr: Path) -> Path:
    """rpm-sequoia's policy (/etc/crypto-policies in the sandbox) with SHA-1 accepted where
    only second pre-image resistance counts: the self-signatures binding CentOS Stream 9's,
    RHEL 9's, OpenMandriva's and older openSUSE keys. SHA-1 signatures over packages stay
    refused (they need collision resistance). A sandbox tree's policy is kept otherwise."""
    policy = pkgmngr / SEQUOIA_POLICY.lstrip("/")
    lines = policy.read_text().splitlines() if policy.exists() else []
    lines = [line for line in lines if not line.strip().startswith(SHA1_BINDINGS.split(" =")[0])]
    if "[hash_algorithms]" in (line.strip() for line in lines):
        index = [line.strip() for line in lines].index("[hash_algorithms]")
        lines.insert(index + 1, SHA1_BINDINGS)
    else:
        lines += ["[hash_algorithms]", SHA1_BINDINGS]
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text("\n".join(lines) + "\n")
    return policy


def sandbox(context: Context, root: Path, **options) -> list[str]:
    """The package manager sandbox for `root` with kosi's rpm macros at /etc/rpm and its
    rpm-sequoia policy at /etc/crypto-policies."""
    extra = [Mount(context.pkgmngr / "etc/rpm", "/etc/rpm", "ro-bind")]
    if (context.pkgmngr / SEQUOIA_POLICY.lstrip("/")).exists():
        extra.append(Mount(context.pkgmngr / "etc/crypto-policies", "/etc/crypto-policies", "ro-bind"))
    return in_root(context, root, extra=[*extra, *options.pop("extra", ())], **options)


def query(context: Context, root: Path, dbpath: str) -> list[dict]:
    """The packages the image's rpm database lists, for the manifest, as mkosi 27.1 records
    them: sorted by NEVRA, the imported keys (gpg-pubkey) too, the source rpm's changelog
    when ManifestFormat= asks for the report."""
    if not (root / dbpath.lstrip("/")).is_dir():
        return []
    changelogs = "changelog" in (context.config.manifest_format or ())
    result = run(
        [
            "rpm",
            f"--root={root}",
            f"--dbpath={dbpath}",
            "-qa",
            "--qf",
            QUERY_FIELDS + (CHANGELOG if changelogs else "") + "\x1e",
        ],
        sandbox=sandbox(context, root, apivfs=False, network=False),
        stdout=-1,
        stderr=-1,
        check=False,
        input="",
    )
    if result.returncode != 0:
        raise KosiError(f"rpm -qa in {root} failed: {last_error_line(result.stderr) or result.returncode}")
    packages = []
    for record in sorted(r.strip("\n") for r in result.stdout.split("\x1e") if r.strip()):
        _, name, version, arch, size, source, changelog = (record.split("\x1f") + [""] * 7)[:7]
        packages.append(
            {
                "type": "rpm",
                "name": name,
                "version": version,
                "architecture": "" if arch == "(none)" else arch,
                "size": int(size or 0),
                "source": source,
                "changelog": changelog.strip(),
            }
        )
    return packages


# ---- the local repository ($PACKAGEDIR) --------------------------------------------------


def is_rpm(path: Path) -> bool:
    """A binary rpm for the local repository. Source rpms stay out: createrepo_c would index
    them as arch "src", which neither dnf nor zypper installs into a root (dnf leaves the src
    architecture out of its solver, zypper only source-installs them)."""
    return path.name.endswith(".rpm") and not path.name.endswith(".src.rpm")


def index(repository: Path, tools: Path | None) -> None:
    """(Re)write the repodata of the local repository with createrepo_c."""
    prefix = sandbox_command(mounts=[Mount(repository, str(repository))], tools=tools)
    result = run(
        ["createrepo_c", "--quiet", "--no-database", str(repository)], sandbox=prefix, stdout=-1, stderr=-1, check=False
    )
    if result.returncode != 0:
        raise KosiError(f"createrepo_c failed in {repository}: {last_error_line(result.stderr) or result.returncode}")


def stanza(repository: Path) -> str:
    """The local repository for dnf: trusted (the packages are the user's), read afresh every time."""
    return (
        f"[kosi-local]\nname=kosi-local\nbaseurl=file://{repository}\nenabled=1\ngpgcheck=0\n"
        "repo_gpgcheck=0\nmetadata_expire=0\npriority=10\n"
    )
