"""The saga tests run on SQLite and on PostgreSQL, one database per service."""

from tests.unit.services.conftest import database_urls

__all__ = ["database_urls"]
