"""The environment of each kind of script, exactly as the manual's table lists it.

`VARIABLES` is that table: for every variable, the script kinds that receive it.
Values are host paths; inside mkosi-chroot the CHROOT_* values apply instead.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from kosi import log
from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.sandbox import extra_search_paths

KINDS = ("configure", "sync", "prepare", "build", "postinst", "finalize", "postoutput", "clean")
ALL = frozenset(KINDS)
IMAGE_SCRIPTS = frozenset({"prepare", "build", "postinst", "finalize"})

VARIABLES: dict[str, frozenset[str]] = {
    "ARCHITECTURE": ALL,
    "ARTIFACTDIR": IMAGE_SCRIPTS,
    "BUILDDIR": frozenset({"build", "postinst", "finalize"}),
    "BUILDROOT": IMAGE_SCRIPTS,
    "CACHED": frozenset({"sync"}),
    "CHROOT_BUILDDIR": frozenset({"build"}),
    "CHROOT_DESTDIR": frozenset({"build"}),
    "CHROOT_OUTPUTDIR": frozenset({"postinst", "finalize"}),
    "CHROOT_SCRIPT": IMAGE_SCRIPTS,
    "CHROOT_SRCDIR": IMAGE_SCRIPTS,
    "MKOSI_DEBUG": ALL,
    "DESTDIR": frozenset({"build"}),
    "DISTRIBUTION": ALL,
    "DISTRIBUTION_ARCHITECTURE": ALL,
    "EFI_ARCHITECTURE": ALL,
    "IMAGE_ID": ALL,
    "IMAGE_VERSION": ALL,
    "MKOSI_CONFIG": ALL - {"configure"},
    "MKOSI_GID": ALL,
    "MKOSI_UID": ALL,
    "OUTPUTDIR": frozenset({"postinst", "finalize", "postoutput", "clean"}),
    "PACKAGEDIR": IMAGE_SCRIPTS,
    "PROFILES": ALL - {"postoutput"},
    "QEMU_ARCHITECTURE": frozenset({"configure"}),
    "RELEASE": ALL,
    "SOURCE_DATE_EPOCH": IMAGE_SCRIPTS | {"clean"},
    "SRCDIR": ALL,
    "WITH_DOCS": frozenset({"prepare", "build"}),
    "WITH_NETWORK": IMAGE_SCRIPTS,
    "WITH_TESTS": frozenset({"prepare", "build"}),
}

#: where mkosi-chroot makes things visible inside the image
CHROOT_WORK = "/work"
CHROOT_PATHS = {"SRCDIR": "/work/src", "DESTDIR": "/work/dest", "BUILDDIR": "/work/build", "OUTPUTDIR": "/work/out"}

QEMU_ARCHITECTURES = {
    "x86-64": "x86_64", "x86": "i386", "arm64": "aarch64", "arm": "arm", "ppc64-le": "ppc64", "ppc64": "ppc64",
    "s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loongarch64", "mips64-le": "mips64el",
}  # fmt: skip
EFI_ARCHITECTURES = {"x86-64": "x64", "x86": "ia32", "arm64": "aa64", "arm": "arm", "riscv64": "riscv64",
                     "loongarch64": "loongarch64"}  # fmt: skip
DEBIAN_ARCHITECTURES = {
    "x86-64": "amd64", "x86": "i386", "arm64": "arm64", "arm": "armhf", "ppc64-le": "ppc64el", "ppc64": "ppc64",
    "s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loong64", "mips64-le": "mips64el", "alpha": "alpha",
}  # fmt: skip


def project_file(config: Config, name: str) -> Path | None:
    """A mkosi.* file or directory next to the configuration (mkosi.env, mkosi.builddir, ...)."""
    path = Path(config.directory) / name
    return path if os.path.lexists(path) else None


def distribution_architecture(config: Config) -> str:
    arch = str(config["Architecture"])
    if str(config["Distribution"]) in ("debian", "ubuntu", "kali"):
        return DEBIAN_ARCHITECTURES.get(arch, arch)
    return {"x86-64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def config_json(config: Config) -> str:
    """The image's settings as JSON, through the config package's serialisation when it exists."""
    try:
        from kosi.config import serialize  # type: ignore[attr-defined]

        return serialize.to_json(config)
    except ImportError:
        pass
    from kosi.config.settings import SETTINGS_BY_NAME

    document = {}
    for name, value in config.items():
        document[name] = None if value is None else SETTINGS_BY_NAME[name].type.to_json(value)
    for name, value in config.values.items():  # settings the table does not know yet
        if name not in document:
            document[name] = json.loads(json.dumps(value, default=str))
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"


def read_env_file(path: Path) -> dict[str, str]:
    result = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise KosiError(f"expected NAME=VALUE, got {line!r}", file=str(path), line=number)
        words = shlex.split(value) if value else [""]
        result[key.strip().removeprefix("export ").strip()] = " ".join(words)
    return result


def user_environment(config: Config) -> dict[str, str]:
    """mkosi.env, then EnvironmentFiles=, then Environment= (later wins)."""
    env: dict[str, str] = {}
    files = []
    default = project_file(config, "mkosi.env")
    if default and default.is_file():
        files.append(default)
    files += [Path(p) for p in config["EnvironmentFiles"] or () if Path(p) not in files]
    for path in files:
        env.update(read_env_file(path))
    for assignments in config["Environment"] or ():
        env.update({k: str(v) for k, v in assignments.items()})
    return env


def source_date_epoch(config: Config) -> str | None:
    value = config["SourceDateEpoch"]
    if value in (None, ""):
        value = user_environment(config).get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")
    return None if value in (None, "") else str(value)


def build_directory(context: Context) -> Path | None:
    """BuildDirectory=/mkosi.builddir, with the BuildKey= subdirectory (&d~&r~&a)."""
    from kosi.config.specifiers import build_subdirectory

    path = build_subdirectory(context.config, project_file(context.config, "mkosi.builddir"))
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    return path


def wipe_build_directory(config: Config) -> None:
    """-w/--wipe-build-dir: remove the image's build directory, so build scripts start afresh."""
    import shutil

    context = Context(config=config, workspace=Path("/nonexistent"), package_cache=Path("/nonexistent"))
    directory = build_directory(context)
    if directory and directory.exists():
        log.info(f"removing build directory {directory}")
        shutil.rmtree(directory)


