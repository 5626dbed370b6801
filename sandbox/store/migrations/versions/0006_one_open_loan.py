"""One open loan per person and partner, held by unique partial indexes (NIK, and mobile).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sandbox.store.migrations import SchemaError

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OPEN_LOAN = sa.text("status IN (80, 90, 100, 169, 170, 180)")


def upgrade() -> None:
    for name, column in (
        ("ux_orders_open_nik", "user_idcard"),
        ("ux_orders_open_mobile", "user_mobile"),
    ):
        _no_two_open_loans(column)
        op.create_index(
            name,
            "orders",
            ["partner_token", column],
            unique=True,
            sqlite_where=OPEN_LOAN,
            postgresql_where=OPEN_LOAN,
        )


def _no_two_open_loans(column: str) -> None:
    """Earlier versions let a person hold two open loans: say which, rather than fail obscurely."""
    rows = (
        op.get_bind()
        .execute(
            sa.text(
                f"SELECT partner_token, {column}, COUNT(*) FROM orders WHERE {OPEN_LOAN.text} "
                f"GROUP BY partner_token, {column} HAVING COUNT(*) > 1"
            )
        )
        .fetchall()
    )
    if rows:
        people = ", ".join(f"{r[0]}/{r[1]} ({r[2]} orders)" for r in rows[:10])
        raise SchemaError(
            f"cannot upgrade: these people hold more than one open loan ({column}): {people}. "
            "Cancel the extra orders (POST /sandbox/orders/{order_no}/transition with an "
            "older sandbox) or use a fresh database."
        )


def downgrade() -> None:
    op.drop_index("ux_orders_open_mobile", table_name="orders")
    op.drop_index("ux_orders_open_nik", table_name="orders")
