"""Alembic environment for the `hnas_*` tables (run by storage.migrate, never by a CLI ini)."""
from alembic import context
from sqlalchemy import create_engine

from storage.migrate import VERSION_TABLE, include_name
from storage.models import Base


def _configure(connection):
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


connection = context.config.attributes.get("connection")
if connection is not None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
else:  # `alembic -x url=... revision --autogenerate` by a developer
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    with create_engine(url).connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
