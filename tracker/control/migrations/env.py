"""Alembic environment: run the migrations on the connection ``ControlPlane.migrate`` hands over.

No alembic.ini and no URL here: ``migrate`` opens the connection, takes the migration lock and
begins the transaction, so this file only points alembic at the models.
"""

from alembic import context

from tracker.control.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
