"""The verb table: every verb, the module under kosi.verbs that runs it, its one-line help.

The entry point (kosi/cli.py) dispatches on it; the command-line parser, help, completion
and documentation list the verbs from it. Each module has `run(args) -> int | None`.
"""

from __future__ import annotations

VERBS: dict[str, tuple[str, str]] = {
    "init": ("init", "Set up the package cache cleanup for this machine"),
    "summary": ("summary", "Show the effective settings of every image"),
    "cat-config": ("cat_config", "Show every configuration file that was read"),
    "build": ("build", "Build the image(s) (the default verb)"),
    "plan": ("plan", "Show what build would do and why, without doing it"),
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
