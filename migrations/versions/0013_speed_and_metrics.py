"""Speed and metrics: a batch keeps the transport it was sent through (for /metrics).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 03:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    # A nullable column is added in place on both engines (no SQLite table rebuild).
    op.add_column('batches', sa.Column('transport', sa.String(length=30), nullable=True))


def downgrade():
    with op.batch_alter_table('batches', table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('transport')
