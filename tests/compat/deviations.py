"""The cases where kosi deliberately differs from mkosi 27.1: each names its entry in
docs/compatibility.md and the exact key paths (or problems) that differ. Nothing else may
differ in such a case, and an entry whose difference went away fails until it is removed.
Keep this list short and reviewed: a difference is normally a kosi bug to fix.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deviation:
    doc: str  # the heading of the entry in docs/compatibility.md
    keys: frozenset[str]  # the differing key paths, e.g. "Images[0].Release"


DEVIATIONS: dict[str, Deviation] = {
    "loader-match/toolstreerelease-default": Deviation(
        "The default Debian tools tree is trixie, not testing",
        frozenset({"Images[0].ImageId", "Images[0].Output", "Images[0].Files"}),
    ),
    "builtin-tools/debian-default-release": Deviation(
        "The default Debian tools tree is trixie, not testing",
        frozenset({"Images[0].ToolsTree", "Tools.Release", "Tools.Packages"}),
    ),
}

#: ToolsTree=default: mkosi 27.1 prints where it builds the tree (<output directory>/mkosi.tools)
TOOLS_TREE_IN_CACHE = "The default tools tree lives in kosi's cache"
for _case in (
    "alma", "arch", "azure", "centos", "centos-9", "cli-distribution", "debian", "debian-bookworm",
    "debian-testing", "fedora", "fedora-42", "image-fedora-cli", "kali", "mageia", "opensuse",
    "postmarketos", "profile-devel", "profile-none", "profile-runtime-misc", "settings", "tools-conf",
    "tools-conf-output", "tools-tree-yes", "ubuntu", "ubuntu-jammy", "ubuntu-noble",
):  # fmt: skip
    DEVIATIONS[f"builtin-tools/{_case}"] = Deviation(TOOLS_TREE_IN_CACHE, frozenset({"Images[0].ToolsTree"}))
for _case in ("key-fetch-ubuntu-default-tree", "key-fetch-not-passed-to-tools-tree"):
    DEVIATIONS[f"loader-tools/{_case}"] = Deviation(TOOLS_TREE_IN_CACHE, frozenset({"Images[0].ToolsTree"}))


#: TEMPORARY, while issue 8's JSON contract work is under way: image keys whose values kosi is
#: known to get wrong everywhere (missing keys, wrong defaults). A case differing ONLY in these
#: keys is reported as an expected failure naming them (and counted as "pending" in the summary
#: line), so cases on other rules can land before the contract is fixed. Every key leaves this
#: set when it is fixed; the set must end empty.
PENDING_KEYS: frozenset[str] = frozenset()

#: TEMPORARY: cases failing for a known kosi bug being fixed, with the reason. Must end empty.
PENDING_CASES: dict[str, str] = {}


#: Settings kosi has and mkosi 27.1 does not (it warns "Unknown setting" and ignores them), with
#: the heading of their entry in docs/compatibility.md. Generated cases leave them out.
KOSI_ONLY_SETTINGS: dict[str, str] = {
    "UnitProperties": "UnitProperties= is a kosi extension",
}


#: Values generated cases do not draw, because they run into an entry of docs/compatibility.md
#: (setting -> (values left out, heading)).
GENERATED_EXCLUSIONS: dict[str, tuple[frozenset[str], str]] = {
    "Bootable": (
        frozenset({"yes", "true", "1", "on", "y", "enabled", "YES", "True"}),
        "The default initrd is not an image of the summary",
    ),
}
