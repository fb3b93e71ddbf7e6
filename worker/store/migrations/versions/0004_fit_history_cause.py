"""fit history: the fit each entry replaced, why it changed, and the compact reasons

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fit_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("previous_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cause", sa.String(length=20), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("reasons_text", sa.String(length=255), nullable=False, server_default="")
        )
        batch_op.create_index("ix_fit_history_scored_at", ["scored_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fit_history", schema=None) as batch_op:
        batch_op.drop_index("ix_fit_history_scored_at")
        batch_op.drop_column("reasons_text")
        batch_op.drop_column("cause")
        batch_op.drop_column("previous_version")
        batch_op.drop_column("previous_score")
