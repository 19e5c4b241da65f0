"""Mail providers: the shared pacing and daily quota of sends, the suppression list and the
webhook deliveries already handled.

- ``send_limits``: one row per shared limiter (``rate``: the next free request slot,
  seconds since the epoch; ``quota``: locked while the daily quota is counted).
- ``send_spends``: e-mails handed to the transport, the rolling 24 hours of the quota.
- ``suppressions``: addresses nothing is sent to any more (hard bounces, complaints), with
  the reason, the source and the time.
- ``webhook_receipts``: provider webhook deliveries already handled (a replay does nothing).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 12:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'send_limits',
        sa.Column('name', sa.String(length=30), nullable=False),
        sa.Column('next_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_send_limits')),
    )
    op.create_table(
        'send_spends',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_send_spends')),
    )
    with op.batch_alter_table('send_spends', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_send_spends_at'), ['at'], unique=False)

    op.create_table(
        'suppressions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('email_key', sa.String(length=254), nullable=False),
        sa.Column(
            'kind',
            sa.Enum('hard_bounce', 'complaint', name='suppression_kind', native_enum=False,
                    create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column('reason', sa.String(length=400), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
        sa.UniqueConstraint('email_key', name=op.f('uq_suppressions_email_key')),
    )
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppressions_created_at'), ['created_at'], unique=False)

    op.create_table(
        'webhook_receipts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('delivery_id', sa.String(length=200), nullable=False),
        sa.Column('event_type', sa.String(length=80), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_receipts')),
        sa.UniqueConstraint('source', 'delivery_id', name=op.f('uq_webhook_receipts_source_delivery_id')),
    )


def downgrade():
    op.drop_table('webhook_receipts')
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppressions_created_at'))
    op.drop_table('suppressions')
    with op.batch_alter_table('send_spends', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_send_spends_at'))
    op.drop_table('send_spends')
    op.drop_table('send_limits')
