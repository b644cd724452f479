"""Run a kosi verb with extra [Runtime] values set on the loaded configuration.

Usage: python3 run_verb.py DIRECTORY [--set Name=Value ...] -- KOSI-ARGUMENTS...

The settings table does not declare every [Runtime] setting yet; this lets the tests set
them on the main image's Config the way the loader will, and otherwise runs the verb
exactly as bin/kosi does. Values with a comma become lists (Credentials=a,b).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kosi import cli  # noqa: E402
from kosi.config import loader  # noqa: E402
from kosi.config.cli_args import parse_command_line  # noqa: E402
from kosi.errors import KosiError  # noqa: E402

LIST_SETTINGS = {"Credentials", "KernelCommandLineExtra", "RuntimeTrees", "Drives", "QemuArgs", "UnitProperties"}


def main(argv: list[str]) -> int:
    directory = Path(argv[0])
    split = argv.index("--")
    overrides: dict[str, object] = {}
    rest = argv[1:split]
    while rest:
        flag, assignment, *rest = rest
        assert flag == "--set", flag
        name, _, value = assignment.partition("=")
        overrides[name] = json.loads(value) if name in LIST_SETTINGS else value
    original = loader.load_project

    def load_project(args, cwd=None):
        project = original(args, cwd or directory)
        project.main.values.update(overrides)
        return project

    loader.load_project = load_project
    args = parse_command_line(argv[split + 1:])
    try:
        return cli.run_verb(args.verb, args)
    except KosiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
