"""The command line: options before or after the verb, verb arguments, and `--`.

Options of settings come from the table (each setting's `long` and `short`), so this module
never lists settings. Settings given here are only recorded, in order, as (Setting, text);
the loader parses their values so that relative paths and errors are handled like in files.
A hand-written scanner rather than argparse keeps start-up fast; it reads values as mkosi
27.1's argparse does (`--with-docs build` sets WithDocs=build, as there).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from kosi.errors import KosiError


@dataclass
class Args:
    verb: str = "build"
    verb_args: list[str] = field(default_factory=list)  # positional words after the verb
    cmdline: list[str] = field(default_factory=list)  # everything after `--`
    force: int = 0
    directory: str | None = None  # None: the current directory; "": ignore configuration there
    debug: bool = False
    debug_shell: bool = False
    debug_workspace: bool = False
    debug_sandbox: bool = False
    debug_timing: bool = False
    no_pager: bool = False
    json: bool = False
    wipe_build_dir: bool = False
    rerun_build_scripts: bool = False
    auto_bump: bool = False
    log_json: str | None = None  # --log-json: the build's events as JSON lines in this file
    genkey_common_name: str = ""
    genkey_valid_days: str = "730"
    doc_format: str = "auto"
    help: bool = False
    version: bool = False
    #: setting assignments in command-line order
    assignments: list[tuple[Any, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Option:
    dest: str
    long: str
    short: str | None = None
    kind: str = "flag"  # "flag" (bool, takes no value, as in mkosi 27.1), "count", "value"
    help: str = ""


#: Options that only exist on the command line (manual: Command-Line-Only Options).
CLI_ONLY_OPTIONS = (
    Option("force", "--force", "-f", "count", "Remove existing outputs (twice: caches too, thrice: package cache)"),
    Option("directory", "--directory", "-C", "value", "Change to this directory before doing anything"),
    Option("debug", "--debug", None, "flag", "Show debugging output"),
    Option("debug_shell", "--debug-shell", None, "flag", "Start a shell in the image when a command fails"),
    Option("debug_workspace", "--debug-workspace", None, "flag", "Keep the workspace directory"),
    Option("debug_sandbox", "--debug-sandbox", None, "flag", "Run the sandbox under strace"),
    Option("debug_timing", "--debug-timing", None, "flag", "Log the duration of each build step (kosi always does)"),
    Option("no_pager", "--no-pager", None, "flag", "Do not page long output (kosi never pages)"),
    Option("version", "--version", None, "flag", "Show the version"),
    Option("help", "--help", "-h", "flag", "Show usage"),
    Option("genkey_common_name", "--genkey-common-name", None, "value", "Common name of keys made by genkey"),
    Option("genkey_valid_days", "--genkey-valid-days", None, "value", "Days keys made by genkey stay valid"),
    Option("auto_bump", "--auto-bump", "-B", "flag", "Bump the version after a successful build"),
    Option("doc_format", "--doc-format", None, "value", "Format of the documentation verb"),
    Option("json", "--json", None, "flag", "Print the summary as JSON"),
    Option("log_json", "--log-json", None, "value", "Write the build's events to this file as JSON lines"),
    Option("wipe_build_dir", "--wipe-build-dir", "-w", "flag", "Wipe the build directory first"),
    Option(
        "rerun_build_scripts",
        "--rerun-build-scripts",
        "-R",
        "flag",
        "Rerun the build scripts on the cached image (needs Incremental=)",
    ),
)


def UsageError(message: str, hint: str | None = None) -> KosiError:
    """A malformed command line: exit status 2, as mkosi 27.1's (argparse's) refusal."""
    return KosiError(message, hint=hint, status=2)


def _is_switch(setting: Any) -> bool:
    """Whether the setting's short option is a switch (-a, -i, -T), taking no value, as in mkosi
    27.1: only settings that are booleans (or choices that take one) have such short options."""
    from kosi.config.values import Boolean, Choice, FeatureType

    if isinstance(setting.type, Choice) and setting.type.booleans is not None:
        return True
    return isinstance(setting.type, (Boolean, FeatureType))


#: Long options of settings whose value may be left out (meaning yes), as in mkosi 27.1: every
#: other setting's long option needs a value (`--with-docs summary` sets WithDocs=summary).
OPTIONAL_VALUE_OPTIONS = ("--checksum",)


def looks_like_option(word: str) -> bool:
    """Whether argparse (so mkosi 27.1) takes the word for an option rather than an option's
    value: it starts with a dash, is not a lone dash or a negative number, has no space."""
    return word.startswith("-") and word != "-" and not NEGATIVE_NUMBER.fullmatch(word) and " " not in word


NEGATIVE_NUMBER = re.compile(r"-\d+|-\d*\.\d+")


def check_cli_choices(setting: Any, value: str, shown: str) -> None:
    """mkosi 27.1 refuses a word outside an option's choices as a malformed command line."""
    if setting.cli_choices is None:
        return
    words = list(setting.type.choices)
    if setting.cli_choices == "reset":
        words.append("")
    if value not in words:
        allowed = ", ".join(word or "'' (reset)" for word in words)
        raise UsageError(f"{shown}: invalid value {value!r}, expected one of {allowed}")


