"""The customer service's table of users and its queries."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    # Uniqueness is case-insensitive: Ada@Example.com and ada@example.com are one mailbox here.
    sa.Column("email_key", sa.String(254), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
)


@dataclass(frozen=True)
class User:
    """A registered customer."""

    id: str
    name: str
    email: str
    created_at: str


def email_key(email: str) -> str:
    """The form of an address that uniqueness is checked on."""
    return email.strip().lower()


def email_taken(connection: sa.Connection, email: str) -> bool:
    """Whether a user with this address (in any letter case) exists."""
    query = sa.select(users.c.id).where(users.c.email_key == email_key(email))
    return connection.execute(query).first() is not None


def insert_user(connection: sa.Connection, user: User) -> None:
    """Store a new user (raises IntegrityError when a concurrent request took the address)."""
    connection.execute(
        users.insert().values(
            id=user.id,
            name=user.name,
            email=user.email,
            email_key=email_key(user.email),
            created_at=user.created_at,
        )
    )


def find_user(connection: sa.Connection, user_id: str) -> User | None:
    """The user with this id, if any."""
    row = connection.execute(
        sa.select(users.c.id, users.c.name, users.c.email, users.c.created_at).where(
            users.c.id == user_id
        )
    ).first()
    if row is None:
        return None
    return User(row.id, row.name, row.email, row.created_at)
