"""Entry point: parse the command line, load the project, dispatch to a verb."""

from __future__ import annotations

import importlib
import sys

from kosi import log
from kosi.errors import KosiError
from kosi.verbs.table import VERBS

#: verbs that build, change or run images: they need root, or a user namespace that makes us root
#: (everything else stays fast and unprivileged)
ROOT_VERBS = frozenset({"build", "clean", "shell", "boot", "box", "journalctl", "coredumpctl", "sysupdate"})
#: verbs that only write into the project, its output, cache and workspace directories
HOST_READ_ONLY_VERBS = frozenset({"build", "clean"})
HOST_DIRECTORIES = ("/usr", "/etc", "/opt", "/srv", "/boot", "/efi", "/media", "/mnt")


def protect_host(keep_writable: list[str]) -> None:
    """Execution flow steps 5-6: kosi's own mount namespace with the host's system directories
    read-only, so no tool or script can change the host by accident. Directories that hold
    the project (where outputs go by default) stay writable."""
    import os

    from kosi.sandbox.enter import CLONE_NEWNS, MS_BIND, MS_PRIVATE, MS_REC, make_readonly, mount, unshare

    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = [os.path.realpath(path) for path in keep_writable]
    for directory in HOST_DIRECTORIES:
        real = os.path.realpath(directory)
        if not os.path.isdir(real) or any(k == real or k.startswith(real + "/") for k in keep):
            continue
        try:
            mount(real, real, None, MS_BIND | MS_REC)  # its own mount, so only it turns read-only
            make_readonly(real)
        except OSError as e:
            log.debug(f"cannot make {directory} read-only: {e}")


def start_up(verb: str, args) -> None:
    """Before any configuration is read: become root (step 4) and protect the host (steps 5-6)."""
    import os

    if verb not in ROOT_VERBS:
        return
    from kosi.sandbox import become_root

    become_root()
    if verb in HOST_READ_ONLY_VERBS:
        directory = getattr(args, "directory", None) or os.getcwd()
        protect_host([os.getcwd(), str(directory)])


def run_verb(verb: str, args) -> int:
    module_name, _ = VERBS[verb]
    try:
        module = importlib.import_module(f"kosi.verbs.{module_name}")
    except ModuleNotFoundError as e:
        if e.name == f"kosi.verbs.{module_name}":
            raise KosiError(f"the '{verb}' verb is not implemented yet") from None
        raise
    return module.run(args) or 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs (children killed, workspace removed)."""


def on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    import errno
    import signal

    argv = sys.argv[1:] if argv is None else argv
    log.DEBUG = "--debug" in argv
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        from kosi.config.cli_args import parse_command_line

        args = parse_command_line(argv)
        if args.version or args.help:  # answered before any configuration is read
            from kosi.verbs.help import render_help, render_version

            # `kosi -h` is general help even though the verb defaults to build; `kosi help X` is X's help
            verb = (
                args.verb
                if args.verb in argv and args.verb != "help"
                else (args.verb_args[0] if args.verb_args else None)
            )
            sys.stdout.write(render_version() if args.version else render_help(verb))
            sys.exit(0)
        if args.debug_sandbox:
            from kosi.sandbox import trace_sandboxes

            trace_sandboxes()
        start_up(args.verb, args)
        status = run_verb(args.verb, args)
    except KosiError as e:
        log.error(str(e))
        if log.DEBUG:
            raise
        sys.exit(e.status)
    except Terminated:
        log.error("terminated")
        sys.exit(143)
    except KeyboardInterrupt:
        log.error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as e:
        from kosi.tools.packages import DEBIAN_PACKAGES, missing_program

        if isinstance(e, FileNotFoundError) and str(e.filename) in DEBIAN_PACKAGES and not log.DEBUG:
            log.error(missing_program(str(e.filename)))  # a program started without a sandbox
            sys.exit(1)
        if e.errno not in (errno.ENOSPC, errno.EDQUOT) or log.DEBUG:
            raise
        log.error(f"no space left on device{f' writing {e.filename}' if e.filename else ''}")
        sys.exit(1)
    sys.exit(status)
