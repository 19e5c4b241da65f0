"""Speed and metrics: a batch keeps the transport it was sent through (for /metrics), and
each event keeps its guests counted by RSVP status and kind, so the live recipient count
reads a few rows instead of every guest.

``guest_counts`` (event, rsvp_status, kind) -> n, where kind is ``removed``,
``unsubscribed``, ``no_address`` (no usable e-mail address) or ``reachable``. Triggers on
``guests`` keep it in the same transaction as every guest write, whichever code path
made it (form, CSV import, API, RSVP page, unsubscribe, removal and restore): the
increments are atomic, so concurrent changes add up exactly. On PostgreSQL an update
touches its two count rows in key order, so two RSVP changes crossing each other cannot
deadlock. The suppression list is not counted here (it is site-wide): the count joins it
to the event's guests through (event_id, email_key).

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

#: What ``EmailChannel.usable_address`` refuses, as of this revision.
NEVER_IN_AN_ADDRESS = ' \t\r\n()<>,;:\\"[]'
WATCHED = 'event_id, rsvp_status, email, unsubscribed_at, removed_at'


def kind_of(row: str, dialect) -> str:
    """SQL: the count row's kind for the guest row ``row`` (NEW or OLD)."""
    email = sa.literal_column(f'{row}.email')
    usable = sa.and_(
        email.like('%_@_%'),
        ~email.like('%@%@%'),
        *(~email.contains(char, autoescape=True) for char in NEVER_IN_AN_ADDRESS),
    )
    sql = str(usable.compile(dialect=dialect, compile_kwargs={'literal_binds': True}))
    return (
        f"CASE WHEN {row}.removed_at IS NOT NULL THEN 'removed' "
        f"WHEN {row}.unsubscribed_at IS NOT NULL THEN 'unsubscribed' "
        f"WHEN {sql} THEN 'reachable' ELSE 'no_address' END"
    )


def upgrade():
    # A nullable column is added in place on both engines (no SQLite table rebuild).
    op.add_column('batches', sa.Column('transport', sa.String(length=30), nullable=True))
    op.create_table(
        'guest_counts',
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('rsvp_status', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('event_id', 'rsvp_status', 'kind', name=op.f('pk_guest_counts')),
    )
    bind = op.get_bind()
    dialect = bind.dialect
    # Literal SQL from here: the trigger bodies contain characters sa.text would misread.
    execute = bind.exec_driver_sql
    # Compiled for the driver's parameter style (psycopg reads '%%' as '%', even unbound).
    counted = kind_of('guests', dialect)
    execute(
        'INSERT INTO guest_counts (event_id, rsvp_status, kind, n) '
        f'SELECT event_id, rsvp_status, {counted}, count(*) FROM guests '
        f'GROUP BY event_id, rsvp_status, {counted}'
    )
    upsert = (
        'INSERT INTO guest_counts (event_id, rsvp_status, kind, n) VALUES ({e}, {r}, {k}, {d}) '
        'ON CONFLICT (event_id, rsvp_status, kind) DO UPDATE SET n = guest_counts.n + {d}'
    )
    if dialect.name == 'sqlite':
        new, old = kind_of('NEW', dialect), kind_of('OLD', dialect)
        add = upsert.format(e='NEW.event_id', r='NEW.rsvp_status', k=new, d='1')
        take = upsert.format(e='OLD.event_id', r='OLD.rsvp_status', k=old, d='-1')
        execute(f'CREATE TRIGGER guest_counts_insert AFTER INSERT ON guests BEGIN {add}; END')
        execute(f'CREATE TRIGGER guest_counts_delete AFTER DELETE ON guests BEGIN {take}; END')
        # SQLite writes one transaction at a time: the order of the two rows is free.
        execute(
            f'CREATE TRIGGER guest_counts_update AFTER UPDATE OF {WATCHED} ON guests '
            f'BEGIN {take}; {add}; END'
        )
        return
    new, old = kind_of('NEW', dialect), kind_of('OLD', dialect)
    execute(
        'CREATE FUNCTION guest_counts_add(e integer, r varchar, k varchar, d integer) '
        'RETURNS void LANGUAGE sql AS $$ '
        + upsert.format(e='e', r='r', k='k', d='d')
        + ' $$'
    )
    execute(
        f"""
        CREATE FUNCTION guest_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            new_kind varchar;
            old_kind varchar;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                PERFORM guest_counts_add(NEW.event_id, NEW.rsvp_status, {new}, 1);
            ELSIF TG_OP = 'DELETE' THEN
                PERFORM guest_counts_add(OLD.event_id, OLD.rsvp_status, {old}, -1);
            ELSE
                new_kind := {new};
                old_kind := {old};
                IF (NEW.event_id, NEW.rsvp_status, new_kind)
                        = (OLD.event_id, OLD.rsvp_status, old_kind) THEN
                    RETURN NULL;
                END IF;
                -- Rows locked in key order: two crossing changes never wait on each other.
                IF (NEW.event_id, NEW.rsvp_status, new_kind)
                        < (OLD.event_id, OLD.rsvp_status, old_kind) THEN
                    PERFORM guest_counts_add(NEW.event_id, NEW.rsvp_status, new_kind, 1);
                    PERFORM guest_counts_add(OLD.event_id, OLD.rsvp_status, old_kind, -1);
                ELSE
                    PERFORM guest_counts_add(OLD.event_id, OLD.rsvp_status, old_kind, -1);
                    PERFORM guest_counts_add(NEW.event_id, NEW.rsvp_status, new_kind, 1);
                END IF;
            END IF;
            RETURN NULL;
        END $$
        """
    )
    execute(
        f'CREATE TRIGGER guest_counts AFTER INSERT OR DELETE OR UPDATE OF {WATCHED} '
        'ON guests FOR EACH ROW EXECUTE FUNCTION guest_counts_apply()'
    )


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        for name in ('insert', 'delete', 'update'):
            bind.exec_driver_sql(f'DROP TRIGGER IF EXISTS guest_counts_{name}')
    else:
        bind.exec_driver_sql('DROP TRIGGER IF EXISTS guest_counts ON guests')
        bind.exec_driver_sql('DROP FUNCTION IF EXISTS guest_counts_apply()')
        bind.exec_driver_sql('DROP FUNCTION IF EXISTS guest_counts_add(integer, varchar, varchar, integer)')
    op.drop_table('guest_counts')
    with op.batch_alter_table('batches', table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('transport')
