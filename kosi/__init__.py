"""kosi: build bespoke OS images from mkosi configuration."""

__version__ = "26.0"

#: the mkosi release kosi follows (its configuration, summary and outputs): MinimumVersion= is
#: checked against it, since configurations name mkosi versions
MKOSI_VERSION = "27.1"