def proxy_environment(config: Config) -> dict[str, str]:
    """ProxyUrl= and ProxyExclude= as the variables tools and scripts read (curl, apt, dnf, pip, ...)."""
    env: dict[str, str] = {}
    if config["ProxyUrl"]:
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env[name] = str(config["ProxyUrl"])
    if config["ProxyExclude"]:
        env["no_proxy"] = env["NO_PROXY"] = ",".join(str(host) for host in config["ProxyExclude"])
    return env


def open_url(config: Config, url: str, timeout: float):
    """urllib's urlopen for kosi's own requests (latest-snapshot), through ProxyUrl= unless
    ProxyExclude= names the host (a domain also covers its subdomains); without ProxyUrl=
    the caller's environment decides, as for urlopen."""
    import urllib.parse
    import urllib.request

    if not config["ProxyUrl"]:
        return urllib.request.urlopen(url, timeout=timeout)
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    excluded = any(
        host == name or host.endswith("." + name)
        for name in (str(item).lower().lstrip(".") for item in config["ProxyExclude"] or [])
    )
    proxy = str(config["ProxyUrl"])
    handler = urllib.request.ProxyHandler({} if excluded else {"http": proxy, "https": proxy})
    return urllib.request.build_opener(handler).open(url, timeout=timeout)


def base_environment(helpers: Path | None) -> dict[str, str]:
    env = {
        # the helpers (mkosi-chroot, ...), then ExtraSearchPaths=, then the caller's
        "PATH": ":".join(
            [
                *([str(helpers)] if helpers else []),
                *extra_search_paths(),
                os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin:/sbin"),
            ]
        ),  # fmt: skip
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
    }
    if "TERM" in os.environ:
        env["TERM"] = os.environ["TERM"]
    return env


def script_values(context: Context, kind: str, script: Path | None, srcdir: Path) -> dict[str, str | None]:
    """Every variable of the table with its value for this script (None: unset)."""
    config = context.config
    arch = str(config["Architecture"])
    ws = context.workspace
    build_root = context.state.build_root if kind in ("prepare", "build") and context.state.build_phase else None
    builddir = build_directory(context) if kind in VARIABLES["BUILDDIR"] else None
    config_file = ws / "config.json"
    if kind != "configure" and not config_file.exists():
        config_file.write_text(config_json(config))
    profiles = config["Profiles"] or []
    return {
        "ARCHITECTURE": arch,
        "ARTIFACTDIR": str(context.artifacts),
        "BUILDDIR": str(builddir) if builddir else None,
        "BUILDROOT": str(build_root or context.root),
        "CACHED": "1" if context.state.cached else "0",
        "CHROOT_BUILDDIR": CHROOT_PATHS["BUILDDIR"] if builddir else None,
        "CHROOT_DESTDIR": CHROOT_PATHS["DESTDIR"],
        "CHROOT_OUTPUTDIR": CHROOT_PATHS["OUTPUTDIR"],
        "CHROOT_SCRIPT": f"{CHROOT_WORK}/{script.name}" if script else None,
        "CHROOT_SRCDIR": CHROOT_PATHS["SRCDIR"],
        "MKOSI_DEBUG": "1" if log.DEBUG else "0",
        "DESTDIR": str(ws / "destdir"),
        "DISTRIBUTION": str(config["Distribution"]),
        "DISTRIBUTION_ARCHITECTURE": distribution_architecture(config),
        "EFI_ARCHITECTURE": EFI_ARCHITECTURES.get(arch),
        "IMAGE_ID": str(config["ImageId"] or ""),
        "IMAGE_VERSION": str(config["ImageVersion"] or ""),
        "MKOSI_CONFIG": str(config_file),
        "MKOSI_GID": str(int(os.environ.get("SUDO_GID", os.getgid()))),
        "MKOSI_UID": str(int(os.environ.get("SUDO_UID", os.getuid()))),
        "OUTPUTDIR": str(context.staging),
        "PACKAGEDIR": str(context.repository),
        "PROFILES": ",".join(str(p) for p in profiles),
        "QEMU_ARCHITECTURE": QEMU_ARCHITECTURES.get(arch, arch),
        "RELEASE": str(config["Release"] or ""),
        "SOURCE_DATE_EPOCH": source_date_epoch(config),
        "SRCDIR": str(srcdir),
        "WITH_DOCS": "1" if config["WithDocs"] else "0",
        "WITH_NETWORK": "1" if config["WithNetwork"] else "0",
        "WITH_TESTS": "1" if config["WithTests"] else "0",
    }


def script_environment(
    context: Context, kind: str, script: Path | None, srcdir: Path, helpers: Path | None
) -> dict[str, str]:
    env = base_environment(helpers)
    env.update(proxy_environment(context.config))
    env.update(user_environment(context.config))
    values = script_values(context, kind, script, srcdir)
    for name, kinds in VARIABLES.items():
        value = values[name]
        if kind in kinds and value is not None:
            env[name] = value
    return env
