"""ICP versions held for approval (status, who decided, when, impact) and the publish outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("icp_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), server_default="published", nullable=False)
        )
        batch_op.add_column(sa.Column("decided_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("impact", sa.JSON(), nullable=True))
    op.create_table(
        "reevaluation_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("icp_version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_reevaluation_requests_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reevaluation_requests")),
    )
    with op.batch_alter_table("reevaluation_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reevaluation_requests_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reevaluation_requests_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reevaluation_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reevaluation_requests_status"))
        batch_op.drop_index(batch_op.f("ix_reevaluation_requests_connection_id"))
    op.drop_table("reevaluation_requests")
    with op.batch_alter_table("icp_versions", schema=None) as batch_op:
        batch_op.drop_column("impact")
        batch_op.drop_column("decided_at")
        batch_op.drop_column("decided_by")
        batch_op.drop_column("status")
