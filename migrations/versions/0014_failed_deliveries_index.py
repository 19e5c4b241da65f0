"""Failed deliveries by kind: a partial covering index for the retry buttons' counts.

The batch page counts a message's failed deliveries by kind (temporary or permanent) for
its retry buttons. ``ix_deliveries_message_id_status_id`` finds those rows, but each one's
``error_kind`` was then read from the table: 22.8 ms at 100,000 guests, the largest part
of the page. This index holds only failed rows (a row enters it when it fails and leaves
it when a retry sends it), so the count reads the index alone and sending rows that
succeed never touches it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 12:00:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

FAILED = sa.text("status = 'failed'")


def upgrade():
    op.create_index(
        "ix_deliveries_failed_kind",
        "deliveries",
        ["message_id", "status", "error_kind"],
        unique=False,
        sqlite_where=FAILED,
        postgresql_where=FAILED,
    )


def downgrade():
    op.drop_index(
        "ix_deliveries_failed_kind",
        table_name="deliveries",
        sqlite_where=FAILED,
        postgresql_where=FAILED,
    )