@dataclass(frozen=True)
class Alias:
    """Another spelling mkosi 27.1 accepts for a setting's option; with `regex` its items are
    regular expressions (`--kernel-modules-include=foo` is KernelModules=re:foo)."""

    setting: Any
    regex: bool = False


#: mkosi 27.1's option names that differ from the manual's (the table's `long`), and its older
#: regular-expression options, which it keeps as `re:` items of the glob lists.
OPTION_ALIASES = {
    "--package-cache-directory": ("PackageCacheDirectory", False),
    "--sign-expected-pcr-key-source": ("SignExpectedPcrKeySource", False),
    "--sign-expected-pcr-certificate-source": ("SignExpectedPcrCertificateSource", False),
    "--snapshot": ("Snapshot", False),
    "--kernel-initrd-modules": ("KernelInitrdModules", False),
    "--kernel-modules-include": ("KernelModules", True),
    "--kernel-modules-initrd-include": ("KernelInitrdModules", True),
    "--firmware-include": ("FirmwareFiles", True),
    # older names mkosi 27.1 still takes without listing them in --help
    "--output-dir": ("OutputDirectory", False),
    "--cache-dir": ("CacheDirectory", False),
    "--build-dir": ("BuildDirectory", False),
    "--workspace-dir": ("WorkspaceDirectory", False),
    "--repart-dir": ("RepartDirectories", False),
    "--sysupdate-dir": ("SysupdateDirectory", False),
    "--package-manager-tree": ("SandboxTrees", False),
    "--tools-tree-package-manager-tree": ("ToolsTreeSandboxTrees", False),
    "--qemu-args": ("QemuArgs", False),
    "--qemu-drive": ("Drives", False),
    "--qemu-firmware": ("Firmware", False),
    "--qemu-firmware-variables": ("FirmwareVariables", False),
    "--qemu-kernel": ("Linux", False),
    "--qemu-kvm": ("KVM", False),
    "--qemu-mem": ("RAM", False),
    "--qemu-removable": ("Removable", False),
    "--qemu-smp": ("CPUs", False),
    "--qemu-swtpm": ("TPM", False),
    "--qemu-vsock": ("VSock", False),
    "--qemu-vsock-cid": ("VSockCID", False),
}


#: Verbs mkosi 27.1 refuses words after (as kosi's own `plan`); `help VERB` is kosi's extension.
NO_ARGUMENT_VERBS = frozenset({"init", "summary", "cat-config", "plan", "clean", "serve", "bump", "genkey",
                               "latest-snapshot"})  # fmt: skip

#: Options that take one item each, as in mkosi 27.1 (`--initrd-profile=lvm --initrd-profile=raid`).
ONE_ITEM_OPTIONS = ("--initrd-profile", "--tools-tree-profile")


def option_tables() -> tuple[dict[str, Any], dict[str, Any]]:
    """long -> Option, Setting or Alias; short -> Option or Setting."""
    from kosi.config.settings import SETTINGS, SETTINGS_BY_NAME

    longs: dict[str, Any] = {}
    shorts: dict[str, Any] = {}
    for option in CLI_ONLY_OPTIONS:
        longs[option.long] = option
        if option.short:
            shorts[option.short] = option
    for setting in SETTINGS:
        if setting.long:
            longs.setdefault(setting.long, setting)
        if setting.short:
            shorts.setdefault(setting.short, setting)
    for long, (name, regex) in OPTION_ALIASES.items():
        longs[long] = Alias(SETTINGS_BY_NAME[name], regex)
    return longs, shorts


