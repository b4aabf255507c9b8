"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from storage.db import init_db


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    init_db(engine)  # idempotent on an already migrated database
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
