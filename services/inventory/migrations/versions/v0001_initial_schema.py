"""The inventory service's tables as `create_all` made them before there were migrations.

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
        "stock",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("available", sa.BigInteger, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False),
        sa.Column("sold", sa.BigInteger, nullable=False),
        sa.Column("stocked", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.CheckConstraint("available >= 0", name="stock_available_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
        sa.CheckConstraint("sold >= 0", name="stock_sold_not_negative"),
        sa.CheckConstraint("available + reserved + sold = stocked", name="stock_units_accounted"),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "reservation_lines",
        sa.Column(
            "order_id", sa.String(128), sa.ForeignKey("reservations.order_id"), primary_key=True
        ),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.BigInteger, nullable=False),
    )