def _verbs() -> dict[str, Any]:
    from kosi.verbs.table import VERBS

    return VERBS


def parse_command_line(argv: list[str]) -> Args:
    from kosi.config.setting import Setting

    args = Args()
    longs, shorts = option_tables()
    verbs = _verbs()
    verb_given = False
    i = 0

    def record(target: Any, value: str | None, shown: str) -> None:
        if isinstance(target, Alias):
            setting = target.setting
            if target.regex and value:
                from kosi.config.values import as_regular_expressions

                value = " ".join(as_regular_expressions(setting.type.split(value)))
            args.assignments.append((setting, value or ""))
            return
        if isinstance(target, Setting):
            if shown in ONE_ITEM_OPTIONS and value and len(value.replace(",", " ").split()) > 1:
                raise UsageError(f"{shown}: invalid value {value!r}, give one profile per {shown}")
            if value is None:
                # A bare short flag may mean something else than "yes" (-T turns tests off).
                value = target.short_value if shown == target.short and target.short_value else "yes"
            else:
                check_cli_choices(target, value, shown)
            args.assignments.append((target, value))
            return
        if target.kind in ("count", "flag") and value is not None:
            raise UsageError(f"{shown} does not take a value")
        if target.kind == "count":
            args.force += 1
        elif target.kind == "flag":
            setattr(args, target.dest, True)
        else:
            setattr(args, target.dest, value)

    def needs_value(target: Any, shown: str) -> bool:
        if isinstance(target, Alias):
            return True
        if isinstance(target, Setting):
            if shown == target.short:
                return not _is_switch(target)
            return shown not in OPTIONAL_VALUE_OPTIONS
        return target.kind == "value"

    def next_value(shown: str) -> str:
        nonlocal i
        if i + 1 >= len(argv) or looks_like_option(argv[i + 1]):
            raise UsageError(f"{shown} needs a value")
        i += 1
        return argv[i]

    def maybe_value() -> str | None:
        """`--checksum no` takes the next word unless it is an option, as argparse does."""
        nonlocal i
        if i + 1 < len(argv) and not looks_like_option(argv[i + 1]) and argv[i + 1] != "--":
            i += 1
            return argv[i]
        return None

    while i < len(argv):
        token = argv[i]
        if token == "--":
            args.cmdline = list(argv[i + 1 :])
            break
        if token.startswith("--"):
            name, sep, value = token.partition("=")
            target = longs.get(name)
            if target is None:
                close = difflib.get_close_matches(name, list(longs), n=1)
                hint = f"did you mean {close[0]}?" if close else None
                raise UsageError(f"unknown option {name}", hint=hint)
            if sep:
                record(target, value, name)
            elif needs_value(target, name):
                record(target, next_value(name), name)
            elif isinstance(target, Setting):
                record(target, maybe_value(), name)
            else:
                record(target, None, name)
        elif token.startswith("-") and len(token) > 1:
            j = 1
            while j < len(token):
                short = "-" + token[j]
                target = shorts.get(short)
                if target is None:
                    raise UsageError(f"unknown option {short} (in {token})")
                rest = token[j + 1 :]
                if needs_value(target, short):
                    record(target, rest.lstrip("=") if rest else next_value(short), short)
                    break
                if rest.startswith("="):  # -i=yes: a switch takes no value, as in mkosi 27.1
                    raise UsageError(f"{short} does not take a value")
                record(target, None, short)
                j += 1
        elif not verb_given:
            if token not in verbs:
                close = difflib.get_close_matches(token, list(verbs), n=1)
                raise UsageError(f"unknown verb '{token}'", hint=f"did you mean {close[0]}?" if close else None)
            args.verb = token
            verb_given = True
        else:
            args.verb_args.append(token)
        i += 1
    if args.verb == "help":
        args.help = True
    elif args.verb in NO_ARGUMENT_VERBS and (args.verb_args or args.cmdline):
        raise KosiError(f"the '{args.verb}' verb takes no arguments, got {' '.join(args.verb_args + args.cmdline)!r}")
    return args
