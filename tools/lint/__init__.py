"""Checks `make lint` runs beside ruff and mypy: an import-linter contract of our own."""
