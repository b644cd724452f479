"""The shape of one setting. The table of all settings lives in settings.py."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from kosi.config.values import ValueType

if TYPE_CHECKING:
    from kosi.config.model import Config


class Scope(enum.Enum):
    """How a setting behaves across images (manual: BUILDING MULTIPLE IMAGES)."""

    image = "image"  # configured per image, nothing special
    universal = "universal"  # main image and all subimages share it; refused in subimages
    multiversal = "multiversal"  # main image and default tools tree share it
    passed_down = "passed-down"  # passed to subimages, subimage's own value wins
    main_only = "main-only"  # only in the main image, not passed down


class MatchKind(enum.Enum):
    """How a [Match] condition on this setting compares (manual: the matcher table)."""

    plain = "plain"  # equal to the value (a member of a list), the default while unset
    glob = "glob"  # a shell glob matching the value; fails while unset
    version = "version"  # a version comparison (>=1.2, 1.2, !=1.2); fails while unset
    environment = "environment"  # KEY or KEY=VALUE present in the environment list
    target = "target"  # the target directory of one of the trees


#: Mixed-case words that are one word, not several: `VSock` is not `v_sock`.
COMPOUND_WORDS = {"CPUs": "Cpus", "VSock": "Vsock", "SELinux": "Selinux", "NSpawn": "Nspawn", "OpenPGP": "Openpgp"}


def snake_case(name: str) -> str:
    """`SELinuxRelabel` -> `selinux_relabel`, `VSockCID` -> `vsock_cid`, `CPUs` -> `cpus`."""
    for compound, word in COMPOUND_WORDS.items():
        name = name.replace(compound, word)
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z0-9]|$)|[A-Z]?[a-z0-9]+|[A-Z]+", name)
    return "_".join(w.lower() for w in words)


@dataclass(frozen=True)
class Setting:
    name: str  # as in the manual and the JSON keys, e.g. "Packages"
    section: str  # "Distribution", "Output", "Content", ...
    type: ValueType
    help: str
    #: a constant, or a function of the (partially parsed) config deriving the default
    default: Any = None
    default_factory: Callable[["Config"], Any] | None = None
    long: str | None = None  # "--package"; None for config-file-only settings
    short: str | None = None  # "-p"
    scope: Scope = Scope.image
    #: files or directories that are picked up as this setting when they exist, e.g. ("mkosi.extra", "mkosi.extra.tar")
    paths: tuple[str, ...] = ()
    #: whether the default path is read (its content is the value) rather than referenced
    path_read: bool = False
    #: a [Match] condition of the same name exists, comparing this way
    match: MatchKind | None = None
    #: the %X specifier that expands to this setting's value
    specifier: str | None = None
    #: the value is also available as the delayed &X specifier (X = `specifier`), expanded in
    #: values with `delayed_specifiers` once the value is final (CacheKey=&d~&r)
    delayed_specifier: bool = False
    #: may be configured in mkosi.tools.conf (mkosi 27.1 refuses every other setting there)
    tools_tree: bool = False
    #: a list whose items mkosi 27.1 sorts within each layer (configuration files, local
    #: configuration, command line), e.g. Packages=
    sort_items: bool = False
    #: older names still accepted in config files
    compat_names: tuple[str, ...] = ()
    #: older names (among compat_names) whose items are regular expressions, kept with a `re:`
    #: prefix as mkosi 27.1 does (KernelModulesInclude=foo is KernelModules=re:foo)
    regex_names: tuple[str, ...] = ()
    #: only accepted on the command line
    cli_only: bool = False
    #: the file it names or reads holds a secret: refuse it unless only its owner can read it (0600)
    secret: bool = False
    #: when the value's &-specifiers are expanded (`&&` is a literal `&`): "parse" once parsing is
    #: done (CacheKey=, BuildKey=: &d &r &a &i &v &I), "build" by the build step that knows them
    #: (UnifiedKernelImageFormat=: &e &k &h &c; Linux=: &b); None: no &-specifiers
    delayed_specifiers: str | None = None
    #: paths may name outputs of images this one depends on, so their existence is checked just
    #: before the image is built, not while parsing (BaseTrees=, ExtraTrees=, Initrds=)
    checked_before_build: bool = False
    #: what the short option assigns when given without a value; "yes" when None
    #: (-T means WithTests=no: the manual's short option turns tests off)
    short_value: str | None = None
    #: the argument's name in --help and the docs; the type's when None
    metavar: str | None = None
    #: printed by `--json summary` and handed to scripts; False for settings mkosi 27.1 does not
    #: print per image (the ToolsTree*= settings of the main image, Include=)
    json: bool = True
    #: why kosi does not implement it yet; a non-default value warns (or fails, see below)
    unsupported: str | None = None
    #: a non-default value of an unsupported setting fails: ignoring it would weaken the image
    #: (signing, verity, encryption) rather than only leave something out
    unsupported_fails: bool = False
    #: mkosi 27.1's command line takes only the type's own words for this option (argparse
    #: choices, without boolean spellings) and refuses anything else as a malformed command line
    #: (exit status 2): "reset" also takes an empty value, which resets the setting, "only" not
    cli_choices: str | None = None
    dest: str = field(default="")

    def __post_init__(self) -> None:
        if not self.dest:
            object.__setattr__(self, "dest", snake_case(self.name))
        if self.metavar is None:
            object.__setattr__(self, "metavar", self.type.metavar)

    def get_default(self, config: "Config") -> Any:
        """The value of this setting when nothing assigns it."""
        if self.default_factory is not None:
            return self.default_factory(config)
        return list(self.default) if isinstance(self.default, (list, tuple)) else self.default

    @property
    def is_list(self) -> bool:
        return self.type.is_list
