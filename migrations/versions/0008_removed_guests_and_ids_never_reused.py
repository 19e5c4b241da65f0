"""Removed guests stay, deliveries keep the name they went to, ids are never reused.

- ``guests.removed_at``: removing a guest marks the row instead of deleting it, so their
  deliveries and batch entries stay.
- ``deliveries.name``: the guest's name next to the address already kept in ``email``,
  filled from the guests for the rows made before.
- SQLite gives a table without AUTOINCREMENT the highest id + 1, so the ids of deleted rows
  come back once the newest rows are gone (the retention job deletes old batches: a link
  to batch 7 then opens another batch). The tables whose ids people see are rebuilt with
  AUTOINCREMENT (batch mode copies every row, index, foreign key and CHECK constraint;
  ``migrations/env.py`` turns foreign keys off meanwhile, or the DROP of the old table
  would cascade). PostgreSQL needs nothing: their SERIAL sequences never hand out a value
  twice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

#: Parents before children, as the rebuild copies them.
NEVER_REUSED = ('events', 'guests', 'messages', 'batches', 'deliveries', 'audit_log')


def _rebuild(autoincrement):
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in NEVER_REUSED:
        with op.batch_alter_table(
            table, recreate='always', table_kwargs={'sqlite_autoincrement': autoincrement}
        ):
            pass


def upgrade():
    _rebuild(True)
    with op.batch_alter_table('guests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('name', sa.String(length=200), server_default='', nullable=False)
        )
    op.execute(
        'UPDATE deliveries SET name = '
        '(SELECT guests.name FROM guests WHERE guests.id = deliveries.guest_id)'
    )


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('name')
    with op.batch_alter_table('guests', schema=None) as batch_op:
        batch_op.drop_column('removed_at')
    _rebuild(False)
