"""The kit's tables as `create_all` made them before there were migrations.

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
        "kit_processed_events",
        sa.Column("source", sa.String(1024), primary_key=True),
        sa.Column("id", sa.String(512), primary_key=True),
        sa.Column("type", sa.String(512), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("reply_headers", sa.Text, nullable=True),
        sa.Column("reply_body", sa.LargeBinary, nullable=True),
        sa.Column("handled_at", sa.Float, nullable=False),
    )
    op.create_table(
        "kit_outbox",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(512), nullable=False),
        sa.Column("type", sa.String(512), nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_kit_outbox_next_attempt_at", "kit_outbox", ["next_attempt_at"])
