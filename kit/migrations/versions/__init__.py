"""The kit's revisions, by number: Alembic loads them from here."""
