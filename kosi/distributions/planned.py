"""Distributions kosi knows (summary and --json show them, as mkosi does) but cannot build yet.

Each is replaced by the class of the module that implements it, which names its installer
(see base.py); building one of these is refused before anything is installed.
"""

from __future__ import annotations

from kosi.distributions.base import Distribution


class Custom(Distribution):
    """Not planned but complete: no package manager, the user's scripts and trees fill the
    image (check_buildable lets it through). It lives here for want of any behaviour."""

    name = "custom"
    pretty_name = "Custom"
    default_release = ""
    tools_tree_distribution = "debian"
