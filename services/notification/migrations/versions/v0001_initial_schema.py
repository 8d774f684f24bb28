"""The notification service's tables as `create_all` made them before there were migrations.

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
        "recipients",
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(300), nullable=False),
        sa.Column("cause_type", sa.String(200), nullable=False),
        sa.Column("cause_id", sa.String(512), nullable=False),
        sa.Column("cause_source", sa.String(1024), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("mail_subject", sa.String(300), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("sent_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_notifications_subject", "notifications", ["subject"])
