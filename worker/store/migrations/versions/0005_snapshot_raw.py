"""record snapshots: the CRM's own text of attributes whose normalised value reads differently

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("record_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("record_snapshots", schema=None) as batch_op:
        batch_op.drop_column("raw")
