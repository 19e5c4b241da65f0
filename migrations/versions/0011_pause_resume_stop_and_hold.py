"""A host in control of a send: pause, resume, stop, and "send to the first N, then wait".

- ``messages.status`` admits ``paused`` and ``stopped``; ``messages.paused_at`` and
  ``paused_by`` say who paused it and when; ``hold_after`` (send to the first N, then
  pause) and ``held_at`` (the hold was reached); ``final_cancelled`` next to the other
  figures a finished message keeps.
- ``deliveries.status`` and ``batch_entries.outcome`` admit ``cancelled`` (a recipient a
  stop left unsent); ``batches.cancelled`` counts them.
- ``batches.status`` admits ``paused`` and ``stopped``; ``batches.trigger`` admits
  ``stop`` (the batch that records what a stop of a paused message cancelled).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _enum(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


OLD_MESSAGE_STATUS = (
    'draft', 'scheduled', 'sending', 'sent', 'sent_with_failures', 'failed', 'cancelled',
    'overdue', 'dry_run',
)
NEW_MESSAGE_STATUS = OLD_MESSAGE_STATUS + ('paused', 'stopped')
OLD_DELIVERY_STATUS = ('pending', 'sent', 'failed', 'skipped')
NEW_DELIVERY_STATUS = OLD_DELIVERY_STATUS + ('cancelled',)
OLD_BATCH_STATUS = ('running', 'completed', 'completed_with_failures', 'failed', 'interrupted')
NEW_BATCH_STATUS = OLD_BATCH_STATUS + ('paused', 'stopped')
OLD_TRIGGER = ('schedule', 'send_now', 'retry', 'retry_failed', 'resume', 'send_one')
NEW_TRIGGER = OLD_TRIGGER + ('stop',)
OLD_OUTCOME = ('sent', 'failed', 'skipped', 'dry_run')
NEW_OUTCOME = OLD_OUTCOME + ('cancelled',)
#: SQLite rebuilds these tables to change a column: they keep AUTOINCREMENT (0008).
AUTOINCREMENT = {'sqlite_autoincrement': True}

# Foreign keys are off on SQLite for the whole run (migrations/env.py): rebuilding
# messages, deliveries or batches cannot cascade-delete their children.


def _alter(batch_op, column, name, old, new):
    batch_op.alter_column(column, existing_type=_enum(name, *old), type_=_enum(name, *new), existing_nullable=False)


def upgrade():
    with op.batch_alter_table('messages', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('final_cancelled', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('hold_after', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('held_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('paused_by', sa.String(length=300), nullable=True))
        _alter(batch_op, 'status', 'message_status', OLD_MESSAGE_STATUS, NEW_MESSAGE_STATUS)

    with op.batch_alter_table('deliveries', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        _alter(batch_op, 'status', 'delivery_status', OLD_DELIVERY_STATUS, NEW_DELIVERY_STATUS)

    with op.batch_alter_table('batches', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('cancelled', sa.Integer(), server_default='0', nullable=False))
        _alter(batch_op, 'status', 'batch_status', OLD_BATCH_STATUS, NEW_BATCH_STATUS)
        _alter(batch_op, 'trigger', 'batch_trigger', OLD_TRIGGER, NEW_TRIGGER)

    with op.batch_alter_table('batch_entries', schema=None) as batch_op:
        _alter(batch_op, 'outcome', 'entry_outcome', OLD_OUTCOME, NEW_OUTCOME)


def downgrade():
    # Nothing may go out after a downgrade that a host held back: a paused or stopped
    # message becomes cancelled, a cancelled recipient skipped (its reason kept).
    op.execute(
        "UPDATE messages SET status = 'cancelled', status_reason = 'paused or stopped before a downgrade' "
        "WHERE status IN ('paused', 'stopped')"
    )
    op.execute(
        "UPDATE messages SET final_skipped = final_skipped + final_cancelled "
        "WHERE final_cancelled > 0"
    )
    op.execute("UPDATE deliveries SET status = 'skipped' WHERE status = 'cancelled'")
    op.execute("UPDATE batch_entries SET outcome = 'skipped' WHERE outcome = 'cancelled'")
    op.execute("UPDATE batches SET skipped = skipped + cancelled WHERE cancelled > 0")
    op.execute("UPDATE batches SET status = 'interrupted' WHERE status IN ('paused', 'stopped')")
    op.execute("UPDATE batches SET trigger = 'resume' WHERE trigger = 'stop'")

    with op.batch_alter_table('batch_entries', schema=None) as batch_op:
        _alter(batch_op, 'outcome', 'entry_outcome', NEW_OUTCOME, OLD_OUTCOME)

    with op.batch_alter_table('batches', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        _alter(batch_op, 'trigger', 'batch_trigger', NEW_TRIGGER, OLD_TRIGGER)
        _alter(batch_op, 'status', 'batch_status', NEW_BATCH_STATUS, OLD_BATCH_STATUS)
        batch_op.drop_column('cancelled')

    with op.batch_alter_table('deliveries', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        _alter(batch_op, 'status', 'delivery_status', NEW_DELIVERY_STATUS, OLD_DELIVERY_STATUS)

    with op.batch_alter_table('messages', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        _alter(batch_op, 'status', 'message_status', NEW_MESSAGE_STATUS, OLD_MESSAGE_STATUS)
        batch_op.drop_column('paused_by')
        batch_op.drop_column('paused_at')
        batch_op.drop_column('held_at')
        batch_op.drop_column('hold_after')
        batch_op.drop_column('final_cancelled')
