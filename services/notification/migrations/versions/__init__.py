"""The notification service's revisions, by number: Alembic loads them from here."""
