"""Registry of distributions, by their Distribution= name (how to add one: base.py)."""

from __future__ import annotations

from kosi.discovery import import_modules
from kosi.distributions.base import REGISTRY, Distribution
from kosi.errors import KosiError


def discover() -> dict[str, type[Distribution]]:
    """Every distribution: importing each module of this package registers its classes."""
    import_modules(__name__)
    return REGISTRY


def get(name: str) -> type[Distribution]:
    """The distribution called `name` (KeyError for an unknown one)."""
    return discover()[name]


def names() -> list[str]:
    return sorted(discover())


def by_os_release_id(ident: str) -> str | None:
    """The Distribution= name of an os-release ID (almalinux -> alma), None for one kosi does not know."""
    for cls in discover().values():
        if cls.name != "custom" and ident in (cls.os_release_ids or (cls.name,)):
            return cls.name
    return None


def require_installer(name: str) -> type[Distribution]:
    """The distribution, refusing in one line one kosi cannot build yet (before anything is installed)."""
    cls = discover().get(name)
    if cls is None or not cls.installer:
        buildable = ", ".join(n for n, c in sorted(discover().items()) if c.installer)
        manager = cls.package_manager if cls is not None else None
        raise KosiError(
            f"Distribution={name}: kosi cannot build it yet"
            + (f" (no kosi installer for {manager})" if manager else "")
            + f"; it can build: {buildable}"
        )
    return cls
