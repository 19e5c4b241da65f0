"""Time and lifecycle: overdue and dry-run messages with their reason, events that can be
cancelled or archived, and the "everyone but declined" audience of a cancellation notice.

- ``messages.status`` admits ``overdue`` (found too late, held back) and ``dry_run``
  (nothing was sent; its deliveries stay pending); ``messages.status_reason`` says why.
- ``messages.audience`` admits ``not_declined``.
- ``events.status`` (``active`` for every existing event, ``cancelled``, ``archived``) and
  ``events.cancelled_at``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _enum(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


OLD_STATUS = ('draft', 'scheduled', 'sending', 'sent', 'sent_with_failures', 'failed', 'cancelled')
NEW_STATUS = OLD_STATUS + ('overdue', 'dry_run')
OLD_AUDIENCE = ('everyone', 'attending', 'pending', 'declined', 'maybe')
NEW_AUDIENCE = OLD_AUDIENCE + ('not_declined',)
EVENT_STATUS = ('active', 'cancelled', 'archived')
#: SQLite rebuilds these tables to change a column: they keep AUTOINCREMENT (0008).
AUTOINCREMENT = {'sqlite_autoincrement': True}


# Foreign keys are off on SQLite for the whole run (migrations/env.py): rebuilding
# messages or events cannot cascade-delete their children.


def upgrade():
    _upgrade()


def downgrade():
    _downgrade()


def _upgrade():
    with op.batch_alter_table('messages', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('status_reason', sa.String(length=300), nullable=True))
        batch_op.alter_column('status', existing_type=_enum('message_status', *OLD_STATUS), type_=_enum('message_status', *NEW_STATUS), existing_nullable=False)
        batch_op.alter_column('audience', existing_type=_enum('message_audience', *OLD_AUDIENCE), type_=_enum('message_audience', *NEW_AUDIENCE), existing_nullable=False)

    with op.batch_alter_table('events', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('status', _enum('event_status', *EVENT_STATUS), server_default='active', nullable=False))
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(), nullable=True))


def _downgrade():
    op.execute("UPDATE messages SET status = 'cancelled' WHERE status IN ('overdue', 'dry_run')")
    op.execute("UPDATE messages SET audience = 'everyone' WHERE audience = 'not_declined'")
    with op.batch_alter_table('events', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        # The column's CHECK first: SQLite's batch copy would keep it, naming a lost column.
        batch_op.alter_column('status', existing_type=_enum('event_status', *EVENT_STATUS), type_=sa.String(length=32), existing_nullable=False)
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('status')

    with op.batch_alter_table('messages', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.alter_column('audience', existing_type=_enum('message_audience', *NEW_AUDIENCE), type_=_enum('message_audience', *OLD_AUDIENCE), existing_nullable=False)
        batch_op.alter_column('status', existing_type=_enum('message_status', *NEW_STATUS), type_=_enum('message_status', *OLD_STATUS), existing_nullable=False)
        batch_op.drop_column('status_reason')
