"""Migrations: they build exactly the schema the models describe, on SQLite and PostgreSQL."""
from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hotline.models import Base


def test_migrated_schema_matches_the_models(services: Any) -> None:
    with services.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree; run hotline.migrate.revision(): {diff}"


def test_db_upgrade_command_is_idempotent(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "hotline.cli", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert "is up to date" in result.stdout
