"""One name for the dispatcher process (``worker``) everywhere; channels by name.

- ``messages.dispatch_owner`` / ``dispatch_heartbeat_at`` -> ``worker`` / ``heartbeat_at``,
  ``batches.owner`` -> ``worker``, ``deliveries.claimed_by`` -> ``worker`` (the entries'
  column was already called ``worker``).
- ``messages.channel`` loses its CHECK constraint: which channels exist is decided by the
  application's registry, so a new channel needs no migration.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

CHANNEL_ENUM = sa.Enum('email', name='message_channel', native_enum=False, create_constraint=True, length=32)


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('dispatch_owner', new_column_name='worker', existing_type=sa.String(length=100), existing_nullable=True)
        batch_op.alter_column('dispatch_heartbeat_at', new_column_name='heartbeat_at', existing_type=sa.DateTime(), existing_nullable=True)
        batch_op.alter_column('channel', existing_type=CHANNEL_ENUM, type_=sa.String(length=32), existing_nullable=False)

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.alter_column('owner', new_column_name='worker', existing_type=sa.String(length=100), existing_nullable=True)

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('claimed_by', new_column_name='worker', existing_type=sa.String(length=100), existing_nullable=True)


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('worker', new_column_name='claimed_by', existing_type=sa.String(length=100), existing_nullable=True)

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.alter_column('worker', new_column_name='owner', existing_type=sa.String(length=100), existing_nullable=True)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('channel', existing_type=sa.String(length=32), type_=CHANNEL_ENUM, existing_nullable=False)
        batch_op.alter_column('heartbeat_at', new_column_name='dispatch_heartbeat_at', existing_type=sa.DateTime(), existing_nullable=True)
        batch_op.alter_column('worker', new_column_name='dispatch_owner', existing_type=sa.String(length=100), existing_nullable=True)
