"""No Python module of the project is over 800 lines (HACKING.md: split a module by what its
pieces do before it grows past that; no catch-all module takes the overflow)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 800


def test_no_module_is_over_800_lines():
    modules = [p for d in ("kosi", "tests", "bench", "bin") for p in (ROOT / d).rglob("*.py")]
    assert len(modules) > 100  # the tree was found
    sizes = {p.relative_to(ROOT): len(p.read_text().splitlines()) for p in modules}
    too_long = {str(path): lines for path, lines in sizes.items() if lines > LIMIT}
    assert not too_long, f"modules over {LIMIT} lines: {too_long}"
