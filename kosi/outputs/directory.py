"""Format=directory: the image root itself, moved (not copied) into the staging directory."""

from __future__ import annotations

from kosi.outputs.base import OutputFormat


class DirectoryOutput(OutputFormat):
    name = "directory"
    boots_by_default = True

    def write(self) -> None:
        self.context.root.rename(self.target)
        # Later steps (postoutput scripts) may still look at the root; keep the path valid.
        self.context.root.symlink_to(self.target)
