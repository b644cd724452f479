"""Entry point: parse the command line, load the project, dispatch to a verb."""

from __future__ import annotations

import importlib
import sys

from kosi import log
from kosi.errors import KosiError

# verb -> (module under kosi.verbs, one-line help). Each module has `run(args) -> int | None`.
VERBS: dict[str, tuple[str, str]] = {
    "init": ("init", "Set up the package cache cleanup for this machine"),
    "summary": ("summary", "Show the effective settings of every image"),
    "cat-config": ("cat_config", "Show every configuration file that was read"),
    "build": ("build", "Build the image(s) (the default verb)"),
    "shell": ("shell", "Run a shell or command in the image with systemd-nspawn"),
    "boot": ("boot", "Boot the image with systemd-nspawn"),
    "vm": ("vm", "Boot the image in a virtual machine"),
    "ssh": ("ssh", "Connect to a running virtual machine over vsock"),
    "journalctl": ("journalctl", "Read the journal of the image"),
    "coredumpctl": ("coredumpctl", "Look at coredumps in the image"),
    "sysupdate": ("sysupdate", "Run systemd-sysupdate on the output directory"),
    "box": ("box", "Run a command in the tools environment"),
    "dependencies": ("dependencies", "List the packages kosi needs"),
    "clean": ("clean", "Remove build outputs (and caches with -f, -ff)"),
    "serve": ("serve", "Serve the output directory over HTTP"),
    "burn": ("burn", "Write the image to a block device"),
    "bump": ("bump", "Bump the version in mkosi.version"),
    "genkey": ("genkey", "Generate mkosi.key and mkosi.crt"),
    "documentation": ("documentation", "Show the manual"),
    "completion": ("completion", "Print shell completion for bash, zsh or fish"),
    "latest-snapshot": ("latest_snapshot", "Print the latest snapshot of the mirror"),
    "help": ("help", "Show usage"),
}


def run_verb(verb: str, args) -> int:
    module_name, _ = VERBS[verb]
    try:
        module = importlib.import_module(f"kosi.verbs.{module_name}")
    except ModuleNotFoundError as e:
        if e.name == f"kosi.verbs.{module_name}":
            raise KosiError(f"the '{verb}' verb is not implemented yet") from None
        raise
    return module.run(args) or 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    log.DEBUG = "--debug" in argv
    try:
        from kosi.config.cli_args import parse_command_line

        args = parse_command_line(argv)
        if args.version or args.help:  # answered before any configuration is read
            from kosi.verbs.help import render_help, render_version

            # `kosi -h` is general help even though the verb defaults to build; `kosi help X` is X's help
            verb = args.verb if args.verb in argv and args.verb != "help" else (args.verb_args or [None])[0]
            sys.stdout.write(render_version() if args.version else render_help(verb))
            sys.exit(0)
        status = run_verb(args.verb, args)
    except KosiError as e:
        log.error(str(e))
        if log.DEBUG:
            raise
        sys.exit(1)
    except KeyboardInterrupt:
        log.error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(status)
