"""Alembic environment of the PostGIS store: online only, one transaction under an advisory lock.

Alembic runs this file; :func:`geodata.migrations.migrate` passes the SQLAlchemy URL as
``config.attributes["sqlalchemy_url"]``. With the ``alembic`` command line, give it as
``-x url=postgresql://...``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from geodata.errors import StoreError
from geodata.migrations import ADVISORY_LOCK_KEY, sqlalchemy_url


def _url() -> str:
    given = context.config.attributes.get("sqlalchemy_url")
    if given:
        return str(given)
    x_url = context.get_x_argument(as_dictionary=True).get("url")
    if not x_url:
        raise StoreError("no database: call geodata.migrations.migrate(url) or pass -x url=...")
    return sqlalchemy_url(x_url)


def run_online() -> None:
    """Migrate in one transaction while holding the advisory lock (other migrators wait)."""
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=False)
            with context.begin_transaction():
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise StoreError("offline (--sql) migrations are not supported: migrate a database directly")
run_online()
