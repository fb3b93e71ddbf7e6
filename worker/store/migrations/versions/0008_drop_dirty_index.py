"""record snapshots: drop the index on ``dirty``

No query reads it any more (the score phase's keyset runs on ``ix_record_snapshots_scan`` and filters
``dirty`` there), and every pull and every score batch paid for it: each snapshot inserted or marked
clean updated it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("record_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_snapshots_dirty"))


def downgrade() -> None:
    with op.batch_alter_table("record_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_record_snapshots_dirty"), ["dirty"], unique=False)
