"""Fixtures of the configuration tests; the helpers live in config_helpers.py (a unique
module name, so `from config_helpers import ...` never picks another directory's conftest)."""

from config_helpers import project  # noqa: F401
