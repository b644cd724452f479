"""Value types of settings: how one assignment is parsed, merged, shown and serialised.

Every setting in the table (settings.py) names one of these types. A type turns the raw
text of one assignment into a Python value, and converts values to and from the JSON
that `kosi --json summary` prints and mkosi.configure scripts read.

The types live in modules named for what they hold; this package names them all, so a
setting's module imports them from one place:
- `base`: Origin (where an assignment came from), ValueType, boolean words and errors;
- `scalar`: one word or number (Boolean, Choice, Integer, Size, Mode, Version, ...);
- `paths`: files and trees on the host (PathValue, TreeValue, KeyPath, DelayedPath, ...);
- `compound`: several things (ListOf, Assignments, KeySource, Drive, Credentials).
"""

from kosi.config.values.base import FALSE_WORDS, TRUE_WORDS, Origin, ValueType, invalid, parse_boolean
from kosi.config.values.compound import (
    DRIVE_FLAGS,
    Assignments,
    Credential,
    CredentialsValue,
    Drive,
    DriveValue,
    KeySource,
    KeySourceType,
    ListOf,
    read_credential,
)
from kosi.config.values.paths import (
    DefaultInitrd,
    DelayedPath,
    InitrdPath,
    KeyPath,
    PathOrWords,
    PathValue,
    ScriptPath,
    Tree,
    TreeValue,
    normalise,
    place_default_initrds,
)
from kosi.config.values.scalar import (
    SIZE_SUFFIXES,
    Boolean,
    Choice,
    Feature,
    FeatureType,
    FileName,
    ImagePath,
    Integer,
    IntegerOrWords,
    Mode,
    Password,
    Regex,
    Size,
    OpenWord,
    String,
    UUIDOrRandom,
    Version,
    as_regular_expressions,
)

__all__ = [
    "DRIVE_FLAGS",
    "FALSE_WORDS",
    "SIZE_SUFFIXES",
    "TRUE_WORDS",
    "Assignments",
    "Boolean",
    "Choice",
    "Credential",
    "CredentialsValue",
    "DefaultInitrd",
    "DelayedPath",
    "Drive",
    "DriveValue",
    "Feature",
    "FeatureType",
    "FileName",
    "ImagePath",
    "InitrdPath",
    "Integer",
    "IntegerOrWords",
    "KeyPath",
    "KeySource",
    "KeySourceType",
    "ListOf",
    "Mode",
    "Origin",
    "PathOrWords",
    "PathValue",
    "Password",
    "Regex",
    "ScriptPath",
    "Size",
    "OpenWord",
    "String",
    "Tree",
    "TreeValue",
    "UUIDOrRandom",
    "ValueType",
    "Version",
    "as_regular_expressions",
    "invalid",
    "normalise",
    "place_default_initrds",
    "parse_boolean",
    "read_credential",
]
