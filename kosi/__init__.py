"""kosi: build bespoke OS images from mkosi configuration."""

__version__ = "26.0"
