"""Mail that looks like an invitation: the event's end, sender identity and calendar sequence;
messages that attach a calendar invitation.

- ``events.ends_at`` (existing events end two hours after they start), ``sender_name``,
  ``reply_to`` (empty: MAIL_DEFAULT_SENDER's name, no Reply-To) and ``calendar_sequence``.
- ``messages.attach_calendar``: on for the auto-reminders, off for custom messages.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

#: Should SQLite rebuild a table to add a column, it keeps AUTOINCREMENT (0008).
AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    # Only ADD COLUMN on SQLite: rebuilding ``events`` there would drop the old table, and
    # with foreign keys on that deletes every guest and message of every event.
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('events', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        if sqlite:  # SQLite adds a NOT NULL column only with a constant default
            batch_op.add_column(sa.Column('ends_at', sa.DateTime(), server_default='1970-01-01 00:00:00.000000', nullable=False))
        else:
            batch_op.add_column(sa.Column('ends_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('sender_name', sa.String(length=100), server_default='', nullable=False))
        batch_op.add_column(sa.Column('reply_to', sa.String(length=254), server_default='', nullable=False))
        batch_op.add_column(sa.Column('calendar_sequence', sa.Integer(), server_default='0', nullable=False))

    if sqlite:
        # Stored as text; the same 'YYYY-MM-DD HH:MM:SS.ffffff' shape SQLAlchemy writes.
        op.execute("UPDATE events SET ends_at = strftime('%Y-%m-%d %H:%M:%f000', starts_at, '+2 hours')")
    else:
        op.execute("UPDATE events SET ends_at = starts_at + interval '2 hours'")
        op.alter_column('events', 'ends_at', existing_type=sa.DateTime(), nullable=False)

    with op.batch_alter_table('messages', schema=None, table_kwargs=AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('attach_calendar', sa.Boolean(), server_default=sa.false(), nullable=False))

    op.execute(sa.text("UPDATE messages SET attach_calendar = :on WHERE kind <> 'custom'").bindparams(on=True))


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35 or later), for the same reason as above.
    op.drop_column('messages', 'attach_calendar')
    for column in ('calendar_sequence', 'reply_to', 'sender_name', 'ends_at'):
        op.drop_column('events', column)
