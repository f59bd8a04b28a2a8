"""The package version: one place, read by setup (pyproject) and written into saved files."""

__version__ = "0.1.0"
