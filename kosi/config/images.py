"""Which subimages are built, and in which order (manual: BUILDING MULTIPLE IMAGES).

The main image's Dependencies= selects the subimages to build together with everything they
depend on; without it every subimage is built. Subimages come first, in an order where each
image follows the images it depends on; the main image is always last.

The order is mkosi 27.1's: rounds of the images whose dependencies are all placed, each round
in the order the images entered the graph (the selected subimages by name, each followed by
the dependencies it names) -- a stable topological sort, graphlib's. An image needing the
default initrd depends on it there (mkosi 27.1 builds it as an image of its own, kosi inside
the build; docs/compatibility.md), which moves it to a later round.
"""

from __future__ import annotations

import graphlib

from kosi.config.model import Config
from kosi.config.values import DefaultInitrd, Feature
from kosi.errors import KosiError, shown

#: the image mkosi 27.1 builds the default initrd as; kosi builds it inside the image's build
DEFAULT_INITRD = "default-initrd"


def _dependencies(config: Config) -> list[str]:
    from kosi.config.settings import SETTINGS_BY_NAME

    if "Dependencies" not in SETTINGS_BY_NAME:
        return []
    return [str(d) for d in (config["Dependencies"] or [])]


def needs_default_initrd(config: Config) -> bool:
    """Whether mkosi 27.1 makes the image depend on its default-initrd image: Initrds=default,
    or Bootable=yes without Initrds= in a format that is not itself the initrd of a UKI."""
    initrds = config["Initrds"] or []
    if any(isinstance(initrd, DefaultInitrd) for initrd in initrds):
        return True
    return config["Bootable"] == Feature.enabled and not initrds and config["Format"] not in ("uki", "esp")


def _where(config: Config) -> tuple[str | None, int | None]:
    origin = getattr(config, "origins", {}).get("Dependencies")
    if origin is None:
        return None, None
    return origin.file, origin.line


def _check_known(config: Config, names: list[str], subimages: dict[str, Config]) -> None:
    for name in names:
        if name not in subimages:
            file, line = _where(config)
            known = ", ".join(sorted(subimages)) or "none"
            raise KosiError(
                f"image '{config.image}' depends on {shown(str(name))}, which is not an image in mkosi.images/ (known: {known})",
                file=file, line=line,
            )  # fmt: skip


def order_images(main: Config, subimages: dict[str, Config]) -> list[Config]:
    """Subimages to build in dependency order, followed by the main image."""
    wanted = _dependencies(main)
    _check_known(main, wanted, subimages)
    for config in subimages.values():
        _check_known(config, _dependencies(config), subimages)
    roots = wanted if wanted else list(subimages)

    done: set[str] = set()
    path: list[str] = []  # the chain being visited, to name a cycle

    def visit(name: str) -> None:
        if name in done:
            return
        if name in path:
            cycle = path[path.index(name) :] + [name]
            file, line = _where(subimages[name])
            raise KosiError("dependency cycle between images: " + " -> ".join(cycle), file=file, line=line)
        path.append(name)
        for dependency in _dependencies(subimages[name]):
            visit(dependency)
        path.pop()
        done.add(name)

    for name in sorted(subimages):  # every subimage, so that any cycle is reported
        visit(name)
    selected: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name not in selected:
            selected.add(name)
            pending.extend(_dependencies(subimages[name]))
    graph: graphlib.TopologicalSorter = graphlib.TopologicalSorter()
    for name in sorted(selected):
        default_initrd = [DEFAULT_INITRD] if needs_default_initrd(subimages[name]) else []
        graph.add(name, *_dependencies(subimages[name]), *default_initrd)
    return [subimages[name] for name in graph.static_order() if name != DEFAULT_INITRD] + [main]
