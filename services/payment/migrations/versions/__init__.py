"""The payment service's revisions, by number: Alembic loads them from here."""
