"""Alembic environment: runs on the connection `fusionhub.dispatch.db.upgrade` passes in."""

from __future__ import annotations

from alembic import context

from fusionhub.dispatch.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through fusionhub.dispatch.db.upgrade (it supplies the connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
