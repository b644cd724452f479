"""Registries fill themselves: importing every module of a package runs its class definitions.

The format (kosi/outputs/), distribution (kosi/distributions/) and installer
(kosi/installers/) registries call `import_modules` on their first look-up, so no list
names the modules. It imports by computed name: a plug-in load, not a dependency of the
registry on its plug-ins (tests/test_import_cycles.py counts no edge for it).
"""

from __future__ import annotations

import importlib
import pkgutil

_done: set[str] = set()


def import_modules(package: str) -> None:
    """Import each module of `package` (dotted name) once."""
    if package in _done:
        return
    _done.add(package)
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")
