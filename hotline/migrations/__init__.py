"""Alembic migrations; run them with `hotline db upgrade`."""
