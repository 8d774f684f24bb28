"""notifications becomes the mail outbox: a mail is stored pending, with its body, and sent later.

New columns: body, created_at, traceparent, the send schedule (attempts, next_attempt_at) and
the sender's lease (lease_until, lease_owner); sent_at is NULL until the mail is sent; the
status `refused` is now `failed`. Rows written before hold mails that were sent (or refused)
already: they keep their status, have no body, and were created when they were sent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=True))
        # NOT NULL once every row has one (below).
        batch_op.add_column(sa.Column("created_at", sa.String(40), nullable=True))
        batch_op.add_column(sa.Column("traceparent", sa.String(55), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("next_attempt_at", sa.Float(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("lease_until", sa.Float(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch_op.alter_column("sent_at", existing_type=sa.String(40), nullable=True)
    op.execute("UPDATE notifications SET created_at = sent_at, attempts = 1")
    op.execute(
        "UPDATE notifications SET status = 'failed', sent_at = NULL WHERE status = 'refused'"
    )
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.alter_column("created_at", existing_type=sa.String(40), nullable=False)
        batch_op.create_index("ix_notifications_due", ["status", "next_attempt_at"])
