"""Schema migrations of the PostGIS store (Alembic), shipped inside the package.

The Alembic environment (``env.py``) and the revisions (``versions/``) live next to this file, so
an installed program can bring any database up to date without an ``alembic.ini``::

    from geodata.migrations import migrate
    migrate("postgresql://finder@db.example/finder")      # CREATE EXTENSION postgis, tables ...

:func:`migrate` is idempotent and safe to run from several processes at once (the migration
transaction holds a PostgreSQL advisory lock). A schema change is a new file in ``versions/``
(``script.py.mako`` is its template) whose ``down_revision`` is the previous head; each revision
has an ``upgrade()`` and a ``downgrade()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from geodata.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent

#: Key of the PostgreSQL advisory lock held while migrating (any fixed 64-bit number).
ADVISORY_LOCK_KEY = 7_412_903_185


def sqlalchemy_url(database_url: str) -> str:
    """``postgresql://...`` (libpq form) as a SQLAlchemy URL that uses the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise StoreError(f"not a PostgreSQL URL (postgresql://...): {database_url.split('@')[-1]}")


def _config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an option: ConfigParser would choke on '%' in passwords.
    config.attributes["sqlalchemy_url"] = sqlalchemy_url(database_url)
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (default the newest).

    Creates the PostGIS extension when missing (that needs a role allowed to create it, or a DBA
    who ran ``CREATE EXTENSION postgis`` before), the tables and indexes. Raises
    :class:`~geodata.errors.StoreError` when the database is at a revision this program does not
    know (a newer program migrated it) or cannot be reached.
    """
    from alembic import command
    from alembic.util import CommandError
    from sqlalchemy.exc import OperationalError

    try:
        command.upgrade(_config(database_url), revision)
    except CommandError as exc:
        raise StoreError(
            f"cannot migrate the database: {exc}; is this program older than the database schema?"
        ) from exc
    except OperationalError as exc:
        raise StoreError(f"cannot reach the database: {exc.orig}") from exc


def downgrade(database_url: str, revision: str = "base") -> None:
    """Take the database schema back to ``revision`` (``"base"``: drop every store table)."""
    from alembic import command

    command.downgrade(_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at (``None`` before the first migration)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ProgrammingError

    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as con:
            try:
                row = con.execute(text("SELECT version_num FROM alembic_version")).first()
            except ProgrammingError:
                return None
    finally:
        engine.dispose()
    return None if row is None else str(row[0])


def head_revision() -> str:
    """The newest revision this program knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}")
    return head
