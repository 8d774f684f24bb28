"""The order service's revisions, by number: Alembic loads them from here."""
