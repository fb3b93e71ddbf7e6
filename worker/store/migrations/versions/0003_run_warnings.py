"""run warnings: what each run found wrong in the pulled data

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_warnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("object_type", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("raw_value", sa.String(length=200), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("example_ids", sa.JSON(), nullable=False),
        sa.Column("example_places", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name=op.f("fk_run_warnings_run_id_sync_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_run_warnings_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_warnings")),
    )
    with op.batch_alter_table("run_warnings", schema=None) as batch_op:
        batch_op.create_index("ix_run_warnings_run", ["run_id", "object_type", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_warnings_connection_id"), ["connection_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("run_warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_warnings_connection_id"))
        batch_op.drop_index("ix_run_warnings_run")
    op.drop_table("run_warnings")
