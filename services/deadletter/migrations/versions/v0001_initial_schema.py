"""The deadletter service's tables as `create_all` made them before there were migrations.

Revision ID: 0001
Revises:
Create Date: 2025-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(512), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("type", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=True),
        sa.Column("destination", sa.String(2048), nullable=True),
        sa.Column("error_code", sa.Integer, nullable=True),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("redelivered_at", sa.Float, nullable=True),
    )
    op.create_index("ix_dead_letters_type", "dead_letters", ["type"])
    op.create_index("ix_dead_letters_subject", "dead_letters", ["subject"])
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])
    op.create_table(
        "dead_letter_redeliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "dead_letter_id",
            sa.Integer,
            sa.ForeignKey("dead_letters.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempted_at", sa.Float, nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_dead_letter_redeliveries_dead_letter_id",
        "dead_letter_redeliveries",
        ["dead_letter_id"],
    )
